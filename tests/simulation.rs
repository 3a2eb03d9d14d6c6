//! Deterministic simulation of the rotation core (CONTRACT §4, §5), in the manner of
//! FoundationDB's simulation and TigerBeetle's VOPR.
//!
//! The core runs unchanged through in-memory ports: IAM with the two-key limit, Inactive keys
//! refused and user tags; GitHub secret scopes that keep `updated_at`; verification workflow
//! runs that check the secrets they would read; and one clock that moves only when every run
//! sleeps. A seeded scheduler interleaves the runs at every port call. Faults are injected at
//! any call: an error (nothing happened), a timeout (nothing happened, the caller cannot know),
//! or a lost answer (it happened, the caller cannot know); once, or for every later call of the
//! same kind ("persistent").
//!
//! Explored: every fault at every call of each command from each starting state, every pair of
//! faults in a rotation, and two runs interleaved with random schedules, faults and clock skew
//! between GitHub, AWS and each runner. After every history the invariants are checked; then
//! the faults heal and a person's fault-free runs must bring the user to one working key held
//! by every consumer, with no tag left behind.
//!
//! A failure prints its history as `SIM_REPLAY=...`; run
//! `SIM_REPLAY='...' cargo test --test simulation -- --nocapture` to replay it with a trace.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration as StdDuration;

use aws_key_rotator::manifest::{Consumer, Scope, SecretNames, UserSpec, VerifyWorkflow};
use aws_key_rotator::ports::{
    Caller, Clock, Dispatched, Events, GhError, GhErrorKind, Iam, IamError, IamErrorKind, NewKey,
    RunInfo, SecretStore, StepKey, Workflows,
};
use aws_key_rotator::rotation::journal::{JOURNAL_TAG, Journal, LEASE_TAG, Phase};
use aws_key_rotator::rotation::ledger::Held;
use aws_key_rotator::rotation::plan::{LastUse, Options};
use aws_key_rotator::rotation::run::{self, Command, Ctx, LeaseSettings, Outcome, UserReport};
use aws_key_rotator::rotation::state::{KeyInfo, KeyStatus, State};
use aws_key_rotator::rotation::verify::VerifySettings;
use aws_key_rotator::seal::ScopeKey;
use chrono::{DateTime, Duration, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};

const USER: &str = "ci-deployer";

// ---- a small seeded random source (splitmix64) ------------------------------------------------

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }
}

// ---- faults -----------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Refused: nothing happened, and the caller knows it.
    Error,
    /// No answer: nothing happened, and the caller cannot know.
    Timeout,
    /// The call took effect, but its answer was lost.
    Lost,
    /// The process is gone (SIGKILL, a lost runner) before the call reached anyone: its lease
    /// is left to expire.
    CrashBefore,
    /// The process is gone right after the call took effect.
    CrashAfter,
}

const CRASHES: [Kind; 2] = [Kind::CrashBefore, Kind::CrashAfter];

const KINDS: [Kind; 3] = [Kind::Error, Kind::Timeout, Kind::Lost];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fault {
    run: usize,
    call: usize,
    kind: Kind,
    persistent: bool,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Error => "error",
            Kind::Timeout => "timeout",
            Kind::Lost => "lost",
            Kind::CrashBefore => "crash-before",
            Kind::CrashAfter => "crash-after",
        };
        let how = if self.persistent { "always" } else { "once" };
        write!(f, "{}:{}:{kind}:{how}", self.run, self.call)
    }
}

impl Fault {
    fn parse(s: &str) -> Self {
        let p: Vec<&str> = s.split(':').collect();
        Fault {
            run: p[0].parse().unwrap(),
            call: p[1].parse().unwrap(),
            kind: match p[2] {
                "error" => Kind::Error,
                "timeout" => Kind::Timeout,
                "crash-before" => Kind::CrashBefore,
                "crash-after" => Kind::CrashAfter,
                _ => Kind::Lost,
            },
            persistent: p[3] == "always",
        }
    }
}

// ---- the world --------------------------------------------------------------------------------

struct SimKey {
    id: String,
    active: bool,
    created: DateTime<Utc>,
}

struct WfRun {
    id: u64,
    repo: String,
    title: String,
    expected: String,
    created: DateTime<Utc>,
    done_at: DateTime<Utc>,
}

struct World {
    now: DateTime<Utc>,
    keys: Vec<SimKey>,
    deleted: BTreeSet<String>,
    next_key: u32,
    tags: BTreeMap<String, String>,
    /// (scope, name) → (plaintext, updated_at by GitHub's clock)
    secrets: BTreeMap<(Scope, String), (String, DateTime<Utc>)>,
    wf_runs: Vec<WfRun>,
    /// The verification workflow is broken: every run fails, whatever the secrets.
    verify_breaks: bool,
    gh_skew: Duration,
    aws_skew: Duration,
    runner_skew: Vec<Duration>,
    calls: Vec<usize>,
    faults: Vec<Fault>,
    broken: Vec<(usize, &'static str, Kind)>,
    fired: usize,
    sleeping: Vec<Option<DateTime<Utc>>>,
    /// Runs whose process is gone: never polled again.
    crashed: Vec<bool>,
    trace: Option<Vec<String>>,
    scope_key: ScopeKey,
}

fn secret_of(id: &str) -> String {
    format!("{id}/sim-secret")
}

fn key_of_secret(value: &str) -> Option<&str> {
    value.strip_suffix("/sim-secret")
}

fn secs(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp(), 0).unwrap()
}

