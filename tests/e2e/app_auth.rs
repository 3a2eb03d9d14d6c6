//! End-to-end: authenticating as a GitHub App. The App is installed on two owners; the tool
//! signs a JWT, finds each installation, and uses each owner's installation token for that
//! owner's requests only (the fake checks the JWT's signature, issuer and lifetime, and limits
//! every installation token to its own account). Bad credentials exit 2, change nothing, and no
//! key material shows.

use crate::support::*;

const USER: &str = "ci-deployer";
const APP_ID: u64 = 424242;
const MANIFEST: &str = "\
version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
      - organization: acme
      - repository: octo/tools
";

fn key_pem() -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures/test-app-key.pem")).unwrap()
}

fn setup(env: &TestEnv) -> Key {
    env.rotating_user(USER);
    let old = env.aged_key(USER, 100);
    env.github.add_org("acme");
    env.github.add_repo("acme/web");
    env.github.add_repo("octo/tools");
    env.seed(
        &[repo("acme/web"), org("acme"), repo("octo/tools")],
        &old,
        100,
    );
    let public =
        std::fs::read_to_string(repo_root().join("tests/fixtures/test-app-key.pub.pem")).unwrap();
    env.github.register_app(APP_ID, &public);
    env.write_manifest(MANIFEST);
    // The key is a secret: no line of it may show in any output.
    for line in key_pem().lines().filter(|l| !l.starts_with("-----")) {
        env.remember(line);
    }
    old
}

/// Runs the action as the App (no github-token).
fn as_app(env: &TestEnv, creds: &Key, app_id: &str, key: &str) -> Run {
    env.exec(
        creds,
        &[],
        vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("INPUT_APP-ID".into(), app_id.into()),
            ("INPUT_APP-PRIVATE-KEY".into(), key.into()),
        ],
    )
}

#[test]
fn an_app_installed_on_two_owners_rotates_the_consumers_of_both() {
    let env = TestEnv::new();
    let old = setup(&env);
    env.github.install_app(APP_ID, "acme");
    env.github.install_app(APP_ID, "octo");
    let run = as_app(&env, &old, &APP_ID.to_string(), &key_pem());
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_ne!(new.id, old.id);
    for scope in [org("acme"), repo("octo/tools")] {
        assert_eq!(env.held_default(&scope).unwrap().id, new.id, "{scope:?}");
    }
    // One installation token per owner, each masked as soon as it existed.
    let tokens = env.github.installation_tokens();
    let owners: Vec<&str> = tokens.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(owners.len(), 2, "{tokens:?}");
    assert!(owners.contains(&"acme") && owners.contains(&"octo"));
    for (token, _) in &tokens {
        assert!(
            run.stdout.contains(&format!("::add-mask::{token}")),
            "masked"
        );
    }
    let log = env.github.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET /orgs/acme/installation 200")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET /users/octo/installation 200")),
        "{log:#?}"
    );
}

#[test]
fn an_installation_token_reaches_only_its_own_account() {
    let env = TestEnv::new();
    let old = setup(&env);
    env.github.install_app(APP_ID, "acme");
    env.github.install_app(APP_ID, "octo");
    as_app(&env, &old, &APP_ID.to_string(), &key_pem());
    let tokens = env.github.installation_tokens();
    let (acme_token, _) = tokens.iter().find(|(_, o)| o == "acme").unwrap();
    let client = reqwest::blocking::Client::new();
    let get = |path: &str| {
        client
            .get(format!("{}{path}", env.github.url))
            .bearer_auth(acme_token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(get("/repos/acme/web/actions/secrets/public-key"), 200);
    assert_eq!(get("/repos/octo/tools/actions/secrets/public-key"), 404);
}

#[test]
fn bad_app_credentials_exit_2_and_change_nothing() {
    let env = TestEnv::new();
    let old = setup(&env);
    env.github.install_app(APP_ID, "acme");
    // octo is not installed: the third case.
    let other_key = {
        let out = std::process::Command::new("openssl")
            .args(["genrsa", "-traditional", "2048"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    for line in other_key.lines().filter(|l| !l.starts_with("-----")) {
        env.remember(line);
    }
    env.github.install_app(APP_ID, "octo-not-in-manifest");
    for (app_id, key, needle) in [
        (
            APP_ID.to_string(),
            "not a key at all".to_owned(),
            "not an RSA private key in PEM form",
        ),
        (
            APP_ID.to_string(),
            other_key.clone(),
            "refused the App's credentials",
        ),
        ("999".to_owned(), key_pem(), "refused the App's credentials"),
        (APP_ID.to_string(), key_pem(), "is not installed on octo"),
    ] {
        let before = env.world(USER);
        let run = as_app(&env, &old, &app_id, &key);
        assert_eq!(run.code, 2, "{needle}: {}", run.all());
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        assert!(run.stdout.contains("::error::"), "{}", run.stdout);
        assert_eq!(env.world(USER), before, "nothing changed");
        assert!(
            !run.all().contains("PRIVATE KEY"),
            "no key material: {}",
            run.all()
        );
    }
    // Both a token and an App: exclusive.
    let mut vars = vec![
        ("GITHUB_ACTIONS".into(), "true".into()),
        ("INPUT_APP-ID".into(), APP_ID.to_string()),
        ("INPUT_APP-PRIVATE-KEY".into(), key_pem()),
        ("INPUT_GITHUB-TOKEN".into(), fake_github::TOKEN.into()),
    ];
    let run = env.exec(&old, &[], std::mem::take(&mut vars));
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("exclusive"), "{}", run.stderr);
}

/// `discover` as an App installed on a user account lists that account's private repositories
/// through the installation (`/installation/repositories`), which `/users/{u}/repos` would hide.
#[test]
fn discover_as_an_app_sees_the_private_repositories_of_a_user_account() {
    let env = TestEnv::new();
    let old = setup(&env);
    env.github.install_app(APP_ID, "acme");
    env.github.install_app(APP_ID, "octo");
    env.github.add_private_repo("octo/private-tool");
    env.github.set_secret(
        &repo("octo/private-tool"),
        "AWS_ACCESS_KEY_ID",
        &old.id,
        chrono::Utc::now(),
    );
    let before = env.world(USER);
    let run = env.exec(
        &env.admin.clone(),
        &[],
        vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("INPUT_COMMAND".into(), "discover".into()),
            ("INPUT_APP-ID".into(), APP_ID.to_string()),
            ("INPUT_APP-PRIVATE-KEY".into(), key_pem()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .contains("octo/private-tool (repository secrets) holds AWS_ACCESS_KEY_ID"),
        "{}",
        run.stdout
    );
    assert!(
        !run.all()
            .contains("is a user account this token does not belong to"),
        "the installation sees the whole account: {}",
        run.all()
    );
    assert_eq!(env.github.count("GET", "/installation/repositories"), 1);
    assert_eq!(env.world(USER), before, "nothing changed");
}
