//! End-to-end: `discover` finds the places that hold a user's secret names but are not in the
//! manifest — an unlisted repository, an unlisted environment, an organization secret — and not
//! a repository without those names. It changes nothing and exits 0.

use crate::support::*;

const USER: &str = "ci-deployer";
const MANIFEST: &str = "\
version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
      - repository: acme/web
        environment: production
";

fn setup(env: &TestEnv) -> Key {
    env.rotating_user(USER);
    let key = env.aged_key(USER, 30);
    env.record_use(&key.id, 60, "s3");
    env.github.add_org("acme");
    env.github.add_environment("acme/web", "production");
    env.github.add_environment("acme/web", "staging");
    env.github.add_repo("acme/api");
    env.github.add_repo("acme/docs");
    let then = chrono::Utc::now() - chrono::Duration::days(30);
    env.seed(
        &[repo("acme/web"), environment("acme/web", "production")],
        &key,
        30,
    );
    // Unlisted: acme/api's id, staging's secret, the organization's id.
    env.github
        .set_secret(&repo("acme/api"), "AWS_ACCESS_KEY_ID", &key.id, then);
    env.github.set_secret(
        &environment("acme/web", "staging"),
        "AWS_SECRET_ACCESS_KEY",
        &key.secret,
        then,
    );
    env.github
        .set_secret(&org("acme"), "AWS_ACCESS_KEY_ID", &key.id, then);
    // Not a finding: other names only.
    env.github
        .set_secret(&repo("acme/docs"), "NPM_TOKEN", "npm-token-value", then);
    env.write_manifest(MANIFEST);
    key
}

#[test]
fn discover_reports_every_unlisted_place_and_changes_nothing() {
    let env = TestEnv::new();
    setup(&env);
    let before = env.world(USER);
    // A dedicated identity: the key's last use stays the application's.
    let admin = env.admin.clone();
    let run = env.action(&admin, &[("command", "discover")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::warning::"))
        .collect();
    assert_eq!(warnings.len(), 3, "one warning per finding: {}", run.stdout);
    for place in [
        "acme/api (repository secrets) holds AWS_ACCESS_KEY_ID",
        "acme/web environment \"staging\" holds AWS_SECRET_ACCESS_KEY",
        "organization acme (Actions secrets) holds AWS_ACCESS_KEY_ID",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(place)),
            "{place}: {warnings:#?}"
        );
    }
    assert!(
        !run.all().contains("acme/docs"),
        "a repository without the names is not reported"
    );
    // The summary: findings, the key's last use, a snippet to paste, and what it cost.
    assert!(run.summary.contains("```yaml\n- repository: acme/api\n- repository: acme/web\n  environment: staging\n- organization: acme\n```"), "{}", run.summary);
    assert!(
        run.summary.contains("(s3 in us-east-1)"),
        "the key's last use: {}",
        run.summary
    );
    assert!(run.summary.contains("GitHub requests"), "{}", run.summary);
    assert_eq!(env.world(USER), before, "nothing changed");
    assert_eq!(env.github.count("PUT", "/"), 0);
    assert_eq!(env.github.count("POST", "/"), 0);
}

#[test]
fn discover_as_json_counts_its_requests() {
    let env = TestEnv::new();
    setup(&env);
    let admin = env.admin.clone();
    let run = env.cli(&admin, &["discover", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["command"], "discover");
    assert_eq!(v["owners"], serde_json::json!(["acme"]));
    assert_eq!(v["repositories"], 3);
    let findings = v["users"][0]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 3);
    let requests = v["github_requests"].as_u64().unwrap();
    let served = env.github.log().len() as u64;
    assert_eq!(requests, served, "the count is every request GitHub saw");
    assert!(requests < 50, "well inside the primary limit: {requests}");
}

/// A user account's repositories: the token's own account is listed whole (`/user/repos`,
/// private ones included); of another user's account GitHub shows only the public ones, and the
/// run says so instead of claiming the search was complete.
#[test]
fn discover_lists_its_own_accounts_private_repositories_and_says_what_it_cannot_see() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    let key = env.aged_key(USER, 30);
    let then = chrono::Utc::now() - chrono::Duration::days(30);
    env.github.add_repo("octo/web");
    env.seed(&[repo("octo/web")], &key, 30);
    // The token's own account (crate::support::fake_github::TOKEN_LOGIN): a private repository.
    env.github.add_private_repo("octo/secret-tool");
    // Another user's account: one public and one private repository.
    env.github.add_repo("someone/site");
    env.github.add_repo("someone/public-app");
    env.github.add_private_repo("someone/private-app");
    for r in [
        "octo/secret-tool",
        "someone/public-app",
        "someone/private-app",
    ] {
        env.github
            .set_secret(&repo(r), "AWS_ACCESS_KEY_ID", &key.id, then);
    }
    env.write_manifest(
        "version: 1\nusers:\n  - name: ci-deployer\n    consumers:\n      - repository: octo/web\n      - repository: someone/site\n",
    );
    let admin = env.admin.clone();
    let run = env.action(&admin, &[("command", "discover")]);
    assert_eq!(run.code, 0, "{}", run.all());
    for found in ["octo/secret-tool", "someone/public-app"] {
        assert!(
            run.stdout.contains(&format!(
                "{found} (repository secrets) holds AWS_ACCESS_KEY_ID"
            )),
            "{found}: {}",
            run.stdout
        );
    }
    assert!(!run.all().contains("someone/private-app"), "{}", run.all());
    let limit = run
        .stdout
        .lines()
        .find(|l| {
            l.starts_with(
                "::warning::discover: someone is a user account this token does not belong to",
            )
        })
        .unwrap_or_else(|| panic!("a warning about someone: {}", run.stdout));
    assert!(limit.contains("private ones were not searched"), "{limit}");
    assert!(
        !run.stdout.contains("octo is a user account"),
        "{}",
        run.stdout
    );
    assert_eq!(env.github.count("GET", "/user/repos"), 1);
}