impl World {
    /// A world for up to `runs` concurrent runs of a history (and the healing runs after it).
    fn new(runs: usize) -> Self {
        assert!(runs < 10, "runs 10 and up are the healing runs");
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        World {
            now: Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap(),
            keys: Vec::new(),
            deleted: BTreeSet::new(),
            next_key: 0,
            tags: BTreeMap::new(),
            secrets: BTreeMap::new(),
            wf_runs: Vec::new(),
            verify_breaks: false,
            gh_skew: Duration::zero(),
            aws_skew: Duration::zero(),
            runner_skew: vec![Duration::zero(); 64],
            calls: vec![0; 64],
            faults: Vec::new(),
            broken: Vec::new(),
            fired: 0,
            sleeping: vec![None; 64],
            crashed: vec![false; 64],
            trace: None,
            scope_key: ScopeKey::parse("sim-key-id", &key).unwrap(),
        }
    }

    fn gh_now(&self) -> DateTime<Utc> {
        secs(self.now + self.gh_skew)
    }

    fn add_key(&mut self, active: bool, created: DateTime<Utc>) -> String {
        self.next_key += 1;
        let id = format!("AKIASIM{:05}", self.next_key);
        self.keys.push(SimKey {
            id: id.clone(),
            active,
            created: secs(created),
        });
        id
    }

    fn hold(&mut self, c: &Consumer, key: &str, at: DateTime<Utc>) {
        self.secrets.insert(
            (c.scope.clone(), c.secrets.access_key_id.clone()),
            (key.to_owned(), at),
        );
        self.secrets.insert(
            (c.scope.clone(), c.secrets.secret_access_key.clone()),
            (secret_of(key), at),
        );
    }

    fn working(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id && k.active)
    }

    /// What a consumer really holds: (id secret's key, secret secret's key).
    fn holds(&self, c: &Consumer) -> (Option<String>, Option<String>) {
        let id = self
            .secrets
            .get(&(c.scope.clone(), c.secrets.access_key_id.clone()))
            .map(|(v, _)| v.clone());
        let secret = self
            .secrets
            .get(&(c.scope.clone(), c.secrets.secret_access_key.clone()))
            .map(|(v, _)| key_of_secret(v).unwrap_or("?").to_owned());
        (id, secret)
    }

    fn held(&self, c: &Consumer) -> Held {
        match self.holds(c) {
            (None, None) => Held::Nothing,
            (Some(a), Some(b)) if a == b => Held::Key(a),
            (id, secret) => Held::Split { id, secret },
        }
    }
}

// ---- the ports --------------------------------------------------------------------------------

/// Gives the scheduler a turn: every port call is a point where another run may go first.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

struct Sleep {
    w: Rc<RefCell<World>>,
    run: usize,
    until: DateTime<Utc>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let mut w = self.w.borrow_mut();
        if w.now >= self.until {
            w.sleeping[self.run] = None;
            Poll::Ready(())
        } else {
            w.sleeping[self.run] = Some(self.until);
            Poll::Pending
        }
    }
}

/// One run's view of the world: every port, and its own clock.
#[derive(Clone)]
struct Sim {
    w: Rc<RefCell<World>>,
    run: usize,
}

fn iam_error(op: &str) -> IamError {
    IamError {
        kind: IamErrorKind::Other,
        message: format!("injected fault in {op}"),
    }
}

fn gh_error(op: &str, kind: Kind) -> GhError {
    GhError {
        kind: GhErrorKind::Unavailable,
        message: format!("injected fault in {op}"),
        uncertain: kind != Kind::Error,
        status: None,
    }
}

impl Sim {
    /// The scheduler's turn, then the fault decision for this call.
    async fn gate(&self, op: &'static str) -> Option<Kind> {
        YieldOnce(false).await;
        let mut w = self.w.borrow_mut();
        let n = w.calls[self.run];
        w.calls[self.run] += 1;
        let mut hit = w
            .broken
            .iter()
            .find(|(r, o, _)| *r == self.run && *o == op)
            .map(|b| b.2);
        if hit.is_none()
            && let Some(f) = w
                .faults
                .iter()
                .find(|f| f.run == self.run && f.call == n)
                .copied()
        {
            hit = Some(f.kind);
            w.fired += 1;
            if f.persistent {
                w.broken.push((self.run, op, f.kind));
            }
        }
        let now = w.now;
        if let Some(t) = &mut w.trace {
            t.push(format!(
                "{} run {} call {n}: {op}{}",
                now.format("%H:%M:%S"),
                self.run,
                hit.map(|k| format!("  <-- {k:?}")).unwrap_or_default()
            ));
        }
        hit
    }

    /// A call that takes effect unless refused or timed out; a lost answer still takes effect.
    async fn call<T>(
        &self,
        op: &'static str,
        apply: impl FnOnce(&mut World) -> T,
    ) -> Result<T, Kind> {
        match self.gate(op).await {
            Some(k @ (Kind::Error | Kind::Timeout)) => Err(k),
            Some(Kind::CrashBefore) => {
                self.w.borrow_mut().crashed[self.run] = true;
                std::future::pending().await
            }
            Some(Kind::CrashAfter) => {
                {
                    let mut w = self.w.borrow_mut();
                    apply(&mut w);
                    w.crashed[self.run] = true;
                }
                std::future::pending().await
            }
            fault => {
                let t = apply(&mut self.w.borrow_mut());
                match fault {
                    Some(Kind::Lost) => Err(Kind::Lost),
                    _ => Ok(t),
                }
            }
        }
    }

    async fn iam<T>(
        &self,
        op: &'static str,
        apply: impl FnOnce(&mut World) -> Result<T, IamError>,
    ) -> Result<T, IamError> {
        self.call(op, apply).await.map_err(|_| iam_error(op))?
    }

    async fn gh<T>(
        &self,
        op: &'static str,
        apply: impl FnOnce(&mut World) -> Result<T, GhError>,
    ) -> Result<T, GhError> {
        self.call(op, apply).await.map_err(|k| gh_error(op, k))?
    }
}

fn no_such_key(id: &str) -> IamError {
    IamError {
        kind: IamErrorKind::NoSuchKey,
        message: format!("no such key {id}"),
    }
}

