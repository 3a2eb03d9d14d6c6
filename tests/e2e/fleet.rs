//! A fleet against GitHub's secondary limits: USERS IAM users, each written into CONSUMERS
//! repositories and verified by one workflow that runs VERIFY seconds, against a fake GitHub
//! that enforces the limits per token on a clock SPEEDUP times fast (the tool is told the same
//! speed-up, so its spacing and windows shrink with GitHub's).
//!
//! `a_small_fleet_…` runs with the suite and checks what must hold at any size: no limit hit,
//! the minimum of requests, everyone rotated. `scripts/bench` runs `fleet_benchmark` (ignored
//! here) with the sizes as arguments and prints what it measured: it is a benchmark, and no
//! test asserts a time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::fake_github::SecondaryLimits;
use crate::support::{AccountRoleSpec, Key, RunMode, TestEnv, WorkflowSpec, repo};

#[derive(Clone, Debug)]
struct Fleet {
    users: usize,
    consumers: usize,
    /// How long a verification run takes, in GitHub's seconds.
    verify_seconds: u64,
    speedup: u32,
    /// AWS accounts the users are spread over: user `u` lives in account `u % accounts`, the
    /// first being the rotator's own; the others are reached through an `account-role`.
    accounts: usize,
    /// The binary to measure (the release build in `scripts/bench`).
    binary: PathBuf,
    /// Extra variables for the tool (e.g. `AWS_KEY_ROTATOR_MAX_CONCURRENT_USERS`).
    vars: Vec<(String, String)>,
    /// CONTRACT §17: every key young (not due) and the first user's named compromised: the run
    /// answers that one exposure, from its start to the exposed key Inactive.
    exposed: bool,
}

#[derive(Debug)]
struct Measured {
    code: i32,
    wall: Duration,
    rotated: usize,
    deferred: usize,
    /// "kind" → count, from the fake's log of this run.
    requests: BTreeMap<&'static str, usize>,
    /// "kind" → when the first and the last such request was answered, from the start.
    phases: BTreeMap<&'static str, (Duration, Duration)>,
    hits: usize,
    /// Closest two writes came, in GitHub's time.
    closest: Option<Duration>,
    peak_rss_kib: i64,
    /// AssumeRole calls the run made (moto's log).
    assumed: usize,
    /// AWS calls the run made (moto's log).
    aws_calls: usize,
    /// With an exposure: its key is Inactive at the end of the run.
    exposed_inactive: Option<bool>,
    stdout: String,
    stderr: String,
}

fn user_name(u: usize) -> String {
    format!("svc-{u:02}")
}

const HOME: &str = "123456789012";
const ROLE: &str = "aws-key-rotator";

/// The account of user `u`: the home account, or 222222222222, 333333333333, …
fn account_of(fleet: &Fleet, u: usize) -> Option<String> {
    let i = u % fleet.accounts.max(1);
    (i > 0).then(|| format!("{}", 111_111_111_111u64 * (i as u64 + 1)))
}

fn repo_name(u: usize, c: usize) -> String {
    format!("acme/app-{u:02}-{c:02}")
}

fn manifest(fleet: &Fleet) -> String {
    let mut m = String::from("version: 1\nusers:\n");
    for u in 0..fleet.users {
        m += &format!("  - name: {}\n", user_name(u));
        if let Some(account) = account_of(fleet, u) {
            m += &format!("    account-role: arn:aws:iam::{account}:role/{ROLE}\n");
        }
        m += "    consumers:\n";
        for c in 0..fleet.consumers {
            m += &format!("      - repository: {}\n", repo_name(u, c));
        }
        m += &format!(
            "    verify:\n      - repository: {}\n        workflow: verify.yml\n",
            repo_name(u, 0)
        );
    }
    m
}

