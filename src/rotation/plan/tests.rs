//! The deciders, case by case.
use super::*;
use crate::manifest::{Scope, SecretNames, VerifyWorkflow};
use KeyStatus::{Active as A, Inactive as I};
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}
fn days_ago(d: i64) -> DateTime<Utc> {
    now() - Duration::days(d)
}
fn key(id: &str, status: KeyStatus, created: DateTime<Utc>) -> KeyInfo {
    KeyInfo {
        id: id.into(),
        status,
        created,
    }
}
fn user() -> UserSpec {
    crate::testing::user_of(vec![Consumer {
        pull_requests: true,
        scope: Scope::Repository("acme/web".into()),
        secrets: SecretNames::default(),
    }])
}
/// Facts with the journal a finished step leaves: two Active keys are `verified` and an
/// Inactive old key `deactivated`, both when the new key was created (tests override).
fn facts(keys: Vec<KeyInfo>, updated: Option<DateTime<Utc>>) -> Facts {
    let journal = match keys.as_slice() {
        [o, n] => {
            let phase = if o.status == A {
                Phase::Verified
            } else {
                Phase::Deactivated
            };
            let mut j = Journal::new(phase, &n.id, &format!("{}-1", n.id), n.created);
            j.held = Some(n.created);
            Some(j)
        }
        _ => None,
    };
    Facts {
        freshness: vec![Freshness {
            consumer: user().consumers[0].clone(),
            updated_at: updated,
        }],
        keys,
        now: now(),
        step_key_id: None,
        old_last_used: None,
        newest_last_used: None,
        journal,
        has_verify: false,
        newest_unheld: false,
        moved: false,
        lease_tag: false,
        exposure: None,
        exposure_new: false,
        quarantined: false,
    }
}
fn with_phase(mut f: Facts, phase: Phase, at: DateTime<Utc>) -> Facts {
    let j = f.journal.as_mut().expect("two keys");
    j.phase = phase;
    j.at = at;
    f
}
fn no_grace() -> Options {
    Options {
        deactivate_after: Some(Duration::zero()),
        delete_after: Some(Duration::zero()),
        ..Options::default()
    }
}
fn force() -> Options {
    Options {
        force: true,
        ..Options::default()
    }
}
fn is_act(p: &Plan) -> bool {
    matches!(p, Plan::Act { .. })
}
fn refused(p: &Plan, needle: &str) -> bool {
    matches!(p, Plan::Refuse(m) if m.contains(needle))
}

#[test]
fn bootstrap_creates_and_writes() {
    let p = rotate(&user(), &facts(vec![], None), &Options::default());
    let Plan::Act { act, old_key } = p else {
        panic!("{p:?}")
    };
    let steps = act.steps();
    assert_eq!(old_key, None);
    assert_eq!(steps[0], Step::CreateKey);
    assert_eq!(steps[1], Step::ProveNewKey);
    assert!(
        matches!(&steps[2], Step::WriteSecrets(c) if c.scope == Scope::Repository("acme/web".into()))
    );
}

#[test]
fn current_rotates_only_when_due_or_forced() {
    let young = facts(vec![key("K1", A, days_ago(89))], None);
    let p = rotate(&user(), &young, &Options::default());
    assert!(
        matches!(&p, Plan::Nothing(m) if m.contains("due in 1 days")),
        "{p:?}"
    );
    assert!(is_act(&rotate(&user(), &young, &force())));
    let due = facts(vec![key("K1", A, days_ago(90))], None);
    assert!(
        matches!(rotate(&user(), &due, &Options::default()), Plan::Act { old_key: Some(k), .. } if k == "K1")
    );
}

#[test]
fn inactive_and_conflict_refuse() {
    let p = rotate(
        &user(),
        &facts(vec![key("K1", I, days_ago(200))], None),
        &force(),
    );
    assert!(refused(&p, "only an Inactive key"), "{p:?}");
    let p = rotate(
        &user(),
        &facts(
            vec![key("K1", A, days_ago(9)), key("K2", I, days_ago(1))],
            None,
        ),
        &force(),
    );
    assert!(refused(&p, "combination"), "{p:?}");
}

#[test]
fn pending_deactivation_does_nothing() {
    let f = facts(
        vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
        Some(now()),
    );
    assert!(
        matches!(rotate(&user(), &f, &Options::default()), Plan::Nothing(m) if m.contains("awaits `deactivate`"))
    );
}

