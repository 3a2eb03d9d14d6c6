//! Parsing and validation, case by case.
use super::*;

const FULL: &str = "\
version: 1
defaults:
  max-age-days: 90
  secrets:
    access-key-id: AWS_ACCESS_KEY_ID
    secret-access-key: AWS_SECRET_ACCESS_KEY
users:
  - name: ci-deployer
    max-age-days: 60
    consumers:
      - repository: acme/web
      - repository: acme/web
        environment: production
      - repository: acme/api
        secrets: { access-key-id: DEPLOY_KEY_ID, secret-access-key: DEPLOY_KEY_SECRET }
    verify:
      - repository: acme/web
        workflow: verify-aws-credentials.yml
        ref: main
    external:
      - on-prem backup script
";

fn err(text: &str) -> String {
    parse("m.yml", text).unwrap_err().to_string()
}

#[test]
fn parses_the_contract_example() {
    let m = parse("m.yml", FULL).unwrap();
    let u = &m.users[0];
    assert_eq!(u.name, "ci-deployer");
    assert_eq!(u.max_age_days, 60);
    assert_eq!(u.origin, "m.yml:8:5");
    assert_eq!(
        u.consumers[1].scope,
        Scope::Environment {
            repository: "acme/web".into(),
            environment: "production".into()
        }
    );
    assert_eq!(u.consumers[2].secrets.access_key_id, "DEPLOY_KEY_ID");
    assert_eq!(u.consumers[0].secrets, SecretNames::default());
    assert_eq!(u.verify[0].git_ref.as_deref(), Some("main"));
    assert_eq!(u.external, vec!["on-prem backup script".to_owned()]);
}

#[test]
fn unknown_field_is_located() {
    assert_eq!(
        err("version: 1\nusers:\n  - name: a\n    consumer:\n      - repository: a/b\n"),
        "m.yml:4:5: unknown field `consumer`, expected one of name, max-age-days, deactivate-after-hours, delete-after-days, on-exposure, consumers, verify, external, migrate, account-role, external-id (see the manifest reference in the README)"
    );
}

#[test]
fn missing_version_is_located() {
    assert_eq!(
        err("users:\n  - name: a\n    consumers: [{repository: a/b}]\n"),
        "m.yml:1:1: missing field `version` (add `version: 1` at the top)"
    );
}

#[test]
fn wrong_type_is_located() {
    assert_eq!(
        err(
            "version: 1\nusers:\n  - name: a\n    max-age-days: soon\n    consumers: [{repository: a/b}]\n"
        ),
        "m.yml:4:19: `max-age-days` must be a whole number of days from 1 to 3650, not `soon`; for example `max-age-days: 90`"
    );
}

#[test]
fn malformed_yaml_is_located() {
    assert_eq!(
        err("version: 1\nusers: [\n"),
        "m.yml:2:8: unclosed bracket '['"
    );
}

#[test]
fn duplicate_consumer_is_located() {
    assert_eq!(
        err(
            "version: 1\nusers:\n  - name: a\n    consumers:\n      - repository: a/b\n      - repository: a/b\n"
        ),
        "m.yml:6:9: duplicate consumer: secret AWS_ACCESS_KEY_ID of a/b (repository secrets) is already written for user \"a\" (line 5); each secret may have one source"
    );
}

#[test]
fn same_secret_for_two_users_is_a_duplicate() {
    let e = err(
        "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n  - name: b\n    consumers: [{repository: a/b}]\n",
    );
    assert!(e.starts_with("m.yml:6:17: duplicate consumer"), "{e}");
}

#[test]
fn duplicate_verify_entry_is_located() {
    let e = err(
        "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n    verify:\n      - {repository: a/b, workflow: v.yml}\n      - {repository: a/b, workflow: v.yml}\n",
    );
    assert_eq!(
        e,
        "m.yml:7:9: duplicate verify entry: v.yml in a/b is already listed for this user"
    );
}