/// What a request was, for counting against the minimum.
fn kind(line: &str) -> &'static str {
    let mut parts = line.split(' ');
    let (method, path, status) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    match (method, status) {
        (_, "403" | "429") => "refused for a limit",
        ("GET", _) if path.ends_with("/secrets/public-key") => "public key",
        ("PUT", _) if path.contains("/secrets/") => "secret write",
        ("GET", _) if path.ends_with("/secrets") => "secrets listing",
        ("GET", _) if path.contains("/secrets/") => "secret read",
        ("POST", _) if path.ends_with("/dispatches") => "dispatch",
        ("GET", "304") if path.contains("/actions/runs/") => "run poll (not modified)",
        ("GET", _) if path.contains("/actions/runs/") => "run poll",
        ("GET", _) if path.contains("/actions/workflows/") => "run listing",
        ("GET", _) if path.ends_with("/issues") => "issues listing",
        ("GET", _) if path.contains("/secret-scanning/alerts") => "secret scanning alerts",
        ("GET", _) if path.matches('/').count() == 3 && path.starts_with("/repos/") => {
            "repository (default branch)"
        }
        _ => "other",
    }
}

/// Sets up the fleet (every key 100 days old, every consumer holding it) and rotates it with
/// one `rotate` run.
fn run_fleet(env: &TestEnv, fleet: &Fleet) -> Measured {
    let mut keys: Vec<Key> = Vec::new();
    let shipped = crate::support::shipped_actions();
    let shipped: Vec<&str> = shipped.iter().map(String::as_str).collect();
    let trusted = format!("arn:aws:iam::{HOME}:root");
    for u in 0..fleet.users {
        let name = user_name(u);
        let age = if fleet.exposed { 10 } else { 100 };
        let key = match account_of(fleet, u) {
            None => {
                env.rotating_user(&name);
                env.aged_key(&name, age)
            }
            Some(account) => {
                let role = AccountRoleSpec {
                    name: ROLE,
                    trusted: &trusted,
                    external_id: None,
                    actions: &shipped,
                };
                env.account_user(&account, role, &name, age)
            }
        };
        let scopes: Vec<_> = (0..fleet.consumers)
            .map(|c| repo(&repo_name(u, c)))
            .collect();
        env.seed(&scopes, &key, age);
        env.github.add_workflow(
            &repo_name(u, 0),
            "verify.yml",
            WorkflowSpec {
                environment: None,
                mode: RunMode::Normal,
            },
        );
        keys.push(key);
    }
    // The fleet's owner is an organization: its secret scanning alerts are one read.
    env.github.add_org("acme");
    env.write_manifest(&manifest(fleet));
    let speedup = fleet.speedup.max(1);
    env.github
        .set_run_time(Duration::from_secs(fleet.verify_seconds) / speedup);
    env.github
        .enforce_limits(SecondaryLimits::github(fleet.speedup));
    let before = env.github.log().len();
    let (aws_before, _) = env.aws_calls();

    // The tool on GitHub's sped-up clock: spacing and windows from the speed-up, waits on AWS
    // (lease settle, polls) shortened alike.
    let mut vars = vec![
        (
            "GITHUB_TOKEN".to_owned(),
            crate::support::fake_github::TOKEN.to_owned(),
        ),
        (
            "AWS_KEY_ROTATOR_GITHUB_CLOCK_SPEEDUP".to_owned(),
            speedup.to_string(),
        ),
        (
            "AWS_KEY_ROTATOR_GITHUB_WRITE_INTERVAL_MS".to_owned(),
            "1000".to_owned(),
        ),
        (
            "AWS_KEY_ROTATOR_LEASE_SETTLE_MS".to_owned(),
            (3000 / speedup).to_string(),
        ),
        (
            "AWS_KEY_ROTATOR_POLL_INTERVAL_MS".to_owned(),
            (5000 / speedup).to_string(),
        ),
        (
            "AWS_KEY_ROTATOR_VERIFY_TIMEOUT_MS".to_owned(),
            ((fleet.verify_seconds * 1000 + 600_000) / u64::from(speedup)).to_string(),
        ),
    ];
    vars.extend(fleet.vars.iter().cloned());
    // The first key's credentials run the step, as a workflow's secrets would; every user's
    // policy lets it rotate only its own keys, so the step runs as the admin here.
    let admin = env.admin.clone();
    let mut args = vec!["rotate", "--json"];
    if fleet.exposed {
        args.extend(["--compromised-key-id", keys[0].id.as_str()]);
    }
    let mut cmd = env.command(&fleet.binary, &admin, &args, vars);
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the tool");
    let (code, peak_rss_kib, stdout, stderr) = wait_measured(child);
    let wall = started.elapsed();
    // Users' lines are held and printed later: the leak scan reads all of them too.
    env.record(&crate::support::Run {
        code,
        stdout: stdout.clone(),
        stderr: stderr.clone(),
        outputs: String::new(),
        summary: String::new(),
    });

    let mut requests = BTreeMap::new();
    let mut phases: BTreeMap<&'static str, (Duration, Duration)> = BTreeMap::new();
    for (at, line) in &env.github.timed_log()[before..] {
        let k = kind(line);
        *requests.entry(k).or_insert(0) += 1;
        let t = at.saturating_duration_since(started);
        let span = phases.entry(k).or_insert((t, t));
        span.0 = span.0.min(t);
        span.1 = span.1.max(t);
    }
    let (aws_calls, _) = env.aws_calls();
    let assumed = aws_calls[aws_before.len()..]
        .iter()
        .filter(|c| *c == "AssumeRole")
        .count();
    let aws_calls = aws_calls.len() - aws_before.len();
    let exposed_inactive = fleet.exposed.then(|| {
        let listed = match account_of(fleet, 0) {
            None => env.keys(&user_name(0)),
            Some(account) => env.keys_in_account(&account, &user_name(0)),
        };
        listed.contains(&(keys[0].id.clone(), "Inactive".to_owned()))
    });
    env.remember_sessions();
    let (hits, closest) = env.github.limit_counters().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
    let outcomes: Vec<String> = report["users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .map(|u| u["outcome"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    for k in &keys {
        env.remember(&k.secret);
    }
    Measured {
        code,
        wall,
        rotated: outcomes.iter().filter(|o| *o == "rotated").count(),
        deferred: outcomes.iter().filter(|o| *o == "deferred").count(),
        requests,
        phases,
        hits,
        closest,
        peak_rss_kib,
        assumed,
        aws_calls,
        exposed_inactive,
        stdout,
        stderr,
    }
}