#[test]
fn incomplete_refuses_and_force_recovers() {
    let f = with_phase(
        facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
            Some(days_ago(2)),
        ),
        Phase::Partial,
        days_ago(1),
    );
    assert!(refused(
        &rotate(&user(), &f, &Options::default()),
        "acme/web (repository secrets)"
    ));
    let Plan::Act { act, old_key } = rotate(&user(), &f, &force()) else {
        panic!()
    };
    let steps = act.steps();
    assert_eq!(old_key.as_deref(), Some("K1"));
    assert!(matches!(&steps[0], Step::DeleteKey { key_id, .. } if key_id == "K2"));
    let mut own = f.clone();
    own.step_key_id = Some("K2".into());
    // Repairs: with the new key as credentials, finish the push; with the old, roll back.
    let Plan::Act { act, .. } = rotate(&user(), &own, &force()) else {
        panic!()
    };
    let steps = act.steps();
    assert_eq!(steps[0], Step::AdoptStepKey);
    assert!(matches!(&steps[1], Step::WriteSecrets(_)));
    own.step_key_id = Some("K1".into());
    assert!(
        matches!(rotate(&user(), &own, &force()), Plan::Act { act, .. } if act.steps() == vec![Step::RollBack])
    );
}

#[test]
fn pending_deletion_waits_refuses_or_deletes_first() {
    let young = facts(
        vec![key("K1", I, days_ago(100)), key("K2", A, days_ago(10))],
        None,
    );
    assert!(
        matches!(rotate(&user(), &young, &Options::default()), Plan::Nothing(m) if m.contains("awaits `delete`"))
    );
    let due = facts(
        vec![key("K1", I, days_ago(200)), key("K2", A, days_ago(95))],
        None,
    );
    assert!(refused(
        &rotate(&user(), &due, &Options::default()),
        "delete-inactive"
    ));
    let opts = Options {
        delete_inactive: true,
        ..Options::default()
    };
    let Plan::Act { act, old_key } = rotate(&user(), &due, &opts) else {
        panic!()
    };
    let steps = act.steps();
    assert_eq!(old_key.as_deref(), Some("K2"));
    assert!(matches!(&steps[0], Step::DeleteKey { key_id, .. } if key_id == "K1"));
}

#[test]
fn deactivate_rules() {
    let two = facts(
        vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
        Some(now()),
    );
    assert!(
        matches!(deactivate(&user(), &two, &Options::default()), Plan::Act { act, .. } if act.steps() == vec![Step::Deactivate { key_id: "K1".into() }])
    );
    // the only key, no key: nothing to do (a fleet-wide deactivate passes over them)
    assert!(matches!(
        deactivate(&user(), &facts(vec![key("K1", A, days_ago(1))], None), &force()),
        Plan::Nothing(m) if m.contains("nothing to deactivate")
    ));
    assert!(matches!(
        deactivate(&user(), &facts(vec![], None), &force()),
        Plan::Nothing(m) if m.contains("no access key")
    ));
    assert!(refused(
        &deactivate(
            &user(),
            &facts(vec![key("K1", I, days_ago(1))], None),
            &force()
        ),
        "only key"
    ));
    // the step's own key
    let mut own = two.clone();
    own.step_key_id = Some("K1".into());
    assert!(refused(
        &deactivate(&user(), &own, &force()),
        "authenticated with K1"
    ));
    // named key: the newest, a stranger, the right one
    let named = |id: &str| Options {
        old_access_key_id: Some(id.into()),
        ..Options::default()
    };
    assert!(refused(&deactivate(&user(), &two, &named("K2")), "newest"));
    assert!(
        matches!(deactivate(&user(), &two, &named("K9")), Plan::Invalid(m) if m.contains("not a key of user ci"))
    );
    assert!(is_act(&deactivate(&user(), &two, &named("K1"))));
    // incomplete needs force
    let stale = with_phase(
        facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
            Some(days_ago(3)),
        ),
        Phase::Partial,
        days_ago(1),
    );
    assert!(refused(
        &deactivate(&user(), &stale, &Options::default()),
        "not updated"
    ));
    assert!(refused(
        &deactivate(&user(), &stale, &force()),
        "force does not override"
    ));
    // already done
    let done = facts(
        vec![key("K1", I, days_ago(100)), key("K2", A, days_ago(1))],
        None,
    );
    assert!(matches!(
        deactivate(&user(), &done, &Options::default()),
        Plan::Nothing(_)
    ));
    let gone = facts(vec![key("K2", A, days_ago(1))], None);
    assert!(
        matches!(deactivate(&user(), &gone, &named("K1")), Plan::Nothing(m) if m.contains("already deleted, or mistyped"))
    );
}

#[test]
fn stragglers_refuse_unless_forced() {
    let new_created = now() - Duration::hours(2);
    let mut f = facts(
        vec![key("K1", A, days_ago(100)), key("K2", A, new_created)],
        Some(now()),
    );
    let used = |minutes_after: i64| LastUse {
        date: Some(new_created + Duration::minutes(minutes_after)),
        service: "s3".into(),
        region: "eu-west-1".into(),
    };
    f.old_last_used = Some(used(16));
    let p = deactivate(&user(), &f, &no_grace());
    assert!(
        refused(
            &p,
            "16 minutes after every consumer held the new key (window 15 minutes)"
        ),
        "{p:?}"
    );
    assert!(refused(&p, "s3 in eu-west-1"));
    assert!(is_act(&deactivate(&user(), &f, &force())));
    f.old_last_used = Some(used(15));
    assert!(is_act(&deactivate(&user(), &f, &no_grace())));
    let narrow = Options {
        straggler_window: Duration::minutes(5),
        ..no_grace()
    };
    f.old_last_used = Some(used(6));
    assert!(refused(
        &deactivate(&user(), &f, &narrow),
        "window 5 minutes"
    ));
    f.old_last_used = Some(LastUse {
        date: None,
        service: "N/A".into(),
        region: "N/A".into(),
    });
    assert!(is_act(&deactivate(&user(), &f, &no_grace())));
}

