//! End-to-end: the rotation protocol (CONTRACT §4, §5) against moto and the fake GitHub, one
//! test for each way the first release could break a consumer: two runs at once, a deactivate
//! during verification, a partial rollback, retirement too early, resent calls that are not
//! idempotent, the runner's clock, and stuck states that stayed quiet. (Every fault at every
//! call, pairs of faults and interleavings are explored by `tests/simulation.rs`.)

use crate::support::fixtures::{MANIFEST, USER, add_consumer_stores, consumers, seed_consumers};
use crate::support::*;
use aws_key_rotator::rotation::journal::{JOURNAL_TAG, LEASE_TAG, Phase};

fn with_verify(workflow_repo: &str) -> String {
    format!(
        "{MANIFEST}    verify:\n      - repository: {workflow_repo}\n        workflow: verify.yml\n"
    )
}

/// The user, its three consumers, and (unless `None`) a key of `age` days in all of them.
fn setup(env: &TestEnv, age: Option<i64>) -> Option<Key> {
    env.rotating_user(USER);
    add_consumer_stores(env);
    env.write_manifest(MANIFEST);
    let days = age?;
    let key = env.aged_key(USER, days);
    seed_consumers(env, &key, days);
    Some(key)
}

/// The manifest with a verification workflow in `repository` that fails whatever it reads.
fn failing_verification(env: &TestEnv, repository: &str) {
    env.write_manifest(&with_verify(repository));
    env.github.add_workflow(
        repository,
        "verify.yml",
        WorkflowSpec {
            environment: None,
            mode: RunMode::Fail,
        },
    );
}

/// Every consumer holds the same working key, id and secret together; returns it.
fn one_working_key(env: &TestEnv) -> Key {
    let first = env
        .held_default(&repo("acme/web"))
        .expect("acme/web holds a key");
    for (scope, id, secret) in consumers() {
        let k = env.held(&scope, id, secret).expect("a key");
        assert_eq!(k.id, first.id, "{scope:?}");
        assert_eq!(
            k.secret, first.secret,
            "{scope:?}: id and secret belong together"
        );
    }
    assert!(env.sts_accepts(&first), "the key works");
    first
}

fn slow_lease() -> Vec<(String, String)> {
    vec![
        ("GITHUB_ACTIONS".into(), "true".into()),
        ("INPUT_GITHUB-TOKEN".into(), fake_github::TOKEN.into()),
        ("AWS_KEY_ROTATOR_LEASE_SETTLE_MS".into(), "400".into()),
    ]
}

/// Case 1: two runs at once. One takes the lease; the other stops before changing anything,
/// naming the run that holds it, and every consumer ends with one working pair.
#[test]
fn two_runs_at_once_one_refuses_and_every_consumer_holds_one_working_pair() {
    for age in [None, Some(100)] {
        let env = TestEnv::new();
        let old = setup(&env, age);
        let creds = env.admin.clone();
        let runs: Vec<Run> = std::thread::scope(|s| {
            let a = s.spawn(|| env.exec(&creds, &[], slow_lease()));
            let b = s.spawn(|| env.exec(&creds, &[], slow_lease()));
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        let mut codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
        codes.sort();
        assert_eq!(codes, [0, 3], "{}\n----\n{}", runs[0].all(), runs[1].all());
        let loser = runs.iter().find(|r| r.code == 3).unwrap();
        assert!(
            loser.stderr.contains("is changing user") || loser.stderr.contains("took the lease"),
            "names the other run: {}",
            loser.stderr
        );
        assert!(
            !loser.stderr.contains("deactivate and delete"),
            "{}",
            loser.stderr
        );
        let held = one_working_key(&env);
        assert_eq!(env.keys(USER).last().unwrap().0, held.id, "the newest key");
        let expected_keys = if old.is_some() { 2 } else { 1 };
        assert_eq!(env.keys(USER).len(), expected_keys);
        assert!(
            !env.tags(USER).contains_key(LEASE_TAG),
            "the lease was given back"
        );
    }
}

/// Case 2: a deactivate while a rotation waits for its verification is refused (the run holds
/// the lease, and the rotation is not verified); when the verification then fails, the old key
/// put back is still Active.
#[test]
fn a_deactivate_during_verification_is_refused_and_the_rollback_stays_safe() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    env.write_manifest(&with_verify("acme/api"));
    env.github.add_workflow(
        "acme/api",
        "verify.yml",
        WorkflowSpec {
            environment: None,
            mode: RunMode::NeverComplete,
        },
    );
    let admin = env.admin.clone();
    std::thread::scope(|s| {
        let rotate = s.spawn(|| env.action(&old, &[]));
        // Wait for the new key, then try to retire the old one, forcefully, from elsewhere.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while env.keys(USER).len() < 2 {
            assert!(std::time::Instant::now() < deadline, "no new key appeared");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let deactivate = env.action(&admin, &[("command", "deactivate"), ("force", "true")]);
        assert_eq!(deactivate.code, 3, "{}", deactivate.all());
        assert_eq!(env.keys(USER)[0], (old.id.clone(), "Active".into()));
        let rotate = rotate.join().unwrap();
        assert_eq!(
            rotate.code,
            1,
            "verification never completes: {}",
            rotate.all()
        );
    });
    assert_eq!(env.keys(USER)[0], (old.id.clone(), "Active".into()));
    assert_eq!(
        one_working_key(&env).id,
        old.id,
        "every consumer holds the old key again"
    );
    assert_eq!(env.journal(USER).unwrap().phase, Phase::RolledBack);
}

/// Case 3: a rollback that could not reach every consumer, or a failed verification when the
/// old values are unknown, is recorded (`partial`): the next deactivate refuses and status is
/// loud, where the first release read `pending-deactivation` and broke the rolled-back ones.
#[test]
fn a_partial_rollback_is_remembered_and_retirement_refuses() {
    for dedicated_identity in [false, true] {
        let env = TestEnv::new();
        let old = setup(&env, Some(100)).unwrap();
        env.write_manifest(&with_verify("acme/web"));
        env.github.add_workflow(
            "acme/web",
            "verify.yml",
            WorkflowSpec {
                environment: None,
                mode: RunMode::Fail,
            },
        );
        let creds = if dedicated_identity {
            env.admin.clone()
        } else {
            // Putting acme/api back fails: its two writes of the new key pass, then nothing.
            env.github.add_fault(
                Fault::new(axum::http::Method::PUT, "/acme/api/actions/secrets/", 500).after(2),
            );
            old.clone()
        };
        let run = env.action(&creds, &[]);
        assert_eq!(run.code, 1, "{}", run.all());
        assert_eq!(
            env.journal(USER).unwrap().phase,
            Phase::Partial,
            "{}",
            run.all()
        );
        let keys = env.keys(USER);
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().all(|k| k.1 == "Active"), "both keys stay");
        every_consumer_works(&env);
        let before = env.world(USER);
        let admin = env.admin.clone();
        let run = env.action(&admin, &[("command", "deactivate"), ("force", "true")]);
        assert_eq!(run.code, 3, "{}", run.all());
        assert_eq!(env.world(USER), before, "nothing changed, no tag left");
        let run = env.action(&admin, &[("command", "status")]);
        assert_eq!(run.code, 3, "loud: {}", run.all());
        assert!(run.stdout.contains("::error::"), "{}", run.stdout);
    }
}

