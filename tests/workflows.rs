//! The shipped workflows and `action.yml` agree with the binary, and the reusable workflow's
//! life cycle works when its jobs are run the way the runner runs them.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::*;

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const WORKFLOWS: &[&str] = &[
    ".github/workflows/rotate-aws-key.yml",
    "examples/workflows/rotate-aws-keys.yml",
    "examples/workflows/verify-aws-credentials.yml",
];

fn action_names(section: &str) -> BTreeSet<String> {
    yaml("action.yml")[section]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn action_yml_declares_exactly_the_inputs_the_binary_reads() {
    let declared = action_names("inputs");
    let read: BTreeSet<String> = aws_key_rotator::action::INPUTS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(declared, read);
}

#[test]
fn workflows_use_only_declared_inputs_and_outputs_of_the_action() {
    let inputs = action_names("inputs");
    let outputs = action_names("outputs");
    for path in WORKFLOWS {
        let wf = yaml(path);
        let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
        let mut our_steps = Vec::new();
        for (job_name, job) in wf["jobs"].as_object().unwrap() {
            for step in job["steps"].as_array().into_iter().flatten() {
                let uses = step["uses"].as_str().unwrap_or_default();
                if !uses.starts_with("aws-key-rotator/aws-key-rotator@") {
                    continue;
                }
                for key in step["with"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    assert!(
                        inputs.contains(key),
                        "{path} job {job_name}: input {key} is not in action.yml"
                    );
                }
                if let Some(id) = step["id"].as_str() {
                    our_steps.push(id.to_owned());
                }
            }
        }
        for id in our_steps {
            let needle = format!("steps.{id}.outputs.");
            for (at, _) in text.match_indices(&needle) {
                let name: String = text[at + needle.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                assert!(
                    outputs.contains(&name),
                    "{path}: output {name} of step {id} is not in action.yml"
                );
            }
        }
    }
}

#[test]
fn the_reusable_workflow_fans_out_over_the_users_status_reports_due() {
    let wf = yaml(".github/workflows/rotate-aws-key.yml");
    let jobs = &wf["jobs"];
    let users = jobs["plan"]["outputs"]["users"].as_str().unwrap();
    assert!(users.contains("steps.status.outputs.users-due"), "{users}");
    assert!(users.contains("steps.status.outputs.users"), "{users}");
    let status_step = jobs["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "status")
        .unwrap();
    assert_eq!(status_step["with"]["command"], "status");
    // Each stage fans out over the users the stage before it left to do.
    for (job, from) in [
        ("rotate", "plan"),
        ("deactivate", "rotated"),
        ("delete", "deactivated"),
    ] {
        let j = &jobs[job];
        assert_eq!(
            j["strategy"]["matrix"]["user"],
            format!("${{{{ fromJSON(needs.{from}.outputs.users) }}}}"),
            "{job}"
        );
        assert_eq!(
            j["strategy"]["max-parallel"], "${{ inputs.max-parallel }}",
            "{job}"
        );
        assert_eq!(j["strategy"]["fail-fast"], false, "{job}");
    }
    assert_eq!(
        jobs["delete"]["environment"],
        "${{ inputs.deletion-environment }}"
    );
    assert_eq!(wf["permissions"], serde_json::json!({}));
    for (name, job) in jobs.as_object().unwrap() {
        assert_eq!(
            job["permissions"],
            serde_json::json!({"contents": "read"}),
            "{name}"
        );
    }
}

/// The `run:` script of step `id` (or named `name`) in job `job`.
fn script(job: &str, step: &str) -> String {
    let wf = yaml(".github/workflows/rotate-aws-key.yml");
    wf["jobs"][job]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == step || s["name"] == step)
        .and_then(|s| s["run"].as_str())
        .unwrap_or_else(|| panic!("{job}/{step} has no run script"))
        .to_owned()
}

/// Runs a workflow script with bash in `dir`, the way a runner step does; returns $GITHUB_OUTPUT.
fn run_script(text: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> String {
    let output = dir.join("github_output");
    std::fs::write(&output, "").unwrap();
    let out = std::process::Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", text])
        .current_dir(dir)
        .env("GITHUB_OUTPUT", &output)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(output).unwrap()
}

#[test]
fn key_ids_travel_from_rotate_to_the_later_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let record = script("rotate", "Record the key ids for the later jobs");
    for (user, rotated, old) in [
        ("ci-deployer", "true", "AKIAOLD0000000000001"),
        ("bootstrapped", "true", ""),
        ("young", "false", "AKIAOLD0000000000003"),
        ("failed", "", ""),
    ] {
        run_script(
            &record,
            dir.path(),
            &[
                ("USER_NAME", user),
                ("ROTATED", rotated),
                ("OLD_KEY", old),
                ("NEW_KEY", "AKIANEW"),
            ],
        );
    }
    let out = run_script(&script("rotated", "list"), dir.path(), &[]);
    assert_eq!(
        out, "users=[\"ci-deployer\"]\n",
        "only a rotation with an old key leaves work"
    );
    let out = run_script(
        &script("deactivate", "ids"),
        dir.path(),
        &[("USER_NAME", "ci-deployer")],
    );
    assert_eq!(out, "old=AKIAOLD0000000000001\n");

    let empty = tempfile::tempdir().unwrap();
    let out = run_script(&script("rotated", "list"), empty.path(), &[]);
    assert_eq!(out, "users=[]\n", "no artifacts: nothing to retire");

    std::fs::rename(dir.path().join("rotation"), dir.path().join("deactivated")).unwrap();
    std::fs::remove_file(dir.path().join("deactivated/young.json")).unwrap();
    std::fs::remove_file(dir.path().join("deactivated/failed.json")).unwrap();
    std::fs::remove_file(dir.path().join("deactivated/bootstrapped.json")).unwrap();
    let out = run_script(&script("deactivated", "list"), dir.path(), &[]);
    assert_eq!(out, "users=[\"ci-deployer\"]\n");
    let out = run_script(
        &script("delete", "ids"),
        dir.path(),
        &[("USER_NAME", "ci-deployer")],
    );
    assert_eq!(out, "old=AKIAOLD0000000000001\n");
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
  - name: reporting
    max-age-days: 30
    consumers:
      - repository: acme/reports
";

/// ci-deployer with a 100-day-old key (due), reporting with a 3-day-old one (not due), and
/// their repositories; returns their keys.
fn two_users(env: &TestEnv) -> (Key, Key) {
    env.rotating_user("ci-deployer");
    env.rotating_user("reporting");
    let old = env.aged_key("ci-deployer", 100);
    let reporting = env.aged_key("reporting", 3);
    env.github.add_repo("acme/web");
    env.github.add_environment("acme/web", "production");
    env.github.add_repo("acme/reports");
    (old, reporting)
}

/// The jobs of rotate-aws-key.yml, in order, each a new process with the secrets a new job
/// would read: plan (status) → rotate → deactivate → delete.
#[test]
fn the_life_cycle_as_the_runner_runs_the_reusable_workflow() {
    let env = TestEnv::new();
    let (old, reporting) = two_users(&env);
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
    // The caller passes acme/web's repository secrets; each job reads them when it starts.
    let job_creds = || env.held_default(&repo("acme/web")).unwrap();

    let plan = env.action(&job_creds(), &[("command", "status")]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    let due: Vec<String> = serde_json::from_str(&plan.output("users-due").unwrap()).unwrap();
    assert_eq!(due, ["ci-deployer"], "reporting's key is young");
    let all: Vec<String> = serde_json::from_str(&plan.output("users").unwrap()).unwrap();
    assert_eq!(all, ["ci-deployer", "reporting"]);

    for user in &due {
        let rotate = env.action(&job_creds(), &[("command", "rotate"), ("user", user)]);
        assert_eq!(rotate.code, 0, "{}", rotate.all());
        assert_eq!(rotate.output("rotated").as_deref(), Some("true"));
        let old_id = rotate.output("old-access-key-id").unwrap();
        let new_id = rotate.output("new-access-key-id").unwrap();
        assert_eq!(old_id, old.id);
        assert!(
            rotate
                .outputs
                .contains("verification-run-urls=https://github.example/acme/web/actions/runs/"),
            "{}",
            rotate.outputs
        );

        let deactivate = env.action(
            &job_creds(),
            &[
                ("command", "deactivate"),
                ("user", user),
                ("old-access-key-id", &old_id),
            ],
        );
        assert_eq!(deactivate.code, 0, "{}", deactivate.all());
        let delete = env.action(
            &job_creds(),
            &[
                ("command", "delete"),
                ("user", user),
                ("old-access-key-id", &old_id),
            ],
        );
        assert_eq!(delete.code, 0, "{}", delete.all());

        let new = job_creds();
        assert_eq!(new.id, new_id);
        assert_eq!(env.keys(user), vec![(new_id.clone(), "Active".to_owned())]);
        assert!(env.sts_accepts(&new));
        assert!(!env.sts_accepts(&old));
    }
    assert_eq!(
        env.keys("reporting"),
        vec![(reporting.id.clone(), "Active".to_owned())]
    );
}

/// Replaces what changes from run to run (key ids, dates, ages) with stable placeholders.
fn normalize(json: &str, ids: &[(&str, &str)]) -> String {
    let mut v: Value = serde_json::from_str(json).unwrap();
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    match (k.as_str(), &x) {
                        ("created" | "date", Value::String(_)) => {
                            *x = Value::String("<time>".into())
                        }
                        _ => walk(x),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    let mut text = serde_json::to_string_pretty(&v).unwrap();
    for (id, name) in ids {
        text = text.replace(id, name);
    }
    text
}

#[test]
fn status_json_shape() {
    let env = TestEnv::new();
    let (old, reporting) = two_users(&env);
    env.write_manifest(MANIFEST);
    let run = env.cli(&old, &["status", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    insta::assert_snapshot!(normalize(
        &run.stdout,
        &[
            (&old.id, "<ci-deployer key>"),
            (&reporting.id, "<reporting key>")
        ]
    ));
}
