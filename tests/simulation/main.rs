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

pub(crate) use std::cell::RefCell;
pub(crate) use std::collections::{BTreeMap, BTreeSet};
pub(crate) use std::fmt;
pub(crate) use std::future::Future;
pub(crate) use std::pin::Pin;
pub(crate) use std::rc::Rc;
pub(crate) use std::task::{Context, Poll, Waker};
pub(crate) use std::time::Duration as StdDuration;

pub(crate) use aws_key_rotator::manifest::{
    Consumer, Scope, SecretNames, UserSpec, VerifyWorkflow,
};
pub(crate) use aws_key_rotator::ports::{
    Caller, Clock, Dispatched, Events, GhError, GhErrorKind, Iam, IamError, IamErrorKind, NewKey,
    RunInfo, SecretStore, StepKey, StoreError, Workflows,
};
pub(crate) use aws_key_rotator::rotation::journal::{
    EXPOSURE_TAG, JOURNAL_TAG, Journal, LEASE_TAG, Phase,
};
pub(crate) use aws_key_rotator::rotation::ledger::Held;
pub(crate) use aws_key_rotator::rotation::plan::{LastUse, Options};
pub(crate) use aws_key_rotator::rotation::run::{
    self, Command, Ctx, LeaseSettings, Outcome, UserReport,
};
pub(crate) use aws_key_rotator::rotation::state::{KeyInfo, KeyStatus, State};
pub(crate) use aws_key_rotator::rotation::verify::VerifySettings;
pub(crate) use aws_key_rotator::seal::ScopeKey;
pub(crate) use chrono::{DateTime, Duration, TimeZone, Utc};
pub(crate) use secrecy::{ExposeSecret, SecretString};

pub(crate) const USER: &str = "ci-deployer";

mod executor;
mod history;
mod invariants;
mod ports;
mod rng;
mod world;

pub(crate) use executor::*;
pub(crate) use history::*;
pub(crate) use invariants::*;
pub(crate) use ports::*;
pub(crate) use rng::*;
pub(crate) use world::*;