impl Iam for Sim {
    async fn list_keys(&self, _: &str) -> Result<Vec<KeyInfo>, IamError> {
        self.iam("iam:ListAccessKeys", |w| {
            Ok(w.keys
                .iter()
                .map(|k| KeyInfo {
                    id: k.id.clone(),
                    status: if k.active {
                        KeyStatus::Active
                    } else {
                        KeyStatus::Inactive
                    },
                    created: k.created,
                })
                .collect())
        })
        .await
    }
    async fn create_key(&self, _: &str) -> Result<NewKey, IamError> {
        self.iam("iam:CreateAccessKey", |w| {
            if w.keys.len() >= 2 {
                return Err(IamError {
                    kind: IamErrorKind::LimitExceeded,
                    message: "Cannot exceed quota for AccessKeysPerUser: 2".into(),
                });
            }
            let created = w.now + w.aws_skew;
            let id = w.add_key(true, created);
            Ok(NewKey {
                secret: SecretString::from(secret_of(&id)),
                id,
                created: secs(created),
            })
        })
        .await
    }
    async fn set_inactive(&self, _: &str, key_id: &str) -> Result<(), IamError> {
        self.iam("iam:UpdateAccessKey", |w| {
            match w.keys.iter_mut().find(|k| k.id == key_id) {
                Some(k) => {
                    k.active = false;
                    Ok(())
                }
                None => Err(no_such_key(key_id)),
            }
        })
        .await
    }
    async fn delete_key(&self, _: &str, key_id: &str) -> Result<(), IamError> {
        self.iam("iam:DeleteAccessKey", |w| {
            let before = w.keys.len();
            w.keys.retain(|k| k.id != key_id);
            if w.keys.len() == before {
                return Err(no_such_key(key_id));
            }
            w.deleted.insert(key_id.to_owned());
            Ok(())
        })
        .await
    }
    async fn last_used(&self, _: &str) -> Result<LastUse, IamError> {
        self.iam("iam:GetAccessKeyLastUsed", |_| {
            Ok(LastUse {
                date: None,
                service: "N/A".into(),
                region: "N/A".into(),
            })
        })
        .await
    }
    async fn tags(&self, _: &str) -> Result<Vec<(String, String)>, IamError> {
        self.iam("iam:ListUserTags", |w| {
            Ok(w.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        })
        .await
    }
    async fn set_tag(&self, _: &str, key: &str, value: &str) -> Result<(), IamError> {
        self.iam("iam:TagUser", |w| {
            w.tags.insert(key.to_owned(), value.to_owned());
            Ok(())
        })
        .await
    }
    async fn remove_tag(&self, _: &str, key: &str) -> Result<(), IamError> {
        self.iam("iam:UntagUser", |w| {
            w.tags.remove(key);
            Ok(())
        })
        .await
    }
    async fn prove_key(&self, key: &NewKey) -> Result<Caller, IamError> {
        let id = key.id.clone();
        let secret = key.secret.expose_secret().to_owned();
        self.iam("sts:GetCallerIdentity", move |w| {
            if w.working(&id) && secret == secret_of(&id) {
                Ok(Caller {
                    account: "123456789012".into(),
                    arn: format!("arn:aws:iam::123456789012:user/{USER}"),
                })
            } else {
                Err(IamError {
                    kind: IamErrorKind::Credentials,
                    message: "InvalidClientTokenId".into(),
                })
            }
        })
        .await
    }
}

impl SecretStore for Sim {
    async fn public_key(&self, _: &Scope) -> Result<ScopeKey, GhError> {
        self.gh("GET public-key", |w| Ok(w.scope_key.clone())).await
    }
    async fn updated_at(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<DateTime<Utc>>, GhError> {
        self.gh("GET secret", |w| {
            Ok(w.secrets
                .get(&(scope.clone(), name.to_owned()))
                .map(|(_, t)| *t))
        })
        .await
    }
    async fn read(&self, scope: &Scope, name: &str) -> Result<Option<SecretString>, GhError> {
        self.gh("read secret", |w| {
            Ok(w.secrets
                .get(&(scope.clone(), name.to_owned()))
                .map(|(v, _)| SecretString::from(v.clone())))
        })
        .await
    }
    async fn put(
        &self,
        scope: &Scope,
        _: Option<&ScopeKey>,
        name: &str,
        value: &SecretString,
    ) -> Result<(), GhError> {
        let value = value.expose_secret().to_owned();
        self.gh("PUT secret", |w| {
            let at = w.gh_now();
            w.secrets
                .insert((scope.clone(), name.to_owned()), (value, at));
            Ok(())
        })
        .await
    }
}

impl Workflows for Sim {
    async fn default_branch(&self, _: &str) -> Result<String, GhError> {
        self.gh("GET repository", |_| Ok("main".to_owned())).await
    }
    async fn dispatch(
        &self,
        repository: &str,
        _: &str,
        _: &str,
        inputs: &[(&str, &str)],
    ) -> Result<Dispatched, GhError> {
        let input = |n: &str| {
            inputs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        let (expected, marker) = (input("expected-access-key-id"), input("rotation-id"));
        self.gh("POST dispatches", |w| {
            let id = w.wf_runs.len() as u64 + 1;
            let now = w.gh_now();
            w.wf_runs.push(WfRun {
                id,
                repo: repository.to_owned(),
                title: format!("verify {marker}"),
                expected,
                created: now,
                done_at: w.now + Duration::seconds(30),
            });
            Ok(Dispatched::Run {
                id,
                html_url: format!("https://github.test/runs/{id}"),
            })
        })
        .await
    }
    async fn recent_runs(
        &self,
        repository: &str,
        _: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RunInfo>, GhError> {
        self.gh("GET runs", |w| {
            Ok(w.wf_runs
                .iter()
                .rev()
                .filter(|r| r.repo == repository && r.created >= since - Duration::minutes(10))
                .map(|r| run_info(w, r))
                .collect())
        })
        .await
    }
    async fn run(&self, _: &str, id: u64) -> Result<RunInfo, GhError> {
        self.gh("GET run", |w| {
            let r = w
                .wf_runs
                .iter()
                .find(|r| r.id == id)
                .expect("a dispatched run");
            Ok(run_info(w, r))
        })
        .await
    }
}

/// A verification run succeeds when the secrets its repository holds are a working pair of
/// the expected key (evaluated when it completes).
fn run_info(w: &World, r: &WfRun) -> RunInfo {
    let done = w.now >= r.done_at;
    let ok = || {
        let (id, secret) = w.holds(&Consumer {
            scope: Scope::Repository(r.repo.clone()),
            secrets: SecretNames::default(),
        });
        !w.verify_breaks
            && id.as_deref() == Some(r.expected.as_str())
            && secret == id
            && w.working(&r.expected)
    };
    RunInfo {
        id: r.id,
        html_url: format!("https://github.test/runs/{}", r.id),
        status: if done { "completed" } else { "in_progress" }.into(),
        conclusion: done.then(|| if ok() { "success" } else { "failure" }.to_owned()),
        display_title: r.title.clone(),
    }
}

impl Clock for Sim {
    fn now(&self) -> DateTime<Utc> {
        let w = self.w.borrow();
        w.now + w.runner_skew[self.run]
    }
    async fn sleep(&self, d: StdDuration) {
        let until = self.w.borrow().now + Duration::from_std(d).unwrap();
        Sleep {
            w: self.w.clone(),
            run: self.run,
            until,
        }
        .await
    }
}

impl Events for Sim {
    fn mask(&self, _: &SecretString) {}
    fn info(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn group(&self, _: &str) {}
    fn end_group(&self) {}
}

// ---- the scheduler ----------------------------------------------------------------------------

type RunFuture<'a> = Pin<Box<dyn Future<Output = UserReport> + 'a>>;

/// Polls the runs in a seeded order until all finish; time jumps when every run sleeps.
fn drive(
    w: &Rc<RefCell<World>>,
    first_run: usize,
    mut runs: Vec<RunFuture<'_>>,
    rng: &mut Rng,
) -> Vec<UserReport> {
    let n = runs.len();
    let mut out: Vec<Option<UserReport>> = vec![None; n];
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        let now = w.borrow().now;
        let gone = |i: usize| w.borrow().crashed[first_run + i];
        let runnable: Vec<usize> = (0..n)
            .filter(|&i| {
                out[i].is_none()
                    && !gone(i)
                    && w.borrow().sleeping[first_run + i].is_none_or(|t| t <= now)
            })
            .collect();
        if runnable.is_empty() {
            if (0..n).all(|i| out[i].is_some() || gone(i)) {
                // A crashed run leaves no report.
                return out.into_iter().flatten().collect();
            }
            let next = (0..n)
                .filter(|&i| out[i].is_none() && !gone(i))
                .filter_map(|i| w.borrow().sleeping[first_run + i])
                .min()
                .expect("a run that is not finished and not runnable sleeps");
            w.borrow_mut().now = next;
            continue;
        }
        let i = runnable[rng.below(runnable.len())];
        if let Poll::Ready(r) = runs[i].as_mut().poll(&mut cx) {
            out[i] = Some(r);
        }
    }
    panic!("the runs made no progress in a million steps");
}

// ---- scenarios --------------------------------------------------------------------------------

fn web() -> Scope {
    Scope::Repository("acme/web".into())
}

fn user_spec(verify: bool) -> UserSpec {
    let consumer = |scope: Scope| Consumer {
        scope,
        secrets: SecretNames::default(),
    };
    UserSpec {
        name: USER.into(),
        max_age_days: 90,
        deactivate_after_hours: 24,
        delete_after_days: 7,
        consumers: vec![
            consumer(web()),
            consumer(Scope::Environment {
                repository: "acme/web".into(),
                environment: "production".into(),
            }),
            consumer(Scope::Repository("acme/api".into())),
            // A readable store (Parameter Store): its old values are known to every run.
            Consumer {
                scope: Scope::ParameterStore { region: None },
                secrets: SecretNames {
                    access_key_id: "/ci/key-id".into(),
                    secret_access_key: "/ci/secret".into(),
                },
            },
        ],
        verify: if verify {
            vec![VerifyWorkflow {
                repository: "acme/web".into(),
                workflow: "verify-aws-credentials.yml".into(),
                git_ref: None,
            }]
        } else {
            Vec::new()
        },
        external: Vec::new(),
        origin: "sim.yml:3:5".into(),
    }
}

/// Where a user starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// No key yet.
    Empty,
    /// One key, 100 days old, in every consumer.
    Aged,
    /// Rotated two days ago and verified: the old key awaits deactivation.
    Rotated,
    /// The old key was deactivated eight days ago: it awaits deletion.
    Retired,
}

impl Start {
    fn name(self) -> &'static str {
        match self {
            Start::Empty => "empty",
            Start::Aged => "aged",
            Start::Rotated => "rotated",
            Start::Retired => "retired",
        }
    }
    fn parse(s: &str) -> Self {
        [Start::Empty, Start::Aged, Start::Rotated, Start::Retired]
            .into_iter()
            .find(|x| x.name() == s)
            .unwrap()
    }
}

/// One history: where it starts, who runs what, the faults and the seed of the schedule.
#[derive(Clone, Debug)]
struct History {
    start: Start,
    /// The step runs with the key the `acme/web` repository secrets hold (self-rotation);
    /// otherwise with a dedicated identity, so the old values are never known.
    self_rotating: bool,
    verify: bool,
    verify_breaks: bool,
    commands: Vec<(Command, bool)>,
    faults: Vec<Fault>,
    seed: u64,
    skew: bool,
}

fn command_name(c: Command) -> &'static str {
    match c {
        Command::Status => "status",
        Command::Rotate => "rotate",
        Command::Deactivate => "deactivate",
        Command::Delete => "delete",
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cmds: Vec<String> = self
            .commands
            .iter()
            .map(|(c, force)| format!("{}{}", command_name(*c), if *force { "!" } else { "" }))
            .collect();
        let faults: Vec<String> = self.faults.iter().map(ToString::to_string).collect();
        write!(
            f,
            "start={} self={} verify={} breaks={} cmds={} faults={} seed={} skew={}",
            self.start.name(),
            self.self_rotating,
            self.verify,
            self.verify_breaks,
            cmds.join(","),
            if faults.is_empty() {
                "-".into()
            } else {
                faults.join(",")
            },
            self.seed,
            self.skew
        )
    }
}

impl History {
    /// Whether a run of the history is killed.
    fn crashes(&self) -> bool {
        self.faults.iter().any(|f| CRASHES.contains(&f.kind))
    }

