//! `migrate` (CONTRACT §13) end to end: moto stores the provider, the role and its policies
//! (it evaluates neither trust policies nor tokens, so the trust is judged here by a small
//! evaluator of its own); the fake GitHub serves variables and workflow files.

use serde_json::{Value, json};

use crate::support::*;

const USER: &str = "ci-deployer";
const ROLE: &str = "gha-ci-deployer";
const ACCOUNT: &str = "123456789012";
const ISSUER: &str = "token.actions.githubusercontent.com";

fn manifest(org: bool, oidc: bool) -> String {
    let mark = if oidc { "\n        oidc: true" } else { "" };
    let mut m = format!(
        "version: 1
users:
  - name: ci-deployer
    migrate: {{}}
    consumers:
      - repository: acme/web{mark}
      - repository: acme/api
        environment: production{mark}
"
    );
    if org {
        m.push_str(&format!("      - organization: acme{mark}\n"));
    }
    m
}

const DEPLOY: &str = "name: deploy
on: { push: { branches: [main] } }
env:
  AWS_REGION: us-east-1
  AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}
  AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - run: make
  deploy:
    needs: build
    runs-on: ubuntu-24.04
    steps:
      - run: aws s3 sync site s3://acme-web
";

const RELEASE: &str = "name: release
on: workflow_dispatch
jobs:
  release:
    runs-on: ubuntu-24.04
    environment: production
    steps:
      - uses: aws-actions/configure-aws-credentials@v6
        with:
          aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}
          aws-secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
          aws-region: us-east-1
";

const CALLER: &str = "name: ci
on: pull_request
jobs:
  call:
    uses: acme/shared/.github/workflows/deploy.yml@main
    secrets:
      key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}
      key-secret: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
";

/// A user with its own inline policies (one only about its own keys), an attached managed
/// policy, a group with a policy, and a permissions boundary; one old key in three consumers
/// and a Dependabot secret (which cannot move).
fn setup(env: &TestEnv) -> (Key, String, String) {
    env.user(USER, &["s3:PutObject"]);
    let iam = env.iam();
    let (managed, boundary) = runtime().block_on(async {
        let doc = |action: &str| policy(&[action]);
        let managed = iam
            .create_policy()
            .policy_name("deploy-read")
            .policy_document(doc("s3:GetObject"))
            .send()
            .await
            .unwrap();
        let managed = managed.policy().unwrap().arn().unwrap().to_owned();
        iam.attach_user_policy()
            .user_name(USER)
            .policy_arn(&managed)
            .send()
            .await
            .unwrap();
        let boundary = iam
            .create_policy()
            .policy_name("boundary")
            .policy_document(doc("s3:*"))
            .send()
            .await
            .unwrap();
        let boundary = boundary.policy().unwrap().arn().unwrap().to_owned();
        iam.put_user_permissions_boundary()
            .user_name(USER)
            .permissions_boundary(&boundary)
            .send()
            .await
            .unwrap();
        iam.put_user_policy()
            .user_name(USER)
            .policy_name("self-keys")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": ["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:TagUser"],
                    "Resource": format!("arn:aws:iam::{ACCOUNT}:user/{USER}")}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        iam.create_group()
            .group_name("builders")
            .send()
            .await
            .unwrap();
        iam.add_user_to_group()
            .group_name("builders")
            .user_name(USER)
            .send()
            .await
            .unwrap();
        iam.put_group_policy()
            .group_name("builders")
            .policy_name("cache")
            .policy_document(doc("s3:ListBucket"))
            .send()
            .await
            .unwrap();
        (managed, boundary)
    });
    let old = env.aged_key(USER, 100);
    let then = chrono::Utc::now() - chrono::Duration::days(100);
    for r in ["acme/web", "acme/api", "acme/tools", "acme/other"] {
        env.github.add_repo(r);
    }
    env.github.add_environment("acme/api", "production");
    env.github.add_org("acme");
    env.seed(
        &[repo("acme/web"), environment("acme/api", "production")],
        &old,
        100,
    );
    let selected = [
        env.github.repo_id("acme/web"),
        env.github.repo_id("acme/tools"),
    ];
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", &old.id),
        ("AWS_SECRET_ACCESS_KEY", &old.secret),
    ] {
        env.github
            .set_org_secret(&org("acme"), name, value, "selected", &selected, then);
    }
    env.github
        .add_file("acme/web", ".github/workflows/deploy.yml", DEPLOY);
    env.github.add_file(
        "acme/web",
        ".github/workflows/lint.yml",
        "on: push\njobs: {}\n",
    );
    env.github.add_file(
        "acme/web",
        "README.md",
        "not a workflow ${{ secrets.AWS_ACCESS_KEY_ID }}",
    );
    env.github
        .add_file("acme/api", ".github/workflows/release.yml", RELEASE);
    env.github
        .add_file("acme/tools", ".github/workflows/ci.yml", CALLER);
    (old, managed, boundary)
}

fn role_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}")
}

