//! `rotate` (CONTRACT §4, last column): a new key where one is due, and the repairs of an
//! incomplete rotation.

use super::revoke::answer;
use super::{
    Act, Deletion, Facts, Options, Plan, conflict, job_lifetime, list_stale, rotation, when, writes,
};
use crate::manifest::UserSpec;
use crate::model::{KeyInfo, LastUse};
use crate::rotation::exposure::QUARANTINE_PREFIX;
use crate::rotation::journal::Phase;
use crate::rotation::state::{self, Standing};

/// `rotate` (CONTRACT §4, last column).
pub fn rotate(user: &UserSpec, facts: &Facts, opts: &Options) -> Plan {
    if facts.moved {
        return super::moved::rotate(user, facts);
    }
    let name = &user.name;
    if let Some(refusal) = quarantined_self(user, facts) {
        return refusal;
    }
    let due_in = |k: &KeyInfo| user.max_age_days as i64 - state::age_days(k.created, facts.now);
    // A deletion, followed by a rotation when the older key is due (or forced).
    let delete_then = |old: &KeyInfo, first: Deletion| {
        let act = if due_in(old) <= 0 || opts.force {
            rotation(user, opts, Some(first))
        } else {
            Act::Delete(first)
        };
        Plan::act(act, Some(old))
    };
    if let Some(plan) = super::revoke::after_revoke(user, facts, opts) {
        return plan;
    }
    match facts.standing() {
        Standing::None => Plan::act(rotation(user, opts, None), None),
        Standing::Current(k) => current(user, facts, opts, k),
        Standing::Inactive(k) => Plan::Refuse(format!(
            "user {name} has only an Inactive key ({}): no consumer can be working with it. If it should still be in use, reactivate it (aws iam update-access-key --user-name {name} --access-key-id {} --status Active) and run rotate; otherwise delete it (aws iam delete-access-key) and run rotate to bootstrap a new key",
            k.id, k.id
        )),
        Standing::PendingDeactivation { old, new } => Plan::Nothing(format!(
            "every consumer holds the new key {}; the old key {} awaits `deactivate`",
            new.id, old.id
        )),
        // The rolled-back key goes at once when the key every consumer holds is exposed: the
        // exposed key is rotated now (CONTRACT §17). A job started with the rolled-back key
        // in the last hours may fail; no consumer holds it.
        Standing::RolledBack { old, new }
            if facts.exposed(old) && facts.step_key_id.as_deref() != Some(new.id.as_str()) =>
        {
            let first = Deletion::new(new, "rolled back; the exposed key is rotated now");
            Plan::act(answer(user, facts, opts, Some(first), old), Some(old))
        }
        Standing::RolledBack { old, new } => rolled_back(facts, opts, old, new, delete_then),
        Standing::Incomplete { old, new } => {
            if let Some((orphan, run)) = facts.orphan_key() {
                let why =
                    format!("created by run {run}, which stopped before any secret carried it");
                return delete_then(old, Deletion::new(orphan, &why));
            }
            incomplete(user, facts, opts, old, new)
        }
        Standing::PendingDeletion { old, new } => pending_deletion(user, facts, opts, old, new),
        Standing::Conflict => Plan::Refuse(conflict(user, facts, "rotate")),
        Standing::Migrated
        | Standing::Migrating(_)
        | Standing::Retiring(_)
        | Standing::Retired(_) => super::moved::rotate(user, facts),
    }
}

/// One Active key: rotated when due, forced, exposed (at once, CONTRACT §17) or left half
/// written by a killed run.
fn current(user: &UserSpec, facts: &Facts, opts: &Options, k: &KeyInfo) -> Plan {
    let left = user.max_age_days as i64 - state::age_days(k.created, facts.now);
    // A first key whose push never finished (a run killed while writing it): some
    // consumers may hold half a pair of it, and nobody has its secret any more. A new
    // key written everywhere mends them (CONTRACT §12).
    let unfinished = facts
        .journal_of_newest()
        .is_some_and(|j| j.phase == Phase::Writing);
    // An exposed key is rotated at once, whatever its age (CONTRACT §17).
    if facts.exposed(k) {
        Plan::act(answer(user, facts, opts, None, k), Some(k))
    } else if left <= 0 || opts.force || unfinished {
        Plan::act(rotation(user, opts, None), Some(k))
    } else {
        Plan::Nothing(format!(
            "key {} is {} days old; rotation is due in {left} days (max-age-days {}); use force to rotate now",
            k.id,
            state::age_days(k.created, facts.now),
            user.max_age_days
        ))
    }
}