    fn parse(s: &str) -> Self {
        let f: BTreeMap<&str, &str> = s
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        let commands = f["cmds"]
            .split(',')
            .map(|c| {
                let force = c.ends_with('!');
                let c = match c.trim_end_matches('!') {
                    "status" => Command::Status,
                    "rotate" => Command::Rotate,
                    "deactivate" => Command::Deactivate,
                    _ => Command::Delete,
                };
                (c, force)
            })
            .collect();
        History {
            start: Start::parse(f["start"]),
            self_rotating: f["self"] == "true",
            verify: f["verify"] == "true",
            verify_breaks: f["breaks"] == "true",
            commands,
            faults: if f["faults"] == "-" {
                Vec::new()
            } else {
                f["faults"].split(',').map(Fault::parse).collect()
            },
            seed: f["seed"].parse().unwrap(),
            skew: f["skew"] == "true",
        }
    }
}

fn setup(h: &History) -> World {
    let mut w = World::new(h.commands.len());
    let spec = user_spec(h.verify);
    let now = w.now;
    let mut rng = Rng(h.seed ^ 0x5EED);
    if h.skew {
        let mut skew = || Duration::seconds(rng.below(601) as i64 - 300);
        w.gh_skew = skew();
        w.aws_skew = skew();
        for s in w.runner_skew.iter_mut() {
            *s = skew();
        }
    }
    let all = |w: &mut World, key: &str, at: DateTime<Utc>| {
        for c in &spec.consumers {
            w.hold(c, key, at);
        }
    };
    match h.start {
        Start::Empty => {}
        Start::Aged => {
            let k = w.add_key(true, now - Duration::days(100));
            all(&mut w, &k, now - Duration::days(100));
        }
        Start::Rotated | Start::Retired => {
            let old = w.add_key(h.start == Start::Rotated, now - Duration::days(100));
            let new = w.add_key(true, now - Duration::days(9));
            all(&mut w, &new, now - Duration::days(9));
            let _ = old;
            let mut j = Journal::new(
                Phase::Verified,
                &new,
                &format!("{new}-1"),
                now - Duration::days(9),
            );
            j.held = Some(now - Duration::days(9));
            if h.start == Start::Retired {
                j = j.moved(Phase::Deactivated, now - Duration::days(8));
            }
            w.tags.insert(JOURNAL_TAG.into(), j.value());
        }
    }
    w.verify_breaks = h.verify_breaks;
    w.faults = h.faults.clone();
    w
}

/// The credentials a run starts with: self-rotation reads them from the `acme/web` secrets
/// (as the job does when it starts); a dedicated identity is another user.
fn step_key(w: &World, self_rotating: bool) -> Option<StepKey> {
    if !self_rotating {
        return None;
    }
    match w.holds(&Consumer {
        scope: web(),
        secrets: SecretNames::default(),
    }) {
        (Some(id), Some(s)) if id == s => Some(StepKey {
            secret: SecretString::from(secret_of(&id)),
            id,
        }),
        _ => None,
    }
}

/// Runs `commands` concurrently on the shared world, with a seeded schedule.
fn run_all(
    w: &Rc<RefCell<World>>,
    spec: &UserSpec,
    commands: &[(Command, bool)],
    self_rotating: bool,
    first_run: usize,
    rng: &mut Rng,
) -> Vec<UserReport> {
    let n = commands.len();
    let sims: Vec<Sim> = (0..n)
        .map(|i| Sim {
            w: w.clone(),
            run: first_run + i,
        })
        .collect();
    let step_keys: Vec<Option<StepKey>> = (0..n)
        .map(|_| step_key(&w.borrow(), self_rotating))
        .collect();
    let opts: Vec<Options> = commands
        .iter()
        .map(|(_, force)| Options {
            force: *force,
            ..Options::default()
        })
        .collect();
    let stop = aws_key_rotator::ports::Stop::default();
    let leases: Vec<LeaseSettings> = (0..n)
        .map(|i| LeaseSettings {
            run_id: format!("sim-run-{}", first_run + i),
            settle: StdDuration::from_secs(3),
            ttl: Duration::minutes(45),
            github: None,
            call_timeout: Duration::seconds(30),
        })
        .collect();
    let ctxs: Vec<Ctx<'_, Sim, Sim, Sim, Sim, Sim>> = (0..n)
        .map(|i| Ctx {
            iam: &sims[i],
            store: &sims[i],
            workflows: &sims[i],
            verify: VerifySettings {
                timeout: StdDuration::from_secs(30 * 60),
                poll: StdDuration::from_secs(10),
            },
            events: &sims[i],
            clock: &sims[i],
            step_key: step_keys[i].as_ref(),
            opts: &opts[i],
            dry_run: false,
            lease: &leases[i],
            stop: &stop,
        })
        .collect();
    let futures: Vec<RunFuture<'_>> = ctxs
        .iter()
        .zip(commands)
        .map(|(ctx, (cmd, _))| Box::pin(run::run_user(ctx, spec, *cmd)) as RunFuture<'_>)
        .collect();
    drive(w, first_run, futures, rng)
}

// ---- invariants -------------------------------------------------------------------------------

fn acted(r: &UserReport) -> bool {
    matches!(
        r.outcome,
        Outcome::Rotated
            | Outcome::Deactivated
            | Outcome::Deleted
            | Outcome::RolledBack(_)
            | Outcome::Failed(_)
    )
}

/// Checks the world after a history. `reports` are the runs of the history.
fn check(w: &World, spec: &UserSpec, h: &History, reports: &[UserReport]) -> Result<(), String> {
    // A crashed run says nothing and gives nothing back: what it left is the next run's to mend.
    let crashed = h.crashes();
    if w.keys.len() > 2 {
        return Err(format!("{} keys", w.keys.len()));
    }
    for (i, c) in spec.consumers.iter().enumerate() {
        let (id, secret) = w.holds(c);
        // No consumer holds a key that is deleted or Inactive.
        for k in [&id, &secret].into_iter().flatten() {
            if !w.working(k) {
                return Err(format!(
                    "{} holds {k}, which is {}",
                    c.scope,
                    if w.deleted.contains(k) {
                        "deleted"
                    } else {
                        "Inactive"
                    }
                ));
            }
        }
        // Every consumer holds an id and a secret that belong together, unless a failed run
        // says exactly that it does not (a write that kept failing).
        if id != secret {
            let admitted = crashed
                || reports.iter().any(|r| {
                    r.exit_code() != 0
                        && r.consumers
                            .get(i)
                            .is_some_and(|c| matches!(c.held, Held::Split { .. } | Held::Unknown))
                });
            if !admitted {
                return Err(format!(
                    "{} holds a mismatched pair ({id:?}, {secret:?}) and no failed run says so",
                    c.scope
                ));
            }
        }
        // Every report names exactly what each consumer holds (a lone run: with two, the
        // other may write after it reported).
        if reports.len() == 1 {
            let r = &reports[0];
            // A run that failed while reading (no consumer in its report) changed nothing.
            if acted(r) && !r.consumers.is_empty() {
                let truth = w.held(c);
                let said = &r.consumers[i].held;
                // "Unknown" claims nothing: allowed where a fault hid the answer, and where the
                // run had no reason to read the stores (deactivate and delete write none).
                let may_not_know =
                    w.fired > 0 || matches!(r.outcome, Outcome::Deactivated | Outcome::Deleted);
                if *said != truth && !(*said == Held::Unknown && may_not_know) {
                    return Err(format!(
                        "the report says {} holds {said:?}, but it holds {truth:?}",
                        c.scope
                    ));
                }
            }
        }
    }
    for r in reports {
        if r.outcome == Outcome::Rotated {
            let new = r.new_key.as_deref().unwrap_or("?");
            if reports.len() == 1
                && !spec
                    .consumers
                    .iter()
                    .all(|c| w.held(c) == Held::Key(new.to_owned()))
            {
                return Err(format!("rotated to {new}, but not every consumer holds it"));
            }
        }
        if r.exit_code() == 2 {
            return Err(format!("exit 2 from a valid setup: {:?}", r.outcome));
        }
    }
    let persistent = h.faults.iter().any(|f| f.persistent);
    if w.tags.contains_key(LEASE_TAG) && !persistent && !crashed {
        return Err("a lease tag was left behind".into());
    }
    Ok(())
}

/// The faults heal; a person runs what `status` calls for (with force where it asks for a
/// person) until the user has one working key in every consumer and no tag.
fn converge(w: &Rc<RefCell<World>>, spec: &UserSpec, h: &History) -> Result<(), String> {
    {
        let mut w = w.borrow_mut();
        w.faults.clear();
        w.broken.clear();
        w.verify_breaks = false;
        w.now += Duration::hours(7);
        w.sleeping = vec![None; 64];
        w.calls = vec![0; 64];
    }
    let mut rng = Rng(h.seed);
    let mut next_run = 10;
    let mut said = Vec::new();
    for _ in 0..8 {
        let status = run_all(
            w,
            spec,
            &[(Command::Status, false)],
            h.self_rotating,
            next_run,
            &mut rng,
        )
        .remove(0);
        next_run += 1;
        let state = status.state.unwrap_or(State::Conflict);
        said.push(state.as_str());
        let command = {
            let world = w.borrow();
            match state {
                State::Current
                    if world.keys.len() == 1
                        && spec
                            .consumers
                            .iter()
                            .all(|c| world.held(c) == Held::Key(world.keys[0].id.clone()))
                        && world.tags.is_empty() =>
                {
                    return Ok(());
                }
                State::None | State::Current | State::Incomplete | State::RolledBack => {
                    Command::Rotate
                }
                State::PendingDeactivation => Command::Deactivate,
                State::PendingDeletion => Command::Delete,
                State::Inactive | State::Conflict => {
                    return Err(format!(
                        "the user ended {state}: a person has to sort it out by hand"
                    ));
                }
            }
        };
        let r = run_all(
            w,
            spec,
            &[(command, true)],
            h.self_rotating,
            next_run,
            &mut rng,
        )
        .remove(0);
        next_run += 1;
        if r.exit_code() != 0 {
            return Err(format!(
                "the healing {} --force ended {:?} (states so far: {})",
                command_name(command),
                r.outcome,
                said.join(" → ")
            ));
        }
        w.borrow_mut().now += Duration::days(8);
    }
    Err(format!("did not converge: {}", said.join(" → ")))
}

thread_local! {
    /// Histories whose crash left a consumer split (the daily run then had to mend it).
    static SPLIT_BY_A_CRASH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A crashed run's lease expires; the next daily run (`rotate`, no force) must leave every
/// consumer with a whole pair of a working key: it mends what the crash split (CONTRACT §12).
fn after_a_crash(
    w: &Rc<RefCell<World>>,
    spec: &UserSpec,
    h: &History,
    rng: &mut Rng,
) -> Result<(), String> {
    {
        let mut w = w.borrow_mut();
        w.now += Duration::hours(1);
        w.sleeping = vec![None; 64];
        if spec
            .consumers
            .iter()
            .any(|c| matches!(w.held(c), Held::Split { .. }))
        {
            SPLIT_BY_A_CRASH.with(|n| n.set(n.get() + 1));
        }
    }
    let daily = run_all(
        w,
        spec,
        &[(Command::Rotate, false)],
        h.self_rotating,
        9,
        rng,
    )
    .remove(0);
    let world = w.borrow();
    for c in &spec.consumers {
        match world.held(c) {
            Held::Key(k) if world.working(&k) => {}
            Held::Nothing => {}
            other => {
                return Err(format!(
                    "after the daily run that followed the crash ({:?}), {} holds {other:?}",
                    daily.outcome, c.scope
                ));
            }
        }
    }
    if daily.exit_code() == 2 {
        return Err(format!(
            "the daily run after the crash: {:?}",
            daily.outcome
        ));
    }
    Ok(())
}

/// Runs one history and checks it; `Err` carries the history and what broke.
fn explore(h: &History) -> Result<(), String> {
    let w = Rc::new(RefCell::new(setup(h)));
    if std::env::var_os("SIM_REPLAY").is_some() {
        w.borrow_mut().trace = Some(Vec::new());
    }
    let spec = user_spec(h.verify);
    let mut rng = Rng(h.seed);
    let reports = run_all(&w, &spec, &h.commands, h.self_rotating, 0, &mut rng);
    let checked = check(&w.borrow(), &spec, h, &reports);
    let checked = checked
        .map_err(|e| format!("after the history: {e}"))
        .and_then(|()| {
            if h.crashes() {
                after_a_crash(&w, &spec, h, &mut rng)
            } else {
                Ok(())
            }
        });
    let result =
        checked.and_then(|()| converge(&w, &spec, h).map_err(|e| format!("convergence: {e}")));
    if let Some(trace) = &w.borrow().trace {
        for line in trace {
            println!("{line}");
        }
        for r in &reports {
            println!("report: {:?} exit {}", r.outcome, r.exit_code());
            for c in &r.consumers {
                println!("  {}: {:?}", c.consumer.scope, c.held);
            }
        }
    }
    result.map_err(|e| format!("{e}\n  replay: SIM_REPLAY='{h}'"))
}

/// Fault-free, how many port calls a lone run of `h` makes.
fn calls_of(h: &History) -> usize {
    let mut plain = h.clone();
    plain.faults.clear();
    let w = Rc::new(RefCell::new(setup(&plain)));
    let spec = user_spec(h.verify);
    run_all(
        &w,
        &spec,
        &plain.commands,
        plain.self_rotating,
        0,
        &mut Rng(h.seed),
    );
    w.borrow().calls[0]
}

struct Tally {
    explored: usize,
    failures: Vec<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            explored: 0,
            failures: Vec::new(),
        }
    }
    fn run(&mut self, h: &History) {
        self.explored += 1;
        if let Err(e) = explore(h)
            && self.failures.len() < 5
        {
            self.failures.push(e);
        }
    }
    fn finish(self, what: &str) -> usize {
        // Straight to stderr, past the test harness's capture: CI logs show how much was explored.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "simulation: {what}: {} histories explored",
            self.explored
        );
        assert!(
            self.failures.is_empty(),
            "{what}: {} failing histories, the first:\n{}",
            self.failures.len(),
            self.failures.join("\n\n")
        );
        self.explored
    }
}

