//! End-to-end: every GitHub store a key lives in — repository, environment and organization
//! Actions secrets, repository and organization Dependabot secrets — written, verified, rolled
//! back, and refused when missing. Organization secrets keep who can read them.

use crate::support::*;

const USER: &str = "ci-deployer";

const MANIFEST: &str = "\
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
      - repository: acme/web
        app: dependabot
      - organization: acme
      - organization: acme
        app: dependabot
        visibility: private
    verify:
      - repository: acme/api
        workflow: verify.yml
";

fn stores() -> Vec<ScopeId> {
    vec![
        repo("acme/web"),
        environment("acme/web", "production"),
        dependabot("acme/web"),
        org("acme"),
        org_dependabot("acme"),
    ]
}

/// The user's key (100 days old) in every store but the organization's Dependabot secrets; the
/// organization's Actions secret is read by 150 selected repositories (two pages), acme/api
/// among them, whose verification workflow sees only that secret.
fn setup(env: &TestEnv) -> (Key, Vec<u64>) {
    env.rotating_user(USER);
    let old = env.aged_key(USER, 100);
    env.github.add_environment("acme/web", "production");
    env.github.add_dependabot("acme/web");
    env.github.add_repo("acme/api");
    env.github.add_org("acme");
    let mut selected = vec![env.github.repo_id("acme/api")];
    for i in 0..149 {
        let name = format!("acme/service-{i:03}");
        env.github.add_repo(&name);
        selected.push(env.github.repo_id(&name));
    }
    let then = chrono::Utc::now() - chrono::Duration::days(100);
    for scope in &stores()[..3] {
        env.github
            .set_secret(scope, "AWS_ACCESS_KEY_ID", &old.id, then);
        env.github
            .set_secret(scope, "AWS_SECRET_ACCESS_KEY", &old.secret, then);
    }
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", &old.id),
        ("AWS_SECRET_ACCESS_KEY", &old.secret),
    ] {
        env.github
            .set_org_secret(&org("acme"), name, value, "selected", &selected, then);
    }
    env.github.add_workflow(
        "acme/api",
        "verify.yml",
        WorkflowSpec {
            environment: None,
            mode: RunMode::Normal,
        },
    );
    env.write_manifest(MANIFEST);
    (old, selected)
}

fn access(env: &TestEnv, scope: &ScopeId, name: &str) -> (Option<String>, Vec<u64>) {
    let s = env.github.secret(scope, name).expect("the secret exists");
    (s.visibility, s.selected)
}

#[test]
fn a_rotation_reaches_every_github_store_and_keeps_who_can_read_organization_secrets() {
    let env = TestEnv::new();
    let (old, selected) = setup(&env);
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_ne!(new.id, old.id);
    for scope in stores() {
        let k = env
            .held_default(&scope)
            .unwrap_or_else(|| panic!("{scope:?} holds a key"));
        assert_eq!(
            (k.id, k.secret),
            (new.id.clone(), new.secret.clone()),
            "{scope:?}"
        );
    }
    // The selected secret still reaches the same 150 repositories (read over two pages).
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert_eq!(
            access(&env, &org("acme"), name),
            (Some("selected".into()), selected.clone()),
            "{name}"
        );
        // The Dependabot secret did not exist: created private.
        assert_eq!(
            access(&env, &org_dependabot("acme"), name),
            (Some("private".into()), vec![])
        );
    }
    assert!(
        env.github.count(
            "GET",
            "/orgs/acme/actions/secrets/AWS_ACCESS_KEY_ID/repositories"
        ) >= 2,
        "every page of selected repositories was read"
    );
    // acme/api's verification saw the new key through the organization secret.
    assert!(run.summary.contains("✅ success"), "{}", run.summary);
    for words in [
        "Dependabot secret",
        "organization secret (selected: 150 repositories)",
        "organization Dependabot secret",
    ] {
        assert!(
            run.summary.contains(&format!("| {words} |")),
            "{words}: {}",
            run.summary
        );
    }
    let json = env.cli(&new, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let consumers = v["users"][0]["consumers"].as_array().unwrap();
    assert_eq!(consumers[3]["organization"], "acme");
    assert_eq!(
        consumers[3]["store"],
        "organization secret (selected: 150 repositories)"
    );
    assert_eq!(
        consumers[4]["store"],
        "organization Dependabot secret (private repositories)"
    );
}

