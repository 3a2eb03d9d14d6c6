//! End-to-end: users in several AWS accounts (CONTRACT §15). moto keeps resources per account;
//! a role in account B assumed from account A's identity sees B's users, and AssumeRole checks
//! the role's trust and `sts:ExternalId` (tests/e2e/support/moto_server.py, item 9).

use crate::support::*;

const HOME: &str = "123456789012";
const B: &str = "222222222222";
const C: &str = "333333333333";
const ROLE: &str = "aws-key-rotator";

fn manifest(c_external_id: &str) -> String {
    format!(
        "\
version: 1
users:
  - name: ci-a
    consumers:
      - repository: acme/a
  - name: ci-b
    account-role: arn:aws:iam::{B}:role/{ROLE}
    external-id: rotate-b
    consumers:
      - repository: acme/b
  - name: ci-c
    account-role: arn:aws:iam::{C}:role/{ROLE}
    external-id: {c_external_id}
    consumers:
      - repository: acme/c
"
    )
}

/// In `account`: the role the rotator (a user of the home account) may assume with
/// `external_id`, allowed `actions`, and the IAM user `user` with a key 100 days old.
fn other_account(
    env: &TestEnv,
    account: &str,
    external_id: &str,
    actions: &[&str],
    user: &str,
) -> Key {
    let trusted = format!("arn:aws:iam::{HOME}:user/rotator");
    let role = AccountRoleSpec {
        name: ROLE,
        trusted: &trusted,
        external_id: Some(external_id),
        actions,
    };
    env.account_user(account, role, user, 100)
}

fn account_of(env: &TestEnv, key: &Key) -> String {
    let sts = sts_client(&env.moto_url, &key.id, &key.secret);
    runtime().block_on(async {
        sts.get_caller_identity()
            .send()
            .await
            .unwrap()
            .account()
            .unwrap()
            .to_owned()
    })
}

struct Fleet {
    rotator: Key,
    a: Key,
    b: Key,
    c: Key,
}

/// ci-a at home, ci-b in B, ci-c in C (its role wants the external id `rotate-c`); the rotator
/// is a home user allowed the shipped actions and sts:AssumeRole; each role the shipped actions.
fn fleet(env: &TestEnv) -> Fleet {
    let shipped = shipped_actions();
    let shipped: Vec<&str> = shipped.iter().map(String::as_str).collect();
    let mut rotator_actions = shipped.clone();
    rotator_actions.extend(["sts:AssumeRole"]);
    env.user("rotator", &rotator_actions);
    let rotator = env.create_key("rotator");
    env.rotating_user("ci-a");
    let a = env.aged_key("ci-a", 100);
    let b = other_account(env, B, "rotate-b", &shipped, "ci-b");
    let c = other_account(env, C, "rotate-c", &shipped, "ci-c");
    for (repo_name, key) in [("acme/a", &a), ("acme/b", &b), ("acme/c", &c)] {
        env.seed(&[repo(repo_name)], key, 100);
    }
    Fleet { rotator, a, b, c }
}

fn user_json<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap()
}