/// Case 5: a lost CreateAccessKey answer is not resent; the key it made is found and deleted,
/// so the next run is not blocked by a key nobody holds. A lost DeleteAccessKey answer is done.
#[test]
fn lost_answers_to_create_and_delete_are_settled_by_listing_the_keys() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    env.lose_answer("CreateAccessKey", 1);
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("answer was lost"), "{}", run.stderr);
    assert_eq!(
        env.keys(USER),
        vec![(old.id.clone(), "Active".into())],
        "no orphan key"
    );
    assert_eq!(one_working_key(&env).id, old.id);
    assert_eq!(env.tags(USER), Default::default());
    // The next run is not blocked.
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = one_working_key(&env);
    let run = env.action(&new, &[("command", "deactivate")]);
    assert_eq!(run.code, 0, "{}", run.all());
    env.lose_answer("DeleteAccessKey", 1);
    let run = env.action(&new, &[("command", "delete")]);
    assert_eq!(
        run.code,
        0,
        "a delete whose answer was lost is done: {}",
        run.all()
    );
    assert_eq!(env.keys(USER), vec![(new.id.clone(), "Active".into())]);
    assert_eq!(env.tags(USER), Default::default());
}

/// Case 6: whether a lost secret write landed is settled by the secret's `updated_at` against
/// the value read before, not the runner's clock (here GitHub's clock is two minutes behind
/// the runner's, which the first release read as "did not land").
#[test]
fn a_lost_write_is_settled_by_updated_at_whatever_the_clocks_say() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    env.github.set_clock_skew(chrono::Duration::minutes(-2));
    // Every write of acme/api's secret lands, and every answer is lost.
    env.github.add_fault(
        Fault::new(
            axum::http::Method::PUT,
            "/acme/api/actions/secrets/DEPLOY_KEY_SECRET",
            502,
        )
        .lands(),
    );
    let admin = env.admin.clone();
    let run = env.action(&admin, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let new_id = env.keys(USER)[1].0.clone();
    let api = env
        .held(&repo("acme/api"), "DEPLOY_KEY_ID", "DEPLOY_KEY_SECRET")
        .unwrap();
    assert_eq!(api.id, new_id, "the write landed");
    assert!(env.sts_accepts(&api), "and the pair works");
    let row = run
        .summary
        .lines()
        .find(|l| l.starts_with("| acme/api"))
        .unwrap();
    assert!(
        row.contains(&format!("`{new_id}`")),
        "the report says what it holds: {row}"
    );
    assert!(!row.contains("unknown"), "{row}");
    assert!(
        env.sts_accepts(&old),
        "the old key stays for the consumers that hold it"
    );
}