#[test]
fn duplicate_user_is_located() {
    let e = err(
        "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n  - name: a\n    consumers: [{repository: a/c}]\n",
    );
    assert_eq!(
        e,
        "m.yml:5:5: user \"a\" is listed twice (first at line 3): merge the two entries"
    );
}

#[test]
fn every_github_store_is_a_scope() {
    let m = parse(
            "m.yml",
            "version: 1\nusers:\n  - name: a\n    consumers:\n      - repository: a/b\n      - repository: a/b\n        app: dependabot\n      - organization: acme\n      - organization: acme\n        app: dependabot\n        visibility: selected\n        selected-repositories: [acme/web]\n",
        )
        .unwrap();
    let scopes: Vec<Scope> = m.users[0]
        .consumers
        .iter()
        .map(|c| c.scope.clone())
        .collect();
    assert_eq!(
        scopes,
        [
            Scope::Repository("a/b".into()),
            Scope::RepositoryDependabot("a/b".into()),
            Scope::Organization {
                organization: "acme".into(),
                dependabot: false,
                visibility: None,
                selected: vec![],
            },
            Scope::Organization {
                organization: "acme".into(),
                dependabot: true,
                visibility: Some(Visibility::Selected),
                selected: vec!["acme/web".into()],
            },
        ]
    );
    assert_eq!(
        scopes[3].to_string(),
        "organization acme (Dependabot secrets)"
    );
}

#[test]
fn store_combinations_that_make_no_sense_are_refused() {
    let consumer = |c: &str| {
        err(&format!(
            "version: 1\nusers:\n  - name: a\n    consumers:\n      - {c}\n"
        ))
    };
    for (c, want) in [
        (
            "organization: acme\n        repository: a/b",
            "either a `repository` or an `organization`",
        ),
        (
            "organization: acme\n        environment: prod",
            "an organization has no `environment`",
        ),
        (
            "repository: a/b\n        app: dependabot\n        environment: prod",
            "Dependabot secrets have no environments",
        ),
        (
            "repository: a/b\n        app: codespaces",
            "the only app is `dependabot`",
        ),
        (
            "repository: a/b\n        visibility: all",
            "`visibility` belongs to organization secrets",
        ),
        (
            "organization: acme\n        visibility: public",
            "m.yml:6:21",
        ),
        (
            "organization: -acme",
            "not a valid GitHub organization name",
        ),
        (
            "app: dependabot",
            "needs `repository: owner/name` or `organization: name`",
        ),
    ] {
        let e = consumer(c);
        assert!(e.contains(want), "{c}: {e}");
        assert!(e.starts_with("m.yml:"), "located: {e}");
    }
}

#[test]
fn bad_values_are_refused() {
    for (yaml, want) in [
        (
            "version: 2\nusers: []\n",
            "m.yml:1:1: unsupported manifest version 2",
        ),
        ("version: 1\nusers: []\n", "m.yml:1:1: `users` is empty"),
        (
            "version: 1\nusers:\n  - name: a\n    consumers: []\n",
            "m.yml:3:5: user \"a\" has no consumers",
        ),
        (
            "version: 1\nusers:\n  - name: a b\n    consumers: [{repository: a/b}]\n",
            "m.yml:3:5: \"a b\" is not a valid IAM user name",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    consumers: [{repository: ab}]\n",
            "m.yml:4:17: repository \"ab\" is not of the form owner/name",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b, secrets: {access-key-id: GITHUB_X, secret-access-key: Y}}]\n",
            "m.yml:4:17: secret name \"GITHUB_X\" starts with GITHUB_",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    consumers: [{repository: acme/..}]\n",
            "m.yml:4:17: repository \"acme/..\" is not of the form owner/name",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    consumers: [{repository: ./web}]\n",
            "m.yml:4:17: repository \"./web\" is not of the form owner/name",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b, environment: ..}]\n",
            "m.yml:4:17: environment \"..\" is not an environment name",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n    verify: [{repository: a/b, workflow: ../x.yml}]\n",
            "m.yml:5:14: verify workflow \"../x.yml\" is not a workflow file name",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    consumers: [{organization: acme, visibility: selected}]\n",
            "m.yml:4:17: `visibility: selected` needs `selected-repositories`",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    consumers: [{organization: acme, visibility: selected, selected-repositories: [other/web]}]\n",
            "m.yml:4:17: selected repository \"other/web\" is not a repository of acme",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    consumers: [{organization: acme, visibility: all, selected-repositories: [acme/web]}]\n",
            "m.yml:4:17: `selected-repositories` goes with `visibility: selected`",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    max-age-days: 0\n    consumers: [{repository: a/b}]\n",
            "m.yml:3:5: max-age-days must be a whole number of days from 1 to 3650, not 0",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    deactivate-after-hours: 18446744073709551615\n    consumers: [{repository: a/b}]\n",
            "m.yml:3:5: deactivate-after-hours must be a whole number of hours from 0 to 8760, not 18446744073709551615",
        ),
        (
            "version: 1\nusers:\n  - name: a\n    delete-after-days: 366\n    consumers: [{repository: a/b}]\n",
            "m.yml:3:5: delete-after-days must be a whole number of days from 0 to 365, not 366",
        ),
        (
            "version: 1\ndefaults:\n  max-age-days: 3651\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n",
            "m.yml:3:3: defaults.max-age-days must be a whole number of days from 1 to 3650, not 3651",
        ),
    ] {
        let e = err(yaml);
        assert!(e.starts_with(want), "{e}\n  wanted: {want}");
    }
}

