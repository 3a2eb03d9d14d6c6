//! Verification workflows (CONTRACT §8): dispatched after the push, found, awaited; a run that
//! does not succeed is compensated. The fake GitHub simulates each run by checking, with STS on
//! moto, the secrets the job would see.

use crate::support::*;

const USER: &str = "ci-deployer";

fn manifest(verify: &str) -> String {
    format!(
        "version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
      - repository: acme/web
        environment: production
      - repository: acme/api
    verify:
{verify}"
    )
}

const ONE_VERIFY: &str = "      - repository: acme/api\n        workflow: verify.yml\n";

const TWO_VERIFIES: &str = "      - repository: acme/web
        workflow: verify-production.yml
        ref: main
      - repository: acme/api
        workflow: verify.yml
";

fn setup(env: &TestEnv, verify: &str, specs: &[(&str, &str, Option<&str>, RunMode)]) -> Key {
    env.rotating_user(USER);
    let old = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.github.add_environment("acme/web", "production");
    env.github.add_repo("acme/api");
    env.seed(
        &[
            repo("acme/web"),
            environment("acme/web", "production"),
            repo("acme/api"),
        ],
        &old,
        100,
    );
    for (repository, workflow, environment_name, mode) in specs {
        env.github.add_workflow(
            repository,
            workflow,
            WorkflowSpec {
                environment: environment_name.map(str::to_owned),
                mode: *mode,
            },
        );
    }
    env.write_manifest(&manifest(verify));
    old
}

fn all_hold(env: &TestEnv, key: &Key) {
    for scope in [
        repo("acme/web"),
        environment("acme/web", "production"),
        repo("acme/api"),
    ] {
        let held = env.held_default(&scope).unwrap();
        assert_eq!(held.id, key.id, "{scope:?}");
        assert_eq!(held.secret, key.secret, "{scope:?}");
    }
}

#[test]
fn two_verification_runs_are_dispatched_once_each_and_succeed() {
    let env = TestEnv::new();
    let old = setup(
        &env,
        TWO_VERIFIES,
        &[
            (
                "acme/web",
                "verify-production.yml",
                Some("production"),
                RunMode::Normal,
            ),
            ("acme/api", "verify.yml", None, RunMode::Normal),
        ],
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(
        env.keys(USER),
        vec![
            (old.id.clone(), "Active".into()),
            (new.id.clone(), "Active".into())
        ]
    );
    assert_eq!(env.github.count("POST", "/dispatches"), 2);
    let runs = env.github.dispatched_runs();
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(r.inputs["expected-access-key-id"], new.id.as_str());
        assert!(
            r.display_title
                .contains(r.inputs["rotation-id"].as_str().unwrap())
        );
    }
    assert_eq!(runs[0].git_ref, "main");
    assert_eq!(
        runs[1].git_ref, "main",
        "the default branch when ref is not given"
    );
    let urls = run
        .outputs
        .split("verification-run-urls<<")
        .nth(1)
        .expect("a multi-line output");
    for r in &runs {
        assert!(
            urls.contains(&format!("/actions/runs/{}", r.id)),
            "{}",
            run.outputs
        );
    }
    assert!(run.summary.contains("| `verify-production.yml` | acme/web | [run](https://github.example/acme/web/actions/runs/"), "{}", run.summary);
    assert!(run.summary.contains("✅ success"), "{}", run.summary);
}

