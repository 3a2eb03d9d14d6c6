//! The executor's parts, one behaviour at a time, over the in-memory ports of `memory.rs`: the
//! step machine (a rotation end to end, and what a failed write leaves), and the writer's
//! settle rules. The seeded simulation explores the same code through every fault.

use secrecy::SecretString;

use super::context::Scene;
use super::journal::{JOURNAL_TAG, LEASE_TAG, Phase, Tags};
use super::ledger::{Holding, Ledger, Part};
use super::memory::{Mem, Settings, WriteFault, block_on, secret_of, user};
use super::outcome::{Command, Outcome};
use super::run::run_user;
use super::writes::Writer;
use crate::model::KeyStatus;

fn journal_phase(mem: &Mem) -> Option<Phase> {
    let w = mem.world();
    let tags = Tags::from_pairs(w.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    tags.journal().map(|j| j.phase)
}

#[test]
fn a_due_key_is_rotated_into_every_consumer_and_the_lease_is_given_back() {
    let (mem, settings) = (Mem::default(), Settings::default());
    let spec = user(&["a", "b"]);
    mem.key_held_by(&spec, "AKIAOLD", 100);
    let report = block_on(run_user(&settings.ctx(&mem), &spec, Command::Rotate));
    assert_eq!(report.outcome, Outcome::Rotated, "{:?}", report.outcome);
    let new = report.keys.new.clone().expect("a new key");
    assert_eq!(report.keys.old.as_deref(), Some("AKIAOLD"));
    for c in &spec.consumers {
        assert_eq!(mem.held(c), (Some(new.clone()), Some(secret_of(&new))));
    }
    assert_eq!(
        report.keys.list.len(),
        2,
        "the old key stays until deactivate"
    );
    assert_eq!(journal_phase(&mem), Some(Phase::Verified));
    assert!(
        !mem.world().tags.contains_key(LEASE_TAG),
        "the lease is given back"
    );
    assert!(
        report
            .consumers
            .iter()
            .all(|c| c.holds.as_deref() == Some(new.as_str())),
        "{:?}",
        report.consumers
    );
}

/// A write that fails anywhere in a rotation leaves every consumer a whole pair of a key that
/// works, and no key that nobody can hold.
#[test]
fn a_failed_write_leaves_every_consumer_a_working_pair() {
    // (the secret whose write meets the fault, the fault, the key ids left, the journal)
    let cases = [
        // Nothing went out: the new key is deleted, and the journal with it.
        ("/a/id", WriteFault::Fails, 1, None),
        // Consumer a got the new key; b's secret failed: a is put back on the old key.
        ("/b/secret", WriteFault::Fails, 2, Some(Phase::RolledBack)),
        // b's secret landed, its answer lost: settled as landed, then put back too.
        (
            "/b/secret",
            WriteFault::LandsUnanswered,
            2,
            Some(Phase::RolledBack),
        ),
        // b's id never landed and its answer was lost: settled as not landed.
        (
            "/b/id",
            WriteFault::LostUnanswered,
            2,
            Some(Phase::RolledBack),
        ),
    ];
    for (name, fault, keys_left, phase) in cases {
        let (mem, settings) = (Mem::default(), Settings::default());
        let spec = user(&["a", "b"]);
        mem.key_held_by(&spec, "AKIAOLD", 100);
        mem.world().write_faults.insert(name.into(), fault);
        let report = block_on(run_user(&settings.ctx(&mem), &spec, Command::Rotate));
        let case = format!("{name} {fault:?}: {:?}", report.outcome);
        assert!(matches!(report.outcome, Outcome::Failed(_)), "{case}");
        for c in &spec.consumers {
            let old = "AKIAOLD".to_owned();
            assert_eq!(
                mem.held(c),
                (Some(old.clone()), Some(secret_of(&old))),
                "{case}"
            );
        }
        let w = mem.world();
        assert_eq!(w.keys.len(), keys_left, "{case}");
        assert!(
            w.keys.iter().all(|(k, _)| k.status == KeyStatus::Active),
            "{case}"
        );
        drop(w);
        assert_eq!(journal_phase(&mem), phase, "{case}");
        assert!(!mem.world().tags.contains_key(LEASE_TAG), "{case}");
    }
}

#[test]
fn a_new_key_sts_never_accepts_is_deleted_before_any_secret_is_written() {
    let (mem, settings) = (Mem::default(), Settings::default());
    let spec = user(&["a"]);
    mem.key_held_by(&spec, "AKIAOLD", 100);
    mem.world().sts_refuses = true;
    let report = block_on(run_user(&settings.ctx(&mem), &spec, Command::Rotate));
    assert!(
        matches!(&report.outcome, Outcome::Failed(m) if m.contains("was deleted")),
        "{:?}",
        report.outcome
    );
    let w = mem.world();
    assert_eq!(w.keys.len(), 1);
    assert!(!w.log.iter().any(|l| l.starts_with("put ")), "{:?}", w.log);
    assert!(!w.tags.contains_key(JOURNAL_TAG));
}

/// The writer's rules for a write whose answer was lost: the secret's `updated_at` settles
/// it (changed: it landed; unchanged: it did not), and a second write of one secret waits a
/// second, so whole-second stamps tell the two apart.
#[test]
fn a_lost_answer_is_settled_by_the_secrets_stamp() {
    let cases = [
        (WriteFault::LandsUnanswered, Holding::key("AKIANEW")),
        (WriteFault::LostUnanswered, Holding::key("AKIAOLD")),
    ];
    for (fault, settled) in cases {
        let (mem, settings) = (Mem::default(), Settings::default());
        let spec = user(&["a"]);
        mem.key_held_by(&spec, "AKIAOLD", 1);
        let ctx = settings.ctx(&mem);
        let s = Scene {
            ctx: &ctx,
            user: &spec,
            lease_until: None,
        };
        let stamp = mem.world().secrets.values().next().map(|(_, t)| *t);
        let before = vec![[
            (Holding::key("AKIAOLD"), stamp),
            (Holding::key("AKIAOLD"), stamp),
        ]];
        let mut writer = Writer::new(Ledger::new(before), Default::default(), vec![None]);
        mem.world().write_faults.insert("/a/id".into(), fault);
        let value = SecretString::from("AKIANEW".to_owned());
        let sent = block_on(writer.write(s, 0, Part::Id, "AKIANEW", &value, true));
        assert!(sent.is_err_and(|e| e.uncertain), "{fault:?}");
        assert!(writer.ledger.is_unsettled(0, Part::Id), "{fault:?}");
        block_on(writer.settle_all(s));
        assert_eq!(*writer.ledger.holds(0, Part::Id), settled, "{fault:?}");
        // The same secret again: a second later, so its stamp tells this write apart.
        let t0 = mem.world().now;
        block_on(writer.write(s, 0, Part::Id, "AKIANEW", &value, true)).expect("written");
        assert!(mem.world().now > t0, "{fault:?}: paced a second apart");
        assert_eq!(*writer.ledger.holds(0, Part::Id), Holding::key("AKIANEW"));
    }
}