#[test]
fn shorthand_builds_repository_and_environments() {
    let m = shorthand("ci", "acme/web", "staging, production\n").unwrap();
    let scopes: Vec<_> = m.users[0]
        .consumers
        .iter()
        .map(|c| c.scope.to_string())
        .collect();
    assert_eq!(
        scopes,
        [
            "acme/web (repository secrets)",
            "acme/web environment \"staging\"",
            "acme/web environment \"production\""
        ]
    );
    assert!(shorthand("ci", "nope", "").is_err());
    assert!(shorthand("ci", "a/b", "x,x").is_err());
    assert!(
        shorthand("ci", "a/b", "staging,..")
            .unwrap_err()
            .contains("\"..\"")
    );
    assert!(shorthand("ci", "acme/..", "").is_err());
}

/// The parser's structured error gives the location (once, leading) and its message.
#[test]
fn a_shape_error_is_located_once_in_the_parsers_words() {
    let e = err("version: 1\nusers:\n  - name: ci-deployer\n    consumers: acme/web\n");
    assert!(e.starts_with("m.yml:4:"), "{e}");
    assert!(e.ends_with("expected sequence start"), "{e}");
    assert!(!e.contains(" at line "), "the location leads, once: {e}");
}

#[test]
fn migrate_and_oidc_are_read_and_checked() {
    let m = parse(
        "m.yml",
        "version: 1
users:
  - name: ci
    migrate: { role-name: gha-deploy, variable: DEPLOY_ROLE, permissions: [arn:aws:iam::aws:policy/ReadOnlyAccess] }
    consumers:
      - repository: acme/web
        oidc: true
      - repository: acme/web
        environment: production
      - organization: acme
        oidc: false
  - name: plain
    consumers: [{repository: acme/api}]
",
    )
    .unwrap();
    let ci = &m.users[0];
    assert_eq!(ci.migrate.role_name, "gha-deploy");
    assert_eq!(ci.migrate.variable, "DEPLOY_ROLE");
    assert_eq!(
        ci.migrate.policies,
        Some(vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned()])
    );
    assert!(ci.migrate.requested);
    assert_eq!(ci.on_role.len(), 1);
    assert_eq!(ci.consumers.len(), 2, "oidc: false stays on the key");
    assert!(!ci.moved());
    let plain = &m.users[1];
    assert_eq!(plain.migrate, Migration::defaults("plain"));
    assert_eq!(plain.migrate.role_name, "gha-plain");
    assert_eq!(plain.migrate.variable, "AWS_ROLE_ARN");

    let user = |extra: &str, consumer: &str| {
        err(&format!(
            "version: 1\nusers:\n  - name: ci\n{extra}    consumers:\n      - {consumer}\n"
        ))
    };
    for (extra, consumer, want) in [
        (
            "",
            "{repository: acme/web, app: dependabot, oidc: true}",
            "m.yml:5:9: `oidc: true` on acme/web (Dependabot secrets): Dependabot reads its own secrets",
        ),
        (
            "",
            "{aws-secrets-manager: ci/key, oidc: true}",
            "m.yml:5:9: `oidc: true` on",
        ),
        (
            "    migrate: { role-name: 'a role' }\n",
            "{repository: acme/web}",
            "m.yml:4:14: migrate.role-name \"a role\" is not a valid IAM role name",
        ),
        (
            "    migrate: { variable: 1ROLE }\n",
            "{repository: acme/web}",
            "m.yml:4:14: migrate.variable \"1ROLE\" starts with a digit",
        ),
        (
            "    migrate: { permissions: all }\n",
            "{repository: acme/web}",
            "m.yml:4:14: migrate.permissions \"all\" is neither `copy` nor a list of policy ARNs",
        ),
        (
            "    migrate: { permissions: [] }\n",
            "{repository: acme/web}",
            "m.yml:4:14: migrate.permissions is an empty list",
        ),
        (
            "    migrate: { permissions: [ReadOnlyAccess] }\n",
            "{repository: acme/web}",
            "m.yml:4:14: migrate.permissions: \"ReadOnlyAccess\" is not a managed policy ARN",
        ),
        (
            "    migrate: { role: x }\n",
            "{repository: acme/web}",
            "m.yml:4:16: unknown field `role`",
        ),
    ] {
        let got = user(extra, consumer);
        assert!(got.starts_with(want), "{got}\nwanted: {want}");
    }
}

