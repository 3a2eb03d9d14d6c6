//! End-to-end: `discover` finds the places that hold a user's secret names but are not in the
//! manifest — an unlisted repository, an unlisted environment, an organization secret — and not
//! a repository without those names. It changes nothing and exits 0.

use crate::support::*;

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

fn setup(env: &TestEnv) -> Key {
    env.rotating_user(USER);
    let key = env.aged_key(USER, 30);
    env.record_use(&key.id, 60, "s3");
    env.github.add_org("acme");
    env.github.add_environment("acme/web", "production");
    env.github.add_environment("acme/web", "staging");
    env.github.add_repo("acme/api");
    env.github.add_repo("acme/docs");
    let then = chrono::Utc::now() - chrono::Duration::days(30);
    env.seed(
        &[repo("acme/web"), environment("acme/web", "production")],
        &key,
        30,
    );
    // Unlisted: acme/api's id, staging's secret, the organization's id.
    env.github
        .set_secret(&repo("acme/api"), "AWS_ACCESS_KEY_ID", &key.id, then);
    env.github.set_secret(
        &environment("acme/web", "staging"),
        "AWS_SECRET_ACCESS_KEY",
        &key.secret,
        then,
    );
    env.github
        .set_secret(&org("acme"), "AWS_ACCESS_KEY_ID", &key.id, then);
    // Not a finding: other names only.
    env.github
        .set_secret(&repo("acme/docs"), "NPM_TOKEN", "npm-token-value", then);
    env.write_manifest(MANIFEST);
    key
}

#[test]
fn discover_reports_every_unlisted_place_and_changes_nothing() {
    let env = TestEnv::new();
    setup(&env);
    let before = env.world(USER);
    // A dedicated identity: the key's last use stays the application's.
    let admin = env.admin.clone();
    let run = env.action(&admin, &[("command", "discover")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::warning::"))
        .collect();
    assert_eq!(warnings.len(), 3, "one warning per finding: {}", run.stdout);
    for place in [
        "acme/api (repository secrets) holds AWS_ACCESS_KEY_ID",
        "acme/web environment \"staging\" holds AWS_SECRET_ACCESS_KEY",
        "organization acme (Actions secrets) holds AWS_ACCESS_KEY_ID",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(place)),
            "{place}: {warnings:#?}"
        );
    }
    assert!(
        !run.all().contains("acme/docs"),
        "a repository without the names is not reported"
    );
    // The summary: findings, the key's last use, a snippet to paste, and what it cost.
    assert!(run.summary.contains("```yaml\n- repository: acme/api\n- repository: acme/web\n  environment: staging\n- organization: acme\n```"), "{}", run.summary);
    assert!(
        run.summary.contains("(s3 in us-east-1)"),
        "the key's last use: {}",
        run.summary
    );
    assert!(run.summary.contains("GitHub requests"), "{}", run.summary);
    assert_eq!(env.world(USER), before, "nothing changed");
    assert_eq!(env.github.count("PUT", "/"), 0);
    assert_eq!(env.github.count("POST", "/"), 0);
}

#[test]
fn discover_as_json_counts_its_requests() {
    let env = TestEnv::new();
    setup(&env);
    let admin = env.admin.clone();
    let run = env.cli(&admin, &["discover", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["command"], "discover");
    assert_eq!(v["owners"], serde_json::json!(["acme"]));
    assert_eq!(v["repositories"], 3);
    let findings = v["users"][0]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 3);
    let requests = v["github_requests"].as_u64().unwrap();
    let served = env.github.log().len() as u64;
    assert_eq!(requests, served, "the count is every request GitHub saw");
    assert!(requests < 50, "well inside the primary limit: {requests}");
}

/// A user account's repositories: the token's own account is listed whole (`/user/repos`,
/// private ones included); of another user's account GitHub shows only the public ones, and the
/// run says so instead of claiming the search was complete.
#[test]
fn discover_lists_its_own_accounts_private_repositories_and_says_what_it_cannot_see() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    let key = env.aged_key(USER, 30);
    let then = chrono::Utc::now() - chrono::Duration::days(30);
    env.github.add_repo("octo/web");
    env.seed(&[repo("octo/web")], &key, 30);
    // The token's own account (crate::support::fake_github::TOKEN_LOGIN): a private repository.
    env.github.add_private_repo("octo/secret-tool");
    // Another user's account: one public and one private repository.
    env.github.add_repo("someone/site");
    env.github.add_repo("someone/public-app");
    env.github.add_private_repo("someone/private-app");
    for r in [
        "octo/secret-tool",
        "someone/public-app",
        "someone/private-app",
    ] {
        env.github
            .set_secret(&repo(r), "AWS_ACCESS_KEY_ID", &key.id, then);
    }
    env.write_manifest(
        "version: 1\nusers:\n  - name: ci-deployer\n    consumers:\n      - repository: octo/web\n      - repository: someone/site\n",
    );
    let admin = env.admin.clone();
    let run = env.action(&admin, &[("command", "discover")]);
    assert_eq!(run.code, 0, "{}", run.all());
    for found in ["octo/secret-tool", "someone/public-app"] {
        assert!(
            run.stdout.contains(&format!(
                "{found} (repository secrets) holds AWS_ACCESS_KEY_ID"
            )),
            "{found}: {}",
            run.stdout
        );
    }
    assert!(!run.all().contains("someone/private-app"), "{}", run.all());
    let limit = run
        .stdout
        .lines()
        .find(|l| {
            l.starts_with(
                "::warning::discover: someone is a user account this token does not belong to",
            )
        })
        .unwrap_or_else(|| panic!("a warning about someone: {}", run.stdout));
    assert!(limit.contains("private ones were not searched"), "{limit}");
    assert!(
        !run.stdout.contains("octo is a user account"),
        "{}",
        run.stdout
    );
    assert_eq!(env.github.count("GET", "/user/repos"), 1);
}