/// An Inactive old key beside the current one: it is deleted first where the current key must
/// be rotated now (exposed, CONTRACT §17, at once; due, with `delete-inactive`).
fn pending_deletion(
    user: &UserSpec,
    facts: &Facts,
    opts: &Options,
    old: &KeyInfo,
    new: &KeyInfo,
) -> Plan {
    // The current key is exposed (a quarantine covers every key the user had): the Inactive
    // old key, which no consumer can be working with, goes first, at once.
    if facts.exposed(new) {
        let first = Deletion::new(old, "Inactive; the exposed key is rotated now");
        return Plan::act(answer(user, facts, opts, Some(first), new), Some(new));
    }
    let left = user.max_age_days as i64 - state::age_days(new.created, facts.now);
    if left > 0 && !opts.force {
        return Plan::Nothing(format!(
            "key {} is current; the Inactive old key {} awaits `delete`",
            new.id, old.id
        ));
    }
    if !opts.delete_inactive {
        return Plan::Refuse(format!(
            "key {} is due for rotation, but user {} already has two keys and the Inactive key {} must go first: run `delete`, or rotate with delete-inactive: true",
            new.id, user.name, old.id
        ));
    }
    let first = Deletion::new(old, "the leftover Inactive key (delete-inactive)");
    Plan::act(rotation(user, opts, Some(first)), Some(new))
}

/// AWS's quarantine policy denies the user's own credentials CreateAccessKey (CONTRACT §17): a
/// step that runs with a key of the quarantined user cannot answer its exposure.
fn quarantined_self(user: &UserSpec, facts: &Facts) -> Option<Plan> {
    let name = &user.name;
    let own_step = facts
        .keys
        .iter()
        .any(|k| facts.step_key_id.as_deref() == Some(k.id.as_str()));
    (facts.quarantined && own_step && !facts.exposed_active().is_empty()).then(|| {
        Plan::Refuse(format!(
            "user {name} is under AWS's quarantine policy ({QUARANTINE_PREFIX}…), which denies its own credentials iam:CreateAccessKey, and this step runs with a key of {name}. Nothing was changed. Run this rotation with another identity (a rotator user or role allowed the actions of `aws-key-rotator policy` on {name}); it takes the exposed key out of service at once"
        ))
    })
}

/// A rotation rolled back: its new key is deleted once no job can still hold it (then the
/// old key is rotated again if it is due).
fn rolled_back(
    facts: &Facts,
    opts: &Options,
    old: &KeyInfo,
    new: &KeyInfo,
    delete_then: impl Fn(&KeyInfo, Deletion) -> Plan,
) -> Plan {
    let since = facts.journal_of_newest().map_or(new.created, |j| j.at);
    let free_at = since + job_lifetime();
    if facts.now < free_at && !opts.force {
        return Plan::Nothing(format!(
            "the rotation to {} was rolled back at {}; every consumer holds {} again. The new key is deleted from {} on, when no job can still hold it (or now with force)",
            new.id,
            when(since),
            old.id,
            when(free_at)
        ));
    }
    // Anyone with iam:TagUser can write `rolled-back` (CONTRACT §12a): a key used after every
    // job that could hold it had ended is held by someone, and is not this tool's to delete.
    if let Some(LastUse {
        date: Some(used),
        service,
        ..
    }) = &facts.newest_last_used
        && *used > free_at + state::clock_slack()
        && !opts.force
    {
        return Plan::Refuse(format!(
            "the rolled-back key {} was used at {} (through {service}), after every job that could hold it had ended ({}): someone outside the manifest holds it, so it is not deleted. Find out who (CloudTrail, by AccessKeyId), then delete it by hand or run rotate with force",
            new.id,
            when(*used),
            when(free_at)
        ));
    }
    if facts.step_key_id.as_deref() == Some(new.id.as_str()) {
        return Plan::Refuse(format!(
            "the rolled-back key {} is the one this step is authenticated with: run with the old key {} or another identity",
            new.id, old.id
        ));
    }
    delete_then(
        old,
        Deletion::new(new, "rolled back; no job can still hold it"),
    )
}