#[test]
fn users_of_three_accounts_rotate_in_one_run_each_key_proven_in_its_own_account() {
    let env = TestEnv::new();
    let f = fleet(&env);
    env.write_manifest(&manifest("rotate-c"));
    let (calls_before, _) = env.aws_calls();

    let status = env.cli(&f.rotator, &["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.all());
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    for (name, account) in [("ci-a", HOME), ("ci-b", B), ("ci-c", C)] {
        assert_eq!(user_json(&v, name)["account"], account, "{name}");
        assert_eq!(user_json(&v, name)["state"], "current", "{name}");
    }

    let run = env.action(&f.rotator, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let (calls, _) = env.aws_calls();
    // One session per account role and run: status made two, rotate two.
    let assumed = calls[calls_before.len()..]
        .iter()
        .filter(|c| *c == "AssumeRole")
        .count();
    assert_eq!(assumed, 4, "{calls:?}");
    for (repo_name, old, admin_account) in [
        ("acme/a", &f.a, None),
        ("acme/b", &f.b, Some(B)),
        ("acme/c", &f.c, Some(C)),
    ] {
        let new = env.held_default(&repo(repo_name)).unwrap();
        env.remember(&new.secret);
        assert_ne!(new.id, old.id, "{repo_name} got a new key");
        let expected = admin_account.unwrap_or(HOME);
        assert_eq!(
            account_of(&env, &new),
            expected,
            "{repo_name}'s key is of its account"
        );
    }
    // Each account's user now has two keys, in its own account, and nobody else's.
    assert_eq!(env.keys_in_account(B, "ci-b").len(), 2);
    assert_eq!(env.keys("ci-a").len(), 2);
    assert!(
        run.stdout.contains(&format!("ci-b (account {B})")),
        "{}",
        run.all()
    );
    let summary = run.summary.clone();
    assert!(summary.contains(&format!("account `{B}`")), "{summary}");
    assert!(summary.contains(&format!("account `{C}`")), "{summary}");
    assert!(env.remember_sessions() >= 4);
    env.record(&run);
}

#[test]
fn a_wrong_external_id_or_a_missing_role_refuses_that_user_and_the_others_rotate() {
    let env = TestEnv::new();
    let f = fleet(&env);
    // ci-c's manifest entry names the wrong external id; ci-d's account has no such role.
    let mut m = manifest("not-the-one");
    m.push_str(&format!(
        "  - name: ci-d\n    account-role: arn:aws:iam::444444444444:role/{ROLE}\n    consumers:\n      - repository: acme/d\n"
    ));
    env.write_manifest(&m);
    env.github.add_repo("acme/d");
    let before_c = (
        env.keys_in_account(C, "ci-c"),
        env.tags_in_account(C, "ci-c"),
    );
    let secrets_c = (
        env.held_default(&repo("acme/c")),
        env.github.all_secrets().len(),
    );

    let run = env.cli(&f.rotator, &["rotate", "--json"]);
    assert_eq!(
        run.code,
        2,
        "invalid credentials for ci-c and ci-d: {}",
        run.all()
    );
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    for name in ["ci-c", "ci-d"] {
        let u = user_json(&v, name);
        assert_eq!(u["outcome"], "invalid", "{name}: {u}");
        let message = u["message"].as_str().unwrap();
        assert!(
            message.contains("cannot assume the account-role")
                && message.contains("external-id") == (name == "ci-c"),
            "{name}: {message}"
        );
    }
    // ci-c is untouched: its keys and tags, and the secrets of acme/c.
    assert_eq!(
        (
            env.keys_in_account(C, "ci-c"),
            env.tags_in_account(C, "ci-c")
        ),
        before_c,
        "no key, journal or lease on ci-c"
    );
    assert_eq!(
        env.held_default(&repo("acme/c")).map(|k| k.id),
        secrets_c.0.map(|k| k.id)
    );
    // The others rotated.
    for (name, old) in [("ci-a", &f.a), ("ci-b", &f.b)] {
        assert_eq!(user_json(&v, name)["outcome"], "rotated", "{name}");
        let new = env
            .held_default(&repo(&format!("acme/{}", &name[3..])))
            .unwrap();
        env.remember(&new.secret);
        assert_ne!(new.id, old.id);
    }
    env.remember_sessions();
    env.record(&run);
}

#[test]
fn policy_for_an_account_roles_user_is_the_roles_permissions_and_the_rotator_may_assume_it() {
    use aws_key_rotator::policy::allows;
    let env = TestEnv::new();
    env.write_manifest(&manifest("rotate-c"));
    let admin = env.admin.clone();
    let home = env.cli(&admin, &["policy"]);
    assert_eq!(home.code, 0, "{}", home.all());
    let p: serde_json::Value = serde_json::from_str(&home.stdout).unwrap();
    assert!(allows(
        &p,
        "iam:CreateAccessKey",
        &format!("arn:aws:iam::{HOME}:user/ci-a")
    ));
    assert!(!allows(
        &p,
        "iam:CreateAccessKey",
        &format!("arn:aws:iam::{HOME}:user/ci-b")
    ));
    for account in [B, C] {
        assert!(allows(
            &p,
            "sts:AssumeRole",
            &format!("arn:aws:iam::{account}:role/{ROLE}")
        ));
    }
    assert!(!allows(
        &p,
        "sts:AssumeRole",
        &format!("arn:aws:iam::{HOME}:role/admin")
    ));

    let role = env.cli(&admin, &["policy", "--user", "ci-b"]);
    assert_eq!(role.code, 0, "{}", role.all());
    let p: serde_json::Value = serde_json::from_str(&role.stdout).unwrap();
    assert!(allows(
        &p,
        "iam:CreateAccessKey",
        &format!("arn:aws:iam::{B}:user/ci-b")
    ));
    assert!(!allows(
        &p,
        "iam:CreateAccessKey",
        &format!("arn:aws:iam::{B}:user/ci-a")
    ));
    assert!(!allows(
        &p,
        "iam:CreateAccessKey",
        &format!("arn:aws:iam::{C}:user/ci-c")
    ));
    assert!(!allows(&p, "sts:AssumeRole", "*"));
    // The trust, on stderr: the rotator's identity, with the external id.
    assert!(
        role.stderr.contains("\"sts:ExternalId\": \"rotate-b\""),
        "{}",
        role.stderr
    );
    assert!(
        role.stderr
            .contains(&format!("arn:aws:iam::{HOME}:user/admin")),
        "{}",
        role.stderr
    );
}

#[test]
fn account_role_mistakes_in_the_manifest_are_located_and_change_nothing() {
    let env = TestEnv::new();
    env.rotating_user("ci-a");
    let old = env.aged_key("ci-a", 100);
    env.seed(&[repo("acme/a")], &old, 100);
    for (entry, words) in [
        (
            "    account-role: arn:aws:iam::12345:role/r\n",
            "is not an IAM role ARN",
        ),
        ("    external-id: lonely\n", "without `account-role`"),
        (
            "    account-role: arn:aws:iam::222222222222:role/r\n    external-id: \"no spaces\"\n",
            "external-id must be",
        ),
    ] {
        env.write_manifest(&format!(
            "version: 1\nusers:\n  - name: ci-a\n{entry}    consumers:\n      - repository: acme/a\n"
        ));
        let run = env.changes_nothing("ci-a", 2, || env.cli(&old, &["rotate"]));
        assert!(run.stderr.contains(words), "{entry}: {}", run.stderr);
        assert!(
            run.stderr.contains("aws-key-rotation.yml:"),
            "located: {}",
            run.stderr
        );
    }
}