/// CONTRACT §12a: GitHub resolves a job's `vars.X` environment → repository → organization,
/// so two moving users' variables of one name in scopes of one chain would hand one user's
/// role to jobs that read the other's secrets. Exit 2 naming both consumers.
#[test]
fn two_users_variables_never_resolve_in_one_job() {
    let two = |a: &str, b: &str| {
        format!(
            "version: 1
users:
  - name: ci
    migrate: {{}}
    consumers: [{a}]
  - name: batch
    migrate: {{ role-name: gha-batch }}
    consumers: [{b}]
"
        )
    };
    let b_names = "secrets: {access-key-id: B_ID, secret-access-key: B_SECRET}";
    for (a, b, first, second) in [
        (
            "{organization: acme}".to_owned(),
            format!("{{repository: Acme/web, {b_names}}}"),
            "organization acme (Actions secrets)",
            "Acme/web (repository secrets)",
        ),
        (
            "{repository: acme/web}".to_owned(),
            format!("{{repository: acme/web, environment: prod, {b_names}}}"),
            "acme/web (repository secrets)",
            "acme/web environment \"prod\"",
        ),
        (
            "{organization: ACME}".to_owned(),
            format!("{{repository: acme/api, environment: prod, {b_names}}}"),
            "organization ACME (Actions secrets)",
            "acme/api environment \"prod\"",
        ),
    ] {
        let got = err(&two(&a, &b));
        assert!(
            got.contains(&format!("{first} of \"ci\" and {second} of \"batch\"")),
            "{got}"
        );
        assert!(got.contains("AWS_ROLE_ARN"), "{got}");
        // With a variable of its own, or in another organization, repository or environment: fine.
        let own = two(&a, &b).replace(
            "role-name: gha-batch",
            "role-name: gha-batch, variable: BATCH_ROLE_ARN",
        );
        parse("m.yml", &own).unwrap();
    }
    for (a, b) in [
        (
            "{organization: acme}",
            "{repository: other/web, secrets: {access-key-id: B_ID, secret-access-key: B_SECRET}}",
        ),
        (
            "{repository: acme/web, environment: staging}",
            "{repository: acme/web, environment: prod, secrets: {access-key-id: B_ID, secret-access-key: B_SECRET}}",
        ),
        (
            "{repository: acme/web}",
            "{repository: acme/api, secrets: {access-key-id: B_ID, secret-access-key: B_SECRET}}",
        ),
        // Dependabot reads no Actions variables.
        (
            "{organization: acme, app: dependabot}",
            "{repository: acme/web, secrets: {access-key-id: B_ID, secret-access-key: B_SECRET}}",
        ),
    ] {
        parse("m.yml", &two(a, b)).unwrap_or_else(|e| panic!("{a} {b}: {e}"));
    }
}

