//! The container action, run exactly as the runner runs it: the image `scripts/image` builds
//! (the recipe `release.yml` ships), `--workdir /github/workspace`, the workspace and
//! `/github/file_commands` mounted, `INPUT_*` variables with dashes. The emulators are reached by
//! host name, resolved inside the image through the `/etc/resolv.conf` it is given, which names a
//! DNS server this test starts.
//!
//! Needs a Docker engine, the image and root (the DNS server listens on port 53):
//! `scripts/container-test` provides all three and runs these tests with `--ignored`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use crate::support::*;

const USER: &str = "ci-deployer";
const MANIFEST: &str = "version: 1\nusers:\n  - name: ci-deployer\n    consumers:\n      - repository: acme/web\n      - repository: acme/web\n        environment: production\n";
/// Where the test's DNS server listens (any loopback address will do; port 53 is the only one
/// a resolv.conf can name).
const DNS_ADDRESS: &str = "127.0.0.153";

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI (scripts/container-test installs it)")
}

/// The image under test, as `scripts/image` tagged it.
fn image() -> String {
    let image = std::env::var("AWS_KEY_ROTATOR_IMAGE").expect(
        "AWS_KEY_ROTATOR_IMAGE: the image scripts/image built (run scripts/container-test)",
    );
    let info = docker(&["image", "inspect", "-f", "{{.Id}}", &image]);
    assert!(
        info.status.success(),
        "no image {image} (or no Docker engine): {}",
        String::from_utf8_lossy(&info.stderr)
    );
    image
}

fn static_binary() -> PathBuf {
    let p = std::env::var("AWS_KEY_ROTATOR_STATIC_BINARY")
        .expect("AWS_KEY_ROTATOR_STATIC_BINARY: the binary in the image (scripts/container-test)");
    PathBuf::from(p)
}

/// The DNS server (github.test and moto.test are this machine; nothing else exists) and the
/// resolv.conf that names it, once per test binary.
fn resolv_conf() -> PathBuf {
    struct Dns {
        _server: Child,
        dir: tempfile::TempDir,
    }
    static DNS: OnceLock<Mutex<Dns>> = OnceLock::new();
    let dns = DNS.get_or_init(|| {
        let mut server = Command::new(python())
            .arg(repo_root().join("tests/e2e/support/dns_server.py"))
            .args([
                DNS_ADDRESS,
                "53",
                "github.test=127.0.0.1",
                "moto.test=127.0.0.1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the DNS server");
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the DNS server did not start (port 53 needs root: run scripts/container-test as root)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("resolv.conf"),
            format!("nameserver {DNS_ADDRESS}\noptions timeout:1 attempts:2\n"),
        )
        .unwrap();
        Mutex::new(Dns {
            _server: server,
            dir,
        })
    });
    dns.lock().unwrap().dir.path().join("resolv.conf")
}

/// `url` with its host replaced by `host` (the fakes listen on 127.0.0.1).
fn by_name(url: &str, host: &str) -> String {
    url.replace("127.0.0.1", host)
}