#[test]
fn delete_rules() {
    let pending = facts(
        vec![key("K1", I, days_ago(100)), key("K2", A, days_ago(1))],
        None,
    );
    assert!(
        matches!(delete(&user(), &pending, &no_grace()), Plan::Act { act, .. } if matches!(&act.steps()[0], Step::DeleteKey { key_id, .. } if key_id == "K1"))
    );
    let active = facts(
        vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
        Some(now()),
    );
    let k1 = Options {
        old_access_key_id: Some("K1".into()),
        ..force()
    };
    assert!(refused(&delete(&user(), &active, &k1), "is Active"));
    assert!(
        matches!(delete(&user(), &active, &force()), Plan::Nothing(m) if m.contains("still Active"))
    );
    assert!(refused(
        &delete(
            &user(),
            &facts(vec![key("K1", I, days_ago(1))], None),
            &force()
        ),
        "only key"
    ));
    assert!(matches!(
        delete(&user(), &facts(vec![key("K1", A, days_ago(1))], None), &force()),
        Plan::Nothing(m) if m.contains("nothing to delete")
    ));
    let named = Options {
        old_access_key_id: Some("K2".into()),
        ..Options::default()
    };
    assert!(refused(&delete(&user(), &pending, &named), "newest"));
}

#[test]
fn grace_periods_hold_retirement_back_quietly() {
    // verified 23 hours ago: deactivate waits; 24 hours: acts; force: acts at once
    let two = |verified_hours_ago: i64| {
        with_phase(
            facts(
                vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(2))],
                Some(now()),
            ),
            Phase::Verified,
            now() - Duration::hours(verified_hours_ago),
        )
    };
    let p = deactivate(&user(), &two(23), &Options::default());
    assert!(
        matches!(&p, Plan::Nothing(m) if m.contains("not yet") && m.contains("2026-11-26 13:00 UTC")),
        "{p:?}"
    );
    assert!(is_act(&deactivate(&user(), &two(24), &Options::default())));
    assert!(is_act(&deactivate(&user(), &two(1), &force())));
    let shorter = Options {
        deactivate_after: Some(Duration::hours(1)),
        ..Options::default()
    };
    assert!(is_act(&deactivate(&user(), &two(1), &shorter)));
    // deactivated 6 days ago: delete waits for the 7th
    let retired = |days: i64| {
        with_phase(
            facts(
                vec![key("K1", I, days_ago(100)), key("K2", A, days_ago(9))],
                None,
            ),
            Phase::Deactivated,
            days_ago(days),
        )
    };
    let p = delete(&user(), &retired(6), &Options::default());
    assert!(
        matches!(&p, Plan::Nothing(m) if m.contains("delete-after-days: 7 days")),
        "{p:?}"
    );
    assert!(is_act(&delete(&user(), &retired(7), &Options::default())));
    assert!(is_act(&delete(&user(), &retired(0), &force())));
}

#[test]
fn external_consumers_need_a_person() {
    let mut u = user();
    u.external = vec!["on-prem backup script".into()];
    let f = facts(
        vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(2))],
        Some(now()),
    );
    assert!(refused(
        &deactivate(&u, &f, &Options::default()),
        "on-prem backup script"
    ));
    assert!(is_act(&deactivate(&u, &f, &force())));
}

#[test]
fn rolled_back_keys_wait_for_every_job_to_end() {
    let rolled = |hours_ago: i64| {
        with_phase(
            facts(
                vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
                Some(now()),
            ),
            Phase::RolledBack,
            now() - Duration::hours(hours_ago),
        )
    };
    assert_eq!(rolled(1).state(), State::RolledBack);
    assert!(
        matches!(rotate(&user(), &rolled(5), &Options::default()), Plan::Nothing(m) if m.contains("rolled back"))
    );
    let Plan::Act { act, .. } = rotate(&user(), &rolled(6), &Options::default()) else {
        panic!()
    };
    let steps = act.steps();
    assert!(matches!(&steps[0], Step::DeleteKey { key_id, .. } if key_id == "K2"));
    assert_eq!(
        steps[1],
        Step::CreateKey,
        "the old key is due, so it rotates again"
    );
    assert!(matches!(
        rotate(&user(), &rolled(0), &force()),
        Plan::Act { .. }
    ));
    assert!(matches!(
        deactivate(&user(), &rolled(9), &force()),
        Plan::Nothing(_)
    ));
    assert!(matches!(
        delete(&user(), &rolled(9), &force()),
        Plan::Nothing(_)
    ));
}

