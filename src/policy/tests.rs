use super::*;

const ISSUER: &str = "token.actions.githubusercontent.com";

#[test]
fn the_rotator_never_gets_a_role_provider_or_policy_write() {
    let m = crate::manifest::parse(
        "m.yml",
        "version: 1
users:
  - name: ci
    migrate: { role-name: gha-ci }
    consumers: [{repository: a/b, oidc: true}, {repository: a/c}]
",
    )
    .unwrap();
    let p = for_manifest(&m, "111122223333", "us-east-1");
    let role = "arn:aws:iam::111122223333:role/gha-ci";
    for a in MIGRATE_ROLE_ACTIONS
        .iter()
        .chain(MIGRATE_ATTACH_ACTIONS)
        .chain(MIGRATE_BOUNDARY_ACTIONS)
        .chain(MIGRATE_UNBOUND_ACTIONS)
    {
        assert!(
            !allows_when(
                &p,
                a,
                role,
                &[(
                    "iam:PolicyARN",
                    "arn:aws:iam::aws:policy/AdministratorAccess"
                )]
            ),
            "{a}"
        );
    }
    // No action of the rotator's names a role, a provider, a policy or a variable.
    for st in p["Statement"].as_array().unwrap() {
        for a in st["Action"].as_array().unwrap() {
            let a = a.as_str().unwrap();
            for word in ["Role", "OpenIDConnect", "Policy", "Variable"] {
                assert!(!a.contains(word), "{a}");
            }
        }
    }
    assert!(allows(
        &p,
        "iam:CreateAccessKey",
        "arn:aws:iam::111122223333:user/ci"
    ));
}

#[test]
fn migrate_gets_the_users_roles_and_provider_only_with_what_the_users_hold() {
    let m = crate::manifest::parse(
        "m.yml",
        "version: 1
users:
  - name: ci
    migrate: { role-name: gha-ci }
    consumers: [{repository: a/b}]
  - name: bound
    migrate: { role-name: gha-bound }
    consumers: [{repository: a/d}]
  - name: other
    consumers: [{repository: a/c}]
",
    )
    .unwrap();
    let s3 = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    let fence = "arn:aws:iam::111122223333:policy/fence";
    let holds = [
        (
            "ci".to_owned(),
            Holds {
                managed: vec![s3.into()],
                boundary: None,
            },
        ),
        (
            "bound".to_owned(),
            Holds {
                managed: vec![],
                boundary: Some(fence.into()),
            },
        ),
    ]
    .into_iter()
    .collect();
    let p = for_migrate(&m, "111122223333", ISSUER, &holds);
    let role = "arn:aws:iam::111122223333:role/gha-ci";
    let bound = "arn:aws:iam::111122223333:role/gha-bound";
    for a in MIGRATE_ROLE_ACTIONS {
        assert!(allows(&p, a, role), "{a}");
        assert!(allows(&p, a, bound), "{a}");
        assert!(
            !allows(&p, a, "arn:aws:iam::111122223333:role/admin"),
            "{a}"
        );
        assert!(
            !allows(&p, a, "arn:aws:iam::111122223333:role/gha-other"),
            "{a}"
        );
    }
    // Only the policies the user holds: never AdministratorAccess, never on another role.
    assert!(allows_when(
        &p,
        "iam:AttachRolePolicy",
        role,
        &[("iam:PolicyARN", s3)]
    ));
    assert!(!allows_when(
        &p,
        "iam:AttachRolePolicy",
        role,
        &[("iam:PolicyARN", admin)]
    ));
    assert!(!allows(&p, "iam:AttachRolePolicy", role));
    assert!(!allows_when(
        &p,
        "iam:AttachRolePolicy",
        bound,
        &[("iam:PolicyARN", s3)]
    ));
    // Only the user's boundary; a role without one is never given one, nor has one taken
    // away where the user has it.
    let with = |b| [("iam:PermissionsBoundary", b)];
    assert!(allows_when(&p, "iam:CreateRole", bound, &with(fence)));
    assert!(allows_when(
        &p,
        "iam:PutRolePermissionsBoundary",
        bound,
        &with(fence)
    ));
    assert!(!allows_when(&p, "iam:CreateRole", bound, &with(admin)));
    assert!(!allows(&p, "iam:CreateRole", bound));
    assert!(!allows(&p, "iam:DeleteRolePermissionsBoundary", bound));
    assert!(allows(&p, "iam:CreateRole", role));
    assert!(!allows_when(
        &p,
        "iam:PutRolePermissionsBoundary",
        role,
        &with(fence)
    ));
    assert!(allows(&p, "iam:DeleteRolePermissionsBoundary", role));
    let provider = format!("arn:aws:iam::111122223333:oidc-provider/{ISSUER}");
    for a in MIGRATE_PROVIDER_ACTIONS {
        assert!(allows(&p, a, &provider), "{a}");
        assert!(
            !allows(
                &p,
                a,
                "arn:aws:iam::111122223333:oidc-provider/accounts.google.com"
            ),
            "{a}"
        );
    }
    for a in MIGRATE_USER_ACTIONS {
        assert!(allows(&p, a, "arn:aws:iam::111122223333:user/ci"), "{a}");
        assert!(
            !allows(&p, a, "arn:aws:iam::111122223333:user/other"),
            "{a}"
        );
    }
    assert!(!allows(&p, "iam:DeleteRole", role));
    assert!(!allows(&p, "iam:DeleteOpenIDConnectProvider", &provider));
    assert!(!allows(
        &p,
        "iam:CreateAccessKey",
        "arn:aws:iam::111122223333:user/ci"
    ));
    // Nobody asks: no statement.
    let quiet = crate::manifest::parse(
        "m.yml",
        "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n",
    )
    .unwrap();
    let p = for_migrate(&quiet, "111122223333", ISSUER, &Default::default());
    assert_eq!(p["Statement"], json!([]));
}