/// The key searched for itself (CONTRACT §18): a key id committed in a file, the user named in
/// another, a secret and parameters named after the user, an object beside the manifest's own
/// holding the key id.
fn seed_the_key_everywhere(env: &TestEnv, key: &Key) {
    env.github.add_file(
        "acme/api",
        "deploy/run.sh",
        &format!(
            "#!/bin/sh\n# deploys the api\nexport AWS_ACCESS_KEY_ID={}\n",
            key.id
        ),
    );
    env.github.add_file(
        "acme/docs",
        "README.md",
        "# docs\nPublished by the ci-deployer user.\nNot ci-deployer-2.\n",
    );
    // A path made to forge a workflow command, holding the key id too.
    env.github.add_file(
        "acme/docs",
        "ops/\r::error::forged",
        &format!("id={}\n", key.id),
    );
    // Another key id, nobody's here: not a finding.
    env.github
        .add_file("acme/api", "other.txt", "AKIAIOSFODNN7EXAMPLE\n");
    let sm = aws_sdk_secretsmanager::Client::new(&sdk_config(
        env.moto_url(),
        &env.admin.id,
        &env.admin.secret,
    ));
    let ssm = aws_sdk_ssm::Client::new(&sdk_config(
        env.moto_url(),
        &env.admin.id,
        &env.admin.secret,
    ));
    let s3 = env.s3();
    runtime().block_on(async {
        sm.create_secret()
            .name("apps/reporting")
            .description("keys of ci-deployer for the reporting job")
            .secret_string("{}")
            .send()
            .await
            .unwrap();
        sm.create_secret()
            .name("apps/unrelated")
            .secret_string("{}")
            .send()
            .await
            .unwrap();
        for (name, value) in [
            ("/ci-deployer/key-id", key.id.as_str()),
            ("/ci-deployer/secret", "not-read"),
        ] {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .unwrap();
        }
        s3.create_bucket()
            .bucket("acme-config")
            .send()
            .await
            .unwrap();
        for (k, text) in [
            ("web/prod.json", "{}".to_owned()),
            ("web/batch.env", format!("AWS_ACCESS_KEY_ID={}\n", key.id)),
            ("web/notes.txt", key.id.clone()),
            ("other/app.env", format!("AWS_ACCESS_KEY_ID={}\n", key.id)),
        ] {
            s3.put_object()
                .bucket("acme-config")
                .key(k)
                .body(text.into_bytes().into())
                .send()
                .await
                .unwrap();
        }
    });
    env.write_manifest(&format!(
        "{MANIFEST}      - s3: {{ bucket: acme-config, key: web/prod.json }}\n        fields: {{ access-key-id: a.id, secret-access-key: a.secret }}\n"
    ));
}