#[test]
fn an_unverified_rotation_is_verified_again_without_a_key_at_hand() {
    let mut u = user();
    u.verify = vec![VerifyWorkflow {
        repository: "acme/web".into(),
        workflow: "v.yml".into(),
        git_ref: None,
    }];
    let mut f = with_phase(
        facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
            Some(now()),
        ),
        Phase::Written,
        days_ago(1),
    );
    f.has_verify = true;
    assert_eq!(f.state(), State::Incomplete);
    // CONTRACT §12: every consumer holds the new key, only the proof is missing: the next
    // rotate runs the verification again without force, and nobody is called.
    let verify_again = |p: &Plan| matches!(p, Plan::Act { act, .. } if matches!(act.steps().as_slice(), [Step::DispatchVerification(_)]));
    let p = rotate(&u, &f, &Options::default());
    assert!(verify_again(&p), "{p:?}");
    assert!(verify_again(&rotate(&u, &f, &force())));
    assert_eq!(attention(&u, &f, &Options::default()), None);
    // A consumer written before the new key existed does not hold it: that needs force.
    f.freshness[0].updated_at = Some(days_ago(3));
    let p = rotate(&u, &f, &Options::default());
    assert!(refused(&p, "verification did not succeed"), "{p:?}");
    assert!(
        refused(&p, "runs the verification workflows again"),
        "{p:?}"
    );
    assert!(attention(&u, &f, &Options::default()).is_some());
}

/// CONTRACT §12: a run killed between CreateAccessKey and its first write leaves a key
/// nobody got; the next rotate deletes it at once and starts over, without a person.
#[test]
fn a_key_created_by_a_run_that_stopped_before_any_write_is_deleted_at_once() {
    let created = days_ago(1);
    let mut f = facts(
        vec![key("K1", A, days_ago(100)), key("K2", A, created)],
        Some(days_ago(100)),
    );
    f.journal = Some(Journal::creating(
        "gh-1-1-7-1",
        created - Duration::seconds(2),
    ));
    f.newest_unheld = true;
    f.newest_last_used = Some(LastUse {
        date: None,
        service: "N/A".into(),
        region: "N/A".into(),
    });
    assert_eq!(f.state(), State::Incomplete);
    assert_eq!(attention(&user(), &f, &Options::default()), None);
    let p = rotate(&user(), &f, &Options::default());
    let Plan::Act { act, .. } = &p else {
        panic!("{p:?}")
    };
    let steps = act.steps();
    assert!(
        matches!(&steps[..2], [Step::DeleteKey { key_id, why }, Step::CreateKey] if key_id == "K2" && why.contains("gh-1-1-7-1")),
        "{steps:?}"
    );
    // CONTRACT §12a: anyone with iam:TagUser can write a `creating` journal. The key is
    // deleted only when it is provably nobody's; otherwise the user is a `conflict` (loud),
    // and no command, not even with force, deletes or deactivates anything.
    for change in 0..6 {
        let mut g = f.clone();
        let needle = match change {
            0 => {
                g.newest_unheld = false;
                "secret was written after"
            }
            1 => {
                g.step_key_id = Some("K2".into());
                "this step is authenticated"
            }
            2 => {
                g.journal = Some(Journal::creating("r", created - Duration::days(2)));
                "outside the window"
            }
            3 => {
                g.journal = Some(Journal::creating("r", created - Duration::minutes(40)));
                "outside the window"
            }
            // The attack: a forged intent at the second key's creation, the key a person's
            // and in use outside the manifest.
            4 => {
                g.journal = Some(Journal::creating("r", created));
                g.newest_last_used = Some(LastUse {
                    date: Some(now() - Duration::hours(1)),
                    service: "s3".into(),
                    region: "us-east-1".into(),
                });
                "has been used"
            }
            _ => {
                g.newest_last_used = None;
                "not known"
            }
        };
        assert!(g.orphan_key().is_none(), "{change}");
        assert_eq!(g.state(), State::Conflict, "{change}");
        let why = attention(&user(), &g, &Options::default()).expect("loud");
        assert!(why.contains(needle), "{change}: {why}");
        for opts in [Options::default(), force()] {
            for plan in [
                rotate(&user(), &g, &opts),
                deactivate(&user(), &g, &opts),
                delete(&user(), &g, &opts),
            ] {
                assert!(matches!(plan, Plan::Refuse(_)), "{change}: {plan:?}");
            }
        }
    }
}