/// Case 7: a user that needs a person makes every scheduled run loud (exit 3, an annotation).
#[test]
fn stuck_states_are_loud() {
    let env = TestEnv::new();
    let key = setup(&env, Some(100)).unwrap();
    env.deactivate_by_hand(USER, &key.id);
    let admin = env.admin.clone();
    for command in ["status", "rotate", "deactivate", "delete"] {
        let run = env.action(&admin, &[("command", command)]);
        assert_eq!(run.code, 3, "{command}: {}", run.all());
        assert!(
            run.stdout.contains("::error::"),
            "{command}: {}",
            run.stdout
        );
    }
}

// ---- interruptions: killed jobs, cancellations, stalled calls (CONTRACT §12) ------------------

/// Time passes for a dead run's lease: it expires now.
fn expire_lease(env: &TestEnv) {
    let tags = env.tags(USER);
    let lease = tags.get(LEASE_TAG).expect("a lease was left");
    let run = lease
        .split(' ')
        .find_map(|w| w.strip_prefix("run="))
        .expect("the lease names its run");
    env.set_tag(
        USER,
        LEASE_TAG,
        &format!("v1 run={run} until=2000-01-01T00:00:00Z"),
    );
}

/// Each consumer's pair works, id and secret together, with STS (whichever key it is).
fn every_consumer_works(env: &TestEnv) {
    for (scope, id, secret) in consumers() {
        let k = env
            .held(&scope, id, secret)
            .unwrap_or_else(|| panic!("{scope:?}: a pair"));
        assert!(
            env.sts_accepts(&k),
            "{scope:?} holds a pair that does not work"
        );
    }
}

/// A rotation killed (SIGKILL: a lost runner) between acme/api's two writes: the new id beside
/// the old secret. The lease is expired, as a later day finds it.
fn killed_between_a_pairs_writes(env: &TestEnv, old: &Key) {
    // acme/api is written first (acme/web, the rotator's own repository, last); its secret
    // half never answers, and the runner dies there.
    env.github
        .add_fault(Fault::new(axum::http::Method::PUT, "DEPLOY_KEY_SECRET", 500).stalls());
    let run = env.spawn_action(old, &[], &[]);
    env.github.wait_for("PUT", "DEPLOY_KEY_SECRET");
    run.signal(libc::SIGKILL);
    let killed = run.wait(env);
    assert_eq!(killed.code, -1, "{}", killed.all());
    env.github.clear_faults();
    expire_lease(env);
}

/// A split pair mended by another identity (which knows no secret, so it cannot finish the
/// rotation): the mend is recorded in the journal, so the pair, its id now written after its
/// secret, no longer reads as split, and the next run does not mend it again (CONTRACT §12a).
#[test]
fn a_mended_pair_no_longer_reads_as_split() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    killed_between_a_pairs_writes(&env, &old);
    let admin = env.admin.clone();
    let daily = env.action(&admin, &[("command", "deactivate")]);
    assert!(
        daily
            .all()
            .contains("acme/api (repository secrets) held an id and a secret of different keys"),
        "{}",
        daily.all()
    );
    every_consumer_works(&env);
    assert!(env.journal(USER).unwrap().mended.is_some());
    let puts = env.github.count("PUT", "/");
    let status = env.action(&admin, &[("command", "status")]);
    assert!(
        !status
            .all()
            .contains("hold an id and a secret of different keys"),
        "{}",
        status.all()
    );
    let again = env.action(&admin, &[("command", "deactivate")]);
    assert!(
        !again.all().contains("held an id and a secret"),
        "{}",
        again.all()
    );
    assert_eq!(env.github.count("PUT", "/"), puts, "nothing mended twice");
}

/// Issue case 0: the job is killed (SIGKILL: a lost runner) between a consumer's two writes,
/// leaving it with the new id and the old secret. Once the lease has expired, the next daily
/// run, without force, gives it the old id back before anything else; `rotate --force` then
/// leaves every consumer working.
#[test]
fn a_kill_between_a_pairs_two_writes_is_mended_by_the_next_run() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    killed_between_a_pairs_writes(&env, &old);
    let new_id = env
        .github
        .secret(&repo("acme/api"), "DEPLOY_KEY_ID")
        .map(|s| s.value)
        .unwrap();
    assert_ne!(new_id, old.id, "the id half was written");
    assert_eq!(
        env.held(&repo("acme/api"), "DEPLOY_KEY_ID", "DEPLOY_KEY_SECRET")
            .map(|k| env.sts_accepts(&k)),
        Some(false),
        "split: the new id beside the old secret does not authenticate"
    );

    let daily = env.action(&old, &[]);
    assert!(
        daily
            .all()
            .contains("acme/api (repository secrets) held an id and a secret of different keys"),
        "{}",
        daily.all()
    );
    every_consumer_works(&env);
    assert!(
        !env.tags(USER).contains_key(LEASE_TAG),
        "the lease given back"
    );
    // CONTRACT §12a, a lost runner needs no person: with the old key as its credentials the
    // daily run also puts the old key back everywhere, and nothing reads as split.
    assert_eq!(env.journal(USER).map(|j| j.phase), Some(Phase::RolledBack));
    let status = env.action(&old, &[("command", "status")]);
    assert!(
        !status
            .all()
            .contains("hold an id and a secret of different keys"),
        "{}",
        status.all()
    );

    let fixed = env.action(&old, &[("force", "true")]);
    assert!(fixed.code == 0 || fixed.code == 1, "{}", fixed.all());
    every_consumer_works(&env);
}

