//! The shipped IAM policy (docs/iam-policy.json) names exactly the actions the tool calls.
//!
//! moto evaluates a policy's actions but not its resource ARNs (any Resource other than "*"
//! denies), so these users get the shipped actions on `Resource: "*"`; the resource scoping
//! of the shipped file is checked separately below.

use crate::support::*;

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

/// The shipped file is a template: every resource names a placeholder the reader replaces (or
/// `aws-key-rotator policy` fills in), never a wildcard over the account.
#[test]
fn the_shipped_policy_is_a_template_with_placeholders() {
    let text = std::fs::read_to_string(repo_root().join("docs/iam-policy.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut sids = std::collections::BTreeSet::new();
    for st in v["Statement"].as_array().unwrap() {
        assert!(
            sids.insert(st["Sid"].as_str().unwrap().to_owned()),
            "IAM wants each Sid once: {}",
            st["Sid"]
        );
        assert_eq!(st["Effect"], "Allow");
        match st["Sid"].as_str().unwrap() {
            "OptionalAwsStores" => assert_eq!(
                st["Resource"],
                serde_json::json!([
                    "arn:aws:secretsmanager:REGION:ACCOUNT_ID:secret:SECRET_NAME-??????",
                    "arn:aws:ssm:REGION:ACCOUNT_ID:parameter/PARAMETER_NAME"
                ])
            ),
            // AWS has no resource-level permission for it; it shows metadata, never values.
            "OptionalAwsStoresParameterTypes" => {
                assert_eq!(st["Action"], serde_json::json!(["ssm:DescribeParameters"]));
                assert_eq!(st["Resource"], "*");
            }
            // The evidence of an exposure (CONTRACT §17): no resource-level permission.
            "OptionalExposureEvidence" => {
                assert_eq!(st["Action"], serde_json::json!(["cloudtrail:LookupEvents"]));
                assert_eq!(st["Resource"], "*");
            }
            // S3 config objects (CONTRACT §18): the object, and its KMS key only through S3
            // for that object.
            "OptionalS3ConfigObjects" => {
                assert_eq!(
                    st["Action"],
                    serde_json::json!(["s3:GetObject", "s3:PutObject"])
                );
                assert_eq!(st["Resource"], "arn:aws:s3:::BUCKET/OBJECT_KEY");
            }
            "OptionalS3ConfigObjectKeys" => {
                assert_eq!(
                    st["Action"],
                    serde_json::json!(["kms:Decrypt", "kms:GenerateDataKey"])
                );
                assert_eq!(
                    st["Condition"]["StringEquals"]["kms:ViaService"],
                    "s3.REGION.amazonaws.com"
                );
                assert_eq!(
                    st["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:s3:arn"][0],
                    "arn:aws:s3:::BUCKET/OBJECT_KEY"
                );
            }
            // Users in other accounts (CONTRACT §15): the role of each, nothing else.
            "OptionalAssumeTheAccountRoles" => {
                assert_eq!(st["Action"], serde_json::json!(["sts:AssumeRole"]));
                assert_eq!(
                    st["Resource"],
                    "arn:aws:iam::OTHER_ACCOUNT_ID:role/ACCOUNT_ROLE_NAME"
                )
            }
            _ => assert_eq!(st["Resource"], "arn:aws:iam::ACCOUNT_ID:user/USER_NAME"),
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
            "iam:ListAttachedUserPolicies",
            "iam:ListUserTags",
            "iam:TagUser",
            "iam:UntagUser",
            "iam:UpdateAccessKey"
        ]
    );
}

/// CONTRACT §12a: two identities, two templates. The rotator's never writes a role, provider
/// or policy; the migrate identity's gives a role only the user's managed policies and boundary.
#[test]
fn the_migrate_template_is_apart_and_conditioned() {
    let rotator = std::fs::read_to_string(repo_root().join("docs/iam-policy.json")).unwrap();
    for word in [
        "CreateRole",
        "RolePolicy",
        "AssumeRolePolicy",
        "RolePermissionsBoundary",
        "OpenIDConnect",
        "Migrate",
    ] {
        assert!(!rotator.contains(word), "{word} in docs/iam-policy.json");
    }
    let text = std::fs::read_to_string(repo_root().join("docs/migrate-policy.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut conditioned = std::collections::BTreeMap::new();
    for st in v["Statement"].as_array().unwrap() {
        let resource = st["Resource"].as_str().unwrap();
        assert!(
            resource == "*" && st["Action"] == serde_json::json!(["sts:GetCallerIdentity"])
                || resource.contains("ACCOUNT_ID"),
            "{st}"
        );
        for a in st["Action"].as_array().unwrap() {
            conditioned.insert(a.as_str().unwrap().to_owned(), st["Condition"].clone());
        }
    }
    assert_eq!(
        conditioned["iam:AttachRolePolicy"]["ArnEquals"]["iam:PolicyARN"],
        serde_json::json!(["THE_USERS_MANAGED_POLICY_ARN"])
    );
    for a in ["iam:CreateRole", "iam:PutRolePermissionsBoundary"] {
        assert_eq!(
            conditioned[a]["StringEquals"]["iam:PermissionsBoundary"], "THE_USERS_BOUNDARY_ARN",
            "{a}"
        );
    }
}

const STORES_MANIFEST: &str = "version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
      - aws-secrets-manager: ci/deployer
      - ssm-parameters: { access-key-id: /ci/deployer/key-id, secret-access-key: /ci/deployer/secret }
";

/// `aws-key-rotator policy` for a manifest with every kind of AWS resource: its actions run the
/// whole life cycle against moto (which evaluates actions only), and its resources, checked
/// with IAM's matching, allow exactly the user, secret and parameters this manifest names: a
/// call on another user's key, another secret or another parameter is denied.
#[test]
fn the_generated_policy_allows_the_life_cycle_and_nothing_else() {
    use aws_key_rotator::policy::allows;
    let env = TestEnv::new();
    env.write_manifest(STORES_MANIFEST);
    let admin = env.admin.clone();
    let run = env.cli(&admin, &["policy"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let policy: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is the policy");
    let mut actions: Vec<String> = Vec::new();
    for st in policy["Statement"].as_array().unwrap() {
        for a in st["Action"].as_array().unwrap() {
            actions.push(a.as_str().unwrap().to_owned());
        }
    }
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();

    // Every call of a life cycle (with the AWS stores) is among them.
    env.user(USER, &actions);
    let old = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.seed(&[repo("acme/web")], &old, 100);
    let config = sdk_config(&env.moto_url, &env.admin.id, &env.admin.secret);
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let ssm = aws_sdk_ssm::Client::new(&config);
    let secret_arn = runtime().block_on(async {
        let out = sm
            .create_secret()
            .name("ci/deployer")
            .secret_string(
                serde_json::json!({"AWS_ACCESS_KEY_ID": old.id, "AWS_SECRET_ACCESS_KEY": old.secret})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        for (name, value) in [("/ci/deployer/key-id", &old.id), ("/ci/deployer/secret", &old.secret)] {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .unwrap();
        }
        out.arn().unwrap().to_owned()
    });
    let rotated = env.action(&old, &[]);
    assert_eq!(rotated.code, 0, "{}", rotated.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    env.remember(&new.secret);
    for command in ["deactivate", "delete"] {
        let run = env.action(
            &new,
            &[
                ("command", command),
                ("deactivate-after-hours", "0"),
                ("delete-after-days", "0"),
            ],
        );
        assert_eq!(run.code, 0, "{command}: {}", run.all());
    }
    assert_eq!(env.keys(USER), vec![(new.id.clone(), "Active".to_owned())]);

    // Its resources: the ones this life cycle touched, and no others.
    let account = "123456789012";
    let user = format!("arn:aws:iam::{account}:user/{USER}");
    for a in aws_key_rotator::policy::IAM_ACTIONS {
        assert!(allows(&policy, a, &user), "{a} on {user}");
        assert!(
            !allows(&policy, a, &format!("arn:aws:iam::{account}:user/admin")),
            "{a}"
        );
    }
    assert!(secret_arn.contains(":secret:ci/deployer-"), "{secret_arn}");
    for a in aws_key_rotator::policy::SECRETS_MANAGER_ACTIONS {
        assert!(allows(&policy, a, &secret_arn), "{a} on {secret_arn}");
        let other = secret_arn.replace("ci/deployer-", "ci/other-");
        assert!(!allows(&policy, a, &other), "{a} on {other}");
    }
    for a in aws_key_rotator::policy::SSM_ACTIONS {
        for name in ["/ci/deployer/key-id", "/ci/deployer/secret"] {
            let arn = format!("arn:aws:ssm:us-east-1:{account}:parameter{name}");
            assert!(allows(&policy, a, &arn), "{a} on {arn}");
        }
        let other = format!("arn:aws:ssm:us-east-1:{account}:parameter/prod/db-password");
        assert!(!allows(&policy, a, &other), "{a} on {other}");
    }
}