/// Runs the image as the runner does; returns the run and the container's start time.
fn run_action(
    env: &TestEnv,
    creds: &Key,
    aws_endpoint: &str,
    github_url: &str,
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
        "-v".into(),
        format!("{}:/etc/resolv.conf:ro", resolv_conf().display()),
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
        ("GITHUB_API_URL".into(), github_url.into()),
        // github.test is not a loopback name: the emulator speaks plain http.
        ("AWS_KEY_ROTATOR_ALLOW_HTTP".into(), "1".into()),
        ("AWS_ENDPOINT_URL".into(), aws_endpoint.into()),
        ("AWS_KEY_ROTATOR_LEASE_SETTLE_MS".into(), "100".into()),
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
            crate::support::fake_github::TOKEN.into(),
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
    args.push(image());
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
#[ignore = "needs a Docker engine and root: scripts/container-test"]
fn the_image_rotates_a_key_end_to_end_reaching_the_services_by_name() {
    let env = TestEnv::new();
    let old = due_user(&env);
    let (run, _) = run_action(
        &env,
        &old,
        &by_name(&env.moto_url, "moto.test"),
        &by_name(&env.github.url, "github.test"),
        &[("dry-run", "false")],
    );
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
#[ignore = "needs a Docker engine and root: scripts/container-test"]
fn an_unknown_host_name_fails_clearly_naming_it() {
    let env = TestEnv::new();
    let old = due_user(&env);
    let github = by_name(&env.github.url, "github.test");
    let moto = by_name(&env.moto_url, "moto.test");
    for (aws, gh, host) in [
        (
            "http://iam.nowhere.test:4566",
            github.as_str(),
            "iam.nowhere.test",
        ),
        (
            moto.as_str(),
            "http://api.nowhere.test:8080",
            "api.nowhere.test",
        ),
    ] {
        let before = env.world(USER);
        let (run, _) = run_action(&env, &old, aws, gh, &[("command", "rotate")]);
        assert!(matches!(run.code, 1 | 2), "{}", run.all());
        assert!(run.stderr.contains(host), "names {host}: {}", run.stderr);
        assert!(!run.all().contains("panicked"), "{}", run.all());
        assert!(run.stdout.contains("::error::"), "{}", run.stdout);
        assert_eq!(env.world(USER), before, "nothing changed");
    }
}

/// Every file in the image's layers, from `docker save`.
fn image_files(image: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("image.tar");
    let out = docker(&["save", "-o", saved.to_str().unwrap(), image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tar = |args: &[&str]| {
        let out = Command::new("tar").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    tar(&[
        "-xf",
        saved.to_str().unwrap(),
        "-C",
        dir.path().to_str().unwrap(),
    ]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    let mut files = Vec::new();
    for layer in manifest[0]["Layers"].as_array().unwrap() {
        let layer = dir.path().join(layer.as_str().unwrap());
        for f in tar(&["-tf", layer.to_str().unwrap()]).lines() {
            if !f.ends_with('/') {
                files.push(f.to_owned());
            }
        }
    }
    files.sort();
    files
}

#[test]
#[ignore = "needs a Docker engine and root: scripts/container-test"]
fn the_image_holds_the_binary_and_the_ca_roots_and_nothing_else() {
    let image = image();
    assert_eq!(
        image_files(&image),
        ["aws-key-rotator", "etc/ssl/certs/ca-certificates.crt"],
        "no shell, no libc files, no NSS modules"
    );
    let out = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &image,
        "-c",
        "true",
    ]);
    assert!(!out.status.success(), "a shell ran in the image");
    let out = docker(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Entrypoint}} {{.Config.User}}|{{.Config.WorkingDir}}",
        &image,
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

/// Prints the figures the README quotes (`scripts/container-test --measure` runs it).
#[test]
#[ignore = "needs a Docker engine and root: scripts/container-test --measure"]
fn measure() {
    let image = image();
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
            .env("GITHUB_TOKEN", crate::support::fake_github::TOKEN)
            .env("GITHUB_WORKSPACE", env.workspace.path())
            .env("AWS_KEY_ROTATOR_GITHUB_WRITE_INTERVAL_MS", "0")
            .arg("rotate"),
    );
    assert_eq!(code, 0);
    let new = env.held_default(&repo("acme/web")).expect("rotated");
    assert_ne!(new.id, old.id);

    // Container start to the first AWS request, through a relay that notes its arrival.
    let (endpoint, first) = first_request_recorder(env.moto_url.clone());
    let (run, started) = run_action(
        &env,
        &new,
        &by_name(&endpoint, "moto.test"),
        &by_name(&env.github.url, "github.test"),
        &[("command", "status")],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let started = chrono::DateTime::parse_from_rfc3339(&started).expect("StartedAt");
    let first: chrono::DateTime<chrono::Utc> =
        first.lock().unwrap().expect("a request reached AWS").into();
    let start_to_first_ms = (first - started.with_timezone(&chrono::Utc))
        .num_microseconds()
        .unwrap() as f64
        / 1000.0;

    let image_bytes: u64 =
        String::from_utf8_lossy(&docker(&["image", "inspect", "-f", "{{.Size}}", &image]).stdout)
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
    println!(
        "container start to first AWS request: {start_to_first_ms:.1} ms (its host name resolved through DNS)"
    );
    println!(
        "peak memory of a full rotation:      {:.1} MB (max RSS)",
        rss_kib as f64 / 1024.0
    );
}