#[test]
fn when_the_last_github_write_keeps_failing_every_store_gets_the_old_pair_back() {
    let env = TestEnv::new();
    let (old, selected) = setup(&env);
    env.github.add_fault(Fault::new(
        axum::http::Method::PUT,
        "/orgs/acme/dependabot/secrets/AWS_SECRET_ACCESS_KEY",
        500,
    ));
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    for scope in &stores()[..4] {
        let k = env.held_default(scope).unwrap();
        assert_eq!(
            (k.id, k.secret),
            (old.id.clone(), old.secret.clone()),
            "{scope:?}"
        );
    }
    // The organization's Dependabot secrets did not exist, and their secret half can never be
    // written: nothing there holds the new key, and the report says exactly what is there.
    assert!(
        env.github
            .value(&org_dependabot("acme"), "AWS_SECRET_ACCESS_KEY")
            .is_none()
    );
    let row = run
        .summary
        .lines()
        .find(|l| l.contains("| organization Dependabot secret |"))
        .unwrap();
    assert!(row.contains("AWS_SECRET_ACCESS_KEY holds nothing"), "{row}");
    assert_eq!(
        access(&env, &org("acme"), "AWS_ACCESS_KEY_ID"),
        (Some("selected".into()), selected),
        "a rollback keeps who can read it too"
    );
    assert!(env.sts_accepts(&old));
}

#[test]
fn a_missing_store_of_each_kind_is_bad_input_and_changes_nothing() {
    for (consumer, needle) in [
        (
            "      - repository: acme/web\n        app: dependabot\n",
            "acme/web (Dependabot secrets)",
        ),
        (
            "      - organization: nowhere\n",
            "organization nowhere (Actions secrets)",
        ),
        (
            "      - organization: nowhere\n        app: dependabot\n",
            "organization nowhere (Dependabot secrets)",
        ),
    ] {
        let env = TestEnv::new();
        env.rotating_user(USER);
        let old = env.aged_key(USER, 100);
        env.github.add_repo("acme/web");
        env.seed(&[repo("acme/web")], &old, 100);
        env.write_manifest(&format!(
            "version: 1\nusers:\n  - name: ci-deployer\n    consumers:\n      - repository: acme/web\n{consumer}"
        ));
        let before = env.world(USER);
        let run = env.action(&old, &[]);
        assert_eq!(run.code, 2, "{consumer}: {}", run.all());
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        assert!(run.stderr.contains("404"), "{}", run.stderr);
        assert_eq!(env.world(USER), before, "nothing changed");
        assert_eq!(env.github.count("PUT", "/"), 0);
    }
}

// ---- AWS stores ------------------------------------------------------------------------------

const AWS_MANIFEST: &str = "\
version: 1
users:
  - name: ci-deployer
    consumers:
      - aws-secrets-manager: ci/deployer
        region: eu-west-1
      - ssm-parameters: { access-key-id: /ci/deployer/key-id, secret-access-key: /ci/deployer/secret }
      - repository: acme/web
";

fn sm(env: &TestEnv) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::config::Builder::from(&sdk_config(
        &env.moto_url,
        &env.admin.id,
        &env.admin.secret,
    ))
    .region(aws_sdk_secretsmanager::config::Region::new("eu-west-1"))
    .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

fn ssm(env: &TestEnv) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config(&env.moto_url, &env.admin.id, &env.admin.secret))
}

/// The user (allowed the AWS stores' actions too) with a 100-day-old key in a Secrets Manager
/// secret that has another field, two SecureString parameters, and acme/web.
fn aws_setup(env: &TestEnv) -> Key {
    let mut actions = shipped_actions();
    actions.extend(aws_store_actions());
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    env.user(USER, &actions);
    let old = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.seed(&[repo("acme/web")], &old, 100);
    let json = serde_json::json!({
        "AWS_ACCESS_KEY_ID": old.id,
        "AWS_SECRET_ACCESS_KEY": old.secret,
        "DB_PASSWORD": "kept-as-it-is",
    });
    let (sm, ssm) = (sm(env), ssm(env));
    runtime().block_on(async {
        sm.create_secret()
            .name("ci/deployer")
            .secret_string(json.to_string())
            .send()
            .await
            .unwrap();
        for (name, value) in [
            ("/ci/deployer/key-id", &old.id),
            ("/ci/deployer/secret", &old.secret),
        ] {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .unwrap();
        }
    });
    env.write_manifest(AWS_MANIFEST);
    old
}

