//! End-to-end: the real binary against moto (IAM auth mode) and the fake GitHub.

use crate::support::fixtures::{MANIFEST, USER, add_consumer_stores, consumers, seed_consumers};
use crate::support::*;

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

/// The defaults (24 hours, 7 days) and a consumer outside GitHub.
const MANIFEST_WITH_GRACE: &str = "\
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

/// Every consumer holds `key` (both secrets, opened from the sealed boxes by the fake).
fn assert_all_hold(env: &TestEnv, key: &Key) {
    for (scope, id, secret) in consumers() {
        let held = env
            .held(&scope, id, secret)
            .unwrap_or_else(|| panic!("{scope:?} holds nothing"));
        assert_eq!(held.id, key.id, "{scope:?}");
        assert_eq!(held.secret, key.secret, "{scope:?}");
    }
}

#[test]
fn bootstrap_gives_a_keyless_user_a_key_in_every_consumer() {
    let env = TestEnv::new();
    setup_user(&env, None);
    add_consumer_stores(&env);
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
    add_consumer_stores(&env);
    seed_consumers(&env, &old, 100);
    env.write_manifest(MANIFEST_WITH_GRACE);
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
    assert!(
        env.sts_accepts(&old),
        "the old key still works until deactivate"
    );

    assert_eq!(run.output("rotated").as_deref(), Some("true"));
    assert_eq!(run.output("state").as_deref(), Some("current"));
    assert_eq!(run.output("new-access-key-id"), Some(new.id.clone()));
    assert_eq!(run.output("old-access-key-id"), Some(old.id.clone()));
    // The new secret is masked before anything else mentions the new key.
    let mask = format!("::add-mask::{}", new.secret);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let masked_at = lines
        .iter()
        .position(|l| *l == mask)
        .expect("the new secret is masked");
    let first_mention = lines.iter().position(|l| l.contains(&new.id)).unwrap();
    assert!(masked_at < first_mention, "{}", run.stdout);
    // The summary lists every consumer with the key it holds, and the external one.
    for (line_start, _) in [
        (
            "| acme/web | repository secrets | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | updated |",
            0,
        ),
        (
            "| acme/web | environment production | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | updated |",
            0,
        ),
        (
            "| acme/api | repository secrets | `DEPLOY_KEY_ID`, `DEPLOY_KEY_SECRET` | updated |",
            0,
        ),
    ] {
        let row = run
            .summary
            .lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("{line_start}\n{}", run.summary));
        assert!(row.contains(&new.id), "{row}");
    }
    assert!(run.summary.contains("on-prem backup script"));
    // One public key fetch per scope, reused for both secrets of the scope.
    assert_eq!(
        env.github.count("GET", "/public-key"),
        3,
        "{:?}",
        env.github.log()
    );
    assert_eq!(env.github.count("PUT", "/secrets/"), 6);
}

/// A user rotated once (by its own old key): returns (old, new).
fn rotated_once(env: &TestEnv) -> (Key, Key) {
    let old = setup_user(env, Some(91)).unwrap();
    add_consumer_stores(env);
    seed_consumers(env, &old, 100);
    env.write_manifest(MANIFEST);
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    (old, new)
}