/// Whether `log` is a valid SARIF 2.1.0 document (the OASIS schema, checked by `jsonschema`).
fn sarif_valid(log: &std::path::Path) -> Result<(), String> {
    let schema = repo_root().join("tests/fixtures/sarif-schema-2.1.0.json");
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg("import json, sys, jsonschema\nschema = json.load(open(sys.argv[1]))\njsonschema.validators.validator_for(schema)(schema).validate(json.load(open(sys.argv[2])))\n")
        .arg(schema)
        .arg(log)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn a_committed_key_id_is_reported_exposed_with_file_and_line_and_nothing_is_written() {
    let env = TestEnv::new();
    let key = setup(&env);
    seed_the_key_everywhere(&env, &key);
    let before = env.world(USER);
    let set_up = env.aws_calls().0.len();
    let admin = env.admin.clone();
    let run = env.action(
        &admin,
        &[("command", "discover"), ("sarif-file", "discover.sarif")],
    );
    assert_eq!(run.code, 3, "an exposed key is loud: {}", run.all());
    let respond = format!("aws-key-rotator rotate --compromised-key-id {}", key.id);
    let commands = runner_commands(&run.stdout);
    let errors: Vec<&String> = commands.iter().filter(|c| c.starts_with("error")).collect();
    assert_eq!(
        errors.len(),
        1,
        "one error per exposed key, none forged: {commands:#?}"
    );
    assert!(errors[0].contains(&respond), "{}", errors[0]);
    assert!(
        run.stdout.contains(&format!(
            "EXPOSED: key {} is in acme/api \"deploy/run.sh\" line 3: respond with `{respond}`",
            key.id
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("acme/docs \"README.md\" line 2 names ci-deployer"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("README.md\" line 3"),
        "ci-deployer-2 is another name"
    );
    assert!(!run.stdout.contains("other.txt"), "a key id nobody manages");
    // AWS: the secret and the two parameters named after the user, the object holding the key.
    for snippet in [
        "- aws-secrets-manager: apps/reporting",
        "- ssm-parameters: { access-key-id: /ci-deployer/key-id, secret-access-key: /ci-deployer/secret }",
        "- s3: { bucket: acme-config, key: web/batch.env }\n  format: dotenv",
    ] {
        assert!(run.summary.contains(snippet), "{snippet}: {}", run.all());
    }
    assert!(!run.all().contains("apps/unrelated"));
    assert!(!run.all().contains("notes.txt"), "not a config format");
    assert!(
        !run.all().contains("other/app.env"),
        "outside the manifest's prefixes"
    );
    // SARIF: valid, the exposed key an error in acme/api's file by URL, the unlisted places
    // warnings at the user's entry in the manifest.
    let file = env.workspace.path().join("discover.sarif");
    sarif_valid(&file).unwrap();
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let results = log["runs"][0]["results"].as_array().unwrap();
    let exposed: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| r["ruleId"] == "exposed-access-key-id")
        .collect();
    assert_eq!(exposed.len(), 2, "{results:#?}");
    let place = &exposed[0]["locations"][0]["physicalLocation"];
    assert_eq!(
        place["artifactLocation"]["uri"],
        "https://github.com/acme/api/blob/HEAD/deploy/run.sh"
    );
    assert_eq!(place["region"]["startLine"], 3);
    let unlisted = results
        .iter()
        .filter(|r| r["ruleId"] == "unlisted-consumer")
        .count();
    assert_eq!(unlisted, 3 + 3, "three GitHub stores, three AWS places");
    // Read only: keys, tags and GitHub's secrets as they were; no write of any kind.
    assert_eq!(env.world(USER), before, "nothing changed");
    for method in ["PUT", "POST", "PATCH", "DELETE"] {
        assert_eq!(env.github.count(method, "/"), 0, "{method}");
    }
    let (calls, _) = env.aws_calls();
    let writes = ["PUT ", "Put", "Tag", "Untag", "Create", "Update", "Delete"];
    let run_calls = &calls[set_up..];
    assert!(
        !run_calls
            .iter()
            .any(|c| writes.iter().any(|w| c.starts_with(w))),
        "{run_calls:?}"
    );
}

#[test]
fn code_search_is_paced_and_read_page_by_page() {
    let env = TestEnv::new();
    setup(&env);
    // 150 files name the user (two pages of 100), in two owners: acme's and tools'.
    for i in 0..150 {
        env.github.add_file(
            "acme/docs",
            &format!("pages/p{i:03}.md"),
            "Deployed by ci-deployer.\n",
        );
    }
    env.github.add_repo("tools/checks");
    env.write_manifest(&format!(
        "{MANIFEST}    verify:\n      - repository: tools/checks\n        workflow: v.yml\n"
    ));
    let admin = env.admin.clone();
    let run = env.cli(&admin, &["discover", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        v["users"][0]["code"].as_array().unwrap().len(),
        150,
        "{}",
        run.all()
    );
    let searches = env.github.code_searches();
    assert_eq!(
        searches.len(),
        5,
        "acme: its key ids (one page), its name (two pages); tools: one page each"
    );
    assert_eq!(
        v["code_searches"], 4,
        "key ids and names apart, for each owner"
    );
    for pair in searches.windows(2) {
        assert!(
            pair[1].duration_since(pair[0]) >= std::time::Duration::from_millis(290),
            "each search waits its turn: {:?}",
            pair[1].duration_since(pair[0])
        );
    }
}

#[test]
fn a_token_that_may_not_search_code_gets_one_warning_and_the_rest_goes_on() {
    let env = TestEnv::new();
    setup(&env);
    env.github.deny_code_search();
    let admin = env.admin.clone();
    let run = env.action(&admin, &[("command", "discover")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::warning::") && l.contains("code not searched"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("acme/api (repository secrets) holds AWS_ACCESS_KEY_ID"),
        "the stores are still searched"
    );
}