/// Waits for the tool with wait4, for its peak memory; reads its output meanwhile.
fn wait_measured(mut child: std::process::Child) -> (i32, i64, String, String) {
    use std::io::Read as _;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, which std has not reaped.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    (
        libc::WEXITSTATUS(status),
        usage.ru_maxrss,
        out_reader.join().unwrap(),
        err_reader.join().unwrap(),
    )
}

/// Writes the fleet makes when nothing fails: two per consumer and one dispatch per user.
fn minimum_writes(users: usize, consumers: usize) -> usize {
    users * (2 * consumers + 1)
}

fn print(fleet: &Fleet, m: &Measured) {
    let writes = m.requests.get("secret write").copied().unwrap_or(0)
        + m.requests.get("dispatch").copied().unwrap_or(0);
    let spacing = Duration::from_secs(1) / fleet.speedup.max(1);
    let verify = Duration::from_secs(fleet.verify_seconds) / fleet.speedup.max(1);
    let bound = (spacing * writes as u32).max(verify);
    let ratio = m.wall.as_secs_f64() / bound.as_secs_f64().max(1e-9);
    println!(
        "fleet: {} users x {} consumers in {} AWS account(s), verification {} s, GitHub's clock x{}",
        fleet.users, fleet.consumers, fleet.accounts, fleet.verify_seconds, fleet.speedup
    );
    println!(
        "outcome: exit {}, {} rotated, {} deferred (the hour's budget)",
        m.code, m.rotated, m.deferred
    );
    println!(
        "wall: {:.2} s   bound: {:.2} s (max of {writes} writes x {:.0} ms, verification {:.2} s)   ratio: {ratio:.3}",
        m.wall.as_secs_f64(),
        bound.as_secs_f64(),
        spacing.as_secs_f64() * 1000.0,
        verify.as_secs_f64(),
    );
    println!(
        "in GitHub's time: wall {:.0} s, bound {:.0} s",
        m.wall.as_secs_f64() * f64::from(fleet.speedup),
        bound.as_secs_f64() * f64::from(fleet.speedup)
    );
    println!(
        "secondary-limit hits: {}   closest two writes (GitHub's time): {}",
        m.hits,
        m.closest
            .map(|d| format!("{} ms", d.as_millis()))
            .unwrap_or_else(|| "-".into())
    );
    if let Some(inactive) = m.exposed_inactive {
        println!(
            "exposure: the named key is {} at the end of the run; AWS calls: {}",
            if inactive { "Inactive" } else { "STILL ACTIVE" },
            m.aws_calls
        );
    }
    println!(
        "AssumeRole calls: {} (one per other account, {} expected)",
        m.assumed,
        fleet.accounts - 1
    );
    println!(
        "peak memory (max RSS): {:.1} MB",
        m.peak_rss_kib as f64 / 1024.0
    );
    let rotated = m.rotated;
    let minimum: BTreeMap<&str, usize> = [
        ("public key", rotated * fleet.consumers),
        ("secret write", rotated * fleet.consumers * 2),
        ("dispatch", rotated),
    ]
    .into_iter()
    .collect();
    println!("requests by kind (minimum for the users rotated):");
    for (k, n) in &m.requests {
        let min = minimum
            .get(k)
            .map(|m| format!("minimum {m}"))
            .unwrap_or_default();
        let (a, b) = m.phases[k];
        println!(
            "  {k:<28} {n:>5}  {min:<13} {:>7.2} s to {:>6.2} s",
            a.as_secs_f64(),
            b.as_secs_f64()
        );
    }
}