fn base(start: Start, self_rotating: bool, verify: bool, command: Command) -> History {
    History {
        start,
        self_rotating,
        verify,
        verify_breaks: false,
        commands: vec![(command, false)],
        faults: Vec::new(),
        seed: 1,
        skew: false,
    }
}

/// Every single-run setup the exhaustive searches start from.
fn lone_runs() -> Vec<History> {
    let mut out = Vec::new();
    for self_rotating in [true, false] {
        for verify in [true, false] {
            out.push(base(Start::Aged, self_rotating, verify, Command::Rotate));
            out.push(base(Start::Empty, self_rotating, verify, Command::Rotate));
        }
        let mut breaks = base(Start::Aged, self_rotating, true, Command::Rotate);
        breaks.verify_breaks = true;
        out.push(breaks);
        out.push(base(
            Start::Rotated,
            self_rotating,
            true,
            Command::Deactivate,
        ));
        out.push(base(Start::Retired, self_rotating, true, Command::Delete));
    }
    out
}

#[test]
fn replay() {
    let Ok(h) = std::env::var("SIM_REPLAY") else {
        return;
    };
    let h = History::parse(&h);
    println!("replaying {h}");
    if let Err(e) = explore(&h) {
        panic!("{e}");
    }
}

#[test]
fn fault_free_histories_rotate_and_retire() {
    let mut t = Tally::new();
    for h in lone_runs() {
        t.run(&h);
    }
    // The whole life cycle, each step a later run.
    for self_rotating in [true, false] {
        let w = Rc::new(RefCell::new(setup(&base(
            Start::Aged,
            self_rotating,
            true,
            Command::Rotate,
        ))));
        let spec = user_spec(true);
        let mut rng = Rng(7);
        let r = run_all(
            &w,
            &spec,
            &[(Command::Rotate, false)],
            self_rotating,
            0,
            &mut rng,
        )
        .remove(0);
        assert_eq!(r.outcome, Outcome::Rotated, "{:?}", r.outcome);
        let r = run_all(
            &w,
            &spec,
            &[(Command::Deactivate, false)],
            self_rotating,
            1,
            &mut rng,
        )
        .remove(0);
        assert!(
            matches!(&r.outcome, Outcome::Nothing(m) if m.contains("not yet")),
            "grace: {:?}",
            r.outcome
        );
        w.borrow_mut().now += Duration::hours(25);
        let r = run_all(
            &w,
            &spec,
            &[(Command::Deactivate, false)],
            self_rotating,
            2,
            &mut rng,
        )
        .remove(0);
        assert_eq!(r.outcome, Outcome::Deactivated, "{:?}", r.outcome);
        w.borrow_mut().now += Duration::days(8);
        let r = run_all(
            &w,
            &spec,
            &[(Command::Delete, false)],
            self_rotating,
            3,
            &mut rng,
        )
        .remove(0);
        assert_eq!(r.outcome, Outcome::Deleted, "{:?}", r.outcome);
        let world = w.borrow();
        assert_eq!(world.keys.len(), 1);
        assert!(world.tags.is_empty(), "{:?}", world.tags);
    }
    t.finish("fault-free");
}