/// Issue case 5: the runner cancels the job (SIGINT) while it waits for verification. The
/// process starts nothing new, gives the lease back within 5 seconds, exits 130 with a summary
/// of where it stopped; the next `rotate`, without force, verifies again and finishes.
#[test]
fn a_cancelled_job_gives_its_lease_back_and_the_next_run_verifies_again() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    env.write_manifest(&with_verify("acme/web"));
    env.github.add_workflow(
        "acme/web",
        "verify.yml",
        WorkflowSpec {
            environment: None,
            mode: RunMode::Normal,
        },
    );
    env.github.set_run_time(std::time::Duration::from_secs(600));
    let run = env.spawn_action(
        &old,
        &[],
        &[("AWS_KEY_ROTATOR_VERIFY_TIMEOUT_MS", "600000")],
    );
    env.github.wait_for("GET", "/actions/runs/");
    let signalled = std::time::Instant::now();
    run.signal(libc::SIGINT);
    let stopped = run.wait(&env);
    let took = signalled.elapsed();
    assert_eq!(stopped.code, 130, "{}", stopped.all());
    assert!(
        took < std::time::Duration::from_secs(5),
        "stopped after {took:?}"
    );
    assert!(
        !env.tags(USER).contains_key(LEASE_TAG),
        "the lease given back"
    );
    assert_eq!(env.journal(USER).map(|j| j.phase), Some(Phase::Written));
    assert!(
        stopped.summary.contains("interrupted"),
        "{}",
        stopped.summary
    );
    assert!(stopped.stderr.contains("SIGINT"), "{}", stopped.stderr);
    let new = one_working_key(&env);
    assert_ne!(new.id, old.id);

    env.github
        .set_run_time(std::time::Duration::from_millis(50));
    let next = env.action(&new, &[]);
    assert_eq!(next.code, 0, "{}", next.all());
    assert_eq!(env.journal(USER).map(|j| j.phase), Some(Phase::Verified));
    assert_eq!(one_working_key(&env).id, new.id);
}

/// Issue case 6: a GitHub request that never answers is a lost answer after the call timeout:
/// the run settles it by `updated_at` and goes on, every consumer working.
#[test]
fn a_github_call_that_never_answers_is_a_lost_answer() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    env.github.add_fault(
        Fault::new(axum::http::Method::PUT, "DEPLOY_KEY_ID", 500)
            .lands()
            .stalls()
            .times(1),
    );
    let started = std::time::Instant::now();
    let run = env.exec(
        &old,
        &[],
        vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("INPUT_GITHUB-TOKEN".into(), fake_github::TOKEN.into()),
            ("AWS_KEY_ROTATOR_CALL_TIMEOUT_SECONDS".into(), "2".into()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("no answer within 2s"), "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let new = one_working_key(&env);
    assert_ne!(new.id, old.id);
}

/// Issue case 6, AWS side: a CreateAccessKey that takes effect and never answers ends after
/// the call timeout; the key nobody received is deleted, nothing was written, exit 1.
#[test]
fn an_aws_call_that_never_answers_is_a_lost_answer() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    env.stall_answer("CreateAccessKey", 1);
    let before = env.world(USER);
    let run = env.exec(
        &old,
        &[],
        vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("INPUT_GITHUB-TOKEN".into(), fake_github::TOKEN.into()),
            ("AWS_KEY_ROTATOR_CALL_TIMEOUT_SECONDS".into(), "2".into()),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("was deleted") || run.stderr.contains("nobody could hold it"),
        "{}",
        run.stderr
    );
    assert_eq!(
        env.world(USER),
        before,
        "one key, every consumer as it was, no tag"
    );
    assert_eq!(env.github.count("PUT", "/"), 0);
    one_working_key(&env);
}

/// The binary killed (SIGKILL) at every secret write of a rotation, before and after the write
/// takes effect: once the lease has expired, the next daily run (no force) leaves every
/// consumer with a working pair, and `rotate --force` then converges on one key every consumer
/// holds, which the retirement that follows leaves alone.
#[test]
fn a_kill_at_every_secret_write_leaves_nothing_broken_after_the_next_run() {
    let writes = consumers().len() * 2;
    for n in 0..writes {
        for lands in [false, true] {
            let env = TestEnv::new();
            let old = setup(&env, Some(100)).unwrap();
            let mut fault = Fault::new(axum::http::Method::PUT, "/secrets/", 500)
                .after(n)
                .times(1)
                .stalls();
            if lands {
                fault = fault.lands();
            }
            env.github.add_fault(fault);
            let run = env.spawn_action(&old, &[], &[]);
            env.github.wait_for_nth("PUT", "/secrets/", n + 1);
            run.signal(libc::SIGKILL);
            assert_eq!(run.wait(&env).code, -1);
            env.github.clear_faults();
            let point = format!(
                "killed at write {n} ({})",
                if lands { "after" } else { "before" }
            );
            // Writes 2 and 3 are the rotator's own repository's pair: the one-second window the
            // README describes.
            after_the_kill(&env, &point, n == 2 && lands || n == 3 && !lands);
        }
    }
}

