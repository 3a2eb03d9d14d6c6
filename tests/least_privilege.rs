//! The shipped IAM policy (docs/iam-policy.json) names exactly the actions the tool calls.
//!
//! moto evaluates a policy's actions but not its resource ARNs (any Resource other than "*"
//! denies), so these users get the shipped actions on `Resource: "*"`; the resource scoping
//! of the shipped file is checked separately below.

mod support;

use support::*;

const USER: &str = "ci-deployer";
const MANIFEST: &str =
    "version: 1\nusers:\n  - name: ci-deployer\n    consumers:\n      - repository: acme/web\n";

/// status → rotate (own old key) → deactivate and delete (the new key, as a later job would).
/// Returns the first step that failed, if any.
fn life_cycle(actions: &[&str]) -> Option<String> {
    let env = TestEnv::new();
    env.user(USER, actions);
    let old = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.write_manifest(MANIFEST);
    let run = env.action(&old, &[("command", "status")]);
    if run.code != 0 {
        return Some(format!("status: {}", run.stderr));
    }
    let run = env.action(&old, &[]);
    if run.code != 0 {
        return Some(format!("rotate: {}", run.stderr));
    }
    let Some(new) = env.held_default(&repo("acme/web")) else {
        return Some("rotate wrote nothing".into());
    };
    for command in ["deactivate", "delete"] {
        let run = env.action(
            &new,
            &[
                ("command", command),
                ("old-access-key-id", &old.id),
                ("deactivate-after-hours", "0"),
                ("delete-after-days", "0"),
            ],
        );
        if run.code != 0 {
            return Some(format!("{command}: {}", run.stderr));
        }
    }
    assert_eq!(env.keys(USER), vec![(new.id.clone(), "Active".to_owned())]);
    assert!(env.sts_accepts(&new));
    assert!(!env.sts_accepts(&old));
    None
}

#[test]
fn the_whole_life_cycle_runs_with_exactly_the_shipped_actions() {
    let actions = shipped_actions();
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    assert_eq!(life_cycle(&actions), None);
}

#[test]
fn removing_any_one_action_breaks_the_life_cycle() {
    let actions = shipped_actions();
    for missing in &actions {
        let fewer: Vec<&str> = actions
            .iter()
            .filter(|a| *a != missing)
            .map(String::as_str)
            .collect();
        let failure = life_cycle(&fewer);
        assert!(
            failure.is_some(),
            "the life cycle passed without {missing}: the policy names an action the tool does not need"
        );
    }
}

#[test]
fn the_shipped_policy_is_scoped_to_the_callers_own_user() {
    let text = std::fs::read_to_string(repo_root().join("docs/iam-policy.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for st in v["Statement"].as_array().unwrap() {
        assert_eq!(st["Effect"], "Allow");
        if st["Sid"] == "OptionalAwsStores" {
            // Only for users with AWS stores; scoped to secrets and parameters.
            assert_eq!(
                st["Resource"],
                serde_json::json!([
                    "arn:aws:secretsmanager:*:*:secret:*",
                    "arn:aws:ssm:*:*:parameter/*"
                ])
            );
        } else {
            assert_eq!(st["Resource"], "arn:aws:iam::*:user/${aws:username}");
        }
    }
    let mut actions = shipped_actions();
    actions.sort();
    assert_eq!(
        actions,
        [
            "iam:CreateAccessKey",
            "iam:DeleteAccessKey",
            "iam:GetAccessKeyLastUsed",
            "iam:ListAccessKeys",
            "iam:ListUserTags",
            "iam:TagUser",
            "iam:UntagUser",
            "iam:UpdateAccessKey"
        ]
    );
}