/// CONTRACT §12: the rotator's own repository (its repository and environment secrets) is
/// written last; the manifest's order otherwise.
#[test]
fn the_rotators_own_repository_is_written_last() {
    let mut u = user();
    u.consumers = ["acme/web", "acme/api", "ACME/Web", "acme/db"]
        .iter()
        .enumerate()
        .map(|(i, r)| Consumer {
            pull_requests: true,
            scope: if i == 2 {
                Scope::Environment {
                    repository: (*r).into(),
                    environment: "prod".into(),
                }
            } else {
                Scope::Repository((*r).into())
            },
            secrets: SecretNames::default(),
        })
        .collect();
    let opts = Options {
        own_repository: Some("acme/web".into()),
        ..Options::default()
    };
    let f = facts(vec![key("K1", A, days_ago(100))], None);
    let Plan::Act { act, .. } = rotate(&u, &f, &opts) else {
        panic!()
    };
    let steps = act.steps();
    let order: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::WriteSecrets(c) => Some(c.scope.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "acme/api (repository secrets)",
            "acme/db (repository secrets)",
            "acme/web (repository secrets)",
            "ACME/Web environment \"prod\""
        ]
    );
}

#[test]
fn who_needs_a_person() {
    let o = Options::default();
    assert!(attention(&user(), &facts(vec![key("K1", I, days_ago(1))], None), &o).is_some());
    assert!(attention(&user(), &facts(vec![key("K1", A, days_ago(1))], None), &o).is_none());
    let stale = with_phase(
        facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
            Some(days_ago(3)),
        ),
        Phase::Partial,
        days_ago(1),
    );
    assert!(attention(&user(), &stale, &o).is_some());
    assert!(attention(&user(), &stale, &force()).is_none());
    // a retirement a day past its grace (held back by a straggler, say)
    let verified = |hours_ago: i64| {
        with_phase(
            facts(
                vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(3))],
                Some(now()),
            ),
            Phase::Verified,
            now() - Duration::hours(hours_ago),
        )
    };
    assert!(attention(&user(), &verified(48), &o).is_none());
    assert!(
        attention(&user(), &verified(49), &o)
            .unwrap()
            .contains("still Active")
    );
    let retired = with_phase(
        facts(
            vec![key("K1", I, days_ago(100)), key("K2", A, days_ago(20))],
            None,
        ),
        Phase::Deactivated,
        days_ago(9),
    );
    assert!(
        attention(&user(), &retired, &o)
            .unwrap()
            .contains("due for deletion")
    );
}

// ---- a user whose every consumer assumes the role (CONTRACT §13) ------------------------------

fn moved_user() -> UserSpec {
    let mut u = user();
    u.on_role = std::mem::take(&mut u.consumers);
    u
}
fn moved(keys: Vec<KeyInfo>, journal: Option<Journal>, used: Option<DateTime<Utc>>) -> Facts {
    Facts {
        freshness: vec![],
        journal,
        moved: true,
        old_last_used: used.map(|d| LastUse {
            date: Some(d),
            service: "s3".into(),
            region: "us-east-1".into(),
        }),
        ..facts(keys, None)
    }
}

#[test]
fn a_moved_user_gets_no_new_key_and_its_retirement_is_recorded_first() {
    let u = moved_user();
    let k = key("AKIAOLD", A, days_ago(200));
    for plan in [
        rotate(&u, &moved(vec![k.clone()], None, None), &force()),
        deactivate(&u, &moved(vec![k.clone()], None, None), &force()),
    ] {
        assert!(
            matches!(&plan, Plan::Act { act: Act::StartRetirement { key_id }, .. } if key_id == "AKIAOLD"),
            "{plan:?}"
        );
    }
    assert_eq!(moved(vec![k], None, None).state(), State::Migrating);
    let none = rotate(&u, &moved(vec![], None, None), &force());
    assert!(
        matches!(&none, Plan::Nothing(m) if m.contains("migrated")),
        "{none:?}"
    );
    assert_eq!(moved(vec![], None, None).state(), State::Migrated);
    assert!(attention(&u, &moved(vec![], None, None), &Options::default()).is_none());
}