/// What a kill must leave (CONTRACT §12): once the lease has expired, the next daily run (no
/// force) leaves every consumer with a working pair; `rotate --force` then converges on one
/// key every consumer holds, which the retirement that follows leaves alone. `own_window`: the
/// kill may have split the rotator's own repository's pair.
fn after_the_kill(env: &TestEnv, point: &str, own_window: bool) {
    println!("{point}");
    if env.tags(USER).contains_key(LEASE_TAG) {
        expire_lease(env);
    }
    // With self-rotation the run authenticates with what acme/web, the rotator's own
    // repository, holds now. A kill inside the one second between its own two writes (the id
    // landed, the secret not) leaves the step unable to authenticate: the README's window,
    // which a person closes with another identity.
    let mut creds = env.held_default(&repo("acme/web")).unwrap();
    let mut values_known = true;
    if !env.sts_accepts(&creds) {
        assert!(
            own_window,
            "{point}: only the own window can break the step's credentials"
        );
        let denied = env.action(&creds, &[]);
        assert_eq!(denied.code, 2, "{point}: {}", denied.all());
        creds = env.admin.clone();
        values_known = false;
    }
    // A rollback cut short while the step runs with the new key (the write-back had not yet
    // reached the rotator's own repository, written last): the old key's secret is known to
    // nobody here, so finishing the rollback is a person's (the message says so).
    let journal = env.tags(USER).get(JOURNAL_TAG).cloned().unwrap_or_default();
    if journal.contains("phase=rolling-back") && journal.contains(&format!("key={}", creds.id)) {
        values_known = false;
    }
    let daily = env.action(&creds, &[]);
    assert_ne!(daily.code, 2, "{point}: {}", daily.all());
    every_consumer_works(env);
    if !values_known && daily.code == 3 {
        assert!(
            daily.all().contains("old key's secret is not known")
                || daily.all().contains("cannot be known"),
            "{point}: the message says why a person is needed: {}",
            daily.all()
        );
        println!("{point}: a person's (the old values are not known to this step)");
    }
    // No person for a lost runner (CONTRACT §12a): with the step's own key every value is
    // known, and the plain run repaired whatever the kill left.
    if values_known {
        assert_eq!(
            daily.code,
            0,
            "{point}: the plain rotate needed a person: {}",
            daily.all()
        );
        let status = env.action(&creds, &[("command", "status")]);
        assert_ne!(
            status.output("state").as_deref(),
            Some("incomplete"),
            "{point}: {}",
            status.all()
        );
    }

    let creds = env.held_default(&repo("acme/web")).unwrap();
    let fixed = env.action(&creds, &[("force", "true")]);
    assert_ne!(fixed.code, 2, "{point}: {}", fixed.all());
    every_consumer_works(env);
    // What the repair leaves converges: at most one more rotate, then the retirement.
    for _ in 0..3 {
        let creds = one_working_key(env);
        for command in ["deactivate", "delete"] {
            env.action(&creds, &[("command", command), ("force", "true")]);
        }
        if env.keys(USER).len() == 1 {
            break;
        }
        env.action(&creds, &[("force", "true")]);
    }
    let key = one_working_key(env);
    assert_eq!(
        env.keys(USER),
        vec![(key.id.clone(), "Active".to_owned())],
        "{point}: one key left, the one every consumer holds"
    );
}

/// The binary killed (SIGKILL) at every AWS call of a rotation, before and after the call takes
/// effect (moto holds the call open; the process dies there): the same as for secret writes.
#[test]
fn a_kill_at_every_aws_call_leaves_nothing_broken_after_the_next_run() {
    let calls = {
        let env = TestEnv::new();
        let old = setup(&env, Some(100)).unwrap();
        let base = env.aws_calls().0.len();
        let run = env.action(&old, &[]);
        assert_eq!(run.code, 0, "{}", run.all());
        env.aws_calls().0[base..].to_vec()
    };
    assert!(calls.iter().any(|c| c == "CreateAccessKey"), "{calls:?}");
    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "protocol: a rotation makes {} AWS calls ({}); killed at each, before and after",
            calls.len(),
            calls.join(", ")
        );
    }
    for (p, action) in calls.iter().enumerate() {
        let earlier = calls[..p].iter().filter(|a| *a == action).count();
        for applies in [false, true] {
            let env = TestEnv::new();
            let old = setup(&env, Some(100)).unwrap();
            env.stall_call(action, earlier, applies);
            let run = env.spawn_action(&old, &[], &[]);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while env.aws_calls().1 == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{action} #{earlier} never came"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            run.signal(libc::SIGKILL);
            assert_eq!(run.wait(&env).code, -1);
            let point = format!(
                "killed at AWS call {p} ({action} #{earlier}, {})",
                if applies {
                    "after it took effect"
                } else {
                    "before"
                }
            );
            after_the_kill(&env, &point, false);
        }
    }
}