const MANIFEST: &str = "version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
      - aws-secrets-manager: ci/deployer
        region: eu-west-1
      - ssm-parameters: { access-key-id: /ci/deployer/key-id, secret-access-key: /ci/deployer/secret }
  - name: batch
    consumers:
      - aws-secrets-manager: arn:aws:secretsmanager:us-west-2:111122223333:secret:batch-AbCdEf
";

#[test]
fn the_policy_names_this_manifests_users_secrets_and_parameters_and_nothing_wider() {
    let m = crate::manifest::parse("m.yml", MANIFEST).unwrap();
    let p = for_manifest(&m, "111122223333", "us-east-1");
    let user = "arn:aws:iam::111122223333:user/ci-deployer";
    for a in IAM_ACTIONS {
        assert!(allows(&p, a, user), "{a}");
        assert!(allows(&p, a, "arn:aws:iam::111122223333:user/batch"), "{a}");
        assert!(
            !allows(&p, a, "arn:aws:iam::111122223333:user/admin"),
            "{a}"
        );
        assert!(
            !allows(&p, a, "arn:aws:iam::999999999999:user/ci-deployer"),
            "{a}"
        );
    }
    let secret = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:ci/deployer-x1Y2z3";
    for a in SECRETS_MANAGER_ACTIONS {
        assert!(allows(&p, a, secret), "{a}");
        assert!(allows(
            &p,
            a,
            "arn:aws:secretsmanager:us-west-2:111122223333:secret:batch-AbCdEf"
        ));
        for other in [
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:ci/deployer-prod-x1Y2z3",
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:db-x1Y2z3",
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:ci/deployer-x1Y2z3",
        ] {
            assert!(!allows(&p, a, other), "{a} {other}");
        }
    }
    for a in SSM_ACTIONS {
        for name in ["/ci/deployer/key-id", "/ci/deployer/secret"] {
            let arn = format!("arn:aws:ssm:us-east-1:111122223333:parameter{name}");
            assert!(allows(&p, a, &arn), "{a} {arn}");
        }
        assert!(!allows(
            &p,
            a,
            "arn:aws:ssm:us-east-1:111122223333:parameter/ci/other"
        ));
    }
    assert!(!allows(&p, "iam:CreateUser", user));
    assert!(!allows(&p, "secretsmanager:DeleteSecret", secret));
    // The actions AWS grants only on `*`.
    assert!(allows(&p, SSM_DESCRIBE, "*"));
    assert!(allows(&p, "cloudtrail:LookupEvents", "*"));
    let statements = p["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 5);
    // A manifest of GitHub consumers only needs the IAM statement and the evidence's.
    let gh = crate::manifest::parse(
        "m.yml",
        "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n",
    )
    .unwrap();
    assert_eq!(
        for_manifest(&gh, "*", "us-east-1")["Statement"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn arn_patterns_match_as_iam_does() {
    assert!(arn_matches("a*c", "abbbc"));
    assert!(arn_matches("a?c", "abc"));
    assert!(!arn_matches("a?c", "ac"));
    assert!(arn_matches("*", "anything"));
    assert!(!arn_matches("abc", "abcd"));
    assert!(arn_matches("x-??????", "x-AbCdEf"));
    assert!(!arn_matches("x-??????", "x-AbCdE"));
}

#[test]
fn an_s3_object_gets_its_own_arn_and_its_key_only_through_s3_for_it() {
    let m = crate::manifest::parse(
        "m.yml",
        "version: 1
users:
  - name: app
    consumers:
      - s3: { bucket: acme-config, key: web/prod.json }
        fields: { access-key-id: aws.id, secret-access-key: aws.secret }
      - s3: { bucket: acme-backup, key: host/credentials }
        region: eu-west-1
",
    )
    .unwrap();
    let p = for_manifest(&m, "111122223333", "us-east-1");
    let object = "arn:aws:s3:::acme-config/web/prod.json";
    for a in S3_ACTIONS {
        assert!(allows(&p, a, object), "{a}");
        assert!(
            allows(&p, a, "arn:aws:s3:::acme-backup/host/credentials"),
            "{a}"
        );
        assert!(
            !allows(&p, a, "arn:aws:s3:::acme-config/web/other.json"),
            "{a}"
        );
        assert!(!allows(&p, a, "arn:aws:s3:::acme-config/*"), "{a}");
    }
    assert!(!allows(&p, "s3:ListBucket", "arn:aws:s3:::acme-config"));
    let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    for a in S3_KMS_ACTIONS {
        let via = |service: &str, arn: &str| {
            allows_when(
                &p,
                a,
                key,
                &[
                    ("kms:ViaService", service),
                    ("kms:EncryptionContext:aws:s3:arn", arn),
                ],
            )
        };
        assert!(via("s3.us-east-1.amazonaws.com", object), "{a}");
        assert!(
            via("s3.eu-west-1.amazonaws.com", "arn:aws:s3:::acme-backup"),
            "{a}"
        );
        assert!(
            !via("s3.us-east-1.amazonaws.com", "arn:aws:s3:::other/x"),
            "{a}"
        );
        assert!(!via("ssm.us-east-1.amazonaws.com", object), "{a}");
        assert!(!allows(&p, a, key), "{a} without S3's context");
    }
}