#[test]
fn a_moved_users_key_is_deactivated_after_the_grace_and_only_without_stragglers() {
    let u = moved_user();
    let k = key("AKIAOLD", A, days_ago(200));
    let since = now() - Duration::hours(30);
    let j = Journal::new(Phase::Moved, &k.id, "AKIAOLD-1", since);
    let f = |used| moved(vec![k.clone()], Some(j.clone()), used);
    assert_eq!(f(None).state(), State::PendingDeactivation);
    // Within the 24 hours: not yet.
    let young = Journal::new(Phase::Moved, &k.id, "AKIAOLD-1", now() - Duration::hours(2));
    let early = deactivate(
        &u,
        &moved(vec![k.clone()], Some(young), None),
        &Options::default(),
    );
    assert!(
        matches!(&early, Plan::Nothing(m) if m.starts_with("not yet")),
        "{early:?}"
    );
    // Used before the move (plus the window): deactivated.
    let fine = deactivate(
        &u,
        &f(Some(since + Duration::minutes(10))),
        &Options::default(),
    );
    assert!(
        matches!(&fine, Plan::Act { act: Act::Deactivate { key_id }, .. } if key_id == "AKIAOLD"),
        "{fine:?}"
    );
    // Used after the last consumer moved: a straggler.
    let late = deactivate(
        &u,
        &f(Some(since + Duration::hours(3))),
        &Options::default(),
    );
    assert!(refused(&late, "after the last consumer moved"), "{late:?}");
    assert!(is_act(&deactivate(
        &u,
        &f(Some(since + Duration::hours(3))),
        &force()
    )));
    // The step's own key is never deactivated.
    let mut own = f(None);
    own.step_key_id = Some("AKIAOLD".into());
    assert!(refused(
        &deactivate(&u, &own, &force()),
        "authenticated with"
    ));
    // A person confirms the external consumers.
    let mut ext = moved_user();
    ext.external = vec!["a cron job".into()];
    assert!(refused(
        &deactivate(&ext, &f(None), &Options::default()),
        "outside GitHub"
    ));
    // Two days overdue: loud.
    let old = Journal::new(Phase::Moved, &k.id, "AKIAOLD-1", now() - Duration::days(3));
    assert!(
        attention(
            &u,
            &moved(vec![k.clone()], Some(old), None),
            &Options::default()
        )
        .is_some()
    );
    // Delete waits for deactivate.
    assert!(matches!(delete(&u, &f(None), &force()), Plan::Nothing(_)));
}

#[test]
fn a_moved_users_inactive_key_is_deleted_after_delete_after_days() {
    let u = moved_user();
    let k = key("AKIAOLD", I, days_ago(200));
    let at = |d| {
        Some(Journal::new(
            Phase::Deactivated,
            "AKIAOLD",
            "AKIAOLD-1",
            days_ago(d),
        ))
    };
    assert_eq!(
        moved(vec![k.clone()], at(1), None).state(),
        State::PendingDeletion
    );
    let early = delete(
        &u,
        &moved(vec![k.clone()], at(1), None),
        &Options::default(),
    );
    assert!(
        matches!(&early, Plan::Nothing(m) if m.starts_with("not yet")),
        "{early:?}"
    );
    let due = delete(
        &u,
        &moved(vec![k.clone()], at(8), None),
        &Options::default(),
    );
    assert!(
        matches!(&due, Plan::Act { act: Act::Delete(d), .. } if d.key_id == "AKIAOLD"),
        "{due:?}"
    );
    // An Inactive key no journal records: loud, and deleted only with force.
    let bare = moved(vec![k], None, None);
    assert_eq!(bare.state(), State::Inactive);
    assert!(matches!(
        delete(&u, &bare, &Options::default()),
        Plan::Refuse(_)
    ));
    assert!(is_act(&delete(&u, &bare, &force())));
    assert!(attention(&u, &bare, &Options::default()).is_some());
}

#[test]
fn two_keys_of_a_moved_user_are_retired_oldest_first() {
    let u = moved_user();
    let old = key("AKIAOLD", I, days_ago(200));
    let new = key("AKIANEW", A, days_ago(100));
    // The newest key's journal says the old one was deactivated: delete it first.
    let j = Journal::new(Phase::Deactivated, "AKIANEW", "AKIANEW-1", days_ago(10));
    let p = delete(
        &u,
        &moved(vec![old, new.clone()], Some(j), None),
        &Options::default(),
    );
    assert!(
        matches!(&p, Plan::Act { act: Act::Delete(d), .. } if d.key_id == "AKIAOLD"),
        "{p:?}"
    );
    // Then the newer one's retirement starts.
    let p = rotate(&u, &moved(vec![new], None, None), &Options::default());
    assert!(
        matches!(&p, Plan::Act { act: Act::StartRetirement { key_id }, .. } if key_id == "AKIANEW")
    );
}

#[test]
fn a_moved_users_journal_is_believed_only_when_it_fits_the_keys() {
    let u = moved_user();
    let k = key("AKIAOLD", A, days_ago(200));
    // Forged: the retirement "recorded" before the key existed.
    let forged = Journal::new(Phase::Moved, &k.id, "AKIAOLD-1", days_ago(300));
    let f = moved(vec![k.clone()], Some(forged), None);
    assert_eq!(f.state(), State::Conflict);
    assert!(matches!(deactivate(&u, &f, &force()), Plan::Refuse(_)));
    assert!(attention(&u, &f, &Options::default()).is_some());
    // A `deactivated` left on the Active key (a failed attempt): the retirement starts again.
    let stale = Journal::new(Phase::Deactivated, &k.id, "AKIAOLD-1", days_ago(30));
    let f = moved(vec![k.clone()], Some(stale), None);
    assert_eq!(f.state(), State::Migrating);
    // An Inactive key and a `deactivated` about another, deleted key: not this key's record.
    let inactive = key("AKIAOLD", I, days_ago(200));
    let other = Journal::new(Phase::Deactivated, "AKIAGONE", "AKIAGONE-1", days_ago(30));
    let f = moved(vec![inactive], Some(other), None);
    assert_eq!(f.state(), State::Inactive);
    assert!(matches!(
        delete(&u, &f, &Options::default()),
        Plan::Refuse(_)
    ));
}