/// A lease in Actions names its workflow run and runner; one whose holder GitHub reports gone
/// is dead at once (CONTRACT §12), while a holder still at work, or one GitHub cannot tell
/// about, keeps it.
#[test]
fn a_lease_whose_workflow_run_is_gone_is_dead_at_once() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    let until = (chrono::Utc::now() + chrono::Duration::minutes(40)).format("%Y-%m-%dT%H:%M:%SZ");
    let in_run = |id: &str, runner: &str| {
        vec![
            ("GITHUB_RUN_ID", id.to_owned()),
            ("GITHUB_RUN_ATTEMPT", "1".to_owned()),
            ("RUNNER_NAME", runner.to_owned()),
        ]
    };
    let run_with = |vars: Vec<(&str, String)>| {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.spawn_action(&old, &[("dry-run", "false")], &vars)
            .wait(&env)
    };
    let lease = |gh: &str| {
        env.set_tag(
            USER,
            LEASE_TAG,
            &format!("v1 run=gh-1-1-9-1 until={until} gh={gh} runner=Runner_A"),
        );
    };

    // Another run GitHub cannot find (or that is still running): the lease holds.
    lease("acme/ops:4242:1");
    let before = env.world(USER);
    let refused = run_with(in_run("500", "Runner B"));
    assert_eq!(refused.code, 3, "{}", refused.all());
    assert_eq!(env.world(USER), before);
    // Another job of this very run attempt, its runner still busy: the lease holds.
    env.github.set_jobs(
        500,
        1,
        &[("in_progress", "Runner A"), ("in_progress", "Runner B")],
    );
    lease("acme/web:500:1");
    let before = env.world(USER);
    let refused = run_with(in_run("500", "Runner B"));
    assert_eq!(refused.code, 3, "{}", refused.all());
    assert_eq!(env.world(USER), before);

    // That job's runner has finished (a job that failed or was cancelled, before this repair):
    // dead at once.
    env.github.set_jobs(
        500,
        1,
        &[("completed", "Runner A"), ("in_progress", "Runner B")],
    );
    let taken = run_with(in_run("500", "Runner B"));
    assert_eq!(taken.code, 0, "{}", taken.all());
    assert!(
        taken.all().contains("its holder has finished"),
        "{}",
        taken.all()
    );
    let new = one_working_key(&env);
    assert_ne!(new.id, old.id);
    assert!(!env.tags(USER).contains_key(LEASE_TAG));

    // Another run that GitHub reports completed: dead at once.
    let done = env.github.add_completed_run("acme/ops");
    lease(&format!("acme/ops:{done}:1"));
    let taken = env
        .spawn_action(
            &new,
            &[("command", "deactivate")],
            &[("GITHUB_RUN_ID", "501"), ("RUNNER_NAME", "Runner C")],
        )
        .wait(&env);
    assert_eq!(taken.code, 0, "{}", taken.all());
    assert!(
        taken.all().contains("its holder has finished"),
        "{}",
        taken.all()
    );
}

/// Issue case 8: the job is killed right after CreateAccessKey took effect, before any secret
/// was written. The journal recorded the intent (`creating`) first, so once the lease has
/// expired the next daily run deletes the key nobody got and rotates again, without a person.
#[test]
fn a_kill_right_after_create_access_key_is_undone_by_the_next_daily_run() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    env.stall_answer("CreateAccessKey", 1);
    let run = env.spawn_action(&old, &[], &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while env.keys(USER).len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no key was created");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run.signal(libc::SIGKILL);
    assert_eq!(run.wait(&env).code, -1);
    let orphan = env
        .keys(USER)
        .into_iter()
        .map(|(id, _)| id)
        .find(|id| *id != old.id)
        .unwrap();
    assert_eq!(env.journal(USER).map(|j| j.phase), Some(Phase::Creating));
    assert_eq!(env.github.count("PUT", "/"), 0, "no secret was written");
    expire_lease(&env);

    let daily = env.action(&old, &[]);
    assert_eq!(daily.code, 0, "{}", daily.all());
    assert!(
        daily
            .all()
            .contains(&format!("deleted access key {orphan}")),
        "{}",
        daily.all()
    );
    let new = one_working_key(&env);
    assert_ne!(new.id, old.id);
    assert_ne!(new.id, orphan);
    assert!(env.keys(USER).iter().all(|(id, _)| *id != orphan));
}