#[test]
fn a_run_that_reads_a_consumer_missing_from_the_manifest_fails_and_everything_goes_back() {
    let env = TestEnv::new();
    // The workflow runs in "staging", whose secrets the manifest forgot: it still sees the old key.
    let old = setup(
        &env,
        "      - repository: acme/web\n        workflow: verify-staging.yml\n",
        &[(
            "acme/web",
            "verify-staging.yml",
            Some("staging"),
            RunMode::Normal,
        )],
    );
    env.github.add_environment("acme/web", "staging");
    let then = chrono::Utc::now() - chrono::Duration::days(100);
    env.github.set_secret(
        &environment("acme/web", "staging"),
        "AWS_ACCESS_KEY_ID",
        &old.id,
        then,
    );
    env.github.set_secret(
        &environment("acme/web", "staging"),
        "AWS_SECRET_ACCESS_KEY",
        &old.secret,
        then,
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    all_hold(&env, &old);
    rolled_back(&env, &old);
    assert!(run.summary.contains("❌ failure"), "{}", run.summary);
}

/// After a failed verification every consumer holds the old key again; the new key stays
/// Active (the verification job, or any job started meanwhile, may still hold it) and the
/// journal says `rolled-back`, so the next rotate deletes it once no job can hold it.
fn rolled_back(env: &TestEnv, old: &Key) {
    let keys = env.keys(USER);
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0], (old.id.clone(), "Active".into()));
    let journal = env.journal(USER).expect("a journal");
    assert_eq!(
        journal.phase,
        aws_key_rotator::rotation::journal::Phase::RolledBack
    );
    assert_eq!(journal.key, keys[1].0);
    assert!(!env.tags(USER).contains_key("aws-key-rotator/lease"));
}