fn fleet_from_env() -> Fleet {
    let num = |k: &str, default: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let vars = std::env::var("BENCH_CONCURRENT_USERS")
        .ok()
        .map(|n| vec![("AWS_KEY_ROTATOR_MAX_CONCURRENT_USERS".to_owned(), n)])
        .unwrap_or_default();
    Fleet {
        users: num("BENCH_USERS", 8) as usize,
        consumers: num("BENCH_CONSUMERS", 12) as usize,
        verify_seconds: num("BENCH_VERIFY_SECONDS", 30),
        speedup: num("BENCH_SPEEDUP", 10) as u32,
        accounts: num("BENCH_ACCOUNTS", 1).max(1) as usize,
        binary: std::env::var("BENCH_BINARY")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_aws-key-rotator"))),
        vars,
        exposed: std::env::var("BENCH_EXPOSED").is_ok_and(|v| v == "1"),
    }
}

/// What holds at any size: everyone rotated, no limit hit, writes never closer than GitHub's
/// second, and requests at the minimum (plus the one listing per store that settles a lost
/// write, conditional polls, and the one listing of open issues that finds none to close).
#[test]
fn a_small_fleet_keeps_to_githubs_limits_with_the_minimum_of_requests() {
    small_fleet(1);
}

/// The same over two AWS accounts: one AssumeRole for the other account's role in the run,
/// and nothing else changes.
#[test]
fn a_small_fleet_over_two_accounts_assumes_the_other_accounts_role_once() {
    small_fleet(2);
}

/// CONTRACT §17 in a fleet: one user's key named compromised, every key young. One run answers
/// it: only that user rotates, at the minimum of requests plus the organization's one page of
/// alerts, and its exposed key is Inactive when the run ends; nobody else is touched.
#[test]
fn an_exposed_key_in_a_fleet_is_inactive_within_one_run() {
    let env = TestEnv::new();
    let fleet = Fleet {
        exposed: true,
        ..three_by_three(1)
    };
    let m = run_fleet(&env, &fleet);
    assert_eq!(m.code, 0, "{}\n{}", m.stdout, m.stderr);
    assert_eq!(m.rotated, 1, "{}", m.stdout);
    assert_eq!(m.exposed_inactive, Some(true), "{}", m.stdout);
    let n = |k: &str| m.requests.get(k).copied().unwrap_or(0);
    assert_eq!(n("secret write") + n("dispatch"), minimum_writes(1, 3));
    assert_eq!(n("secret scanning alerts"), 1, "{:?}", m.requests);
    assert_eq!(n("other"), 0, "{:?}", m.requests);
    for u in 1..fleet.users {
        assert_eq!(env.keys(&user_name(u)).len(), 1, "user {u} untouched");
    }
    print(&fleet, &m);
}

