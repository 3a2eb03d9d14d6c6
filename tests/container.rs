//! The container action, run exactly as the runner runs it: the image's runtime stage (copied
//! verbatim from the Dockerfile) around a locally built static binary, `--workdir
//! /github/workspace`, the workspace and `/github/file_commands` mounted, `INPUT_*` variables
//! with dashes, host networking to the emulators.
//!
//! Needs a Docker engine and a static binary: `scripts/container-test` installs and starts
//! both, then runs these tests with `--ignored`. Without an engine they fail.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use support::*;

const IMAGE: &str = "aws-key-rotator:container-test";
const USER: &str = "ci-deployer";
const MANIFEST: &str = "version: 1\nusers:\n  - name: ci-deployer\n    consumers:\n      - repository: acme/web\n      - repository: acme/web\n        environment: production\n";

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI (scripts/container-test installs it)")
}

fn static_binary() -> PathBuf {
    let p = std::env::var("AWS_KEY_ROTATOR_STATIC_BINARY")
        .expect("AWS_KEY_ROTATOR_STATIC_BINARY: the statically linked binary (scripts/container-test builds it)");
    PathBuf::from(p)
}

/// The Dockerfile's runtime stage, verbatim.
fn runtime_stage() -> String {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let start = dockerfile
        .find("FROM scratch AS runtime")
        .expect("a runtime stage");
    dockerfile[start..].to_owned()
}

/// Builds the image once per test binary.
fn build_image() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
        assert!(
            info.status.success(),
            "no Docker engine: {}",
            String::from_utf8_lossy(&info.stderr)
        );
        let ctx = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ctx.path().join("out")).unwrap();
        std::fs::copy(static_binary(), ctx.path().join("out/aws-key-rotator")).unwrap();
        std::fs::copy(
            "/etc/ssl/certs/ca-certificates.crt",
            ctx.path().join("ca-certificates.crt"),
        )
        .unwrap();
        let dockerfile = format!(
            "# The build stage stands in for the Rust builder: base images cannot be pulled here.\n\
             FROM scratch AS build\n\
             COPY out/aws-key-rotator /out/aws-key-rotator\n\
             COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n\n{}",
            runtime_stage()
        );
        std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
        let out = Command::new("docker")
            .args(["build", "-q", "-t", IMAGE])
            .arg(ctx.path())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Runs the image as the runner does; returns the run and the container's start time.
fn run_action(
    env: &TestEnv,
    creds: &Key,
    endpoint: &str,
    inputs: &[(&str, &str)],
) -> (Run, String) {
    let files = tempfile::tempdir().unwrap();
    let commands = files.path().join("file_commands");
    std::fs::create_dir_all(&commands).unwrap();
    std::fs::write(commands.join("set_output"), "").unwrap();
    std::fs::write(commands.join("step_summary"), "").unwrap();
    let name = format!("akr-test-{}", std::process::id());
    let mut args: Vec<String> = vec![
        "run".into(),
        "--name".into(),
        name.clone(),
        "--network".into(),
        "host".into(),
        "--workdir".into(),
        "/github/workspace".into(),
        "-v".into(),
        format!("{}:/github/workspace", env.workspace.path().display()),
        "-v".into(),
        format!("{}:/github/file_commands", commands.display()),
    ];
    let mut vars: Vec<(String, String)> = vec![
        ("GITHUB_ACTIONS".into(), "true".into()),
        ("GITHUB_WORKSPACE".into(), "/github/workspace".into()),
        (
            "GITHUB_OUTPUT".into(),
            "/github/file_commands/set_output".into(),
        ),
        (
            "GITHUB_STEP_SUMMARY".into(),
            "/github/file_commands/step_summary".into(),
        ),
        ("GITHUB_REPOSITORY".into(), "acme/web".into()),
        ("GITHUB_API_URL".into(), env.github.url.clone()),
        ("AWS_ENDPOINT_URL".into(), endpoint.into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_ACCESS_KEY_ID".into(), creds.id.clone()),
        ("AWS_SECRET_ACCESS_KEY".into(), creds.secret.clone()),
        (
            "AWS_KEY_ROTATOR_GITHUB_WRITE_INTERVAL_MS".into(),
            "0".into(),
        ),
        (
            "INPUT_GITHUB-TOKEN".into(),
            support::fake_github::TOKEN.into(),
        ),
    ];
    for (k, v) in inputs {
        vars.push((format!("INPUT_{}", k.to_ascii_uppercase()), (*v).into()));
    }
    // `-e NAME` passes the value from docker's own environment: no secret on its command line.
    let mut cmd = Command::new("docker");
    for (k, v) in &vars {
        args.push("-e".into());
        args.push(k.clone());
        cmd.env(k, v);
    }
    args.push(IMAGE.into());
    let out = cmd.args(&args).stdin(Stdio::null()).output().unwrap();
    let started = docker(&["inspect", "-f", "{{.State.StartedAt}}", &name]);
    docker(&["rm", "-f", &name]);
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: std::fs::read_to_string(commands.join("set_output")).unwrap(),
        summary: std::fs::read_to_string(commands.join("step_summary")).unwrap(),
    };
    env.record(&run);
    (
        run,
        String::from_utf8_lossy(&started.stdout).trim().to_owned(),
    )
}