#[test]
fn two_users_never_share_a_role_or_a_variable() {
    let two = |a: &str, b: &str| {
        err(&format!(
            "version: 1
users:
  - name: ci
    migrate: {a}
    consumers: [{{repository: acme/web}}]
  - name: batch
    migrate: {b}
    consumers: [{{repository: acme/web, secrets: {{access-key-id: B_ID, secret-access-key: B_SECRET}}}}]
"
        ))
    };
    let got = two(
        "{ role-name: Shared }",
        "{ role-name: shared, variable: OTHER }",
    );
    assert!(
        got.contains("would share the role shared with user \"ci\""),
        "{got}"
    );
    let got = two("{}", "{ role-name: gha-batch }");
    assert!(
        got.contains("would both have the variable AWS_ROLE_ARN read by one job: acme/web (repository secrets) of \"ci\" and acme/web (repository secrets) of \"batch\""),
        "{got}"
    );
    let fine = parse(
        "m.yml",
        "version: 1
users:
  - name: ci
    migrate: {}
    consumers: [{repository: acme/web}]
  - name: batch
    migrate: { variable: BATCH_ROLE_ARN }
    consumers: [{repository: acme/web, secrets: {access-key-id: B_ID, secret-access-key: B_SECRET}}]
",
    );
    assert!(fine.is_ok(), "{fine:?}");
}

#[test]
fn vault_consumers_are_read_and_checked() {
    let m = parse(
        "m.yml",
        "version: 1
users:
  - name: ci
    consumers:
      - vault: { mount: secret, path: ci/deployer }
      - vault: { mount: kv, path: team/app }
        address: https://vault.example.com:8200
        namespace: ci
        secrets: { access-key-id: KEY, secret-access-key: SECRET }
",
    )
    .unwrap();
    let c = &m.users[0].consumers;
    assert_eq!(
        c[0].scope,
        Scope::Vault {
            mount: "secret".into(),
            path: "ci/deployer".into(),
            address: None,
            namespace: None
        }
    );
    assert!(c[0].scope.is_readable() && c[0].scope.whole_pair());
    assert_eq!(c[1].secrets.access_key_id, "KEY");
    assert_eq!(
        c[1].scope.to_string(),
        "Vault secret kv/team/app in namespace ci at https://vault.example.com:8200"
    );
    let one = |consumer: &str| {
        err(&format!(
            "version: 1\nusers:\n  - name: ci\n    consumers:\n      - {consumer}\n"
        ))
    };
    for (consumer, want) in [
        (
            "{vault: {mount: secret, path: /ci}}",
            "m.yml:5:9: vault path \"/ci\" is not a path",
        ),
        (
            "{vault: {mount: secret, path: ci/../x}}",
            "m.yml:5:9: vault path \"ci/../x\" is not a path",
        ),
        (
            "{vault: {mount: '', path: ci}}",
            "m.yml:5:9: vault mount \"\" is not a mount",
        ),
        (
            "{vault: {mount: secret, path: ci}, address: vault.example.com}",
            "m.yml:5:9: vault address \"vault.example.com\" is not a URL",
        ),
        (
            "{vault: {mount: secret, path: ci}, repository: acme/web}",
            "m.yml:5:9: `repository` does not belong to a `vault` consumer",
        ),
        (
            "{vault: {mount: secret, path: ci}, region: eu-west-1}",
            "m.yml:5:9: `region` does not belong to a `vault` consumer",
        ),
        (
            "{repository: acme/web, namespace: ci}",
            "m.yml:5:9: `namespace` belongs to `vault` consumers",
        ),
        (
            "{vault: {mount: secret, path: ci, version: 2}}",
            "unknown field `version`",
        ),
    ] {
        let got = one(consumer);
        assert!(got.contains(want), "{got}\nwanted: {want}");
    }
}