#[test]
fn every_fault_at_every_call() {
    let mut t = Tally::new();
    for h in lone_runs() {
        let n = calls_of(&h);
        for call in 0..n {
            for kind in KINDS {
                for persistent in [false, true] {
                    let mut h = h.clone();
                    h.faults = vec![Fault {
                        run: 0,
                        call,
                        kind,
                        persistent,
                    }];
                    t.run(&h);
                }
            }
        }
    }
    t.finish("one fault at every call");
}

/// The process killed (SIGKILL, a lost runner) at every call, before and after it takes effect:
/// after the lease expires the next daily run leaves nothing broken, and a person's runs converge.
#[test]
fn a_crash_at_every_call() {
    let mut t = Tally::new();
    for h in lone_runs() {
        let n = calls_of(&h);
        for call in 0..n {
            for kind in CRASHES {
                let mut h = h.clone();
                h.faults = vec![Fault {
                    run: 0,
                    call,
                    kind,
                    persistent: false,
                }];
                t.run(&h);
            }
        }
    }
    t.finish("a crash at every call");
    let split = SPLIT_BY_A_CRASH.with(std::cell::Cell::get);
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "simulation: {split} crashes left a split pair, and the next daily run mended each"
    );
    assert!(
        split > 0,
        "the sweep never cut a pair: it proves nothing about mending"
    );
}