fn due_user(env: &TestEnv) -> Key {
    env.rotating_user(USER);
    let old = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.github.add_environment("acme/web", "production");
    env.write_manifest(MANIFEST);
    old
}

#[test]
#[ignore = "needs a Docker engine: scripts/container-test"]
fn the_image_rotates_a_key_end_to_end() {
    build_image();
    let env = TestEnv::new();
    let old = due_user(&env);
    let (run, _) = run_action(&env, &old, &env.moto_url.clone(), &[("dry-run", "false")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env
        .held_default(&repo("acme/web"))
        .expect("the consumer holds a key");
    assert_ne!(new.id, old.id);
    assert_eq!(
        env.held_default(&environment("acme/web", "production"))
            .unwrap()
            .id,
        new.id
    );
    assert!(env.sts_accepts(&new));
    assert!(run.outputs.contains("rotated=true\n"), "{}", run.outputs);
    assert!(
        run.outputs
            .contains(&format!("new-access-key-id={}\n", new.id)),
        "{}",
        run.outputs
    );
    assert!(
        run.outputs
            .contains(&format!("old-access-key-id={}\n", old.id)),
        "{}",
        run.outputs
    );
    assert!(
        run.summary.contains("### ci-deployer — rotated"),
        "{}",
        run.summary
    );
    assert!(run.stdout.contains(&format!("::add-mask::{}", new.secret)));
}

#[test]
#[ignore = "needs a Docker engine: scripts/container-test"]
fn the_image_has_no_shell() {
    build_image();
    let out = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        IMAGE,
        "-c",
        "true",
    ]);
    assert!(!out.status.success(), "a shell ran in the image");
    let out = docker(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Entrypoint}} {{.Config.User}}|{{.Config.WorkingDir}}",
        IMAGE,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[\"/aws-key-rotator\"] |"
    );
}

/// Accepts connections on a free port, notes when the first one arrived, and relays to `to`.
fn first_request_recorder(to: String) -> (String, Arc<Mutex<Option<SystemTime>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let first = Arc::new(Mutex::new(None));
    let seen = first.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            seen.lock().unwrap().get_or_insert_with(SystemTime::now);
            let upstream = TcpStream::connect(to.trim_start_matches("http://")).unwrap();
            relay(client, upstream);
        }
    });
    (url, first)
}

fn relay(a: TcpStream, b: TcpStream) {
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
    };
    pipe(a.try_clone().unwrap(), b.try_clone().unwrap());
    pipe(b, a);
}

/// Runs `cmd` to completion and returns its exit code and peak resident memory (KiB).
// The child is reaped by wait4 below, which std cannot see.
#[allow(clippy::zombie_processes)]
fn run_measuring_rss(cmd: &mut Command) -> (i32, i64) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both out-pointers are valid locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

/// Prints the figures the README quotes (scripts/measure-image runs it).
#[test]
#[ignore = "needs a Docker engine: scripts/measure-image"]
fn measure() {
    build_image();
    let env = TestEnv::new();
    let old = due_user(&env);

    // Peak memory of the static binary doing a full rotation (run directly, so the figure is
    // the process's own and not the container runtime's).
    let (code, rss_kib) = run_measuring_rss(
        Command::new(static_binary())
            .env_clear()
            .env("HOME", env.workspace.path())
            .env("AWS_ENDPOINT_URL", &env.moto_url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", &old.id)
            .env("AWS_SECRET_ACCESS_KEY", &old.secret)
            .env("GITHUB_API_URL", &env.github.url)
            .env("GITHUB_TOKEN", support::fake_github::TOKEN)
            .env("GITHUB_WORKSPACE", env.workspace.path())
            .env("AWS_KEY_ROTATOR_GITHUB_WRITE_INTERVAL_MS", "0")
            .arg("rotate"),
    );
    assert_eq!(code, 0);
    let new = env.held_default(&repo("acme/web")).expect("rotated");
    assert_ne!(new.id, old.id);

    // Container start to the first AWS request, through a relay that notes its arrival.
    let (endpoint, first) = first_request_recorder(env.moto_url.clone());
    let (run, started) = run_action(&env, &new, &endpoint, &[("command", "status")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let started = chrono::DateTime::parse_from_rfc3339(&started).expect("StartedAt");
    let first: chrono::DateTime<chrono::Utc> =
        first.lock().unwrap().expect("a request reached AWS").into();
    let start_to_first_ms = (first - started.with_timezone(&chrono::Utc))
        .num_microseconds()
        .unwrap() as f64
        / 1000.0;

    let image_bytes: u64 =
        String::from_utf8_lossy(&docker(&["image", "inspect", "-f", "{{.Size}}", IMAGE]).stdout)
            .trim()
            .parse()
            .unwrap();
    let binary_bytes = std::fs::metadata(static_binary()).unwrap().len();
    println!(
        "image size:                          {:.1} MB ({image_bytes} bytes)",
        image_bytes as f64 / 1e6
    );
    println!(
        "static binary size:                  {:.1} MB ({binary_bytes} bytes)",
        binary_bytes as f64 / 1e6
    );
    println!("container start to first AWS request: {start_to_first_ms:.1} ms");
    println!(
        "peak memory of a full rotation:      {:.1} MB (max RSS)",
        rss_kib as f64 / 1024.0
    );
}
