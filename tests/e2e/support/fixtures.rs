//! The world most end-to-end tests share: the IAM user `ci-deployer`, written into acme/web's
//! repository secrets, its `production` environment's secrets, and acme/api's secrets under
//! names of its own.

use super::{Key, ScopeId, TestEnv, environment, repo};

pub const USER: &str = "ci-deployer";

/// That user's manifest, with grace periods of zero: the mechanics of each step, without
/// waiting (the grace periods have their own tests).
pub const MANIFEST: &str = "\
version: 1
defaults:
  deactivate-after-hours: 0
  delete-after-days: 0
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
      - repository: acme/web
        environment: production
      - repository: acme/api
        secrets: { access-key-id: DEPLOY_KEY_ID, secret-access-key: DEPLOY_KEY_SECRET }
";

/// Each consumer of [`MANIFEST`]: its store and its two secrets' names.
pub fn consumers() -> Vec<(ScopeId, &'static str, &'static str)> {
    vec![
        (
            repo("acme/web"),
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ),
        (
            environment("acme/web", "production"),
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ),
        (repo("acme/api"), "DEPLOY_KEY_ID", "DEPLOY_KEY_SECRET"),
    ]
}

/// The consumers' repositories and environment on the fake GitHub, holding nothing yet.
pub fn add_consumer_stores(env: &TestEnv) {
    env.github.add_repo("acme/web");
    env.github.add_environment("acme/web", "production");
    env.github.add_repo("acme/api");
}

/// Every consumer holds `key`, written `days` ago.
pub fn seed_consumers(env: &TestEnv, key: &Key, days: i64) {
    let then = chrono::Utc::now() - chrono::Duration::days(days);
    for (scope, id, secret) in consumers() {
        env.github.set_secret(&scope, id, &key.id, then);
        env.github.set_secret(&scope, secret, &key.secret, then);
    }
}