/// CONTRACT §12a, over generated manifests: whenever the manifest is accepted, every job that
/// reads a moving user's secrets resolves that user's role variable (environment, then
/// repository, then organization, names compared as GitHub compares them) — never another
/// user's. And the generator does make manifests that are accepted, and ones that are not.
#[test]
fn no_accepted_manifest_lets_one_job_resolve_another_users_variable() {
    use crate::testing::Rng;
    const OWNERS: [&str; 3] = ["acme", "Acme", "other"];
    const REPOS: [&str; 3] = ["web", "Web", "api"];
    const ENVS: [&str; 2] = ["prod", "Prod"];
    const VARS: [&str; 3] = ["AWS_ROLE_ARN", "aws_role_arn", "BATCH_ROLE_ARN"];
    let mut rng = Rng(0x0a12_2026);
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..3_000 {
        let mut yaml = String::from("version: 1\nusers:\n");
        let mut n = 0;
        for u in 0..2 + rng.below(2) {
            yaml.push_str(&format!(
                "  - name: u{u}\n    migrate: {{ role-name: r{u}, variable: {} }}\n    consumers:\n",
                rng.pick(&VARS)
            ));
            for _ in 0..1 + rng.below(2) {
                n += 1;
                let names =
                    format!("secrets: {{ access-key-id: ID{n}, secret-access-key: SECRET{n} }}");
                let (o, r) = (rng.pick(&OWNERS), rng.pick(&REPOS));
                yaml.push_str(&match rng.below(4) {
                    0 => format!("      - {{ repository: {o}/{r}, {names} }}\n"),
                    1 => format!(
                        "      - {{ repository: {o}/{r}, environment: {}, {names} }}\n",
                        rng.pick(&ENVS)
                    ),
                    2 => format!("      - {{ organization: {o}, {names} }}\n"),
                    _ => format!("      - {{ repository: {o}/{r}, app: dependabot, {names} }}\n"),
                });
            }
        }
        let Ok(m) = parse("m.yml", &yaml) else {
            refused += 1;
            continue;
        };
        accepted += 1;
        // Every Actions scope's variable, by the user that writes it.
        let mut written: Vec<(Scope, String, String)> = Vec::new();
        for u in &m.users {
            for c in u.consumers.iter().chain(&u.on_role) {
                if !matches!(
                    c.scope,
                    Scope::RepositoryDependabot(_)
                        | Scope::Organization {
                            dependabot: true,
                            ..
                        }
                ) {
                    written.push((
                        c.scope.clone(),
                        u.migrate.variable.to_ascii_lowercase(),
                        u.name.clone(),
                    ));
                }
            }
        }
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        for o in OWNERS {
            for r in REPOS {
                for env in [None, Some("prod"), Some("Prod")] {
                    let repo = format!("{o}/{r}");
                    // The job's chain, most specific first.
                    let chain = |s: &Scope| -> Option<usize> {
                        match s {
                            Scope::Environment {
                                repository,
                                environment,
                            } => (same(repository, &repo)
                                && env.is_some_and(|e| same(e, environment)))
                            .then_some(0),
                            Scope::Repository(x) => same(x, &repo).then_some(1),
                            Scope::Organization {
                                organization,
                                dependabot: false,
                                ..
                            } => same(organization, o).then_some(2),
                            _ => None,
                        }
                    };
                    for (scope, var, user) in &written {
                        if chain(scope).is_none() {
                            continue;
                        }
                        // This job reads `user`'s secrets: the variable it resolves is the one
                        // of the most specific scope that has a variable of that name.
                        let resolved = written
                            .iter()
                            .filter(|(s, v, _)| v == var && chain(s).is_some())
                            .min_by_key(|(s, _, _)| chain(s))
                            .map(|(_, _, w)| w)
                            .unwrap();
                        assert_eq!(
                            resolved, user,
                            "case {case}: a job of {repo} {env:?} reads {user}'s secrets but resolves {resolved}'s {var}\n{yaml}"
                        );
                    }
                }
            }
        }
    }
    assert!(
        accepted > 100 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn s3_consumers_name_their_fields_by_format() {
    let m = parse(
        "m.yml",
        "version: 1
users:
  - name: app
    consumers:
      - s3: { bucket: acme-config, key: web/prod.json }
        fields: { access-key-id: aws.key_id, secret-access-key: aws.secret }
      - s3: { bucket: acme-config, key: backup/credentials }
        profile: backup
        region: eu-west-1
      - s3: { bucket: acme-config, key: app/settings }
        format: dotenv
",
    )
    .unwrap();
    let c = &m.users[0].consumers;
    assert_eq!(
        c[0].scope,
        Scope::S3 {
            bucket: "acme-config".into(),
            key: "web/prod.json".into(),
            format: DocumentFormat::Json,
            region: None,
        }
    );
    assert_eq!(c[0].secrets.secret_access_key, "aws.secret");
    assert_eq!(
        (
            c[1].secrets.access_key_id.as_str(),
            c[1].secrets.secret_access_key.as_str()
        ),
        ("backup.aws_access_key_id", "backup.aws_secret_access_key")
    );
    assert_eq!(c[2].secrets.access_key_id, "AWS_ACCESS_KEY_ID");
    assert!(
        c.iter()
            .all(|c| c.scope.whole_pair() && c.scope.is_readable())
    );
}

#[test]
fn s3_consumers_that_cannot_be_written_are_refused_and_located() {
    let head = "version: 1\nusers:\n  - name: app\n    consumers:\n      - ";
    for (entry, says) in [
        (
            "s3: { bucket: Acme_Config, key: a.json }\n        fields: { access-key-id: a, secret-access-key: b }",
            "is not a bucket name",
        ),
        (
            "s3: { bucket: acme-config, key: /a.json }\n        fields: { access-key-id: a, secret-access-key: b }",
            "is not an object key",
        ),
        ("s3: { bucket: acme-config, key: a.conf }", "add `format:"),
        (
            "s3: { bucket: acme-config, key: \"cfg/*.env\" }",
            "wildcard",
        ),
        ("s3: { bucket: acme-config, key: a.json }", "needs `fields:"),
        (
            "s3: { bucket: acme-config, key: a.env }\n        fields: { access-key-id: A-B, secret-access-key: C }",
            "is not a variable name",
        ),
        (
            "s3: { bucket: acme-config, key: a.ini }\n        fields: { access-key-id: nodot, secret-access-key: s.k }",
            "is not SECTION.KEY",
        ),
        (
            "s3: { bucket: acme-config, key: a.json }\n        fields: { access-key-id: a.b, secret-access-key: a.b }",
            "the two fields are the same",
        ),
        (
            "s3: { bucket: acme-config, key: credentials }\n        fields: { access-key-id: a.b, secret-access-key: a.c }",
            "not `fields`",
        ),
        (
            "s3: { bucket: acme-config, key: a.json }\n        profile: x",
            "`profile` belongs to `format: credentials`",
        ),
        (
            "s3: { bucket: acme-config, key: a.env }\n        secrets: { access-key-id: A, secret-access-key: B }",
            "not `secrets`",
        ),
        (
            "s3: { bucket: acme-config, key: a.env }\n        repository: acme/web",
            "`repository` does not belong",
        ),
        (
            "s3: { bucket: acme-config, key: a.env }\n        format: toml",
            "toml",
        ),
        (
            "repository: acme/web\n        format: json",
            "`format` belongs to `s3` consumers",
        ),
    ] {
        let e = err(&format!("{head}{entry}\n"));
        assert!(e.contains(says), "{entry}: {e}");
        assert!(e.contains("m.yml:"), "{entry}: not located: {e}");
    }
}