/// (the secret's JSON, the two parameters' values and types).
fn aws_world(env: &TestEnv) -> (serde_json::Value, Vec<(String, String)>) {
    let (sm, ssm) = (sm(env), ssm(env));
    runtime().block_on(async {
        let out = sm
            .get_secret_value()
            .secret_id("ci/deployer")
            .send()
            .await
            .unwrap();
        let json = serde_json::from_str(out.secret_string().unwrap()).unwrap();
        let mut params = Vec::new();
        for name in ["/ci/deployer/key-id", "/ci/deployer/secret"] {
            let p = ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .unwrap();
            let p = p.parameter().unwrap();
            params.push((
                p.value().unwrap().to_owned(),
                p.r#type().unwrap().as_str().to_owned(),
            ));
        }
        (json, params)
    })
}

#[test]
fn a_rotation_reaches_secrets_manager_and_parameter_store_keeping_what_else_they_hold() {
    let env = TestEnv::new();
    let old = aws_setup(&env);
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_ne!(new.id, old.id);
    env.remember(&new.secret);
    let (json, params) = aws_world(&env);
    assert_eq!(json["AWS_ACCESS_KEY_ID"], new.id.as_str());
    assert_eq!(json["AWS_SECRET_ACCESS_KEY"], new.secret.as_str());
    assert_eq!(
        json["DB_PASSWORD"], "kept-as-it-is",
        "other fields are kept"
    );
    assert_eq!(
        params,
        [
            (new.id.clone(), "SecureString".to_owned()),
            (new.secret.clone(), "SecureString".to_owned())
        ]
    );
    for words in ["| Secrets Manager (eu-west-1) |", "| Parameter Store |"] {
        let row = run
            .summary
            .lines()
            .find(|l| l.contains(words))
            .unwrap_or_else(|| panic!("{words}: {}", run.summary));
        assert!(row.contains(&format!("`{}`", new.id)), "{row}");
    }
}

#[test]
fn a_rollback_puts_each_aws_store_back_to_its_own_old_values_even_for_a_dedicated_identity() {
    let env = TestEnv::new();
    let old = aws_setup(&env);
    // The last write, acme/web's secret access key, keeps failing.
    env.github.add_fault(Fault::new(
        axum::http::Method::PUT,
        "/acme/web/actions/secrets/AWS_SECRET_ACCESS_KEY",
        500,
    ));
    let before = aws_world(&env);
    let admin = env.admin.clone();
    let run = env.action(&admin, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(
        aws_world(&env),
        before,
        "both AWS stores hold their old values again"
    );
    let web = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(web.id, old.id, "the id went back to match the secret");
    assert!(env.sts_accepts(&old));
    assert_eq!(
        env.journal(USER).map(|j| j.phase),
        Some(aws_key_rotator::rotation::journal::Phase::RolledBack),
        "every consumer holds the old key again: {}",
        run.all()
    );
}

#[test]
fn a_missing_aws_store_is_bad_input_and_changes_nothing() {
    for (consumer, needle) in [
        (
            "      - aws-secrets-manager: ci/nowhere\n",
            "Secrets Manager secret ci/nowhere",
        ),
        (
            "      - ssm-parameters: { access-key-id: /ci/nowhere/id, secret-access-key: /ci/nowhere/secret }\n",
            "Parameter Store",
        ),
    ] {
        let env = TestEnv::new();
        let old = aws_setup(&env);
        env.write_manifest(&format!("{AWS_MANIFEST}{consumer}"));
        let before = (env.world(USER), aws_world(&env));
        let run = env.action(&old, &[]);
        assert_eq!(run.code, 2, "{consumer}: {}", run.all());
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
        assert_eq!(
            (env.world(USER), aws_world(&env)),
            before,
            "nothing changed"
        );
    }
}

/// CONTRACT §12: the secret half goes only into a SecureString; a String parameter is bad input
/// and nothing changes (the key id may stay a String: ids are not secret).
#[test]
fn a_plaintext_parameter_for_the_secret_is_refused_and_changes_nothing() {
    let env = TestEnv::new();
    let old = aws_setup(&env);
    let ssm = ssm(&env);
    runtime().block_on(async {
        ssm.delete_parameter()
            .name("/ci/deployer/secret")
            .send()
            .await
            .unwrap();
        ssm.put_parameter()
            .name("/ci/deployer/secret")
            .value(&old.secret)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    });
    let before = (env.world(USER), aws_world(&env));
    assert_eq!((before.1).1[1].1, "String");
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("/ci/deployer/secret")
            && run.stderr.contains("String parameter")
            && run.stderr.contains("SecureString"),
        "{}",
        run.stderr
    );
    assert_eq!(
        (env.world(USER), aws_world(&env)),
        before,
        "nothing changed"
    );
    assert_eq!(env.github.count("PUT", "/"), 0);
}