/// Issue case 9: a failed verification, then every answer to one consumer's id write during the
/// rollback lost (the writes land). The pair is one unit: the id is settled by `updated_at`, the
/// secret completes it, and every consumer holds a working pair.
#[test]
fn a_rollback_whose_id_write_answers_are_lost_still_leaves_whole_pairs() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    failing_verification(&env, "acme/web");
    // The forward write of acme/api's id passes; every later one lands and answers 500.
    env.github.add_fault(
        Fault::new(
            axum::http::Method::PUT,
            "/acme/api/actions/secrets/DEPLOY_KEY_ID",
            500,
        )
        .after(1)
        .lands(),
    );
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    every_consumer_works(&env);
    let api = env
        .held(&repo("acme/api"), "DEPLOY_KEY_ID", "DEPLOY_KEY_SECRET")
        .unwrap();
    assert_eq!(
        api.id, old.id,
        "the rollback's id landed, and its secret followed"
    );
    assert_eq!(api.secret, old.secret);
    env.github.clear_faults();
    // The next job (its step reads acme/web, which holds the old key again) is not stuck.
    let next = env.action(&old, &[("command", "status")]);
    assert_ne!(next.code, 2, "{}", next.all());
}

/// The binary killed (SIGKILL) at every content-creating GitHub request of a rotation with
/// verification — every secret write and the dispatch — and of one whose verification fails,
/// so the kill also lands in the rollback's writes; before and after each takes effect.
#[test]
fn a_kill_at_every_github_write_with_verification_and_in_a_rollback_leaves_nothing_broken() {
    let workflow = |env: &TestEnv, mode: RunMode| {
        env.github.add_workflow(
            "acme/web",
            "verify.yml",
            WorkflowSpec {
                environment: None,
                mode,
            },
        );
    };
    for verifies in [true, false] {
        let mode = || {
            if verifies {
                RunMode::Normal
            } else {
                RunMode::Fail
            }
        };
        let writes: Vec<(String, String)> = {
            let env = TestEnv::new();
            let old = setup(&env, Some(100)).unwrap();
            env.write_manifest(&with_verify("acme/web"));
            workflow(&env, mode());
            let base = env.github.started().len();
            let run = env.action(&old, &[]);
            assert_eq!(run.code, if verifies { 0 } else { 1 }, "{}", run.all());
            env.github.started()[base..]
                .iter()
                .filter_map(|l| l.split_once(' '))
                .filter(|(m, _)| *m == "PUT" || *m == "POST")
                .map(|(m, p)| (m.to_owned(), p.to_owned()))
                .collect()
        };
        assert_eq!(writes.len(), if verifies { 7 } else { 13 }, "{writes:?}");
        for (n, (method, path)) in writes.iter().enumerate() {
            let earlier = writes[..n].iter().filter(|w| w.1 == *path).count();
            for lands in [false, true] {
                let env = TestEnv::new();
                let old = setup(&env, Some(100)).unwrap();
                env.write_manifest(&with_verify("acme/web"));
                workflow(&env, mode());
                let m: axum::http::Method = method.parse().unwrap();
                let mut fault = Fault::new(m, path, 500).after(earlier).times(1).stalls();
                if lands {
                    fault = fault.lands();
                }
                env.github.add_fault(fault);
                let run = env.spawn_action(&old, &[], &[]);
                env.github.wait_for_nth(method, path, earlier + 1);
                run.signal(libc::SIGKILL);
                assert_eq!(run.wait(&env).code, -1);
                env.github.clear_faults();
                workflow(&env, RunMode::Normal);
                let point = format!(
                    "verification {}: killed at write {n} ({method} {path}, {})",
                    if verifies { "succeeds" } else { "fails" },
                    if lands { "after" } else { "before" }
                );
                // The rotator's own repository's pair is cut when the kill falls between its
                // two writes, forward (writes 2, 3) or in the rollback (8, 9).
                let own = path.starts_with("/repos/acme/web/actions/secrets/");
                after_the_kill(&env, &point, own);
            }
        }
    }
}

/// CONTRACT §12a, item 4 of the adversary: anyone with iam:TagUser alone can write a `creating`
/// journal naming no key. Written at the creation of a second key a person made and uses
/// outside the manifest, with no lease, it made the next daily rotate delete that key at
/// once. Now the key is provably somebody's (IAM has seen it used): `conflict`, loud, and
/// nothing is deleted or deactivated, with force neither.
#[test]
fn a_forged_creating_journal_never_deletes_a_key_someone_uses() {
    use aws_key_rotator::rotation::journal::Journal;
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    let persons = env.create_key(USER);
    env.remember(&persons.secret);
    env.record_use(&persons.id, 1, "s3");
    let created = runtime().block_on(async {
        let keys = env
            .iam()
            .list_access_keys()
            .user_name(USER)
            .send()
            .await
            .unwrap();
        let k = keys
            .access_key_metadata()
            .iter()
            .find(|k| k.access_key_id() == Some(persons.id.as_str()))
            .unwrap()
            .clone();
        let d = k.create_date().unwrap();
        chrono::DateTime::<chrono::Utc>::from_timestamp(d.secs(), 0).unwrap()
    });
    let forged = Journal::creating("gh-1-1-1-1", created);
    env.set_tag(USER, JOURNAL_TAG, &forged.value());
    for force in ["false", "true"] {
        let run = env.changes_nothing(USER, 3, || env.action(&old, &[("force", force)]));
        assert!(
            run.all().contains("has been used") && run.all().contains(&persons.id),
            "{}",
            run.all()
        );
    }
    assert_eq!(
        env.keys(USER),
        vec![
            (old.id.clone(), "Active".to_owned()),
            (persons.id.clone(), "Active".to_owned())
        ]
    );
    assert!(env.sts_accepts(&persons));
    let status = env.action(&old, &[("command", "status")]);
    assert_eq!(
        status.output("state").as_deref(),
        Some("conflict"),
        "{}",
        status.all()
    );
    env.assert_no_leaks();
}

