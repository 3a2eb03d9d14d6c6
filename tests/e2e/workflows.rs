//! The shipped workflows and `action.yml` agree with the binary, and the reusable workflow's
//! life cycle works when its jobs are run the way the runner runs them.

use std::collections::BTreeSet;

use crate::support::*;
use serde_json::Value;

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const WORKFLOWS: &[&str] = &[
    ".github/workflows/rotate-aws-key.yml",
    "examples/workflows/rotate-aws-keys.yml",
    "examples/workflows/verify-aws-credentials.yml",
    "examples/workflows/discover-aws-keys.yml",
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
    let read: BTreeSet<String> = aws_key_rotator::config::INPUTS
        .iter()
        .map(|i| i.name.to_string())
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
    // Retirement runs over the whole manifest, so it reaches users rotated by earlier runs once
    // their grace has passed.
    // Rotation runs in one job: the token's writes share one governor (no matrix multiplying
    // its write rate).
    let rotate = &jobs["rotate"];
    assert!(rotate["strategy"].is_null(), "rotate is one job");
    let step = rotate["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["with"]["command"] == "rotate")
        .unwrap();
    assert!(step["with"]["user"].is_null(), "every due user");
    for (job, command, grace) in [
        ("deactivate", "deactivate", "deactivate-after-hours"),
        ("delete", "delete", "delete-after-days"),
    ] {
        let j = &jobs[job];
        assert!(j["strategy"].is_null(), "{job} is one job over every user");
        let step = j["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["with"]["command"] == command)
            .unwrap_or_else(|| panic!("{job} runs {command}"));
        assert!(step["with"]["user"].is_null(), "{job}: every user");
        assert!(
            step["with"]["old-access-key-id"].is_null(),
            "{job}: the tool finds the old key"
        );
        assert_eq!(
            step["with"][grace],
            format!("${{{{ inputs.{grace} }}}}"),
            "{job}"
        );
    }
    assert_eq!(
        jobs["deactivate"]["if"],
        "${{ !cancelled() && needs.plan.result == 'success' && !inputs.dry-run }}",
        "retirement runs even when no user was due today"
    );
    // The delete job (and its environment's reviewers) only on days a key is due: the
    // deactivate job ends with a status whose users-deletion-due says so.
    let next = jobs["deactivate"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "next")
        .expect("a status step after deactivate");
    assert_eq!(next["with"]["command"], "status");
    assert_eq!(
        next["with"]["delete-after-days"],
        "${{ inputs.delete-after-days }}"
    );
    assert_eq!(next["continue-on-error"], true);
    assert!(
        jobs["deactivate"]["outputs"]["deletion-due"]
            .as_str()
            .unwrap()
            .contains("steps.next.outputs.users-deletion-due"),
    );
    assert!(
        jobs["delete"]["if"]
            .as_str()
            .unwrap()
            .contains("needs.deactivate.outputs.deletion-due == 'true'"),
        "{:?}",
        jobs["delete"]["if"]
    );
    // A user that needs a person does not stop the others, but fails the run at the end,
    // named; any other failure fails its own job at once. Every stage branches on the tool's
    // exit-code output, never on a step's outcome (a failure whatever the code).
    assert!(
        !wf.to_string().contains(".outcome"),
        "no stage reads a step's outcome"
    );
    for (job, step_id) in [
        ("plan", "status"),
        ("rotate", "rotate"),
        ("deactivate", "deactivate"),
        ("delete", "delete"),
    ] {
        let steps = jobs[job]["steps"].as_array().unwrap();
        let step = steps
            .iter()
            .find(|s| s["id"] == step_id)
            .unwrap_or_else(|| panic!("{job} has a step {step_id}"));
        assert_eq!(step["continue-on-error"], true, "{job}");
        assert_eq!(
            jobs[job]["outputs"]["needs-person"],
            format!("${{{{ steps.{step_id}.outputs.needs-person }}}}"),
            "{job}"
        );
        let check = format!(
            "steps.{step_id}.outputs.exit-code != '0' && steps.{step_id}.outputs.exit-code != '3'"
        );
        assert!(
            steps.iter().any(|s| s["if"] == check.as_str()
                && s["run"].as_str().is_some_and(|r| r.contains("exit 1"))),
            "{job} fails on exit codes other than 0 and 3"
        );
        assert!(
            jobs["attention"]["if"]
                .as_str()
                .unwrap()
                .contains(&format!("contains(needs.{job}.outputs.needs-person, '\"')")),
            "attention hears from {job}"
        );
    }
    assert!(
        !jobs["delete"]["if"]
            .as_str()
            .unwrap()
            .contains("needs.deactivate.result"),
        "one user's refused deactivation does not stop the others' deletion"
    );
    assert_eq!(
        jobs["delete"]["environment"],
        "${{ inputs.deletion-environment }}"
    );
    assert_eq!(wf["permissions"], serde_json::json!({}));
    // Only the deactivate job, which keeps the issues (CONTRACT §16), may write them; the
    // other stages open none.
    for (name, job) in jobs.as_object().unwrap() {
        let expected = if name == "deactivate" {
            serde_json::json!({"contents": "read", "issues": "write"})
        } else {
            serde_json::json!({"contents": "read"})
        };
        assert_eq!(job["permissions"], expected, "{name}");
        for step in job["steps"].as_array().into_iter().flatten() {
            let with = &step["with"];
            if with.get("command").is_none() {
                continue;
            }
            let telling = name == "deactivate" && with["command"] == "deactivate";
            if telling {
                assert_eq!(with["issue-repository"], "${{ inputs.issue-repository }}");
                assert_eq!(
                    with["issue-token"],
                    "${{ secrets.issue-token || github.token }}"
                );
            } else {
                assert_eq!(with["issue-repository"], "none", "{name}: {step}");
            }
        }
    }
    // A called workflow's jobs get no more than the calling job grants: the example allows
    // every permission any of them asks for.
    let example = yaml("examples/workflows/rotate-aws-keys.yml");
    let granted = example["jobs"]["rotate"]["permissions"]
        .as_object()
        .unwrap();
    for (name, job) in jobs.as_object().unwrap() {
        for (permission, level) in job["permissions"].as_object().unwrap() {
            assert_eq!(
                granted.get(permission),
                Some(level),
                "{name} asks {permission}"
            );
        }
    }
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

/// One run of rotate-aws-key.yml's jobs, in order, each a new process with the secrets a new
/// job would read: plan (status) → rotate (the due users) → deactivate, then status → delete
/// (only when a key is due for deletion).
fn workflow_run(env: &TestEnv, grace: &[(&str, &str)]) -> Stages {
    // The caller passes acme/web's repository secrets; each job reads them when it starts.
    let job_creds = || env.held_default(&repo("acme/web")).unwrap();
    let with = |extra: &[(&'static str, &str)]| {
        let mut inputs: Vec<(&str, &str)> = grace.to_vec();
        inputs.extend_from_slice(extra);
        inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let run = |inputs: Vec<(String, String)>| {
        let inputs: Vec<(&str, &str)> = inputs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.action(&job_creds(), &inputs)
    };
    let plan = run(with(&[("command", "status")]));
    assert_eq!(plan.code, 0, "{}", plan.all());
    let due: Vec<String> = serde_json::from_str(&plan.output("users-due").unwrap()).unwrap();
    if !due.is_empty() {
        // One job for every due user, as the reusable workflow runs it.
        let rotate = run(with(&[("command", "rotate")]));
        assert_eq!(rotate.code, 0, "{}", rotate.all());
        assert_eq!(rotate.output("rotated").as_deref(), Some("true"));
    }
    let deactivate = run(with(&[("command", "deactivate")]));
    assert_eq!(deactivate.code, 0, "{}", deactivate.all());
    // The deactivate job ends with a status: the delete job runs only when a key is due.
    let next = run(with(&[("command", "status")]));
    assert_eq!(next.code, 0, "{}", next.all());
    let deletion_due: Vec<String> =
        serde_json::from_str(&next.output("users-deletion-due").unwrap()).unwrap();
    if !deletion_due.is_empty() {
        let delete = run(with(&[("command", "delete")]));
        assert_eq!(delete.code, 0, "{}", delete.all());
    }
    Stages { due, deletion_due }
}

/// What one run of the workflow found: the users it rotated, and those it ran `delete` for.
struct Stages {
    due: Vec<String>,
    deletion_due: Vec<String>,
}

fn lifecycle_env() -> (TestEnv, Key, Key) {
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
    (env, old, reporting)
}

/// A manual dispatch with both grace periods at 0 runs every stage back to back.
#[test]
fn a_manual_run_with_no_grace_carries_a_key_through_its_whole_life() {
    let (env, old, reporting) = lifecycle_env();
    let stages = workflow_run(
        &env,
        &[("deactivate-after-hours", "0"), ("delete-after-days", "0")],
    );
    assert_eq!(stages.due, ["ci-deployer"], "reporting's key is young");
    assert_eq!(stages.deletion_due, ["ci-deployer"]);
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_ne!(new.id, old.id);
    assert_eq!(
        env.keys("ci-deployer"),
        vec![(new.id.clone(), "Active".to_owned())]
    );
    assert!(env.sts_accepts(&new));
    assert!(!env.sts_accepts(&old));
    assert_eq!(
        env.tags("ci-deployer"),
        Default::default(),
        "no tag left behind"
    );
    assert_eq!(
        env.keys("reporting"),
        vec![(reporting.id.clone(), "Active".to_owned())]
    );
}

/// On the daily schedule, each run does the stage that is due: rotate on day 0, deactivate
/// once the rotation is a day old, delete a week after that.
#[test]
fn the_daily_schedule_carries_a_key_through_its_whole_life() {
    let (env, old, _) = lifecycle_env();
    // Time passes: the journal moves into the past, and with it the old key's last use (by the
    // jobs of the rotating run, before every consumer held the new key).
    let day = |minutes_ago: i64| {
        env.backdate_journal("ci-deployer", minutes_ago);
        env.record_use(&old.id, minutes_ago + 1, "iam");
    };
    let stages = workflow_run(&env, &[]);
    assert_eq!(stages.due, ["ci-deployer"]);
    assert!(stages.deletion_due.is_empty(), "no delete job on day 0");
    let new = env.held_default(&repo("acme/web")).unwrap();
    let both_active = vec![
        (old.id.clone(), "Active".to_owned()),
        (new.id.clone(), "Active".to_owned()),
    ];
    assert_eq!(
        env.keys("ci-deployer"),
        both_active,
        "day 0: the old key stays"
    );
    // The next day's run: nothing is due to rotate, but the grace has passed.
    day(25 * 60);
    let stages = workflow_run(&env, &[]);
    assert!(stages.due.is_empty());
    assert!(
        stages.deletion_due.is_empty(),
        "deactivated today: no delete job, no reviewers asked"
    );
    assert_eq!(
        env.keys("ci-deployer"),
        vec![
            (old.id.clone(), "Inactive".to_owned()),
            (new.id.clone(), "Active".to_owned()),
        ]
    );
    // Six days on: kept; seven and a half: deleted.
    day(6 * 24 * 60);
    assert!(workflow_run(&env, &[]).deletion_due.is_empty());
    assert_eq!(env.keys("ci-deployer").len(), 2);
    day(36 * 60);
    assert_eq!(workflow_run(&env, &[]).deletion_due, ["ci-deployer"]);
    assert_eq!(
        env.keys("ci-deployer"),
        vec![(new.id.clone(), "Active".to_owned())]
    );
    assert!(!env.sts_accepts(&old));
    assert_eq!(env.tags("ci-deployer"), Default::default());
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

/// Dates and times (`2026-11-26`, `2026-11-26 12:00 UTC`, `…12:00:00 UTC`) become `<date>`.
fn without_dates(text: &str) -> String {
    let b = text.as_bytes();
    let digits =
        |at: usize, n: usize| at + n <= b.len() && b[at..at + n].iter().all(u8::is_ascii_digit);
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if digits(i, 4)
            && b.get(i + 4) == Some(&b'-')
            && digits(i + 5, 2)
            && b.get(i + 7) == Some(&b'-')
            && digits(i + 8, 2)
        {
            i += 10;
            if b.get(i) == Some(&b' ')
                && digits(i + 1, 2)
                && b.get(i + 3) == Some(&b':')
                && digits(i + 4, 2)
            {
                i += 6;
                if b.get(i) == Some(&b':') && digits(i + 1, 2) {
                    i += 3;
                }
                if text[i..].starts_with(" UTC") {
                    i += 4;
                }
            }
            out.push_str("<date>");
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// What a person reads: the text report and the step summary of `status`, and of a rotation.
#[test]
fn text_and_summary_shapes() {
    let env = TestEnv::new();
    let (old, reporting) = two_users(&env);
    env.seed(
        &[repo("acme/web"), environment("acme/web", "production")],
        &old,
        100,
    );
    env.write_manifest(MANIFEST);
    let ids = |text: &str, more: &[(&str, &str)]| {
        let mut t = without_dates(text);
        for (id, name) in [
            (old.id.as_str(), "<ci-deployer key>"),
            (reporting.id.as_str(), "<reporting key>"),
        ]
        .iter()
        .chain(more)
        {
            t = t.replace(id, name);
        }
        t
    };
    let run = env.cli(&old, &["status"]);
    assert_eq!(run.code, 0, "{}", run.all());
    insta::assert_snapshot!("status_text", ids(&run.stdout, &[]));
    insta::assert_snapshot!("status_summary", ids(&run.summary, &[]));
    let run = env.cli(&old, &["rotate", "--user", "ci-deployer", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    insta::assert_snapshot!("dry_run_summary", ids(&run.summary, &[]));
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

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// The `@…` reference of every `uses:` of this project's action or reusable workflow.
fn own_refs(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("uses: "))
        .filter(|u| u.starts_with("aws-key-rotator/aws-key-rotator"))
        .map(|u| {
            u.split_once('@')
                .unwrap()
                .1
                .split(' ')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn the_action_runs_its_image_by_digest_and_the_workflows_use_it_by_commit() {
    let image = yaml("action.yml")["runs"]["image"]
        .as_str()
        .unwrap()
        .to_owned();
    let digest = image
        .strip_prefix("docker://ghcr.io/aws-key-rotator/aws-key-rotator@sha256:")
        .unwrap_or_else(|| panic!("action.yml runs {image}: not pinned by digest"));
    assert!(is_hex(digest, 64), "{image}");
    for path in WORKFLOWS {
        let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
        for r in own_refs(&text) {
            assert!(
                is_hex(&r, 40),
                "{path} uses the action at {r}, not a commit SHA"
            );
        }
    }
}

/// `scripts/pin-release`, the second half of release.yml, run on a copy of the repository.
#[test]
fn the_release_pins_the_image_digest_and_the_action_commit() {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    for f in [
        "action.yml",
        ".github/workflows/rotate-aws-key.yml",
        "examples/workflows/rotate-aws-keys.yml",
        "examples/workflows/verify-aws-credentials.yml",
        "examples/workflows/discover-aws-keys.yml",
        "scripts/pin-release",
    ] {
        let to = dir.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root.join(f), &to).unwrap();
    }
    let pin = |args: &[&str]| {
        std::process::Command::new(dir.path().join("scripts/pin-release"))
            .args(args)
            .output()
            .unwrap()
    };
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    let digest = "0123456789abcdef".repeat(4);
    let sha = "89abcdef01234567".repeat(3)[..40].to_owned();
    // Bad references are refused and change nothing.
    let before = read("action.yml");
    for bad in [
        vec!["image", "ghcr.io/aws-key-rotator/aws-key-rotator:v1.2.3"],
        vec!["image", "ghcr.io/x/y@sha256:1234"],
        vec!["action", "main", "v1.2.3"],
        vec!["action", &sha, "latest"],
        vec!["tag"],
    ] {
        let out = pin(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!out.stderr.is_empty(), "{bad:?} says why");
    }
    assert_eq!(read("action.yml"), before);

    let image = format!("ghcr.io/aws-key-rotator/aws-key-rotator@sha256:{digest}");
    assert!(pin(&["image", &image]).status.success());
    assert!(read("action.yml").contains(&format!("  image: docker://{image}\n")));
    assert!(pin(&["action", &sha, "v1.2.3"]).status.success());
    let mut pinned = 0;
    for f in [
        ".github/workflows/rotate-aws-key.yml",
        "examples/workflows/rotate-aws-keys.yml",
        "examples/workflows/verify-aws-credentials.yml",
        "examples/workflows/discover-aws-keys.yml",
    ] {
        let text = read(f);
        for r in own_refs(&text) {
            assert_eq!(r, sha, "{f}");
            pinned += 1;
        }
        assert!(!text.contains("unreleased"), "{f}");
        assert!(text.contains(&format!("@{sha} # v1.2.3")), "{f}");
    }
    assert_eq!(
        pinned, 10,
        "the six steps of the reusable workflow (repair among them), the rotation example's, the verification example's two (key and oidc mode) and the discover example's"
    );
}

/// When the hour's write budget cannot fit a whole rotation, that user is not started: it is
/// reported `deferred`, the run exits 0, and the next run takes it.
#[test]
fn users_that_do_not_fit_the_hours_budget_are_deferred_whole() {
    let env = TestEnv::new();
    let (old, reporting) = two_users(&env);
    env.seed(
        &[repo("acme/web"), environment("acme/web", "production")],
        &old,
        100,
    );
    env.seed(&[repo("acme/reports")], &reporting, 3);
    env.write_manifest(&MANIFEST.replace(
        "    verify:\n      - repository: acme/web\n        workflow: verify-aws-credentials.yml\n",
        "",
    ));
    // With force both rotate: ci-deployer needs 4 writes, reporting 2; the hour allows 5.
    let run = env.exec(
        &env.admin.clone(),
        &["rotate", "--json", "--force"],
        vec![
            ("GITHUB_TOKEN".into(), fake_github::TOKEN.into()),
            ("AWS_KEY_ROTATOR_GITHUB_WRITES_PER_HOUR".into(), "5".into()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["users"][0]["outcome"], "rotated");
    assert_eq!(v["users"][1]["outcome"], "deferred");
    assert!(
        v["users"][1]["message"]
            .as_str()
            .unwrap()
            .contains("needs 2 GitHub writes")
    );
    assert_eq!(env.keys("reporting").len(), 1, "not started at all");
    assert_eq!(env.github.count("PUT", "/acme/reports/"), 0);
    // (Its repository's secret scanning alerts are read, as every owner's: detection.)
    assert_eq!(
        env.github.count("GET", "/acme/reports/")
            - env
                .github
                .count("GET", "/acme/reports/secret-scanning/alerts"),
        0,
        "a deferred user's stores are not even read"
    );
}

/// Why the step exited, as outputs a workflow can branch on: a user who needs a person (3)
/// is told from a failure (2 here), and named.
#[test]
fn the_outputs_say_why_the_step_exited_and_who_needs_a_person() {
    let env = TestEnv::new();
    let (old, _) = two_users(&env);
    env.deactivate_by_hand("ci-deployer", &old.id);
    env.write_manifest(MANIFEST);
    let admin = env.admin.clone();
    let run = env.action(&admin, &[("command", "status")]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert_eq!(run.output("exit-code").as_deref(), Some("3"));
    assert_eq!(
        run.output("needs-person").as_deref(),
        Some(r#"["ci-deployer"]"#)
    );
    env.remove_manifest();
    let run = env.action(&admin, &[("command", "status")]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(run.output("exit-code").as_deref(), Some("2"));
    assert_eq!(run.output("needs-person"), None, "nobody was read");
    // Bad input, refused before the manifest is read: still said.
    let run = env.action(&admin, &[("command", "status"), ("max-age-days", "ninety")]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(run.output("exit-code").as_deref(), Some("2"));
}