#[test]
fn a_young_key_is_left_alone_unless_forced() {
    let env = TestEnv::new();
    let key = setup_user(&env, Some(10)).unwrap();
    add_consumer_stores(&env);
    seed_consumers(&env, &key, 100);
    env.write_manifest(MANIFEST);
    let run = env.changes_nothing(USER, 0, || env.action(&key, &[]));
    assert_eq!(run.output("rotated").as_deref(), Some("false"));
    assert_eq!(run.output("state").as_deref(), Some("current"));
    assert!(
        run.stdout.contains("rotation is due in 80 days"),
        "{}",
        run.stdout
    );

    let run = env.action(&key, &[("force", "true")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.output("rotated").as_deref(), Some("true"));
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_ne!(new.id, key.id);
    assert_all_hold(&env, &new);
}

#[test]
fn max_age_days_from_the_manifest_decides_what_is_due() {
    let env = TestEnv::new();
    let key = setup_user(&env, Some(31)).unwrap();
    add_consumer_stores(&env);
    seed_consumers(&env, &key, 100);
    env.write_manifest(&MANIFEST.replace(
        "  - name: ci-deployer\n",
        "  - name: ci-deployer\n    max-age-days: 30\n",
    ));
    let run = env.action(&key, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.output("rotated").as_deref(), Some("true"));
}

#[test]
fn deactivate_in_a_later_job_retires_the_old_key() {
    let env = TestEnv::new();
    let (old, new) = rotated_once(&env);
    // The same job's credentials are the old key: refused, nothing changes.
    let run = env.changes_nothing(USER, 3, || env.action(&old, &[("command", "deactivate")]));
    assert!(run.stderr.contains("authenticated with"), "{}", run.stderr);
    assert!(
        run.stdout.contains("::error::"),
        "an annotation: {}",
        run.stdout
    );
    // A later job reads the new key from the secret store.
    let run = env.action(
        &new,
        &[("command", "deactivate"), ("old-access-key-id", &old.id)],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains(&format!("old key {}: ", old.id)),
        "reports the last use: {}",
        run.stdout
    );
    assert_eq!(
        env.keys(USER),
        vec![
            (old.id.clone(), "Inactive".into()),
            (new.id.clone(), "Active".into())
        ]
    );
    assert!(!env.sts_accepts(&old), "moto rejects the Inactive key");
    assert!(env.sts_accepts(&new));
    // Running it again changes nothing.
    let run = env.action(&new, &[("command", "deactivate")]);
    assert_eq!(run.code, 0, "{}", run.all());
}

#[test]
fn delete_removes_only_an_inactive_old_key() {
    let env = TestEnv::new();
    let (old, new) = rotated_once(&env);
    // Deactivate and delete write no secret, so they fetch no public key either. (A refusal
    // tells a person through an issue, CONTRACT §16: those writes are counted apart.)
    let github_cost = |env: &TestEnv| {
        let writes = env
            .github
            .log()
            .iter()
            .filter(|l| !l.starts_with("GET ") && !l.contains("/issues"))
            .count();
        (env.github.count("GET", "/public-key"), writes)
    };
    let after_rotation = github_cost(&env);
    // Both Active: delete of the old key refuses; without naming it, there is nothing to do yet.
    let run = env.changes_nothing(USER, 3, || {
        env.action(
            &new,
            &[("command", "delete"), ("old-access-key-id", &old.id)],
        )
    });
    assert!(run.stderr.contains("is Active"), "{}", run.stderr);
    let run = env.changes_nothing(USER, 0, || env.action(&new, &[("command", "delete")]));
    assert!(
        run.stdout.contains("nothing to delete yet"),
        "{}",
        run.stdout
    );
    let run = env.action(&new, &[("command", "deactivate")]);
    assert_eq!(run.code, 0, "{}", run.all());
    // Naming the newest key is refused.
    let run = env.action(
        &new,
        &[("command", "delete"), ("old-access-key-id", &new.id)],
    );
    assert_eq!(run.code, 3, "{}", run.all());
    assert_eq!(env.keys(USER).len(), 2);
    let run = env.action(
        &new,
        &[("command", "delete"), ("old-access-key-id", &old.id)],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(env.keys(USER), vec![(new.id.clone(), "Active".into())]);
    assert!(env.sts_accepts(&new));
    assert!(!env.sts_accepts(&old));
    // The cycle is over: no tag is left on the user.
    assert_eq!(env.tags(USER), Default::default());
    // A re-run of the same job has nothing to do; the only key is never deleted.
    let run = env.action(
        &new,
        &[("command", "delete"), ("old-access-key-id", &old.id)],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let run = env.action(&new, &[("command", "delete")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(github_cost(&env), after_rotation, "{:?}", env.github.log());
    let run = env.action(
        &new,
        &[("command", "delete"), ("old-access-key-id", &new.id)],
    );
    assert_eq!(run.code, 3, "{}", run.all());
    assert_eq!(env.keys(USER), vec![(new.id.clone(), "Active".into())]);
    // Each refusal opened the user's issue, and each healthy run after it closed it again.
    let issues = env.github.issues("acme/web");
    let open: Vec<_> = issues.iter().filter(|i| i.state == "open").collect();
    assert_eq!(open.len(), 1, "{issues:?}");
    assert!(open[0].body.contains("the newest key"), "{}", open[0].body);
}

#[test]
fn state_inactive_refuses_with_guidance() {
    let env = TestEnv::new();
    let key = setup_user(&env, Some(100)).unwrap();
    add_consumer_stores(&env);
    env.write_manifest(MANIFEST);
    env.deactivate_by_hand(USER, &key.id);
    let before = env.world(USER);
    let admin = env.admin.clone();
    let run = env.action(&admin, &[("force", "true")]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert_eq!(run.output("state").as_deref(), Some("inactive"));
    assert!(
        run.stderr.contains("only an Inactive key"),
        "{}",
        run.stderr
    );
    assert_eq!(env.world(USER), before);
}

#[test]
fn state_pending_deactivation_does_nothing() {
    let env = TestEnv::new();
    let (_old, new) = rotated_once(&env);
    let run = env.changes_nothing(USER, 0, || env.action(&new, &[("force", "true")]));
    assert_eq!(run.output("state").as_deref(), Some("pending-deactivation"));
    assert_eq!(run.output("rotated").as_deref(), Some("false"));
    assert!(run.stdout.contains("awaits `deactivate`"), "{}", run.stdout);
}

/// A rotation that died after writing one consumer: the old key (100 days) everywhere but in
/// acme/web, which holds a key made an hour ago. Returns (old, half).
fn half_rotated(env: &TestEnv) -> (Key, Key) {
    let old = setup_user(env, Some(100)).unwrap();
    add_consumer_stores(env);
    seed_consumers(env, &old, 100);
    env.write_manifest(MANIFEST);
    let half = env.create_key(USER);
    env.age_key(&half.id, 60);
    let written = chrono::Utc::now() - chrono::Duration::minutes(30);
    env.github
        .set_secret(&repo("acme/web"), "AWS_ACCESS_KEY_ID", &half.id, written);
    env.github.set_secret(
        &repo("acme/web"),
        "AWS_SECRET_ACCESS_KEY",
        &half.secret,
        written,
    );
    (old, half)
}

#[test]
fn state_incomplete_refuses_and_force_recovers() {
    let env = TestEnv::new();
    let (old, half) = half_rotated(&env);
    let run = env.changes_nothing(USER, 3, || env.action(&old, &[]));
    assert_eq!(run.output("state").as_deref(), Some("incomplete"));
    assert!(
        run.stderr
            .contains("acme/web environment \"production\", acme/api (repository secrets)"),
        "{}",
        run.stderr
    );

    // With the old key as its credentials, the repair writes it back everywhere; the
    // half-written key stays until no job can still hold it.
    let run = env.action(&old, &[("force", "true")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("rolled back"), "{}", run.stdout);
    assert_all_hold(&env, &old);
    assert_eq!(env.keys(USER).len(), 2);
    let run = env.action(&old, &[("command", "status")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.output("state").as_deref(), Some("rolled-back"));
    let before = env.world(USER);
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("no job can still hold it"),
        "{}",
        run.stdout
    );
    assert_eq!(env.world(USER), before, "quiet until then");
    // With force (or six hours later) the next rotate deletes it and rotates again.
    let run = env.action(&old, &[("force", "true")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let keys = env.keys(USER);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].0, old.id);
    assert!(
        keys.iter().all(|k| k.0 != half.id),
        "the half-pushed key is deleted"
    );
    let third = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(keys[1].0, third.id);
    assert_all_hold(&env, &third);
}

#[test]
fn state_pending_deletion_waits_then_needs_delete_inactive() {
    let env = TestEnv::new();
    let (old, new) = rotated_once(&env);
    let run = env.action(&new, &[("command", "deactivate")]);
    assert_eq!(run.code, 0, "{}", run.all());
    // Young active key: quiet.
    let run = env.changes_nothing(USER, 0, || env.action(&new, &[]));
    assert_eq!(run.output("state").as_deref(), Some("pending-deletion"));
    assert!(
        run.stdout
            .contains(&format!("the Inactive old key {} awaits `delete`", old.id)),
        "{}",
        run.stdout
    );
    // Due: refused until delete ran.
    env.age_key_days(&old.id, 200);
    env.age_key_days(&new.id, 95);
    let run = env.changes_nothing(USER, 3, || env.action(&new, &[]));
    assert!(run.stderr.contains("delete-inactive"), "{}", run.stderr);
    // delete-inactive: the leftover goes, and the rotation proceeds.
    let run = env.action(&new, &[("delete-inactive", "true")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let third = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(
        env.keys(USER),
        vec![
            (new.id.clone(), "Active".into()),
            (third.id.clone(), "Active".into())
        ]
    );
    assert_eq!(run.output("old-access-key-id"), Some(new.id.clone()));
    assert_all_hold(&env, &third);
}

#[test]
fn state_conflict_refuses() {
    let env = TestEnv::new();
    let old = setup_user(&env, Some(100)).unwrap();
    add_consumer_stores(&env);
    env.write_manifest(MANIFEST);
    let newer = env.create_key(USER);
    env.deactivate_by_hand(USER, &newer.id);
    let run = env.changes_nothing(USER, 3, || {
        env.action(&old, &[("force", "true"), ("delete-inactive", "true")])
    });
    assert_eq!(run.output("state").as_deref(), Some("conflict"));
    for cmd in ["deactivate", "delete"] {
        let admin = env.admin.clone();
        env.changes_nothing(USER, 3, || {
            env.action(&admin, &[("command", cmd), ("force", "true")])
        });
    }
}

#[test]
fn the_only_key_is_never_deactivated_or_deleted() {
    let env = TestEnv::new();
    let key = setup_user(&env, Some(5)).unwrap();
    add_consumer_stores(&env);
    env.write_manifest(MANIFEST);
    let admin = env.admin.clone();
    for cmd in ["deactivate", "delete"] {
        // Named: refused.
        let run = env.action(
            &admin,
            &[
                ("command", cmd),
                ("force", "true"),
                ("old-access-key-id", &key.id),
            ],
        );
        assert_eq!(run.code, 3, "{cmd}: {}", run.all());
        assert!(run.stderr.contains("newest key"), "{}", run.stderr);
        // Not named (a fleet-wide run): nothing to do, quietly.
        let run = env.action(&admin, &[("command", cmd), ("force", "true")]);
        assert_eq!(run.code, 0, "{cmd}: {}", run.all());
        assert!(run.stdout.contains("single key"), "{}", run.stdout);
    }
    assert_eq!(env.keys(USER), vec![(key.id.clone(), "Active".into())]);
}

#[test]
fn a_straggler_on_the_old_key_blocks_deactivation_unless_forced() {
    let env = TestEnv::new();
    let (old, new) = rotated_once(&env);
    // Every consumer held the new key an hour ago; something used the old key 20 minutes ago.
    env.age_key(&new.id, 60);
    env.backdate_journal(USER, 60);
    env.record_use(&old.id, 20, "s3");
    let run = env.changes_nothing(USER, 3, || env.action(&new, &[("command", "deactivate")]));
    assert!(
        run.stderr
            .contains("40 minutes after every consumer held the new key (window 15 minutes)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("s3 in us-east-1"), "{}", run.stderr);
    // A wider window tolerates it.
    env.changes_nothing(USER, 0, || {
        env.action(
            &new,
            &[
                ("command", "deactivate"),
                ("straggler-window-minutes", "45"),
                ("dry-run", "true"),
            ],
        )
    });
    let run = env.action(&new, &[("command", "deactivate"), ("force", "true")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(env.keys(USER)[0], (old.id.clone(), "Inactive".into()));
}

#[test]
fn deactivate_refuses_while_consumers_still_hold_the_old_key() {
    let env = TestEnv::new();
    let (old, new) = rotated_once(&env);
    // Someone put the old key back in one consumer after the rotation.
    env.github.set_secret(
        &repo("acme/api"),
        "DEPLOY_KEY_ID",
        &old.id,
        chrono::Utc::now() - chrono::Duration::days(1),
    );
    let run = env.changes_nothing(USER, 3, || env.action(&new, &[("command", "deactivate")]));
    assert!(
        run.stderr.contains("acme/api (repository secrets)"),
        "{}",
        run.stderr
    );
    // Force does not override it.
    env.changes_nothing(USER, 3, || {
        env.action(&new, &[("command", "deactivate"), ("force", "true")])
    });
}

#[test]
fn a_new_key_that_never_works_is_deleted_before_any_secret_is_written() {
    let env = TestEnv::new();
    let key = setup_user(&env, Some(100)).unwrap();
    env.break_new_keys(USER);
    add_consumer_stores(&env);
    seed_consumers(&env, &key, 100);
    env.write_manifest(MANIFEST);
    let before = env.world(USER);
    let admin = env.admin.clone();
    let run = env.action(&admin, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("never worked with STS"),
        "{}",
        run.stderr
    );
    assert_eq!(
        env.world(USER),
        before,
        "the new key is gone and no secret was written"
    );
    assert_eq!(env.github.count("PUT", "/secrets/"), 0);
}

#[test]
fn a_write_that_keeps_failing_puts_the_old_key_back_and_keeps_the_new_one_until_no_job_holds_it() {
    let env = TestEnv::new();
    let old = setup_user(&env, Some(91)).unwrap();
    add_consumer_stores(&env);
    seed_consumers(&env, &old, 100);
    env.write_manifest(MANIFEST);
    // The 4th secret write (the environment's secret access key) fails for good.
    env.github.add_fault(Fault::new(
        axum::http::Method::PUT,
        "/environments/production/secrets/AWS_SECRET_ACCESS_KEY",
        500,
    ));
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    // Retried (four attempts), then given up; a 500 does not say whether the write landed, so
    // the secret's updated_at settles it (it did not) and nothing is rewritten there.
    assert_eq!(
        env.github.count(
            "PUT",
            "/environments/production/secrets/AWS_SECRET_ACCESS_KEY"
        ),
        4
    );
    assert!(
        env.github.count(
            "GET",
            "/environments/production/secrets/AWS_SECRET_ACCESS_KEY"
        ) >= 1
    );
    assert_all_hold(&env, &old);
    // Jobs that started while a consumer held the new key may still hold it: it stays
    // Active (journal `rolled-back`) until the next rotate six hours on.
    let keys = env.keys(USER);
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.1 == "Active"));
    assert_eq!(
        env.journal(USER).map(|j| j.phase),
        Some(aws_key_rotator::rotation::journal::Phase::RolledBack)
    );
    assert!(!env.tags(USER).contains_key("aws-key-rotator/lease"));
    assert!(env.sts_accepts(&old));
    assert_eq!(run.output("rotated").as_deref(), Some("false"));
    // The summary names the key each consumer holds.
    for row in run.summary.lines().filter(|l| l.starts_with("| acme/")) {
        assert!(
            row.contains(&format!("`{}`", old.id)),
            "{row}\n{}",
            run.summary
        );
    }
    assert!(
        run.summary.contains("restored to the old key"),
        "{}",
        run.summary
    );
    assert!(
        run.summary.contains("GitHub answered 500"),
        "{}",
        run.summary
    );
}

#[test]
fn without_the_old_values_both_keys_stay_and_the_report_says_who_holds_what() {
    let env = TestEnv::new();
    let old = setup_user(&env, Some(91)).unwrap();
    add_consumer_stores(&env);
    seed_consumers(&env, &old, 100);
    env.write_manifest(MANIFEST);
    env.github
        .add_fault(Fault::new(axum::http::Method::PUT, "/acme/api/", 503));
    let admin = env.admin.clone();
    // A dedicated identity, run from a repository of its own: acme/api is written last.
    let run = env
        .spawn_action(&admin, &[], &[("GITHUB_REPOSITORY", "acme/ops")])
        .wait(&env);
    assert_eq!(run.code, 1, "{}", run.all());
    let keys = env.keys(USER);
    assert_eq!(keys.len(), 2, "both keys stay Active");
    assert!(keys.iter().all(|k| k.1 == "Active"));
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(keys[1].0, new.id);
    assert_eq!(env.held_default(&env_scope()).unwrap().id, new.id);
    assert_eq!(
        env.held(&repo("acme/api"), "DEPLOY_KEY_ID", "DEPLOY_KEY_SECRET")
            .unwrap()
            .id,
        old.id
    );
    assert!(
        env.sts_accepts(&new) && env.sts_accepts(&old),
        "every consumer's key works"
    );
    let api_row = run
        .summary
        .lines()
        .find(|l| l.starts_with("| acme/api"))
        .unwrap();
    assert!(api_row.contains(&old.id), "{api_row}");
    let web_row = run
        .summary
        .lines()
        .find(|l| l.starts_with("| acme/web | repository"))
        .unwrap();
    assert!(web_row.contains(&new.id), "{web_row}");
    assert!(
        run.stderr.contains("both keys stay Active"),
        "{}",
        run.stderr
    );
}

fn env_scope() -> ScopeId {
    environment("acme/web", "production")
}

#[test]
fn dry_run_plans_every_call_and_makes_none() {
    let env = TestEnv::new();
    let old = setup_user(&env, Some(91)).unwrap();
    add_consumer_stores(&env);
    seed_consumers(&env, &old, 100);
    env.write_manifest(MANIFEST);
    let run = env.changes_nothing(USER, 0, || env.action(&old, &[("dry-run", "true")]));
    for step in [
        "would create a new access key",
        "would check the new key with STS GetCallerIdentity",
        "would write AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in acme/web (repository secrets)",
        "would write AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in acme/web environment \"production\"",
        "would write DEPLOY_KEY_ID and DEPLOY_KEY_SECRET in acme/api (repository secrets)",
    ] {
        assert!(run.stdout.contains(step), "{step}\n{}", run.stdout);
    }
    assert_eq!(run.output("rotated").as_deref(), Some("false"));
    assert_eq!(env.github.count("PUT", "/"), 0);
}

#[test]
fn rate_limits_and_blips_are_retried() {
    let env = TestEnv::new();
    let old = setup_user(&env, Some(91)).unwrap();
    add_consumer_stores(&env);
    seed_consumers(&env, &old, 100);
    env.write_manifest(MANIFEST);
    env.github.add_fault(
        Fault::new(axum::http::Method::PUT, "/acme/api/", 429)
            .retry_after(1)
            .times(1),
    );
    env.github
        .add_fault(Fault::new(axum::http::Method::GET, "/public-key", 502).times(2));
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_all_hold(&env, &new);
}

#[test]
fn the_single_user_shorthand_writes_this_repository_and_its_environments() {
    let env = TestEnv::new();
    let old = setup_user(&env, Some(91)).unwrap();
    env.github.add_repo("acme/web");
    env.github.add_environment("acme/web", "staging");
    env.github.add_environment("acme/web", "prod eu");
    let run = env.action(
        &old,
        &[("iam-user", USER), ("environments", "staging\nprod eu")],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(
        env.held_default(&crate::support::environment("acme/web", "staging"))
            .unwrap()
            .id,
        new.id
    );
    assert_eq!(
        env.held_default(&crate::support::environment("acme/web", "prod eu"))
            .unwrap()
            .id,
        new.id
    );
    assert_eq!(run.output("rotated").as_deref(), Some("true"));
}

#[test]
fn the_cli_face_reads_flags_and_github_token() {
    let env = TestEnv::new();
    let old = setup_user(&env, Some(91)).unwrap();
    add_consumer_stores(&env);
    seed_consumers(&env, &old, 100);
    let manifest = env.workspace.path().join("keys.yml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let path = manifest.to_str().unwrap();
    let run = env.cli(&old, &["status", "--config", path, "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is one JSON document");
    assert_eq!(v["users"][0]["name"], USER);
    assert_eq!(v["users"][0]["state"], "current");
    assert_eq!(v["users"][0]["due"], true);
    assert_eq!(v["users"][0]["keys"][0]["access_key_id"], old.id.as_str());
    assert_eq!(v["users"][0]["keys"][0]["age_days"], 91);
    assert!(
        !run.stdout.contains("::"),
        "no workflow commands outside Actions"
    );
    let run = env.cli(&old, &["rotate", "--config", path, "--user", USER]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("rotated"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("::add-mask::"),
        "masking is for the runner only"
    );
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_all_hold(&env, &new);
}

#[test]
fn verify_checks_the_credentials_are_the_expected_working_key() {
    let env = TestEnv::new();
    let (old, new) = rotated_once(&env);
    let run = env.action(
        &new,
        &[("command", "verify"), ("expected-access-key-id", &new.id)],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .contains(&format!("credentials work: key {}", new.id)),
        "{}",
        run.stdout
    );
    // The job still has the old key: the secrets it read were not updated.
    let run = env.action(
        &old,
        &[("command", "verify"), ("expected-access-key-id", &new.id)],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains(&format!("are key {}, not the expected {}", old.id, new.id)),
        "{}",
        run.stderr
    );
    // A key that no longer works fails after the propagation retries.
    let run = env.action(&new, &[("command", "deactivate")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let run = env.action(&old, &[("command", "verify")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("does not work with STS GetCallerIdentity"),
        "{}",
        run.stderr
    );
}

#[test]
fn status_reports_keys_states_consumers_and_last_use() {
    let env = TestEnv::new();
    let (old, new) = rotated_once(&env);
    env.write_manifest(MANIFEST_WITH_GRACE);
    env.record_use(&old.id, 5, "ec2");
    let run = env.changes_nothing(USER, 0, || env.action(&new, &[("command", "status")]));
    assert_eq!(run.output("state").as_deref(), Some("pending-deactivation"));
    assert!(
        run.stdout
            .contains(&format!("key {} Active created", old.id)),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("(ec2 in us-east-1)"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("consumer acme/api (repository secrets) DEPLOY_KEY_ID/DEPLOY_KEY_SECRET"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("external consumer (update by hand): on-prem backup script"),
        "{}",
        run.stdout
    );
    assert!(
        run.summary
            .contains("| consumer | store | secrets | result | holds key |"),
        "{}",
        run.summary
    );
}

#[test]
fn a_half_written_consumer_gets_the_old_id_back_when_the_old_secret_is_unknown() {
    let env = TestEnv::new();
    let old = setup_user(&env, Some(91)).unwrap();
    add_consumer_stores(&env);
    seed_consumers(&env, &old, 100);
    env.write_manifest(MANIFEST);
    // acme/api takes the new id, then refuses the new secret.
    env.github.add_fault(Fault::new(
        axum::http::Method::PUT,
        "/acme/api/actions/secrets/DEPLOY_KEY_SECRET",
        422,
    ));
    let admin = env.admin.clone();
    // A dedicated identity, run from a repository of its own: acme/api is written last.
    let run = env
        .spawn_action(&admin, &[], &[("GITHUB_REPOSITORY", "acme/ops")])
        .wait(&env);
    assert_eq!(run.code, 1, "{}", run.all());
    let api = env
        .held(&repo("acme/api"), "DEPLOY_KEY_ID", "DEPLOY_KEY_SECRET")
        .unwrap();
    assert_eq!(api.id, old.id, "the id matches the secret again");
    assert_eq!(api.secret, old.secret);
    assert!(env.sts_accepts(&api));
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_ne!(new.id, old.id);
    assert!(env.sts_accepts(&new));
    assert_eq!(
        env.keys(USER).len(),
        2,
        "consumers hold both keys: both stay"
    );
    let api_row = run
        .summary
        .lines()
        .find(|l| l.starts_with("| acme/api"))
        .unwrap();
    assert!(api_row.contains(&format!("`{}`", old.id)), "{api_row}");
}

#[test]
fn a_dedicated_identity_repairs_by_replacing_the_half_written_key() {
    let env = TestEnv::new();
    let (old, half) = half_rotated(&env);
    // Neither key's secret is known to this identity: the half-written key is replaced.
    let admin = env.admin.clone();
    let run = env.action(&admin, &[("force", "true")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let keys = env.keys(USER);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].0, old.id);
    assert!(keys.iter().all(|k| k.0 != half.id));
    let third = env.held_default(&repo("acme/web")).unwrap();
    assert_all_hold(&env, &third);
    assert!(env.sts_accepts(&third));
}

#[test]
fn the_most_verbose_logs_show_no_secret() {
    let env = TestEnv::new();
    let old = setup_user(&env, Some(91)).unwrap();
    add_consumer_stores(&env);
    seed_consumers(&env, &old, 100);
    env.write_manifest(MANIFEST);
    let vars = vec![
        (
            "GITHUB_TOKEN".to_owned(),
            crate::support::fake_github::TOKEN.to_owned(),
        ),
        ("AWS_KEY_ROTATOR_LOG".to_owned(), "trace".to_owned()),
        ("RUST_LOG".to_owned(), "trace".to_owned()),
    ];
    let run = env.exec(&old, &["rotate"], vars);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert!(!run.all().contains(&new.secret));
    assert!(!run.all().contains(&old.secret));
    // (TestEnv's drop scans every output for every secret as well.)
}

#[test]
fn retirement_waits_for_its_grace_periods_and_for_a_person_with_external_consumers() {
    let env = TestEnv::new();
    let (old, new) = rotated_once(&env);
    env.write_manifest(MANIFEST_WITH_GRACE);
    // Minutes after the rotation: not yet, quietly, nothing changed.
    let run = env.changes_nothing(USER, 0, || env.action(&new, &[("command", "deactivate")]));
    assert!(run.stdout.contains("not yet"), "{}", run.stdout);
    assert!(
        run.stdout.contains("deactivate-after-hours: 24 hours"),
        "{}",
        run.stdout
    );
    // A day later the external consumer still needs a person.
    env.backdate_journal(USER, 25 * 60);
    let run = env.changes_nothing(USER, 3, || env.action(&new, &[("command", "deactivate")]));
    assert!(
        run.stderr.contains("on-prem backup script"),
        "{}",
        run.stderr
    );
    let run = env.action(&new, &[("command", "deactivate"), ("force", "true")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(env.keys(USER)[0], (old.id.clone(), "Inactive".into()));
    // delete waits seven days after the deactivation; the input shortens it.
    let run = env.changes_nothing(USER, 0, || env.action(&new, &[("command", "delete")]));
    assert!(
        run.stdout.contains("delete-after-days: 7 days"),
        "{}",
        run.stdout
    );
    let run = env.action(&new, &[("command", "delete"), ("delete-after-days", "0")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(env.keys(USER), vec![(new.id.clone(), "Active".into())]);
    assert_eq!(env.tags(USER), Default::default());
}

#[test]
fn a_retirement_overdue_by_a_day_makes_status_loud() {
    let env = TestEnv::new();
    let (_old, new) = rotated_once(&env);
    env.write_manifest(MANIFEST_WITH_GRACE);
    // Verified 49 hours ago: 24 hours of grace and a day more have passed.
    env.backdate_journal(USER, 49 * 60);
    let run = env.action(&new, &[("command", "status")]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(run.stdout.contains("::error::"), "{}", run.stdout);
    assert!(run.stderr.contains("needs a person"), "{}", run.stderr);
    assert!(run.summary.contains("Needs a person"), "{}", run.summary);
}

/// CONTRACT §12 (issue: a forged journal causes an outage). After a good rotation, anyone
/// allowed iam:TagUser writes a journal that would make the next run delete the key every
/// consumer holds (`rolled-back` "in 2000") or skip the grace period (`verified` "in 2000"): it
/// is a `conflict`, loud, and nothing acts on it.
#[test]
fn a_forged_journal_is_a_conflict_and_nothing_acts_on_it() {
    let env = TestEnv::new();
    let old = setup_user(&env, Some(100)).unwrap();
    add_consumer_stores(&env);
    seed_consumers(&env, &old, 100);
    env.write_manifest(MANIFEST);
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    env.remember(&new.secret);
    for (forged, command) in [
        (
            format!(
                "v1 phase=rolled-back key={0} rotation={0}-1 at=2000-01-01T00:00:00Z",
                new.id
            ),
            "rotate",
        ),
        (
            format!(
                "v1 phase=verified key={0} rotation={0}-1 at=2000-01-01T00:00:00Z held=2000-01-01T00:00:00Z",
                new.id
            ),
            "deactivate",
        ),
        (
            format!(
                "v1 phase=verified key={0} rotation=AKIAOTHERKEY-1 at={1}",
                new.id,
                (chrono::Utc::now() - chrono::Duration::minutes(1)).format("%Y-%m-%dT%H:%M:%SZ")
            ),
            "deactivate",
        ),
    ] {
        env.set_tag(
            USER,
            aws_key_rotator::rotation::journal::JOURNAL_TAG,
            &forged,
        );
        let before = env.world(USER);
        let run = env.action(
            &new,
            &[("command", command), ("deactivate-after-hours", "0")],
        );
        assert_eq!(run.code, 3, "{forged}: {}", run.all());
        assert!(
            run.stderr.contains("contradicts its keys") && run.stdout.contains("::error::"),
            "{}",
            run.all()
        );
        assert_eq!(run.output("state").as_deref(), Some("conflict"));
        assert_eq!(env.world(USER), before, "{forged}: nothing changed");
        let keys = env.keys(USER);
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().all(|(_, s)| s == "Active"), "{keys:?}");
        assert_all_hold(&env, &new);
        assert!(env.sts_accepts(&new));
    }
}

/// Every consumer's `holds` in a `--json` report.
fn holds(run: &Run) -> Vec<Option<String>> {
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json prints JSON");
    doc["users"][0]["consumers"]
        .as_array()
        .expect("consumers")
        .iter()
        .map(|c| c["holds"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn after_a_completed_life_cycle_the_report_says_every_consumer_holds_the_new_key() {
    let env = TestEnv::new();
    let (old, new) = rotated_once(&env);
    let run = env.cli(
        &new,
        &["deactivate", "--deactivate-after-hours", "0", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let expected = vec![Some(new.id.clone()); consumers().len()];
    assert_eq!(holds(&run), expected, "{}", run.stdout);
    let run = env.cli(&new, &["delete", "--delete-after-days", "0", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(env.keys(USER), vec![(new.id.clone(), "Active".into())]);
    assert_eq!(holds(&run), expected, "{}", run.stdout);
    assert!(
        !run.all().contains("a write may have landed"),
        "nothing is unknown once the life cycle is over: {}",
        run.all()
    );
    assert!(!env.sts_accepts(&old));
}

#[test]
fn status_with_github_unreachable_fails_and_says_the_stores_were_not_read() {
    let env = TestEnv::new();
    let (_, new) = rotated_once(&env);
    let before = env.world(USER);
    let closed = format!("http://127.0.0.1:{}", free_port());
    let run = env.exec(
        &new,
        &[],
        vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            (
                "INPUT_GITHUB-TOKEN".into(),
                crate::support::fake_github::TOKEN.into(),
            ),
            ("INPUT_COMMAND".into(), "status".into()),
            ("GITHUB_API_URL".into(), closed),
        ],
    );
    assert_eq!(
        run.code,
        1,
        "a status that could not read is not a success: {}",
        run.all()
    );
    assert!(
        run.stdout
            .contains("not read (its store could not be read)"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(": unchanged"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("key {} Active created", new.id)),
        "what could be read is still reported: {}",
        run.stdout
    );
    // The tool says it once, in its own words; the GitHub client's own log lines stay out.
    assert!(!run.stderr.contains("octocrab"), "{}", run.stderr);
    assert!(!run.stderr.contains("failed with error"), "{}", run.stderr);
    assert_eq!(env.world(USER), before);
}