/// CONTRACT §12a, item 5: a failed rotation's write-back cut short leaves `rolling-back`.
/// Restored consumers' secrets look as fresh as the new key's, but the verification is never
/// resumed: with the old key as credentials the next rotate finishes the write-back without
/// force; otherwise it refuses (loud), and force never takes it for a verification either.
#[test]
fn a_rollback_cut_short_is_finished_never_resumed_as_a_success() {
    let created = days_ago(1);
    let mut u = user();
    u.verify = vec![VerifyWorkflow {
        repository: "acme/web".into(),
        workflow: "verify.yml".into(),
        git_ref: None,
    }];
    let mut f = facts(
        vec![key("OLD", A, days_ago(100)), key("NEW", A, created)],
        Some(created + Duration::minutes(5)),
    );
    f.has_verify = true;
    let mut written = with_phase(f.clone(), Phase::Written, created + Duration::minutes(1));
    written.journal.as_mut().unwrap().held = None;
    assert!(
        written.verification_to_resume(),
        "the contrast: written resumes"
    );
    let cut = with_phase(f, Phase::RollingBack, created + Duration::minutes(2));
    assert_eq!(cut.state(), State::Incomplete);
    assert!(!cut.verification_to_resume());
    let verifies = |p: &Plan| {
        matches!(
            p,
            Plan::Act {
                act: Act::Verify(_),
                ..
            }
        )
    };
    for opts in [Options::default(), force()] {
        let p = rotate(&u, &cut, &opts);
        assert!(!verifies(&p), "{p:?}");
    }
    assert!(refused(
        &rotate(&u, &cut, &Options::default()),
        "put the old key back"
    ));
    assert!(attention(&u, &cut, &Options::default()).is_some());
    let mut own = cut.clone();
    own.step_key_id = Some("OLD".into());
    assert!(matches!(
        rotate(&u, &own, &Options::default()),
        Plan::Act {
            act: Act::RollBack,
            ..
        }
    ));
    assert_eq!(attention(&u, &own, &Options::default()), None);
}

/// CONTRACT §12a: a lost runner needs no person. A rotation stopped while writing (or written,
/// awaiting its proof) is repaired by the next rotate without force wherever this step's
/// credentials are one of the two keys; with another identity it stays `incomplete`, loud, and
/// says that what each consumer holds cannot be known.
#[test]
fn a_rotation_a_lost_runner_left_is_repaired_without_a_person_where_every_value_is_known() {
    let created = days_ago(1);
    for phase in [Phase::Writing, Phase::Written] {
        let f = with_phase(
            facts(
                vec![key("OLD", A, days_ago(100)), key("NEW", A, created)],
                Some(days_ago(100)),
            ),
            phase,
            created,
        );
        let mut with_old = f.clone();
        with_old.step_key_id = Some("OLD".into());
        assert!(matches!(
            rotate(&user(), &with_old, &Options::default()),
            Plan::Act {
                act: Act::RollBack,
                ..
            }
        ));
        assert_eq!(attention(&user(), &with_old, &Options::default()), None);
        let mut with_new = f.clone();
        with_new.step_key_id = Some("NEW".into());
        assert!(matches!(
            rotate(&user(), &with_new, &Options::default()),
            Plan::Act {
                act: Act::Adopt { .. },
                ..
            }
        ));
        let p = rotate(&user(), &f, &Options::default());
        assert!(refused(&p, "cannot be known"), "{phase}: {p:?}");
        assert!(attention(&user(), &f, &Options::default()).is_some());
    }
}