/// Two Active keys and no proof that every consumer holds the newer one: resume what needs
/// no person, refuse without `force`, and with it repair with whatever the step's
/// credentials allow.
fn incomplete(
    user: &UserSpec,
    facts: &Facts,
    opts: &Options,
    old: &KeyInfo,
    new: &KeyInfo,
) -> Plan {
    let phase = facts.journal_of_newest().map(|j| j.phase);
    if facts.verification_to_resume() && !opts.force {
        return Plan::act(Act::Verify(user.verify.clone()), Some(old));
    }
    // A lost runner needs no person (CONTRACT §12a): a rotation stopped while writing (or
    // written, awaiting its proof), or a rollback cut short, is repaired as `force` would,
    // wherever this step's credentials make every value known (a rollback cut short is only
    // ever finished, never resumed). No other run holds the lease when this one plans.
    if !opts.force
        && facts.repairs_itself()
        && let Some(act) = repair_with_own_key(user, facts, opts, old, new)
    {
        return Plan::act(act, Some(old));
    }
    if !opts.force {
        let what = stopped_words(phase);
        let stale = list_stale(facts);
        let stale = if stale.is_empty() {
            String::new()
        } else {
            format!(" These consumers were not updated after the new key was created: {stale}.")
        };
        let unknown = if facts.step_key_id.is_none()
            || repair_with_own_key(user, facts, opts, old, new).is_none()
        {
            " What each GitHub consumer holds cannot be known (its secrets cannot be read, and this step's credentials are neither key)."
        } else if phase == Some(Phase::RollingBack) {
            " The old key's secret is not known to this step (it runs with the new key), so the rollback cannot be finished here: run rotate with the old key's credentials to finish it."
        } else {
            ""
        };
        return Plan::Refuse(format!(
            "{what}: user {} has two Active keys ({} and the new {}).{stale}{unknown} Run rotate with force to repair: {}",
            user.name,
            old.id,
            new.id,
            repair_words(facts, old, new, phase)
        ));
    }
    let act = if let Some(act) = repair_with_own_key(user, facts, opts, old, new) {
        act
    } else if phase == Some(Phase::Written) && !user.verify.is_empty() {
        Act::Verify(user.verify.clone())
    } else {
        rotation(
            user,
            opts,
            Some(Deletion::new(new, "recovering an incomplete rotation")),
        )
    };
    Plan::act(act, Some(old))
}

/// How an incomplete rotation stopped, in words, from its journal's phase.
fn stopped_words(phase: Option<Phase>) -> String {
    match phase {
        Some(Phase::Partial) => {
            "a rotation failed and could not be rolled back everywhere".to_owned()
        }
        Some(Phase::Written) => {
            "a rotation wrote every consumer but its verification did not succeed".to_owned()
        }
        Some(Phase::RollingBack) => {
            "a failed rotation was stopped while it put the old key back".to_owned()
        }
        Some(p) => format!("a rotation stopped while {p}"),
        None => "an earlier rotation did not finish (no journal records it)".to_owned(),
    }
}

/// The repair this step's own credentials allow: with the new key, write it everywhere and
/// verify it; with the old key, put it back everywhere. `None` with another identity.
fn repair_with_own_key(
    user: &UserSpec,
    facts: &Facts,
    opts: &Options,
    old: &KeyInfo,
    new: &KeyInfo,
) -> Option<Act> {
    let step = facts.step_key_id.as_deref();
    if step == Some(new.id.as_str()) {
        Some(Act::Adopt {
            writes: writes(user, opts),
            verify: user.verify.clone(),
        })
    } else if step == Some(old.id.as_str()) {
        Some(Act::RollBack)
    } else {
        None
    }
}

/// What `rotate --force` would do with an incomplete rotation, in words.
fn repair_words(facts: &Facts, old: &KeyInfo, new: &KeyInfo, phase: Option<Phase>) -> String {
    let step = facts.step_key_id.as_deref();
    if step == Some(new.id.as_str()) {
        format!(
            "with this step's credentials (the new key {}) it writes the new key into every consumer and verifies it",
            new.id
        )
    } else if step == Some(old.id.as_str()) {
        format!(
            "with this step's credentials (the old key {}) it writes the old key back into every consumer",
            old.id
        )
    } else if phase == Some(Phase::Written) {
        "it runs the verification workflows again".to_owned()
    } else {
        format!(
            "it deletes {}, creates another key and writes it to every consumer (consumers holding {} fail until then; run it with the old or the new key as credentials to avoid that)",
            new.id, new.id
        )
    }
}
