//! Bad input exits 2, says what to fix, and changes nothing in IAM or GitHub.

mod support;

use support::*;

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

/// A due user with one key held by both consumers; returns the key.
fn due_user(env: &TestEnv) -> Key {
    env.rotating_user(USER);
    let key = env.aged_key(USER, 120);
    env.github.add_repo("acme/web");
    env.github.add_environment("acme/web", "production");
    env.seed(
        &[repo("acme/web"), environment("acme/web", "production")],
        &key,
        120,
    );
    key
}

/// Runs `rotate` as the action and checks: exit 2, the message, nothing changed.
fn refused_as_invalid(env: &TestEnv, creds: &Key, inputs: &[(&str, &str)], needle: &str) -> Run {
    let before = env.world(USER);
    let run = env.action(creds, inputs);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains(needle),
        "wanted {needle:?} in:\n{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("::error::"),
        "an error annotation:\n{}",
        run.stdout
    );
    assert_eq!(env.world(USER), before, "IAM and every secret unchanged");
    assert_eq!(env.github.count("PUT", "/"), 0);
    run
}

#[test]
fn malformed_yaml() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest("version: 1\nusers: [\n");
    refused_as_invalid(
        &env,
        &key,
        &[],
        ".github/aws-key-rotation.yml:2:8: unclosed bracket",
    );
}

#[test]
fn unknown_field() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(&MANIFEST.replace("    consumers:", "    max_age_days: 3\n    consumers:"));
    refused_as_invalid(
        &env,
        &key,
        &[],
        ".github/aws-key-rotation.yml:4:5: unknown field `max_age_days`, expected one of name, max-age-days",
    );
}

#[test]
fn missing_version() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(&MANIFEST.replace("version: 1\n", ""));
    refused_as_invalid(
        &env,
        &key,
        &[],
        ".github/aws-key-rotation.yml:1:1: missing field `version` (add `version: 1` at the top)",
    );
}

#[test]
fn unknown_iam_user() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(&MANIFEST.replace("name: ci-deployer", "name: ci-deployr"));
    refused_as_invalid(
        &env,
        &key,
        &[],
        ".github/aws-key-rotation.yml:3:5: IAM user \"ci-deployr\" does not exist",
    );
}

#[test]
fn a_repository_that_does_not_exist() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(&format!("{MANIFEST}      - repository: acme/gone\n"));
    refused_as_invalid(
        &env,
        &key,
        &[],
        "acme/gone (repository secrets): GitHub answered 404: the repository or environment does not exist",
    );
}

#[test]
fn an_environment_that_does_not_exist() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(&format!(
        "{MANIFEST}      - repository: acme/web\n        environment: staging\n"
    ));
    refused_as_invalid(
        &env,
        &key,
        &[],
        "acme/web environment \"staging\": GitHub answered 404",
    );
}

#[test]
fn a_token_without_permission() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(MANIFEST);
    env.github
        .add_fault(Fault::new(axum::http::Method::GET, "/public-key", 403));
    refused_as_invalid(
        &env,
        &key,
        &[],
        "GitHub answered 403 (injected fault): the token cannot read secrets here. The workflow's own GITHUB_TOKEN can never write secrets",
    );
}

#[test]
fn no_github_token() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(MANIFEST);
    refused_as_invalid(
        &env,
        &key,
        &[("github-token", "")],
        "GitHub answered 401 (Requires authentication): no token was given. Give it as input github-token",
    );
}

#[test]
fn no_aws_credentials() {
    let env = TestEnv::new();
    due_user(&env);
    env.write_manifest(MANIFEST);
    let none = Key {
        id: String::new(),
        secret: String::new(),
    };
    refused_as_invalid(&env, &none, &[], "no AWS credentials");
}

#[test]
fn wrong_aws_credentials() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(MANIFEST);
    let wrong = Key {
        id: key.id.clone(),
        secret: "x".repeat(40),
    };
    refused_as_invalid(&env, &wrong, &[], "AWS answered 403 to iam:ListAccessKeys");
}

#[test]
fn no_manifest_and_no_iam_user() {
    let env = TestEnv::new();
    let key = due_user(&env);
    refused_as_invalid(
        &env,
        &key,
        &[],
        "no manifest at .github/aws-key-rotation.yml",
    );
}

#[test]
fn a_named_manifest_that_does_not_exist() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(MANIFEST);
    refused_as_invalid(
        &env,
        &key,
        &[("config", "keys/rotation.yml")],
        "cannot read the manifest keys/rotation.yml",
    );
}

#[test]
fn a_user_not_in_the_manifest() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(MANIFEST);
    refused_as_invalid(
        &env,
        &key,
        &[("user", "someone")],
        "user \"someone\" is not in .github/aws-key-rotation.yml (its users: ci-deployer)",
    );
}

#[test]
fn an_input_that_is_not_a_boolean() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(MANIFEST);
    refused_as_invalid(
        &env,
        &key,
        &[("force", "yes")],
        "input force must be true or false, not \"yes\"",
    );
}

#[test]
fn an_old_access_key_id_that_is_not_the_users() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(MANIFEST);
    let newer = env.create_key(USER);
    let then = chrono::Utc::now();
    for scope in [repo("acme/web"), environment("acme/web", "production")] {
        env.github
            .set_secret(&scope, "AWS_ACCESS_KEY_ID", &newer.id, then);
        env.github
            .set_secret(&scope, "AWS_SECRET_ACCESS_KEY", &newer.secret, then);
    }
    let run = refused_as_invalid(
        &env,
        &newer,
        &[
            ("command", "deactivate"),
            ("old-access-key-id", "AKIANOTTHEUSERS00000"),
        ],
        "old-access-key-id AKIANOTTHEUSERS00000 is not a key of user ci-deployer",
    );
    assert!(run.stderr.contains(&key.id));
}

#[test]
fn bad_input_on_one_user_stops_before_any_user_changes() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.user("other", &["iam:ListAccessKeys"]);
    env.aged_key("other", 200);
    env.write_manifest(&format!(
        "version: 1\nusers:\n  - name: other\n    consumers:\n      - repository: acme/web\n        secrets: {{ access-key-id: OTHER_ID, secret-access-key: OTHER_SECRET }}\n{}",
        MANIFEST.trim_start_matches("version: 1\nusers:\n")
    ).replace("      - repository: acme/web\n        environment: production\n", "      - repository: acme/web\n        environment: missing\n"));
    let before = env.keys("other");
    let admin = env.admin.clone();
    refused_as_invalid(
        &env,
        &admin,
        &[],
        "acme/web environment \"missing\": GitHub answered 404",
    );
    assert_eq!(
        env.keys("other"),
        before,
        "the first user was not rotated either"
    );
    let _ = key;
}