/// The role as moto keeps it: trust, session, boundary, attached and inline policies, tags.
fn role(env: &TestEnv) -> Option<Value> {
    let iam = env.iam();
    runtime().block_on(async {
        let r = iam.get_role().role_name(ROLE).send().await.ok()?;
        let r = r.role().unwrap();
        let decode = |s: &str| -> Value {
            let s = percent_encoding::percent_decode_str(s).decode_utf8().unwrap();
            serde_json::from_str(&s).unwrap()
        };
        let attached = iam
            .list_attached_role_policies()
            .role_name(ROLE)
            .send()
            .await
            .unwrap();
        let inline = iam.list_role_policies().role_name(ROLE).send().await.unwrap();
        let tags = iam.list_role_tags().role_name(ROLE).send().await.unwrap();
        Some(json!({
            "trust": decode(r.assume_role_policy_document().unwrap()),
            "max_session": r.max_session_duration(),
            "boundary": r.permissions_boundary().and_then(|b| b.permissions_boundary_arn()),
            "attached": attached.attached_policies().iter().map(|p| p.policy_arn().unwrap()).collect::<Vec<_>>(),
            "inline": inline.policy_names(),
            "tags": tags.tags().iter().map(|t| format!("{}={}", t.key(), t.value())).collect::<Vec<_>>(),
        }))
    })
}

fn providers(env: &TestEnv) -> Vec<(String, Vec<String>, Vec<String>)> {
    let iam = env.iam();
    runtime().block_on(async {
        let list = iam.list_open_id_connect_providers().send().await.unwrap();
        let mut out = Vec::new();
        for p in list.open_id_connect_provider_list() {
            let arn = p.arn().unwrap().to_owned();
            let got = iam
                .get_open_id_connect_provider()
                .open_id_connect_provider_arn(&arn)
                .send()
                .await
                .unwrap();
            out.push((
                arn,
                got.client_id_list().to_vec(),
                got.thumbprint_list().to_vec(),
            ));
        }
        out
    })
}

/// IAM's evaluation of a trust policy for a web-identity token (`sub`, `aud`), written apart
/// from the tool's: every statement's every condition must hold for an Allow.
fn admits(trust: &Value, sub: &str, aud: &str) -> bool {
    fn like(p: &str, t: &str) -> bool {
        match p.split_once('*') {
            None => p == t,
            Some((head, rest)) => {
                t.starts_with(head)
                    && (0..=t.len() - head.len()).any(|i| like(rest, &t[head.len() + i..]))
            }
        }
    }
    let claim = |key: &str| if key.ends_with(":sub") { sub } else { aud };
    let values = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => vec![],
        }
    };
    trust["Statement"].as_array().unwrap().iter().any(|s| {
        s["Effect"] == "Allow"
            && s["Action"] == "sts:AssumeRoleWithWebIdentity"
            && s["Condition"]
                .as_object()
                .unwrap()
                .iter()
                .all(|(op, conds)| {
                    conds.as_object().unwrap().iter().all(|(key, v)| {
                        values(v).iter().any(|want| match op.as_str() {
                            "StringEquals" => claim(key) == want,
                            "StringLike" => like(want, claim(key)),
                            _ => false,
                        })
                    })
                })
    })
}

fn variable_writes(env: &TestEnv) -> usize {
    env.github
        .log()
        .iter()
        .filter(|l| l.contains("/variables") && (l.starts_with("POST") || l.starts_with("PATCH")))
        .count()
}