/// CONTRACT §17: an exposed key is rotated whatever its age, deactivated with no grace period
/// and no straggler veto once every consumer holds the new key, and loud until it is Inactive.
#[test]
fn an_exposed_key_is_rotated_at_once_and_retired_without_waiting() {
    use crate::rotation::journal::{Exposure, ExposureSource};
    let young = key("YOUNG", A, days_ago(3));
    let mut f = facts(vec![young.clone()], Some(days_ago(3)));
    f.journal = None;
    assert!(matches!(
        rotate(&user(), &f, &Options::default()),
        Plan::Nothing(_)
    ));
    f.exposure = Some(Exposure {
        keys: vec!["YOUNG".into()],
        source: ExposureSource::Manual,
        at: now(),
    });
    assert!(matches!(
        rotate(&user(), &f, &Options::default()),
        Plan::Act {
            act: Act::Rotate { .. },
            ..
        }
    ));
    assert_eq!(f.reported_state(), State::Exposed);
    assert!(attention(&user(), &f, &Options::default()).is_some());

    // Rotated a minute ago; the exposed key was used since (by whoever found it).
    let new = key("NEW", A, now() - Duration::minutes(2));
    let mut g = with_phase(
        facts(vec![young.clone(), new], Some(now() - Duration::minutes(1))),
        Phase::Verified,
        now() - Duration::minutes(1),
    );
    g.old_last_used = Some(LastUse {
        date: Some(now()),
        service: "s3".into(),
        region: "us-east-1".into(),
    });
    assert!(
        !matches!(
            deactivate(&user(), &g, &Options::default()),
            Plan::Act { .. }
        ),
        "not exposed: the grace period and the straggler rule hold"
    );
    g.exposure = f.exposure.clone();
    assert!(matches!(
        deactivate(&user(), &g, &Options::default()),
        Plan::Act {
            act: Act::Deactivate { .. },
            ..
        }
    ));
    // Its own step cannot retire it: a later job does.
    g.step_key_id = Some("YOUNG".into());
    assert!(matches!(
        deactivate(&user(), &g, &Options::default()),
        Plan::Refuse(_)
    ));
}

/// CONTRACT §17, `on-exposure: revoke`: the exposed key Inactive before the new key is made
/// (not when the step signs with it), and every shape a stopped revoke leaves decided without
/// touching a key someone may work with.
#[test]
fn revoke_deactivates_first_and_a_stopped_revoke_is_finished() {
    use crate::manifest::OnExposure;
    use crate::rotation::journal::{Exposure, ExposureSource};
    let revoking = UserSpec {
        on_exposure: OnExposure::Revoke,
        ..user()
    };
    let exposed = |f: &mut Facts| {
        f.exposure = Some(Exposure {
            keys: vec!["OLD".into()],
            source: ExposureSource::Alert,
            at: now(),
        })
    };
    let old = key("OLD", A, days_ago(3));
    let mut f = facts(vec![old.clone()], Some(days_ago(3)));
    exposed(&mut f);
    let Plan::Act { act, .. } = rotate(&revoking, &f, &Options::default()) else {
        panic!()
    };
    assert_eq!(
        act.steps()[..2],
        [
            Step::Deactivate {
                key_id: "OLD".into()
            },
            Step::CreateKey
        ]
    );
    // `rotate` (the default) never deactivates first.
    let Plan::Act { act, .. } = rotate(&user(), &f, &Options::default()) else {
        panic!()
    };
    assert_eq!(act.steps()[0], Step::CreateKey);
    // A step that signs with the exposed key cannot revoke it and still make a key.
    f.step_key_id = Some("OLD".into());
    let Plan::Act { act, .. } = rotate(&revoking, &f, &Options::default()) else {
        panic!()
    };
    assert_eq!(act.steps()[0], Step::CreateKey);

    // Stopped after the revoke, before the new key: the new key now.
    let revoked = key("OLD", I, days_ago(3));
    let mut g = facts(vec![revoked.clone()], Some(days_ago(3)));
    exposed(&mut g);
    let Plan::Act { act, .. } = rotate(&revoking, &g, &Options::default()) else {
        panic!()
    };
    assert_eq!(act.steps()[0], Step::CreateKey);
    // The same with no exposure on record: a person's to decide.
    g.exposure = None;
    assert!(refused(
        &rotate(&revoking, &g, &Options::default()),
        "only an Inactive key"
    ));

    // Stopped while writing the new key: another new key replaces it.
    let new = key("NEW", A, now() - Duration::minutes(2));
    let mut h = with_phase(
        facts(vec![revoked.clone(), new.clone()], Some(now())),
        Phase::Writing,
        now() - Duration::minutes(1),
    );
    exposed(&mut h);
    let Plan::Act { act, .. } = rotate(&revoking, &h, &Options::default()) else {
        panic!()
    };
    assert!(
        matches!(&act.steps()[..2], [Step::DeleteKey { key_id, .. }, Step::CreateKey] if key_id == "NEW"),
        "{:?}",
        act.steps()
    );
    // Verified, its record not yet written: only the record.
    let verified = with_phase(h.clone(), Phase::Verified, now());
    assert!(matches!(
        rotate(&revoking, &verified, &Options::default()),
        Plan::Act {
            act: Act::Deactivate { .. },
            ..
        }
    ));
    // Rolled back: a person looks first; force replaces the key.
    let rolled = with_phase(h.clone(), Phase::RolledBack, now());
    assert!(refused(
        &rotate(&revoking, &rolled, &Options::default()),
        "was revoked (on-exposure: revoke)"
    ));
    assert!(is_act(&rotate(&revoking, &rolled, &force())));
    // Recorded as deactivated: an ordinary pending deletion.
    let done = with_phase(h, Phase::Deactivated, now());
    assert!(matches!(
        rotate(&revoking, &done, &Options::default()),
        Plan::Nothing(_)
    ));
}