#[test]
fn every_pair_of_faults_in_a_rotation() {
    let mut t = Tally::new();
    let budget: usize = std::env::var("SIM_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    for self_rotating in [true, false] {
        for breaks in [false, true] {
            let mut h = base(Start::Aged, self_rotating, true, Command::Rotate);
            h.verify_breaks = breaks;
            let n = calls_of(&h);
            for a in 0..n {
                for b in a + 1..n + 6 {
                    for ka in KINDS {
                        for kb in KINDS {
                            if t.explored >= budget {
                                continue;
                            }
                            let mut h = h.clone();
                            h.skew = (a + b) % 2 == 0;
                            h.seed = (a * 131 + b) as u64;
                            h.faults = vec![
                                Fault {
                                    run: 0,
                                    call: a,
                                    kind: ka,
                                    persistent: false,
                                },
                                Fault {
                                    run: 0,
                                    call: b,
                                    kind: kb,
                                    persistent: false,
                                },
                            ];
                            t.run(&h);
                        }
                    }
                }
            }
        }
    }
    t.finish("every pair of faults");
}

#[test]
fn two_runs_interleaved() {
    let mut t = Tally::new();
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(70_000);
    let commands = [
        (Command::Rotate, false),
        (Command::Rotate, true),
        (Command::Deactivate, false),
        (Command::Deactivate, true),
        (Command::Delete, true),
        (Command::Status, false),
    ];
    let starts = [Start::Empty, Start::Aged, Start::Rotated, Start::Retired];
    for seed in 0..seeds {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let mut h = base(
            starts[rng.below(starts.len())],
            rng.chance(2),
            true,
            Command::Rotate,
        );
        h.verify = !rng.chance(4);
        h.verify_breaks = rng.chance(5);
        h.commands = vec![
            commands[rng.below(commands.len())],
            commands[rng.below(commands.len())],
        ];
        h.seed = seed;
        h.skew = rng.chance(2);
        if rng.chance(2) {
            h.faults = vec![Fault {
                run: rng.below(2),
                call: rng.below(40),
                kind: KINDS[rng.below(3)],
                persistent: rng.chance(4),
            }];
        }
        t.run(&h);
    }
    t.finish("two runs interleaved");
}

#[test]
fn the_world_model_is_sound() {
    // The fakes behave like IAM: a third key is refused, and nothing else is special.
    let w = Rc::new(RefCell::new(World::new(1)));
    let now = w.borrow().now;
    w.borrow_mut().add_key(true, now);
    w.borrow_mut().add_key(true, now);
    let sim = Sim {
        w: w.clone(),
        run: 0,
    };
    let fut = Box::pin(async move { sim.create_key(USER).await.map(|k| k.id) });
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = fut;
    let result = loop {
        if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            break r;
        }
    };
    assert_eq!(result.unwrap_err().kind, IamErrorKind::LimitExceeded);
    // A history prints and parses back to itself (so a failing seed replays).
    let mut h = base(Start::Aged, true, true, Command::Rotate);
    h.faults = vec![Fault {
        run: 0,
        call: 7,
        kind: Kind::Lost,
        persistent: true,
    }];
    h.commands.push((Command::Deactivate, true));
    assert_eq!(History::parse(&h.to_string()).to_string(), h.to_string());
}