/// CONTRACT §12: a new organization secret is created only with the visibility the manifest
/// names (GitHub's default would let every private repository read the key); `all` is warned
/// about.
#[test]
fn a_new_organization_secret_needs_a_visibility() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    let old = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.github.add_org("acme");
    env.seed(&[repo("acme/web")], &old, 100);
    let manifest = "version: 1\nusers:\n  - name: ci-deployer\n    consumers:\n      - repository: acme/web\n      - organization: acme\n";
    env.write_manifest(manifest);
    let before = env.world(USER);
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("organization acme (Actions secrets)")
            && run.stderr.contains("does not exist yet")
            && run.stderr.contains("visibility: private"),
        "{}",
        run.stderr
    );
    assert_eq!(env.world(USER), before, "nothing changed");
    assert_eq!(env.github.count("PUT", "/"), 0);

    // One run creates all three: `private`; `selected`, read by exactly the repositories the
    // manifest names; and `all`, warned about.
    env.github.add_org("tools");
    env.github.add_repo("tools/deploy");
    env.github.add_repo("tools/other");
    env.github.add_org("wide");
    env.write_manifest(&format!(
        "{manifest}        visibility: private\n      - organization: tools\n        visibility: selected\n        selected-repositories: [tools/deploy]\n      - organization: wide\n        visibility: all\n"
    ));
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("::warning::") && run.all().contains("visibility all"),
        "{}",
        run.all()
    );
    let new = env.held_default(&org("tools")).expect("created");
    assert_ne!(new.id, old.id);
    env.remember(&new.secret);
    for (o, want) in [
        ("acme", (Some("private".to_owned()), vec![])),
        (
            "tools",
            (
                Some("selected".to_owned()),
                vec![env.github.repo_id("tools/deploy")],
            ),
        ),
        ("wide", (Some("all".to_owned()), vec![])),
    ] {
        assert_eq!(env.held_default(&org(o)).unwrap().id, new.id, "{o}");
        assert_eq!(access(&env, &org(o), "AWS_SECRET_ACCESS_KEY"), want, "{o}");
    }
}

/// All six kinds of store in one rotation, and a rollback that puts every one of them back.
#[test]
fn one_rotation_across_all_six_store_kinds_and_one_rollback() {
    let env = TestEnv::new();
    let old = aws_setup(&env);
    env.github.add_dependabot("acme/web");
    env.github.add_org("acme");
    let then = chrono::Utc::now() - chrono::Duration::days(100);
    for scope in [dependabot("acme/web"), org("acme"), org_dependabot("acme")] {
        env.github
            .set_secret(&scope, "AWS_ACCESS_KEY_ID", &old.id, then);
        env.github
            .set_secret(&scope, "AWS_SECRET_ACCESS_KEY", &old.secret, then);
    }
    env.write_manifest(&format!(
        "{AWS_MANIFEST}      - repository: acme/web\n        app: dependabot\n      - organization: acme\n      - organization: acme\n        app: dependabot\n"
    ));
    let github = [
        repo("acme/web"),
        dependabot("acme/web"),
        org("acme"),
        org_dependabot("acme"),
    ];
    // First a rollback: the last write (the organization's Dependabot secret) keeps failing.
    env.github.add_fault(Fault::new(
        axum::http::Method::PUT,
        "/orgs/acme/dependabot/secrets/AWS_SECRET_ACCESS_KEY",
        500,
    ));
    let before = aws_world(&env);
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(aws_world(&env), before);
    for scope in &github {
        let k = env.held_default(scope).unwrap();
        assert_eq!(
            (k.id, k.secret),
            (old.id.clone(), old.secret.clone()),
            "{scope:?}"
        );
    }
    // Then, once no job can hold the rolled-back key (force: now), the rotation goes through.
    env.github.clear_faults();
    let run = env.action(&old, &[("force", "true")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_ne!(new.id, old.id);
    env.remember(&new.secret);
    for scope in &github {
        let k = env.held_default(scope).unwrap();
        assert_eq!(
            (k.id, k.secret),
            (new.id.clone(), new.secret.clone()),
            "{scope:?}"
        );
    }
    let (json, params) = aws_world(&env);
    assert_eq!(
        (&json["AWS_ACCESS_KEY_ID"], &json["AWS_SECRET_ACCESS_KEY"]),
        (&serde_json::json!(new.id), &serde_json::json!(new.secret))
    );
    assert_eq!(params[0].0, new.id);
    assert_eq!(params[1].0, new.secret);
}
