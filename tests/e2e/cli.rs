//! The CLI as a person meets it: usage without a command, a help per command, errors that speak
//! of flags (and of inputs in Actions), one JSON document for every outcome, status that claims
//! only what it read, network errors that name the endpoint. Wording is pinned by snapshots.

use crate::support::*;

const USER: &str = "ci-deployer";
const MANIFEST: &str =
    "version: 1\nusers:\n  - name: ci-deployer\n    consumers:\n      - repository: acme/web\n";

fn no_escape_codes(run: &Run) {
    assert!(
        !run.all().contains('\u{1b}'),
        "no colour codes on a pipe: {}",
        run.all()
    );
}

#[test]
fn without_a_command_the_cli_prints_its_usage_and_exits_2() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    let key = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.write_manifest(MANIFEST);
    let before = env.world(USER);
    let run = env.cli(&key, &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("Usage: aws-key-rotator <COMMAND>"),
        "{}",
        run.stderr
    );
    assert_eq!(env.world(USER), before, "nothing changed");
    no_escape_codes(&run);
}

#[test]
fn every_command_has_its_own_help() {
    let env = TestEnv::new();
    let none = Key {
        id: String::new(),
        secret: String::new(),
    };
    let top = env.cli(&none, &["--help"]);
    assert_eq!(top.code, 0);
    insta::assert_snapshot!("help", top.stdout);
    for command in [
        "status",
        "rotate",
        "deactivate",
        "delete",
        "discover",
        "verify",
    ] {
        let run = env.cli(&none, &["help", command]);
        assert_eq!(run.code, 0, "{command}: {}", run.all());
        assert_eq!(
            env.cli(&none, &[command, "--help"]).stdout,
            run.stdout,
            "{command}"
        );
        assert!(run.stdout.contains("Example:"), "{command}");
        insta::assert_snapshot!(format!("help_{command}"), run.stdout);
    }
    // A flag of another command is refused, not ignored.
    let run = env.cli(&none, &["verify", "--force"]);
    assert_eq!(run.code, 2, "{}", run.all());
}

/// Each face names inputs its own way.
#[test]
fn errors_speak_of_flags_on_the_cli_and_of_inputs_in_actions() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    let key = env.aged_key(USER, 100);
    let cli = env.cli(&key, &["deactivate", "--deactivate-after-hours", "soon"]);
    assert_eq!(cli.code, 2);
    let action = env.action(
        &key,
        &[("command", "status"), ("deactivate-after-hours", "soon")],
    );
    assert_eq!(action.code, 2);
    // No manifest, no user: what to do, in each face's words.
    let cli_missing = env.cli(&key, &["status"]);
    let action_missing = env.action(&key, &[("command", "status")]);
    insta::assert_snapshot!(
        "face_errors",
        format!(
            "cli: {}\naction: {}\ncli: {}\naction: {}",
            cli.stderr.trim(),
            action.stderr.trim(),
            cli_missing.stderr.trim(),
            action_missing.stderr.trim()
        )
    );
    // --iam-user without GITHUB_REPOSITORY says to export it.
    let run = env.exec(
        &key,
        &["status", "--iam-user", USER],
        vec![
            ("GITHUB_TOKEN".into(), fake_github::TOKEN.into()),
            ("GITHUB_REPOSITORY".into(), String::new()),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("export GITHUB_REPOSITORY=owner/name"),
        "{}",
        run.stderr
    );
}

#[test]
fn manifest_errors_name_the_field_what_it_expects_and_an_example() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    let key = env.aged_key(USER, 100);
    let mut out = Vec::new();
    for (name, yaml) in [
        (
            "a word for a number",
            "version: 1\nusers:\n  - name: ci-deployer\n    max-age-days: ninety\n    consumers:\n      - repository: acme/web\n",
        ),
        ("an empty file", ""),
        (
            "a bad indentation",
            "version: 1\nusers:\n  - name: ci-deployer\n    consumers:\n    - repository: a/b\n  repository: x\n",
        ),
        (
            "a misplaced key",
            "version: 1\nusers:\n  - name: ci-deployer\n   consumers:\n      - repository: acme/web\n",
        ),
    ] {
        env.write_manifest(yaml);
        let run = env.cli(&key, &["status"]);
        assert_eq!(run.code, 2, "{name}: {}", run.all());
        out.push(format!("{name}: {}", run.stderr.trim()));
    }
    insta::assert_snapshot!("manifest_errors", out.join("\n"));
}