/// Runs one history and checks it; `Err` carries the history and what broke.
pub(crate) fn explore(h: &History) -> Result<(), String> {
    if h.forge.is_some() {
        return explore_forged(h);
    }
    if h.quarantine.is_some() {
        return explore_quarantined(h);
    }
    let w = Rc::new(RefCell::new(setup(h)));
    if std::env::var_os("SIM_REPLAY").is_some() {
        w.borrow_mut().trace = Some(Vec::new());
    }
    let spec = spec_of(h);
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

/// A history with the forged-tag adversary (CONTRACT §12, §12a): whatever a holder of
/// `iam:TagUser` writes, at whatever point, the history and the scheduled runs that follow it
/// (rotate, then deactivate and delete once their grace has passed, none with force) never
/// take a working key from a consumer, and never delete or deactivate the key a person uses
/// outside the manifest. A forged journal may leave the user loud (`conflict`): that is a
/// person's to read, so convergence is not asked.
pub(crate) fn explore_forged(h: &History) -> Result<(), String> {
    let daily = [
        (Command::Rotate, Duration::hours(1)),
        (Command::Rotate, Duration::hours(7)),
        (Command::Deactivate, Duration::hours(25)),
        (Command::Delete, Duration::days(8)),
    ];
    let (w, result) = history_then_schedule(h, |_| {}, &daily);
    finish(&w, h, result)
}

/// Runs `h`, checks [`safe`], lets `between` change the world (heal faults, say), then runs
/// each scheduled command (no force) after its delay, checking [`safe`] after each; the first
/// broken check is the result.
fn history_then_schedule(
    h: &History,
    between: impl FnOnce(&mut World),
    schedule: &[(Command, Duration)],
) -> (Rc<RefCell<World>>, Result<(), String>) {
    let w = Rc::new(RefCell::new(setup(h)));
    if std::env::var_os("SIM_REPLAY").is_some() {
        w.borrow_mut().trace = Some(Vec::new());
    }
    let spec = spec_of(h);
    let mut rng = Rng(h.seed);
    let forced = h.commands.iter().any(|(_, force)| *force);
    run_all(&w, &spec, &h.commands, h.self_rotating, 0, &mut rng);
    let mut result =
        safe(&w.borrow(), &spec, forced).map_err(|e| format!("after the history: {e}"));
    between(&mut w.borrow_mut());
    for (i, (command, later)) in schedule.iter().enumerate() {
        if result.is_err() {
            break;
        }
        {
            let mut w = w.borrow_mut();
            w.now += *later;
            w.sleeping = vec![None; 64];
        }
        let r = run_all(
            &w,
            &spec,
            &[(*command, false)],
            h.self_rotating,
            10 + i,
            &mut rng,
        )
        .remove(0);
        if let Some(t) = &mut w.borrow_mut().trace {
            t.push(format!(
                "scheduled {}: {:?} (state {:?})",
                command_name(*command),
                r.outcome,
                r.keys.state
            ));
        }
        result = safe(&w.borrow(), &spec, forced).map_err(|e| {
            format!(
                "after the scheduled {} ({:?}): {e}",
                command_name(*command),
                r.outcome
            )
        });
    }
    (w, result)
}

/// Prints the trace of a replayed history, and names the history of a failure.
fn finish(w: &Rc<RefCell<World>>, h: &History, result: Result<(), String>) -> Result<(), String> {
    if let Some(trace) = &w.borrow().trace {
        for line in trace {
            println!("{line}");
        }
    }
    result.map_err(|e| format!("{e}\n  replay: SIM_REPLAY='{h}'"))
}

/// A history in which AWS quarantines the user at some call (CONTRACT §17), then the runs a
/// schedule makes, each an hour later, none with force: `rotate`, `deactivate`, `rotate`,
/// `deactivate`. No consumer ever holds a key that stopped working; and a history that
/// completes (no fault, a verification that works: else a failed rotation may leave what a
/// GitHub consumer holds unknown, which is a person's) ends with every key the quarantine
/// covered Inactive (or gone) within those hours, no grace period waited, and every consumer
/// on a working key.
pub(crate) fn explore_quarantined(h: &History) -> Result<(), String> {
    let hourly = [
        (Command::Rotate, Duration::hours(1)),
        (Command::Deactivate, Duration::hours(1)),
        (Command::Rotate, Duration::hours(1)),
        (Command::Deactivate, Duration::hours(1)),
    ];
    let heal = |w: &mut World| {
        w.quarantined = true;
        w.faults.clear();
        w.broken.clear();
        w.verify_breaks = false;
    };
    let (w, mut result) = history_then_schedule(h, heal, &hourly);
    let spec = spec_of(h);
    if result.is_ok() && h.faults.is_empty() && !h.verify_breaks && !spec.moved() {
        let world = w.borrow();
        // The keys the quarantine covered: those the user had when it was first seen.
        let covered = world
            .tags
            .get(EXPOSURE_TAG)
            .and_then(|v| aws_key_rotator::rotation::journal::Exposure::parse(v))
            .map(|e| e.keys);
        if world.keys.is_empty() {
            // Nothing to cover.
        } else if covered.is_none() {
            result = Err("the quarantine was never recorded".into());
        } else if let Some(k) = covered
            .unwrap_or_default()
            .iter()
            .find(|k| world.working(k))
        {
            result = Err(format!(
                "the quarantined key {k} still works four scheduled runs later"
            ));
        } else if spec
            .consumers
            .iter()
            .any(|c| !matches!(world.held(c), Held::Key(k) if world.working(&k)))
        {
            result = Err("a consumer is left without a working key".into());
        }
    }
    finish(&w, h, result)
}

/// No consumer holds a key that is deleted or Inactive; a moved user's key is never deleted
/// while Active; and, unless a person forced a run, the key used outside the manifest stands.
pub(crate) fn safe(w: &World, spec: &UserSpec, forced: bool) -> Result<(), String> {
    // `on-exposure: revoke` chooses the outage: a consumer may hold the exposed key it made
    // Inactive (never a deleted one) until it holds the new key.
    let revoked = |k: &str| {
        spec.on_exposure == aws_key_rotator::manifest::OnExposure::Revoke
            && w.keys.iter().any(|x| x.id == k)
            && w.tags
                .get(EXPOSURE_TAG)
                .and_then(|v| aws_key_rotator::rotation::journal::Exposure::parse(v))
                .is_some_and(|e| e.keys.iter().any(|x| x == k))
    };
    for c in &spec.consumers {
        let (id, secret) = w.holds(c);
        for k in [&id, &secret].into_iter().flatten() {
            if !w.working(k) && !revoked(k) {
                return Err(format!("{} holds {k}, which no longer works", c.scope));
            }
        }
    }
    if let Some(k) = w.deleted_active.first()
        && spec.moved()
    {
        return Err(format!("the moved user's key {k} was deleted while Active"));
    }
    if let Some(o) = &w.outside
        && !forced
        && !w.working(o)
    {
        return Err(format!(
            "the key {o} a person uses outside the manifest was deleted or deactivated"
        ));
    }
    Ok(())
}

/// Fault-free, how many port calls a lone run of `h` makes.
pub(crate) fn calls_of(h: &History) -> usize {
    let mut plain = h.clone();
    plain.faults.clear();
    let w = Rc::new(RefCell::new(setup(&plain)));
    let spec = spec_of(h);
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

pub(crate) struct Tally {
    pub(crate) explored: usize,
    pub(crate) failures: Vec<String>,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Tally {
            explored: 0,
            failures: Vec::new(),
        }
    }
    pub(crate) fn run(&mut self, h: &History) {
        self.explored += 1;
        if let Err(e) = explore(h)
            && self.failures.len() < 5
        {
            self.failures.push(e);
        }
    }
    pub(crate) fn finish(self, what: &str) -> usize {
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

pub(crate) fn base(start: Start, self_rotating: bool, verify: bool, command: Command) -> History {
    History {
        start,
        self_rotating,
        verify,
        verify_breaks: false,
        commands: vec![(command, false)],
        faults: Vec::new(),
        seed: 1,
        skew: false,
        forge: None,
        quarantine: None,
        revoke: false,
    }
}

/// Every single-run setup the exhaustive searches start from.
pub(crate) fn lone_runs() -> Vec<History> {
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
    // Every consumer on the role: the rotator's own identity retires the key (a consumer's
    // step never holds it).
    out.push(base(Start::Moved, false, false, Command::Rotate));
    out.push(base(
        Start::MovedRetiring,
        false,
        false,
        Command::Deactivate,
    ));
    out.push(base(Start::MovedRetired, false, false, Command::Delete));
    out
}

#[test]
pub(crate) fn replay() {
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
pub(crate) fn fault_free_histories_rotate_and_retire() {
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
pub(crate) fn every_fault_at_every_call() {
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
pub(crate) fn a_crash_at_every_call() {
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

/// The forged-tag adversary at every call of every lone run, with every forgery it knows:
/// a journal or a lease rewritten to any value a holder of `iam:TagUser` could write.
#[test]
pub(crate) fn a_forged_tag_at_every_call() {
    let mut t = Tally::new();
    let mut histories = lone_runs();
    for self_rotating in [true, false] {
        for command in [Command::Rotate, Command::Deactivate, Command::Delete] {
            histories.push(base(Start::Outside, self_rotating, true, command));
        }
    }
    for h in histories {
        let n = calls_of(&h);
        for call in 0..=n {
            for what in 0..FORGERIES {
                let mut h = h.clone();
                h.forge = Some(Forge { run: 0, call, what });
                t.run(&h);
            }
        }
    }
    t.finish("a forged tag at every call");
}

/// AWS's quarantine at every call of every lone run (with a dedicated identity: the quarantine
/// denies a self-rotating step its own CreateAccessKey), with and without one fault.
#[test]
pub(crate) fn a_quarantine_at_every_call() {
    quarantine_search(false, "a quarantine at every call");
}

/// The same under `on-exposure: revoke`: consumers may hold the revoked key for a while (the
/// owner's choice), never a deleted one, and a history that completes ends as under `rotate`:
/// the covered keys out of service, every consumer on a working key.
#[test]
pub(crate) fn a_quarantine_at_every_call_under_revoke() {
    quarantine_search(true, "a quarantine at every call, on-exposure: revoke");
}

fn quarantine_search(revoke: bool, name: &str) {
    let mut t = Tally::new();
    for h in lone_runs().into_iter().filter(|h| !h.self_rotating) {
        let n = calls_of(&h);
        for call in 0..=n {
            let mut plain = h.clone();
            plain.quarantine = Some(call);
            plain.revoke = revoke;
            t.run(&plain);
            for kind in KINDS {
                let mut faulty = plain.clone();
                faulty.faults = vec![Fault {
                    run: 0,
                    call: (call + 3) % n.max(1),
                    kind,
                    persistent: false,
                }];
                t.run(&faulty);
            }
        }
    }
    t.finish(name);
}

#[test]
pub(crate) fn every_pair_of_faults_in_a_rotation() {
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
pub(crate) fn two_runs_interleaved() {
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
    let starts = [
        Start::Empty,
        Start::Aged,
        Start::Rotated,
        Start::Retired,
        Start::Moved,
        Start::MovedRetiring,
        Start::MovedRetired,
    ];
    for seed in 0..seeds {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let start = starts[rng.below(starts.len())];
        let mut h = base(
            start,
            rng.chance(2) && !start.moved(),
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
pub(crate) fn the_world_model_is_sound() {
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