/// CONTRACT §12a, item 8: the rotator's own repository (GITHUB_REPOSITORY, acme/web) is written
/// last in every write path, the write-back of a failed verification included: a write-back
/// cut short then never leaves the next job of its own repository a pair of two keys.
#[test]
fn the_write_back_writes_the_rotators_own_repository_last() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    failing_verification(&env, "acme/api");
    let run = env.action(&old, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    one_working_key(&env);
    let log = env.github.log();
    let dispatched = log
        .iter()
        .position(|l| l.starts_with("POST ") && l.contains("/dispatches"))
        .expect("dispatched");
    let puts: Vec<&String> = log[dispatched..]
        .iter()
        .filter(|l| l.starts_with("PUT ") && l.contains("/secrets/"))
        .collect();
    let first_own = puts
        .iter()
        .position(|l| l.contains("/acme/web/"))
        .expect("acme/web restored");
    let last_other = puts
        .iter()
        .rposition(|l| l.contains("/acme/api/"))
        .expect("acme/api restored");
    assert!(last_other < first_own, "{puts:#?}");
}

/// CONTRACT §12a, item 5, settled: a failed verification's write-back is cut short (the runner
/// lost while acme/web's write-back hangs; acme/api already holds the old key again, its
/// secrets as fresh as the new key). The journal says `rolling-back`, so the next rotate never
/// resumes the verification (which acme/web, still on the new key, would pass): without the
/// old key as credentials it refuses, loud; with them it finishes the write-back by itself.
#[test]
fn a_rollback_cut_short_is_finished_and_never_resumed_as_a_success() {
    let env = TestEnv::new();
    let old = setup(&env, Some(100)).unwrap();
    failing_verification(&env, "acme/web");
    // The forward write of acme/web's id passes; its write-back never answers.
    env.github.add_fault(
        Fault::new(
            axum::http::Method::PUT,
            "/acme/web/actions/secrets/AWS_ACCESS_KEY_ID",
            500,
        )
        .after(1)
        .stalls(),
    );
    let run = env.spawn_action(&old, &[], &[]);
    env.github
        .wait_for_nth("PUT", "/acme/web/actions/secrets/AWS_ACCESS_KEY_ID", 2);
    run.signal(libc::SIGKILL);
    assert_eq!(run.wait(&env).code, -1);
    env.github.clear_faults();
    expire_lease(&env);
    assert_eq!(
        env.journal(USER).map(|j| j.phase),
        Some(Phase::RollingBack),
        "the write-back's intent was recorded first"
    );
    let api = env
        .held(&repo("acme/api"), "DEPLOY_KEY_ID", "DEPLOY_KEY_SECRET")
        .unwrap();
    assert_eq!(api.id, old.id, "acme/api was put back before the cut");
    let web = env.held_default(&repo("acme/web")).unwrap();
    assert_ne!(web.id, old.id, "acme/web still holds the new key");
    // The verification would pass now on acme/web: it must not be taken for the proof.
    env.github.add_workflow(
        "acme/web",
        "verify.yml",
        WorkflowSpec {
            environment: None,
            mode: RunMode::Normal,
        },
    );
    let dispatches = env.github.count("POST", "/dispatches");
    let admin = env.admin.clone();
    let daily = env.changes_nothing(USER, 3, || env.action(&admin, &[]));
    assert!(
        daily
            .all()
            .contains("stopped while it put the old key back"),
        "{}",
        daily.all()
    );
    assert_eq!(env.github.count("POST", "/dispatches"), dispatches);
    // The next job of the rotator's own repository starts with the old key: it finishes.
    let finish = env.action(&old, &[]);
    assert_ne!(finish.code, 2, "{}", finish.all());
    assert_eq!(
        env.github.count("POST", "/dispatches"),
        dispatches,
        "never verified"
    );
    for (scope, id, secret) in consumers() {
        assert_eq!(
            env.held(&scope, id, secret).unwrap().id,
            old.id,
            "{scope:?}"
        );
    }
    every_consumer_works(&env);
    assert_eq!(env.journal(USER).map(|j| j.phase), Some(Phase::RolledBack));
}