fn failing(mode: RunMode, why: &str) {
    let env = TestEnv::new();
    let old = setup(
        &env,
        TWO_VERIFIES,
        &[
            (
                "acme/web",
                "verify-production.yml",
                Some("production"),
                RunMode::Normal,
            ),
            ("acme/api", "verify.yml", None, mode),
        ],
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    all_hold(&env, &old);
    rolled_back(&env, &old);
    assert!(env.sts_accepts(&old));
    assert!(run.summary.contains(why), "{why}\n{}", run.summary);
    assert!(
        run.stderr.contains("verification did not succeed"),
        "{}",
        run.stderr
    );
    assert_eq!(run.output("rotated").as_deref(), Some("false"));
}

#[test]
fn a_failed_run_puts_the_old_key_back() {
    failing(RunMode::Fail, "❌ failure");
}

#[test]
fn a_cancelled_run_puts_the_old_key_back() {
    failing(RunMode::Cancel, "❌ cancelled");
}

#[test]
fn a_run_that_never_completes_times_out_and_puts_the_old_key_back() {
    failing(RunMode::NeverComplete, "did not complete within 3 seconds");
}

#[test]
fn a_run_that_never_appears_puts_the_old_key_back() {
    failing(RunMode::NeverAppear, "no run appeared");
}

#[test]
fn without_the_old_values_a_failed_run_keeps_both_keys() {
    let env = TestEnv::new();
    setup(
        &env,
        TWO_VERIFIES,
        &[
            (
                "acme/web",
                "verify-production.yml",
                Some("production"),
                RunMode::Normal,
            ),
            ("acme/api", "verify.yml", None, RunMode::Fail),
        ],
    );
    let admin = env.admin.clone();
    let run = env.action(&admin, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let keys = env.keys(USER);
    assert_eq!(keys.len(), 2);
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert!(env.sts_accepts(&new));
    for row in run.summary.lines().filter(|l| l.starts_with("| acme/")) {
        assert!(
            row.contains(&new.id),
            "every consumer is reported holding the new key: {row}"
        );
    }
}

fn fallback(mode: RunMode) {
    let env = TestEnv::new();
    let old = setup(&env, ONE_VERIFY, &[("acme/api", "verify.yml", None, mode)]);
    // Runs of the same workflow that are not this rotation's.
    env.github.add_other_run(
        "acme/api",
        "verify.yml",
        "verify AWS credentials AKIAOTHER0000000000-1",
        "failure",
    );
    env.github.add_other_run(
        "acme/api",
        "verify.yml",
        "Verify AWS credentials",
        "cancelled",
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let runs = env.github.dispatched_runs();
    assert_eq!(runs.len(), 1);
    assert!(
        run.outputs
            .contains(&format!("/actions/runs/{}", runs[0].id)),
        "{}",
        run.outputs
    );
    assert!(
        env.github
            .count("GET", "/actions/workflows/verify.yml/runs")
            >= 1
    );
}

#[test]
fn a_204_without_run_details_finds_the_run_by_its_title() {
    fallback(RunMode::NoRunDetails);
}

#[test]
fn older_github_enterprise_server_is_dispatched_again_without_run_details() {
    fallback(RunMode::OldGhes);
    let env = TestEnv::new();
    let old = setup(
        &env,
        ONE_VERIFY,
        &[("acme/api", "verify.yml", None, RunMode::OldGhes)],
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        env.github.count("POST", "/dispatches"),
        2,
        "once with return_run_details (400), once without"
    );
}

/// The server that refused run details once is not asked again in the same run: on
/// GitHub Enterprise Server every later dispatch costs one write, not two.
#[test]
fn run_details_refused_once_are_not_asked_for_again() {
    let env = TestEnv::new();
    let old = setup(
        &env,
        TWO_VERIFIES,
        &[
            (
                "acme/web",
                "verify-production.yml",
                Some("production"),
                RunMode::OldGhes,
            ),
            ("acme/api", "verify.yml", None, RunMode::OldGhes),
        ],
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(env.github.dispatched_runs().len(), 2);
    assert_eq!(
        env.github.count("POST", "/dispatches"),
        3,
        "one refused with return_run_details, then each workflow once without: {:?}",
        env.github.log()
    );
}

#[test]
fn a_dispatch_whose_answer_is_lost_is_not_dispatched_twice() {
    let env = TestEnv::new();
    let old = setup(
        &env,
        ONE_VERIFY,
        &[("acme/api", "verify.yml", None, RunMode::LostAnswer)],
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        env.github.count("POST", "/dispatches"),
        1,
        "{:?}",
        env.github.log()
    );
    assert_eq!(env.github.dispatched_runs().len(), 1);
}

#[test]
fn polling_uses_conditional_requests() {
    let env = TestEnv::new();
    let old = setup(
        &env,
        ONE_VERIFY,
        &[("acme/api", "verify.yml", None, RunMode::NeverComplete)],
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let not_modified = env
        .github
        .log()
        .iter()
        .filter(|l| l.contains("/actions/runs/") && l.ends_with(" 304"))
        .count();
    assert!(
        not_modified > 0,
        "unchanged runs answer 304: {:?}",
        env.github.log()
    );
}

#[test]
fn a_verification_workflow_that_does_not_exist_fails_the_rotation_safely() {
    let env = TestEnv::new();
    let old = setup(
        &env,
        "      - repository: acme/api\n        workflow: missing.yml\n",
        &[],
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    all_hold(&env, &old);
    assert!(run.summary.contains("not dispatched"), "{}", run.summary);
}

#[test]
fn a_rate_limited_dispatch_is_sent_again_after_the_wait() {
    let env = TestEnv::new();
    let old = setup(
        &env,
        ONE_VERIFY,
        &[("acme/api", "verify.yml", None, RunMode::Normal)],
    );
    env.github.add_fault(
        Fault::new(axum::http::Method::POST, "/dispatches", 429)
            .retry_after(1)
            .times(1),
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        env.github.count("POST", "/dispatches"),
        2,
        "the 429, then the dispatch"
    );
    assert_eq!(env.github.dispatched_runs().len(), 1);
}

#[test]
fn the_same_workflow_on_two_branches_is_two_runs() {
    let env = TestEnv::new();
    let old = setup(
        &env,
        "      - repository: acme/api\n        workflow: verify.yml\n        ref: main\n      - repository: acme/api\n        workflow: verify.yml\n        ref: release\n",
        &[("acme/api", "verify.yml", None, RunMode::NoRunDetails)],
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let runs = env.github.dispatched_runs();
    assert_eq!(runs.len(), 2);
    let urls = run.outputs.split("verification-run-urls<<").nth(1).unwrap();
    for r in &runs {
        assert!(
            urls.contains(&format!("/actions/runs/{}\n", r.id)),
            "each entry follows its own run: {}",
            run.outputs
        );
    }
}