/// The suite's fleet: 3 users × 3 consumers over `accounts`, a 10 s verification, clock ×10.
fn three_by_three(accounts: usize) -> Fleet {
    Fleet {
        users: 3,
        consumers: 3,
        verify_seconds: 10,
        speedup: 10,
        accounts,
        binary: PathBuf::from(env!("CARGO_BIN_EXE_aws-key-rotator")),
        vars: vec![],
        exposed: false,
    }
}

fn small_fleet(accounts: usize) {
    let env = TestEnv::new();
    let fleet = three_by_three(accounts);
    let m = run_fleet(&env, &fleet);
    assert_eq!(m.code, 0, "{}\n{}", m.stdout, m.stderr);
    assert_eq!((m.rotated, m.deferred), (3, 0), "{}", m.stdout);
    assert_eq!(m.hits, 0, "no secondary-limit answer");
    let closest = m.closest.expect("writes were made");
    assert!(
        closest >= Duration::from_millis(900),
        "writes {closest:?} apart in GitHub's time"
    );
    let n = |k: &str| m.requests.get(k).copied().unwrap_or(0);
    assert_eq!(n("public key"), 9);
    assert_eq!(n("secret write"), 18);
    assert_eq!(n("dispatch"), 3);
    assert_eq!(n("secrets listing"), 9, "one listing per store");
    assert_eq!(n("secret read"), 0);
    // The verification workflow runs on its repository's default branch, read once per entry.
    assert_eq!(n("repository (default branch)"), 3);
    assert_eq!(
        n("issues listing"),
        1,
        "every user healthy: one look for issues to close"
    );
    // Detecting an exposure (CONTRACT §17): the organization's open alerts, one page.
    assert_eq!(n("secret scanning alerts"), 1, "{:?}", m.requests);
    assert_eq!(n("other"), 0, "{:?}", m.requests);
    assert_eq!(
        m.assumed,
        accounts - 1,
        "one session per account role and run"
    );
    assert_eq!(
        n("secret write") + n("dispatch"),
        minimum_writes(fleet.users, fleet.consumers)
    );
    // Every consumer holds its user's new key, and the lines of users did not interleave.
    for u in 0..fleet.users {
        let keys = match account_of(&fleet, u) {
            None => env.keys(&user_name(u)),
            Some(account) => env.keys_in_account(&account, &user_name(u)),
        };
        assert_eq!(keys.len(), 2);
        for c in 0..fleet.consumers {
            let held = env.held_default(&repo(&repo_name(u, c))).unwrap();
            assert_eq!(held.id, keys[1].0, "{}", repo_name(u, c));
        }
    }
    // Users ran side by side, yet each user's lines came out as one block of its own.
    let blocks: Vec<&str> = m.stderr.split("== ").skip(1).collect();
    assert_eq!(blocks.len(), fleet.users, "{}", m.stderr);
    for block in blocks {
        let own = block.split(' ').next().unwrap_or_default();
        assert!(block.contains(&format!("for user {own}")), "{block}");
        for other in (0..fleet.users).map(user_name).filter(|o| o != own) {
            let other_repos = format!("app-{}-", &other[4..]);
            assert!(
                !block.contains(&other) && !block.contains(&other_repos),
                "{own}'s block mentions {other}:\n{block}"
            );
        }
    }
}

/// `scripts/bench USERS CONSUMERS VERIFY_SECONDS`: prints the measurements.
#[test]
#[ignore = "a benchmark: scripts/bench runs it"]
fn fleet_benchmark() {
    let env = TestEnv::new();
    let fleet = fleet_from_env();
    let m = run_fleet(&env, &fleet);
    print(&fleet, &m);
    assert_eq!(m.code, 0, "{}\n{}", m.stdout, m.stderr);
}