#[test]
fn migrate_makes_the_provider_the_role_and_the_variables_and_converges() {
    let env = TestEnv::new();
    let (_old, managed, boundary) = setup(&env);
    env.write_manifest(
        &(manifest(true, false) + "      - repository: acme/web\n        app: dependabot\n"),
    );
    env.github.add_dependabot("acme/web");

    // The plan: nothing changes.
    let secrets = env.github.all_secrets();
    let run = env.cli(&env.admin, &["migrate", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("role: create the role"),
        "{}",
        run.all()
    );
    assert!(role(&env).is_none() && providers(&env).is_empty());
    assert!(env.github.variables().is_empty());
    assert_eq!(env.github.all_secrets(), secrets);

    assert_eq!(variable_writes(&env), 0);
    let mark = env.github.log().len();
    let run = env.cli(&env.admin, &["migrate", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let u = &report["migration"]["users"][0];
    assert_eq!(u["outcome"], "migrated", "{u}");

    // The provider: github.com's issuer, the STS audience, no thumbprint.
    let provider_arn = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}");
    assert_eq!(
        providers(&env),
        vec![(
            provider_arn.clone(),
            vec!["sts.amazonaws.com".to_owned()],
            vec![]
        )]
    );
    // The role: exactly the subjects that read the secrets today, the user's permissions
    // without its key management, its boundary, one-hour sessions, marked as made here.
    let r = role(&env).expect("the role exists");
    let sub = format!("{ISSUER}:sub");
    let aud = format!("{ISSUER}:aud");
    assert_eq!(
        r["trust"],
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "ExactGitHubJobs", "Effect": "Allow", "Principal": {"Federated": provider_arn},
             "Action": "sts:AssumeRoleWithWebIdentity",
             "Condition": {"StringEquals": {aud.clone(): "sts.amazonaws.com", sub.clone(): ["repo:acme/api:environment:production"]}}},
            {"Sid": "EveryJobOfRepositories", "Effect": "Allow", "Principal": {"Federated": provider_arn},
             "Action": "sts:AssumeRoleWithWebIdentity",
             "Condition": {"StringEquals": {aud: "sts.amazonaws.com"}, "StringLike": {sub: ["repo:acme/tools:*", "repo:acme/web:*"]}}}
        ]})
    );
    assert_eq!(r["max_session"], 3600);
    assert_eq!(r["boundary"], boundary);
    assert_eq!(r["attached"], json!([managed]));
    let mut inline: Vec<String> = serde_json::from_value(r["inline"].clone()).unwrap();
    inline.sort();
    assert_eq!(inline, ["group-builders-cache", "rotation"], "no self-keys");
    assert_eq!(r["tags"], json!(["aws-key-rotator/made-for=ci-deployer"]));
    // Admitted: each consumer's jobs; refused: other repositories, environments, owners, forks.
    let trust = &r["trust"];
    for ok in [
        "repo:acme/web:ref:refs/heads/main",
        "repo:acme/web:pull_request",
        "repo:acme/tools:ref:refs/heads/x",
        "repo:acme/api:environment:production",
    ] {
        assert!(admits(trust, ok, "sts.amazonaws.com"), "{ok}");
    }
    for refused in [
        "repo:acme/api:ref:refs/heads/main",
        "repo:acme/api:environment:staging",
        "repo:acme/other:ref:refs/heads/main",
        "repo:evil/web:ref:refs/heads/main",
        "repo:fork/web:pull_request",
        "repo:acme/webx:ref:refs/heads/main",
    ] {
        assert!(!admits(trust, refused, "sts.amazonaws.com"), "{refused}");
    }
    assert!(!admits(
        trust,
        "repo:acme/web:ref:refs/heads/main",
        "another-audience"
    ));
    // The variables, read back; the organization's readable by the secret's repositories.
    for scope in [
        repo("acme/web"),
        environment("acme/api", "production"),
        org("acme"),
    ] {
        let v = env
            .github
            .variable(&scope, "AWS_ROLE_ARN")
            .unwrap_or_else(|| panic!("{scope:?}"));
        assert_eq!(v.value, role_arn(), "{scope:?}");
    }
    let o = env.github.variable(&org("acme"), "AWS_ROLE_ARN").unwrap();
    assert_eq!(o.visibility.as_deref(), Some("selected"));
    let mut selected = o.selected.clone();
    selected.sort();
    assert_eq!(
        selected,
        vec![
            env.github.repo_id("acme/web"),
            env.github.repo_id("acme/tools")
        ]
    );
    assert!(
        env.github
            .variable(&repo("acme/api"), "AWS_ROLE_ARN")
            .is_none()
    );
    // Dependabot keeps the key; the workflows that read it, line by line, and the snippet.
    let dependabot = u["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["consumer"].as_str().unwrap().contains("Dependabot"))
        .unwrap();
    assert_eq!(dependabot["movable"], false, "{dependabot}");
    let found: Vec<(String, u64, String)> = u["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| {
            w["uses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        format!(
                            "{}/{}",
                            w["repository"].as_str().unwrap(),
                            w["path"].as_str().unwrap()
                        ),
                        s["line"].as_u64().unwrap(),
                        s["secret"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let want = |f: &str, l: u64, s: &str| (f.to_owned(), l, s.to_owned());
    assert_eq!(
        found,
        vec![
            want(
                "acme/api/.github/workflows/release.yml",
                10,
                "AWS_ACCESS_KEY_ID"
            ),
            want(
                "acme/api/.github/workflows/release.yml",
                11,
                "AWS_SECRET_ACCESS_KEY"
            ),
            want(
                "acme/tools/.github/workflows/ci.yml",
                7,
                "AWS_ACCESS_KEY_ID"
            ),
            want(
                "acme/tools/.github/workflows/ci.yml",
                8,
                "AWS_SECRET_ACCESS_KEY"
            ),
            want(
                "acme/web/.github/workflows/deploy.yml",
                5,
                "AWS_ACCESS_KEY_ID"
            ),
            want(
                "acme/web/.github/workflows/deploy.yml",
                6,
                "AWS_SECRET_ACCESS_KEY"
            ),
        ]
    );
    assert!(
        u["snippet"]
            .as_str()
            .unwrap()
            .contains("role-to-assume: ${{ vars.AWS_ROLE_ARN }}")
    );
    assert!(u["snippet"].as_str().unwrap().contains("id-token: write"));
    // Each store and each workflow directory read once.
    for needle in [
        "/repos/acme/web/actions/variables/AWS_ROLE_ARN",
        "/repos/acme/web/contents/.github/workflows ",
        "/orgs/acme/actions/secrets/AWS_ACCESS_KEY_ID ",
    ] {
        let reads = env.github.log()[mark..]
            .iter()
            .filter(|l| l.starts_with("GET") && l.contains(needle))
            .count();
        // The variable is read once before and once after its write.
        let want = if needle.contains("variables") { 2 } else { 1 };
        assert_eq!(reads, want, "{needle}: {:#?}", env.github.log());
    }
    assert_eq!(variable_writes(&env), 3);
    assert_eq!(env.github.all_secrets(), secrets, "no secret is written");

    // A second run changes nothing: no GitHub write, no IAM change.
    let (before, _) = env.aws_calls();
    let run = env.cli(&env.admin, &["migrate", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["migration"]["users"][0]["outcome"], "unchanged");
    assert_eq!(variable_writes(&env), 3);
    let (after, _) = env.aws_calls();
    let changes: Vec<&String> = after[before.len()..]
        .iter()
        .filter(|a| !(a.starts_with("Get") || a.starts_with("List")))
        .collect();
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(role(&env).unwrap(), r);

    // Someone deletes the provider: the next run makes it again, though nothing else changed.
    runtime().block_on(async {
        env.iam()
            .delete_open_id_connect_provider()
            .open_id_connect_provider_arn(&provider_arn)
            .send()
            .await
            .unwrap();
    });
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(providers(&env).len(), 1, "{}", run.all());
    // The organization consumer leaves the manifest: its repositories leave the trust.
    env.write_manifest(&manifest(false, false));
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let trust = role(&env).unwrap()["trust"].clone();
    assert!(!admits(
        &trust,
        "repo:acme/tools:ref:refs/heads/main",
        "sts.amazonaws.com"
    ));
    assert!(admits(
        &trust,
        "repo:acme/web:ref:refs/heads/main",
        "sts.amazonaws.com"
    ));
    env.assert_no_leaks();
}

#[test]
fn a_role_or_provider_the_tool_did_not_make_is_refused_and_left_alone() {
    let env = TestEnv::new();
    setup(&env);
    env.write_manifest(&manifest(false, false));
    let iam = env.iam();
    let theirs = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    runtime().block_on(async {
        iam.create_role()
            .role_name(ROLE)
            .assume_role_policy_document(theirs.to_string())
            .send()
            .await
            .unwrap();
    });
    let before = role(&env);
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stderr.contains(&format!(
            "role {} exists and was not made by aws-key-rotator",
            role_arn()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(role(&env), before, "the role is never changed");
    assert!(
        env.github.variables().is_empty(),
        "no variable points at a role it does not manage"
    );
    assert!(
        providers(&env).is_empty(),
        "nothing to set up for a refused user"
    );

    // Someone else's provider without the STS audience: refused before anything.
    runtime().block_on(async {
        iam.delete_role().role_name(ROLE).send().await.unwrap();
        iam.create_open_id_connect_provider()
            .url(format!("https://{ISSUER}"))
            .client_id_list("something-else")
            .send()
            .await
            .unwrap();
    });
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stderr.contains(
            "was not made by aws-key-rotator and does not accept the audience sts.amazonaws.com"
        ),
        "{}",
        run.stderr
    );
    assert!(role(&env).is_none());
    assert_eq!(providers(&env)[0].1, vec!["something-else".to_owned()]);
}

/// Credentials of a session of the role, as configure-aws-credentials gets them with the job's
/// OIDC token (moto accepts any token: the trust was judged by [`admits`]).
fn assume(env: &TestEnv, subject: &str) -> (Key, String) {
    let sts = sts_client(&env.moto_url, &env.admin.id, &env.admin.secret);
    let out = runtime().block_on(async {
        sts.assume_role_with_web_identity()
            .role_arn(role_arn())
            .role_session_name("GitHubActions")
            .web_identity_token(format!("token-for-{subject}"))
            .send()
            .await
            .unwrap()
    });
    let c = out.credentials().unwrap();
    env.remember(c.secret_access_key());
    env.remember(c.session_token());
    (
        Key {
            id: c.access_key_id().to_owned(),
            secret: c.secret_access_key().to_owned(),
        },
        c.session_token().to_owned(),
    )
}

fn status(env: &TestEnv) -> Value {
    let run = env.cli(&env.admin, &["status", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    serde_json::from_str::<Value>(&run.stdout).unwrap()["users"][0].clone()
}

#[test]
fn the_full_path_from_the_key_to_the_role_ends_migrated() {
    let env = TestEnv::new();
    let (old, _, _) = setup(&env);
    env.write_manifest(&manifest(true, false));
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());

    // The consumers' workflows now assume the role: each is marked `oidc: true`.
    env.write_manifest(&manifest(true, true));
    let before = env.github.all_secrets();
    let run = env.action(&env.admin, &[("command", "rotate"), ("force", "true")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        env.github.all_secrets(),
        before,
        "rotate writes no consumer on the role"
    );
    assert_eq!(
        run.output("rotated").as_deref(),
        Some("false"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains("no new key"), "{}", run.stdout);
    assert_eq!(
        env.keys(USER),
        vec![(old.id.clone(), "Active".into())],
        "no new key"
    );
    let journal = env.journal(USER).expect("the retirement is recorded");
    assert_eq!(
        (journal.phase.as_str(), journal.key.as_str()),
        ("moved", old.id.as_str())
    );
    let s = status(&env);
    assert_eq!(s["state"], "pending-deactivation", "{s}");
    assert_eq!(s["consumers"], json!([]), "no consumer holds the key");
    assert_eq!(s["on_role"].as_array().unwrap().len(), 3, "{s}");
    let text = env.cli(&env.admin, &["status"]);
    assert!(
        text.stdout
            .contains("consumer acme/web (repository secrets): assumes the role (oidc)"),
        "{}",
        text.stdout
    );

    // The grace period first; then a use of the key after the last consumer moved refuses.
    let run = env.changes_nothing(USER, 0, || {
        env.action(&env.admin, &[("command", "deactivate")])
    });
    assert!(run.stdout.contains("not yet"), "{}", run.all());
    env.backdate_journal(USER, 30 * 60);
    env.record_use(&old.id, 20, "s3");
    let run = env.changes_nothing(USER, 3, || {
        env.action(&env.admin, &[("command", "deactivate")])
    });
    assert!(
        run.stderr
            .contains("after the last consumer moved to the role"),
        "{}",
        run.stderr
    );
    // Its last use was before the move: retired.
    env.record_use(&old.id, 31 * 60, "s3");
    let run = env.action(&env.admin, &[("command", "deactivate")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(env.keys(USER), vec![(old.id.clone(), "Inactive".into())]);
    assert!(!env.sts_accepts(&old));
    let run = env.changes_nothing(USER, 0, || env.action(&env.admin, &[("command", "delete")]));
    assert!(run.stdout.contains("not yet"), "{}", run.all());
    env.backdate_journal(USER, 8 * 24 * 60);
    let run = env.action(&env.admin, &[("command", "delete")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(env.keys(USER).is_empty(), "no key left");
    assert!(env.journal(USER).is_none());

    // Migrated: quiet, and nothing brings a key back.
    let s = status(&env);
    assert_eq!(s["state"], "migrated", "{s}");
    assert_eq!(s["attention"], Value::Null);
    let run = env.changes_nothing(USER, 0, || {
        env.action(&env.admin, &[("command", "rotate"), ("force", "true")])
    });
    assert!(!run.stdout.contains("::error::"), "{}", run.stdout);

    // Every consumer's verification, in role mode: its jobs' token is admitted, and the
    // session they get is the role's.
    let trust = role(&env).unwrap()["trust"].clone();
    for subject in [
        "repo:acme/web:ref:refs/heads/main",
        "repo:acme/api:environment:production",
        "repo:acme/tools:ref:refs/heads/main",
    ] {
        assert!(admits(&trust, subject, "sts.amazonaws.com"), "{subject}");
        let (key, token) = assume(&env, subject);
        let run = env.exec(
            &key,
            &["verify", "--expected-role-arn", &role_arn()],
            vec![("AWS_SESSION_TOKEN".into(), token)],
        );
        assert_eq!(run.code, 0, "{}", run.all());
        assert!(
            run.stdout
                .contains(&format!("is a session of the expected role {}", role_arn())),
            "{}",
            run.stdout
        );
    }
    // A job that did not assume it fails the verification.
    let run = env.exec(
        &env.admin,
        &["verify", "--expected-role-arn", &role_arn()],
        vec![],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("not a session of the expected role"),
        "{}",
        run.stderr
    );
    env.assert_no_leaks();
}

#[test]
fn bad_input_and_a_token_that_cannot_write_variables_are_said_and_change_nothing() {
    let env = TestEnv::new();
    setup(&env);
    // A user IAM does not have: exit 2, nothing made.
    env.write_manifest(&manifest(false, false).replace("ci-deployer", "nobody"));
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("nobody") && run.stderr.contains("no such IAM user"),
        "{}",
        run.stderr
    );
    assert!(providers(&env).is_empty() && role(&env).is_none());
    assert!(env.github.variables().is_empty());
    // A user nobody asked to move (no `migrate:` block, no `oidc: true`): left alone.
    env.write_manifest(&manifest(false, false).replace("    migrate: {}\n", ""));
    let run = env.cli(&env.admin, &["migrate", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("nothing-to-move") && run.stdout.contains("add `migrate: {}`"),
        "{}",
        run.stdout
    );
    assert!(providers(&env).is_empty() && role(&env).is_none());
    // A malformed role ARN for verify: exit 2, naming the input.
    let run = env.cli(
        &env.admin,
        &["verify", "--expected-role-arn", "gha-ci-deployer"],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("flag --expected-role-arn \"gha-ci-deployer\" is not an IAM role ARN"),
        "{}",
        run.stderr
    );
    // A token that may read but not write variables: the role is made, the write fails (exit
    // 1) naming the permission, and the next run with a good token finishes.
    env.write_manifest(&manifest(false, false));
    let vars = vec![(
        "GITHUB_TOKEN".to_owned(),
        fake_github::READ_ONLY_TOKEN.to_owned(),
    )];
    let run = env.exec(&env.admin, &["migrate"], vars);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("Variables: write"), "{}", run.stderr);
    assert!(env.github.variables().is_empty());
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(env.github.variables().len(), 2);
    env.assert_no_leaks();
}

#[test]
fn the_shipped_policy_is_enough_for_migrate_and_names_every_call_it_makes() {
    let env = TestEnv::new();
    setup(&env);
    env.write_manifest(&manifest(true, false));
    // The rotator's identity: exactly the shipped statements for migrate (moto checks actions).
    let mut actions: Vec<String> = migrate_policy_actions();
    actions.push("sts:GetCallerIdentity".into());
    let allowed: Vec<&str> = actions.iter().map(String::as_str).collect();
    env.user("rotator", &allowed);
    let rotator = env.create_key("rotator");
    let (before, _) = env.aws_calls();
    let run = env.cli(&rotator, &["migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    // A drifted role converges with the same permissions.
    let iam = env.iam();
    runtime().block_on(async {
        iam.update_role()
            .role_name(ROLE)
            .max_session_duration(43200)
            .send()
            .await
            .unwrap();
        iam.put_role_policy()
            .role_name(ROLE)
            .policy_name("stale")
            .policy_document(policy(&["s3:*"]))
            .send()
            .await
            .unwrap();
    });
    let run = env.cli(&rotator, &["migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(role(&env).unwrap()["max_session"], 3600);
    let (after, _) = env.aws_calls();
    for call in &after[before.len()..] {
        let granted = actions
            .iter()
            .any(|a| a.split_once(':').is_some_and(|(_, name)| name == call));
        // The test's own calls (UpdateRole, PutRolePolicy above) are granted too.
        assert!(granted, "{call} is not in the shipped policy");
    }
    // The policy command prints the statements for this manifest, and none without a
    // `migrate:` block.
    env.write_manifest(&manifest(true, false).replace("    migrate: {}\n", ""));
    let run = env.cli(&env.admin, &["policy"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    let sids: Vec<&str> = printed["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    assert!(
        !sids.iter().any(|s| s.starts_with("Migrate")),
        "not asked: {sids:?}"
    );
    // With a `migrate:` block, the rotator's policy still has none of it (CONTRACT §12a);
    // `policy --for migrate` has it, for this user's role only.
    env.write_manifest(&manifest(true, false));
    let run = env.cli(&env.admin, &["policy"]);
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        !printed.to_string().contains("Migrate") && !printed.to_string().contains(":role/"),
        "{printed}"
    );
    let run = env.cli(&env.admin, &["policy", "--for", "migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    let roles = printed["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "MigrateKeepTheirRoles")
        .unwrap()
        .clone();
    assert_eq!(roles["Resource"], json!([role_arn()]));
}

/// CONTRACT §12a, two identities: the rotator's generated policy (for a manifest whose user is
/// moving to its role) cannot attach a policy to the role, create a role or put one inline;
/// under it the whole retirement of a moved user still runs. `policy --for migrate` lets a
/// role be given only the managed policies and the boundary its user holds.
#[test]
fn the_rotators_policy_cannot_write_a_role_and_still_retires_a_moved_user() {
    use aws_key_rotator::policy::allows_when;
    let env = TestEnv::new();
    let (old, managed, boundary) = setup(&env);
    env.write_manifest(&manifest(true, false));
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    env.write_manifest(&manifest(true, true));

    // The rotator: exactly the actions of its generated policy (moto checks actions).
    let run = env.cli(&env.admin, &["policy"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    let mut actions: Vec<String> = vec!["sts:GetCallerIdentity".into()];
    for st in printed["Statement"].as_array().unwrap() {
        for a in st["Action"].as_array().unwrap() {
            actions.push(a.as_str().unwrap().to_owned());
        }
    }
    let allowed: Vec<&str> = actions.iter().map(String::as_str).collect();
    env.user("rotator", &allowed);
    let rotator = env.create_key("rotator");
    let iam = aws_sdk_iam::Client::new(&sdk_config(&env.moto_url, &rotator.id, &rotator.secret));
    let denied = runtime().block_on(async {
        let attach = iam
            .attach_role_policy()
            .role_name(ROLE)
            .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
            .send()
            .await;
        let create = iam
            .create_role()
            .role_name("escalate")
            .assume_role_policy_document(policy(&["sts:AssumeRole"]))
            .send()
            .await;
        let put = iam
            .put_role_policy()
            .role_name(ROLE)
            .policy_name("admin")
            .policy_document(policy(&["*"]))
            .send()
            .await;
        let trust = iam
            .update_assume_role_policy()
            .role_name(ROLE)
            .policy_document(policy(&["sts:AssumeRole"]))
            .send()
            .await;
        [
            attach.is_err(),
            create.is_err(),
            put.is_err(),
            trust.is_err(),
        ]
    });
    assert_eq!(denied, [true; 4], "attach, create, put, trust");
    assert_eq!(
        role(&env).unwrap()["attached"],
        json!([managed.clone()]),
        "the role is as migrate left it"
    );

    // The moved user's retirement under the rotator's policy: the move recorded by the daily
    // rotate, then deactivate and delete.
    let run = env.action(&rotator, &[("command", "rotate")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(env.journal(USER).unwrap().phase.as_str(), "moved");
    env.backdate_journal(USER, 30 * 60);
    let run = env.action(&rotator, &[("command", "deactivate")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(env.keys(USER), vec![(old.id.clone(), "Inactive".into())]);
    env.backdate_journal(USER, 8 * 24 * 60);
    let run = env.action(&rotator, &[("command", "delete")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(env.keys(USER).is_empty());
    assert_eq!(status(&env)["state"], "migrated");

    // The migrate identity's policy: only what the user holds, on its role.
    let run = env.cli(&env.admin, &["policy", "--for", "migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let p: Value = serde_json::from_str(&run.stdout).unwrap();
    let r = role_arn();
    assert!(allows_when(
        &p,
        "iam:AttachRolePolicy",
        &r,
        &[("iam:PolicyARN", &managed)]
    ));
    assert!(!allows_when(
        &p,
        "iam:AttachRolePolicy",
        &r,
        &[(
            "iam:PolicyARN",
            "arn:aws:iam::aws:policy/AdministratorAccess"
        )]
    ));
    assert!(allows_when(
        &p,
        "iam:CreateRole",
        &r,
        &[("iam:PermissionsBoundary", &boundary)]
    ));
    assert!(!allows_when(&p, "iam:CreateRole", &r, &[]));
    assert!(!allows_when(
        &p,
        "iam:DeleteRolePermissionsBoundary",
        &r,
        &[]
    ));
}

#[test]
fn on_github_enterprise_server_the_role_trusts_its_own_issuer() {
    let env = TestEnv::ghes();
    setup(&env);
    env.write_manifest(&manifest(false, false));
    let run = env.cli(&env.admin, &["migrate", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let issuer = report["migration"]["provider"]["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        issuer.ends_with("/_services/token") && issuer.starts_with("127.0.0.1:"),
        "{issuer}"
    );
    let (arn, audiences, _) = providers(&env).remove(0);
    assert!(arn.ends_with(&format!("oidc-provider/{issuer}")), "{arn}");
    assert_eq!(audiences, vec!["sts.amazonaws.com".to_owned()]);
    let trust = role(&env).unwrap()["trust"].clone();
    assert!(
        trust.to_string().contains(&format!("{issuer}:sub")),
        "{trust}"
    );
}

#[test]
fn the_trust_names_repositories_and_environments_as_github_does() {
    let env = TestEnv::new();
    env.user(USER, &["s3:PutObject"]);
    // GitHub spells them this way; the manifest does not (GitHub compares them
    // case-insensitively, IAM compares a token's `sub` case-sensitively).
    env.github.add_repo("Acme/Web");
    env.github.add_repo("acme/api");
    env.github.add_environment("acme/api", "Production");
    env.write_manifest(
        "version: 1
users:
  - name: ci-deployer
    migrate: {}
    consumers:
      - repository: acme/web
      - repository: acme/api
        environment: production
",
    );
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let trust = role(&env).unwrap()["trust"].clone();
    assert!(admits(
        &trust,
        "repo:Acme/Web:ref:refs/heads/main",
        "sts.amazonaws.com"
    ));
    assert!(admits(
        &trust,
        "repo:acme/api:environment:Production",
        "sts.amazonaws.com"
    ));
    assert!(!admits(
        &trust,
        "repo:acme/api:environment:production",
        "sts.amazonaws.com"
    ));
    assert_eq!(
        env.github
            .variable(&repo("Acme/Web"), "AWS_ROLE_ARN")
            .unwrap()
            .value,
        role_arn()
    );
    assert!(
        env.github
            .variable(&environment("acme/api", "Production"), "AWS_ROLE_ARN")
            .is_some()
    );
    // A repository GitHub does not have: exit 2, nothing made.
    env.write_manifest(
        "version: 1\nusers:\n  - name: ci-deployer\n    migrate: { role-name: other }\n    consumers: [{repository: acme/nope}]\n",
    );
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("acme/nope"), "{}", run.stderr);
}

/// CONTRACT §12a: the issuer is placed from GITHUB_SERVER_URL, never assumed. A GHE.com tenant
/// gets its own issuer; a server and an API that name different instances, or an API that
/// cannot be placed, is exit 2 before any provider or role exists.
#[test]
fn the_oidc_issuer_is_placed_from_the_server_url_and_never_assumed() {
    let env = TestEnv::new();
    setup(&env);
    env.write_manifest(&manifest(false, false));
    let with = |server: &str, api: &str| {
        let mut vars = vec![("GITHUB_TOKEN".to_owned(), fake_github::TOKEN.to_owned())];
        vars.push(("GITHUB_SERVER_URL".into(), server.into()));
        vars.push(("GITHUB_API_URL".into(), api.into()));
        vars
    };
    // A GHE.com run whose API is not github.com's: taken for github.com before.
    for (server, api) in [
        ("https://github.com", "https://api.acme.ghe.com"),
        ("https://acme.ghe.com", "https://api.github.com"),
        (
            "https://ghe.example.com",
            "https://other.example.com/api/v3",
        ),
    ] {
        let run = env.exec(&env.admin, &["migrate"], with(server, api));
        assert_eq!(run.code, 2, "{server} {api}: {}", run.all());
        assert!(
            run.stderr.contains("name different GitHub instances"),
            "{}",
            run.stderr
        );
    }
    assert!(providers(&env).is_empty());
    assert!(role(&env).is_none());
    // The fake at loopback standing for a GHE.com tenant: the tenant's own issuer.
    let run = env.exec(
        &env.admin,
        &["migrate", "--json"],
        vec![
            ("GITHUB_TOKEN".into(), fake_github::TOKEN.into()),
            ("GITHUB_SERVER_URL".into(), "https://acme.ghe.com".into()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report["migration"]["provider"]["issuer"],
        "token.actions.acme.ghe.com"
    );
    let trust = role(&env).unwrap()["trust"].clone();
    assert!(
        trust.to_string().contains("token.actions.acme.ghe.com:sub")
            && !trust.to_string().contains(ISSUER),
        "{trust}"
    );
}

/// CONTRACT §12a: the workflow lines `migrate` prints come from anyone who can push to a
/// consumer's default branch. A lone CR, or a line that starts `::`, never becomes a workflow
/// command in the rotator's job: the lines are printed without control characters, inside
/// `::stop-commands::`.
#[test]
fn workflow_lines_from_a_consumers_repository_start_no_workflow_command() {
    let env = TestEnv::new();
    setup(&env);
    env.write_manifest(&manifest(false, false));
    env.github.add_file(
        "acme/web",
        ".github/workflows/evil.yml",
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ secrets.AWS_ACCESS_KEY_ID }}\r::add-mask::AKIAFORGED\r::error::forged by a workflow\n      - run: echo ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n::warning::also forged\n",
    );
    let run = env.exec(
        &env.admin,
        &["migrate"],
        vec![
            ("GITHUB_TOKEN".into(), fake_github::TOKEN.into()),
            ("GITHUB_ACTIONS".into(), "true".into()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("evil.yml"), "{}", run.stdout);
    assert!(
        run.stdout.contains("forged by a workflow"),
        "shown, inert: {}",
        run.stdout
    );
    for out in [&run.stdout, &run.stderr] {
        let commands = runner_commands(out);
        assert!(
            !commands
                .iter()
                .any(|c| c.contains("forged") || c.contains("AKIAFORGED")),
            "{commands:?}\n{out}"
        );
        assert!(!out.contains('\r'), "{out:?}");
    }
}

/// CONTRACT §12a: variables resolve as GitHub resolves them. An existing variable the tool did
/// not write (another role's ARN) is never overwritten: exit 3, nothing of the user written,
/// the variable named. Two moving users whose variables one job would read: exit 2 naming
/// both consumers, nothing made.
#[test]
fn a_variable_the_tool_did_not_write_or_one_another_user_shadows_is_refused() {
    let env = TestEnv::new();
    setup(&env);
    env.write_manifest(&manifest(false, false));
    let theirs = "arn:aws:iam::123456789012:role/someone-elses";
    env.github.set_variable(
        &environment("acme/api", "production"),
        "AWS_ROLE_ARN",
        theirs,
    );
    let before = env.github.variables();
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.all().contains("AWS_ROLE_ARN")
            && run.all().contains("is never overwritten")
            && run.all().contains("production"),
        "{}",
        run.all()
    );
    assert_eq!(env.github.variables(), before, "nothing written");
    assert!(role(&env).is_none(), "no role made");

    // Two users: ci's organization consumer and batch's repository in that organization.
    env.github.set_variable(
        &environment("acme/api", "production"),
        "AWS_ROLE_ARN",
        &role_arn(),
    );
    env.user("batch", &["s3:GetObject"]);
    env.write_manifest(&format!(
        "{}  - name: batch\n    migrate: {{ role-name: gha-batch }}\n    consumers:\n      - repository: acme/tools\n        secrets: {{ access-key-id: B_ID, secret-access-key: B_SECRET }}\n",
        manifest(true, false)
    ));
    let before = env.github.variables();
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("organization acme (Actions secrets) of \"ci-deployer\" and acme/tools (repository secrets) of \"batch\""),
        "{}",
        run.stderr
    );
    assert_eq!(env.github.variables(), before);
    assert!(role(&env).is_none());
}

/// CONTRACT §12a, item 10: an organization login is used as GitHub spells it. The manifest
/// says `Acme`; GitHub's login is `acme`, and its tokens' `sub` says `repo:acme/…`, which IAM
/// compares case-sensitively: the role trusts `repo:acme/*`, never `repo:Acme/*`.
#[test]
fn an_organization_is_named_in_the_trust_as_github_spells_it() {
    let env = TestEnv::new();
    let (old, _, _) = setup(&env);
    let then = chrono::Utc::now() - chrono::Duration::days(100);
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", &old.id),
        ("AWS_SECRET_ACCESS_KEY", &old.secret),
    ] {
        env.github
            .set_org_secret(&org("acme"), name, value, "all", &[], then);
    }
    env.write_manifest(
        "version: 1\nusers:\n  - name: ci-deployer\n    migrate: {}\n    consumers:\n      - organization: Acme\n",
    );
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let trust = role(&env).unwrap()["trust"].clone();
    assert!(
        admits(
            &trust,
            "repo:acme/web:ref:refs/heads/main",
            "sts.amazonaws.com"
        ),
        "{trust}"
    );
    assert!(!trust.to_string().contains("repo:Acme/"), "{trust}");
    assert!(env.github.variable(&org("acme"), "AWS_ROLE_ARN").is_some());
}

/// CONTRACT §12a, item 10: a repository's pull requests from its own branches read its secrets,
/// so `repo:O/R:*` admits `pull_request` subjects by default, and the report warns where fork
/// pull requests get write tokens (their subject is the same). `pull-requests: false` leaves
/// them out: branches, tags and environments only.
#[test]
fn pull_request_subjects_are_warned_about_and_left_out_on_request() {
    let env = TestEnv::new();
    setup(&env);
    env.github.let_forks_write("acme/web");
    let manifest = |extra: &str| {
        format!(
            "version: 1\nusers:\n  - name: ci-deployer\n    migrate: {{}}\n    consumers:\n      - repository: acme/web{extra}\n"
        )
    };
    env.write_manifest(&manifest(""));
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr
            .contains("fork pull requests in acme/web get write tokens"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains("repo:acme/web:*"),
        "the subjects are named: {}",
        run.stdout
    );
    let trust = role(&env).unwrap()["trust"].clone();
    assert!(admits(
        &trust,
        "repo:acme/web:pull_request",
        "sts.amazonaws.com"
    ));

    env.write_manifest(&manifest("\n        pull-requests: false"));
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!run.all().contains("get write tokens"), "{}", run.all());
    let trust = role(&env).unwrap()["trust"].clone();
    assert!(
        !admits(&trust, "repo:acme/web:pull_request", "sts.amazonaws.com"),
        "{trust}"
    );
    for admitted in [
        "repo:acme/web:ref:refs/heads/main",
        "repo:acme/web:ref:refs/tags/v1",
        "repo:acme/web:environment:production",
    ] {
        assert!(
            admits(&trust, admitted, "sts.amazonaws.com"),
            "{admitted}: {trust}"
        );
    }
    // Only where it means something: an environment's jobs are named exactly already.
    env.write_manifest(
        "version: 1\nusers:\n  - name: ci-deployer\n    migrate: {}\n    consumers:\n      - repository: acme/api\n        environment: production\n        pull-requests: false\n",
    );
    let run = env.cli(&env.admin, &["migrate"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("pull-requests applies to repository and organization"),
        "{}",
        run.stderr
    );
}