#[test]
fn json_is_one_document_for_every_outcome_errors_included() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    let key = env.aged_key(USER, 100);
    env.write_manifest("version: 1\nusers: []\n");
    let run = env.cli(&key, &["status", "--json"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(v["command"], "status");
    assert_eq!(v["users"], serde_json::json!([]));
    assert_eq!(v["error"]["exit_code"], 2);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`users` is empty")
    );
    assert!(
        run.stderr.contains("`users` is empty"),
        "human text on stderr"
    );
    // A bad flag value too.
    let run = env.cli(
        &key,
        &["status", "--json", "--deactivate-after-hours", "soon"],
    );
    assert_eq!(run.code, 2);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("flag --deactivate-after-hours")
    );
    no_escape_codes(&run);
}

#[test]
fn status_claims_only_what_it_read() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    let key = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.seed(&[repo("acme/web")], &key, 100);
    env.write_manifest(MANIFEST);
    // No token: the keys are reported, the consumers' holdings are not guessed, and the run
    // fails as any other command would without credentials (exit 2), not as a clean status.
    let run = env.exec(&key, &["status"], vec![]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("warning: the secret stores could not be read"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains(&format!("holds {}", key.id)),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("key {} Active", key.id)),
        "{}",
        run.stdout
    );
    // With the token, it reads and says.
    let run = env.cli(&key, &["status"]);
    assert!(
        run.stdout.contains(&format!("holds {}", key.id)),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unreachable_endpoint_is_named_with_where_it_came_from() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    let key = env.aged_key(USER, 100);
    // A port nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let run = env.exec(
        &key,
        &["verify"],
        vec![("AWS_ENDPOINT_URL".into(), dead.clone())],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains(&dead),
        "names the endpoint: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("AWS_ENDPOINT_URL"),
        "and where it came from: {}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("sts:GetCallerIdentity").count(),
        1,
        "said once: {}",
        run.stderr
    );
}

#[test]
fn verify_as_json_is_one_document_too() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    let key = env.aged_key(USER, 100);
    let run = env.cli(
        &key,
        &["verify", "--json", "--expected-access-key-id", &key.id],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(v["command"], "verify");
    assert_eq!(v["verify"]["ok"], true);
    assert_eq!(v["verify"]["access_key_id"], key.id.as_str());
    let run = env.cli(
        &key,
        &["verify", "--json", "--expected-access-key-id", "AKIAOTHER"],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(v["verify"]["ok"], false);
    assert!(
        v["verify"]["message"]
            .as_str()
            .unwrap()
            .contains("not the expected AKIAOTHER")
    );
}

/// Inside Actions (`GITHUB_ACTIONS=true`), `--json` keeps stdout one JSON document, as a `run:`
/// step piping it into `jq` needs: the workflow commands (a mask, a warning, an error, a group)
/// go to stderr, where the runner reads them too.
#[test]
fn in_actions_json_stdout_is_one_document_and_workflow_commands_go_to_stderr() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    let key = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.write_manifest(
        "version: 1\nusers:\n  - name: ci-deployer\n    consumers: [{repository: acme/web}]\n",
    );
    // A warning on the way: the token may not read the secret scanning alerts.
    env.github.deny_alerts();
    let in_actions = |args: &[&str]| {
        env.exec(
            &key,
            args,
            vec![
                ("GITHUB_ACTIONS".into(), "true".into()),
                ("GITHUB_TOKEN".into(), fake_github::TOKEN.into()),
            ],
        )
    };
    for args in [
        &["status", "--json"][..],
        &["rotate", "--json", "--dry-run"][..],
    ] {
        let run = in_actions(args);
        let v: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {}", run.stdout));
        assert_eq!(v["users"][0]["name"], USER, "{args:?}");
        assert!(!run.stdout.contains("::"), "{args:?}: {}", run.stdout);
        let commands = runner_commands(&run.stderr);
        assert!(
            commands.iter().any(|c| c.starts_with("add-mask")),
            "{args:?}: the mask reaches the runner: {commands:?}"
        );
        assert!(
            commands.iter().any(|c| c.starts_with("warning")),
            "{args:?}: {commands:?}"
        );
    }
    // An error too: the document carries it, the annotation goes to stderr.
    env.write_manifest("version: 1\nusers: []\n");
    let run = in_actions(&["status", "--json"]);
    assert_eq!(run.code, 2);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(v["error"]["exit_code"], 2);
    assert!(
        runner_commands(&run.stderr)
            .iter()
            .any(|c| c.starts_with("error"))
    );
}
