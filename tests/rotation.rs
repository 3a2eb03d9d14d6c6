//! End-to-end: the real binary against moto (IAM auth mode) and the fake GitHub.

mod support;

use support::*;

const USER: &str = "ci-deployer";

/// Everything the tool calls, for users that rotate themselves.
fn all_actions() -> Vec<String> {
    shipped_actions()
}

/// A user allowed the shipped policy's actions, with one key of `age_days`.
fn setup_user(env: &TestEnv, age_days: Option<i64>) -> Option<Key> {
    let actions = all_actions();
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    env.user(USER, &actions);
    age_days.map(|d| {
        let k = env.create_key(USER);
        env.age_key_days(&k.id, d);
        k
    })
}

const MANIFEST: &str = "\
version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
      - repository: acme/web
        environment: production
      - repository: acme/api
        secrets: { access-key-id: DEPLOY_KEY_ID, secret-access-key: DEPLOY_KEY_SECRET }
    external:
      - on-prem backup script
";

fn consumers() -> Vec<(ScopeId, &'static str, &'static str)> {
    vec![
        (repo("acme/web"), "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        (env("acme/web", "production"), "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        (repo("acme/api"), "DEPLOY_KEY_ID", "DEPLOY_KEY_SECRET"),
    ]
}

fn github_with_consumers(env: &TestEnv) {
    env.github.add_repo("acme/web");
    env.github.add_environment("acme/web", "production");
    env.github.add_repo("acme/api");
}

/// Every consumer holds `key` (both secrets, opened from the sealed boxes by the fake).
fn assert_all_hold(env: &TestEnv, key: &Key) {
    for (scope, id, secret) in consumers() {
        let held = env.held(&scope, id, secret).unwrap_or_else(|| panic!("{scope:?} holds nothing"));
        assert_eq!(held.id, key.id, "{scope:?}");
        assert_eq!(held.secret, key.secret, "{scope:?}");
    }
}

fn seed_consumers(env: &TestEnv, key: &Key) {
    let then = chrono::Utc::now() - chrono::Duration::days(100);
    for (scope, id, secret) in consumers() {
        env.github.set_secret(&scope, id, &key.id, then);
        env.github.set_secret(&scope, secret, &key.secret, then);
    }
}

#[test]
fn bootstrap_gives_a_keyless_user_a_key_in_every_consumer() {
    let env = TestEnv::new();
    setup_user(&env, None);
    github_with_consumers(&env);
    env.write_manifest(MANIFEST);
    let admin = env.admin.clone();
    let run = env.action(&admin, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let keys = env.keys(USER);
    assert_eq!(keys.len(), 1);
    let held = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(held.id, keys[0].0);
    assert_all_hold(&env, &held);
    assert!(env.sts_accepts(&held));
    assert_eq!(run.output("state").as_deref(), Some("none"));
    assert_eq!(run.output("rotated").as_deref(), Some("true"));
    assert_eq!(run.output("new-access-key-id"), Some(held.id.clone()));
    assert_eq!(run.output("old-access-key-id").as_deref(), Some(""));
}

#[test]
fn rotation_of_an_old_key_reaches_every_consumer() {
    let env = TestEnv::new();
    let old = setup_user(&env, Some(91)).unwrap();
    github_with_consumers(&env);
    seed_consumers(&env, &old);
    env.write_manifest(MANIFEST);
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());

    let keys = env.keys(USER);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], (old.id.clone(), "Active".into()));
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(keys[1], (new.id.clone(), "Active".into()));
    assert_ne!(new.id, old.id);
    assert_all_hold(&env, &new);
    assert!(env.sts_accepts(&new), "STS accepts the new key");
    assert!(env.sts_accepts(&old), "the old key still works until deactivate");

    assert_eq!(run.output("rotated").as_deref(), Some("true"));
    assert_eq!(run.output("state").as_deref(), Some("current"));
    assert_eq!(run.output("new-access-key-id"), Some(new.id.clone()));
    assert_eq!(run.output("old-access-key-id"), Some(old.id.clone()));
    // The new secret is masked before anything else mentions the new key.
    let mask = format!("::add-mask::{}", new.secret);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let masked_at = lines.iter().position(|l| *l == mask).expect("the new secret is masked");
    let first_mention = lines.iter().position(|l| l.contains(&new.id)).unwrap();
    assert!(masked_at < first_mention, "{}", run.stdout);
    // The summary lists every consumer with the key it holds, and the external one.
    for (line_start, _) in [("| acme/web | repository secrets | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | updated |", 0),
        ("| acme/web | environment production | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | updated |", 0),
        ("| acme/api | repository secrets | `DEPLOY_KEY_ID`, `DEPLOY_KEY_SECRET` | updated |", 0)]
    {
        let row = run.summary.lines().find(|l| l.starts_with(line_start)).unwrap_or_else(|| panic!("{line_start}\n{}", run.summary));
        assert!(row.contains(&new.id), "{row}");
    }
    assert!(run.summary.contains("on-prem backup script"));
    // One public key fetch per scope, reused for both secrets of the scope.
    assert_eq!(env.github.count("GET", "/public-key"), 3, "{:?}", env.github.log());
    assert_eq!(env.github.count("PUT", "/secrets/"), 6);
}
