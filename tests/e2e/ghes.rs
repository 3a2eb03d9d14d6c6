//! GitHub Enterprise Server: the whole life cycle — rotation with its verification workflow,
//! deactivation, deletion — against a fake that serves the API only under `/api/v3` and refuses
//! `return_run_details`, as GHES 3.20 and older do.

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
    verify:
      - repository: acme/web
        workflow: verify-aws-credentials.yml
";

#[test]
fn the_whole_life_cycle_runs_against_github_enterprise_server() {
    let env = TestEnv::ghes();
    assert!(env.github.url.ends_with("/api/v3"), "{}", env.github.url);
    env.rotating_user(USER);
    let old = env.aged_key(USER, 100);
    env.github.add_environment("acme/web", "production");
    env.github.add_dependabot("acme/web");
    env.github.add_workflow(
        "acme/web",
        "verify-aws-credentials.yml",
        WorkflowSpec {
            environment: Some("production".into()),
            mode: RunMode::Normal,
        },
    );
    env.seed(
        &[repo("acme/web"), environment("acme/web", "production")],
        &old,
        100,
    );
    env.write_manifest(MANIFEST);

    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.summary.contains("✅ success"),
        "verified: {}",
        run.summary
    );
    let new = env.held_default(&repo("acme/web")).unwrap();
    for scope in [
        environment("acme/web", "production"),
        dependabot("acme/web"),
    ] {
        assert_eq!(env.held_default(&scope).unwrap().id, new.id, "{scope:?}");
    }
    // The dispatch asked for run details, was refused, and was sent again without them: the
    // run was found by its title.
    let log = env.github.log();
    assert!(
        log.iter().any(|l| l.starts_with(
            "POST /repos/acme/web/actions/workflows/verify-aws-credentials.yml/dispatches 400"
        )),
        "{log:#?}"
    );
    assert!(
        log.iter()
            // (acme is no organization: its alerts are read repository by repository)
            .all(|l| !l.ends_with(" 404")
                || l.contains("/secrets/")
                || l == "GET /orgs/acme/secret-scanning/alerts 404"),
        "every request kept /api/v3: {log:#?}"
    );

    for command in ["deactivate", "delete"] {
        let run = env.action(&new, &[("command", command)]);
        assert_eq!(run.code, 0, "{command}: {}", run.all());
    }
    assert_eq!(env.keys(USER), vec![(new.id.clone(), "Active".to_owned())]);
    assert!(!env.sts_accepts(&old));
}

#[test]
fn a_request_without_the_api_v3_prefix_is_not_served() {
    let env = TestEnv::ghes();
    env.rotating_user(USER);
    let old = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.write_manifest(
        "version: 1\nusers:\n  - name: ci-deployer\n    consumers:\n      - repository: acme/web\n",
    );
    // A GITHUB_API_URL that dropped the prefix: bad input, and nothing changes.
    let before = env.world(USER);
    let base = env.github.url.trim_end_matches("/api/v3").to_owned();
    let run = env.exec(
        &old,
        &[],
        vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("INPUT_GITHUB-TOKEN".into(), fake_github::TOKEN.into()),
            ("GITHUB_API_URL".into(), base),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("404"), "{}", run.stderr);
    assert_eq!(env.world(USER), before);
}
