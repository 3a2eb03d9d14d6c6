//! `deactivate` and `delete`: the old key retired after its grace periods, never the only key,
//! never while something may still use it (CONTRACT §4, §5).

use super::{Act, Deletion, Facts, Options, Plan, conflict, describe, list_stale, span, when};
use crate::manifest::UserSpec;
use crate::model::{KeyInfo, KeyStatus, LastUse};
use crate::rotation::state::Standing;
use std::ops::ControlFlow::{self, Break, Continue};

/// Checks input `old-access-key-id` against the user's keys. `Err` is the plan to return.
fn check_named_old_key(user: &UserSpec, facts: &Facts, opts: &Options) -> Option<Plan> {
    let named = opts.old_access_key_id.as_deref()?;
    match facts.keys.as_slice() {
        [old, _, ..] if old.id == named => None,
        [.., new] if new.id == named => Some(Plan::Refuse(format!(
            "old-access-key-id {named} is the newest key of user {}: only the older key is ever retired",
            user.name
        ))),
        _ => Some(Plan::Invalid(format!(
            "old-access-key-id {named} is not a key of user {} (its keys: {}): pass the old-access-key-id output of the rotate step",
            user.name,
            if facts.keys.is_empty() {
                "none".to_owned()
            } else {
                describe(&facts.keys)
            }
        ))),
    }
}

/// A retirement command re-run after it already happened has nothing to do.
fn already_gone(facts: &Facts, opts: &Options) -> Option<Plan> {
    let named = opts.old_access_key_id.as_deref()?;
    match facts.keys.as_slice() {
        [only] if only.id != named && only.status == KeyStatus::Active => {
            Some(Plan::Nothing(format!(
                "key {named} is not among the user's keys (already deleted, or mistyped); {} is the only key: nothing to do",
                only.id
            )))
        }
        _ => None,
    }
}

/// What both retirements check first: a re-run, and the key named by the input.
fn named_first(user: &UserSpec, facts: &Facts, opts: &Options) -> Option<Plan> {
    already_gone(facts, opts).or_else(|| check_named_old_key(user, facts, opts))
}

/// `deactivate`: set the older key Inactive after the safety checks and the grace period.
pub fn deactivate(user: &UserSpec, facts: &Facts, opts: &Options) -> Plan {
    if facts.moved {
        return super::moved::deactivate(user, facts, opts);
    }
    if let Some(p) = named_first(user, facts, opts) {
        return p;
    }
    let (old, new, incomplete) = match pair_to_deactivate(user, facts, opts) {
        Continue(pair) => pair,
        Break(plan) => return plan,
    };
    if facts.step_key_id.as_deref() == Some(old.id.as_str()) {
        return Plan::Refuse(format!(
            "this step is authenticated with {}, the key it would deactivate: secrets are read when a job starts, so run deactivate in a later job (whose secrets hold the new key {})",
            old.id, new.id
        ));
    }
    if incomplete {
        let stale = list_stale(facts);
        let who = if stale.is_empty() {
            "the journal does not record that every consumer holds and has proven it".to_owned()
        } else {
            format!("these consumers were not updated after it was created: {stale}")
        };
        return Plan::Refuse(format!(
            "the new key {} is not known to be in use everywhere ({who}), so the old key {} stays Active. Finish the rotation first (rotate with force); force does not override this",
            new.id, old.id,
        ));
    }
    deactivate_when_clear(user, facts, opts, old, new)
}

/// The pair `deactivate` works on (old, new, whether the rotation is incomplete), or the plan
/// when the keys are not such a pair.
fn pair_to_deactivate<'f>(
    user: &UserSpec,
    facts: &'f Facts,
    opts: &Options,
) -> ControlFlow<Plan, (&'f KeyInfo, &'f KeyInfo, bool)> {
    let name = &user.name;
    let named = opts.old_access_key_id.is_some();
    match facts.standing() {
        Standing::PendingDeactivation { old, new } => Continue((old, new, false)),
        Standing::Incomplete { old, new } => Continue((old, new, true)),
        Standing::None if named => Break(Plan::Refuse(format!(
            "user {name} has no access key: nothing to deactivate"
        ))),
        Standing::None => Break(Plan::Nothing(format!("user {name} has no access key"))),
        Standing::Current(k) | Standing::Inactive(k) if named => Break(Plan::Refuse(format!(
            "user {name} has a single key ({}): the only key is never deactivated. Run rotate first",
            k.id
        ))),
        Standing::Current(k) => Break(Plan::Nothing(format!(
            "user {name} has a single key ({}): nothing to deactivate",
            k.id
        ))),
        Standing::Inactive(k) => Break(Plan::Refuse(format!(
            "user {name} has only an Inactive key ({}): the only key is never touched; see status",
            k.id
        ))),
        Standing::PendingDeletion { old, .. } => Break(Plan::Nothing(format!(
            "the old key {} is already Inactive; it awaits `delete`",
            old.id
        ))),
        Standing::RolledBack { old, new } => Break(Plan::Nothing(format!(
            "the rotation to {} was rolled back: every consumer holds {} again, which stays Active",
            new.id, old.id
        ))),
        Standing::Conflict => Break(Plan::Refuse(conflict(user, facts, "deactivate"))),
        Standing::Migrated
        | Standing::Migrating(_)
        | Standing::Retiring(_)
        | Standing::Retired(_) => Break(super::moved::deactivate(user, facts, opts)),
    }
}

/// Every consumer holds the new key: the grace period, the people outside GitHub and the
/// old key's last use decide whether it is deactivated now.
fn deactivate_when_clear(
    user: &UserSpec,
    facts: &Facts,
    opts: &Options,
    old: &KeyInfo,
    new: &KeyInfo,
) -> Plan {
    let j = facts.journal_of_newest();
    let verified_at = j.map_or(new.created, |j| j.at);
    let grace_ends = verified_at + opts.deactivate_after(user);
    // An exposed key is taken out of service as soon as every consumer holds the new one: no
    // grace, and its later uses are evidence, not a reason to wait (CONTRACT §17).
    let exposed = facts.exposed(old);
    if facts.now < grace_ends && !opts.force && !exposed {
        return Plan::Nothing(format!(
            "not yet: the old key {} stays Active until {} (deactivate-after-hours: {} after the new key {} was verified at {}); force deactivates now",
            old.id,
            when(grace_ends),
            span(opts.deactivate_after(user)),
            new.id,
            when(verified_at)
        ));
    }
    if !user.external.is_empty() && !opts.force {
        return Plan::Refuse(format!(
            "user {} has consumers outside GitHub that a person updates ({}): confirm they hold the new key {}, then run deactivate with force",
            user.name,
            user.external.join("; "),
            new.id
        ));
    }
    let held = j.and_then(|j| j.held).unwrap_or(new.created);
    if !exposed
        && let Some(refusal) = straggler(facts, opts, old, held, "every consumer held the new key")
    {
        return refusal;
    }
    Plan::act(
        Act::Deactivate {
            key_id: old.id.clone(),
        },
        Some(old),
    )
}

/// Whether `delete` would delete a key now (its grace has passed), without `force` or a named
/// key: what lets a workflow skip its deletion job (and its reviewers) on the days it has
/// nothing to do.
pub fn deletion_due(user: &UserSpec, facts: &Facts, opts: &Options) -> bool {
    let plain = Options {
        force: false,
        old_access_key_id: None,
        ..opts.clone()
    };
    matches!(delete(user, facts, &plain), Plan::Act { .. })
}

/// `delete`: remove the older key, only if it is already Inactive and its grace has passed.
pub fn delete(user: &UserSpec, facts: &Facts, opts: &Options) -> Plan {
    if facts.moved {
        return super::moved::delete(user, facts, opts);
    }
    if let Some(p) = named_first(user, facts, opts) {
        return p;
    }
    let name = &user.name;
    let named = opts.old_access_key_id.is_some();
    let delete_old =
        |old: &KeyInfo, why: &str| Plan::act(Act::Delete(Deletion::new(old, why)), Some(old));
    match facts.standing() {
        Standing::PendingDeletion { old, .. } => {
            let since = facts.journal_of_newest().map_or(facts.now, |j| j.at);
            super::grace::delete_after_grace(user, facts, opts, old, since, "the Inactive old key")
        }
        Standing::Conflict => match facts.keys.as_slice() {
            [o, n]
                if opts.force
                    && o.status == KeyStatus::Inactive
                    && n.status == KeyStatus::Active =>
            {
                delete_old(o, "an Inactive old key no journal records (force)")
            }
            _ => Plan::Refuse(conflict(user, facts, "delete")),
        },
        Standing::PendingDeactivation { old, .. }
        | Standing::Incomplete { old, .. }
        | Standing::RolledBack { old, .. }
            if named =>
        {
            Plan::Refuse(format!(
                "the old key {} is Active: delete removes only an Inactive key. Run deactivate first",
                old.id
            ))
        }
        Standing::PendingDeactivation { old, .. } | Standing::RolledBack { old, .. } => {
            Plan::Nothing(format!(
                "the old key {} is still Active: nothing to delete yet",
                old.id
            ))
        }
        Standing::Incomplete { old, .. } => Plan::Refuse(format!(
            "the old key {} is Active and the rotation is incomplete: nothing can be deleted. Run rotate with force first",
            old.id
        )),
        Standing::Current(k) | Standing::Inactive(k) if named => Plan::Refuse(format!(
            "user {name} has a single key ({}): the only key is never deleted",
            k.id
        )),
        Standing::Current(k) => Plan::Nothing(format!(
            "user {name} has a single key ({}): nothing to delete",
            k.id
        )),
        Standing::Inactive(k) => Plan::Refuse(format!(
            "user {name} has only an Inactive key ({}): the only key is never deleted; see status",
            k.id
        )),
        Standing::None if named => {
            Plan::Refuse(format!("user {name} has no access key: nothing to delete"))
        }
        Standing::None => Plan::Nothing(format!("user {name} has no access key")),
        Standing::Migrated
        | Standing::Migrating(_)
        | Standing::Retiring(_)
        | Standing::Retired(_) => super::moved::delete(user, facts, opts),
    }
}

/// The straggler rule (CONTRACT §5): `old` used more than the window after `since` (when
/// every consumer stopped needing it, as `after` says) refuses, unless `force`.
pub(crate) fn straggler(
    facts: &Facts,
    opts: &Options,
    old: &KeyInfo,
    since: chrono::DateTime<chrono::Utc>,
    after: &str,
) -> Option<Plan> {
    let Some(LastUse {
        date: Some(used),
        service,
        region,
    }) = &facts.old_last_used
    else {
        return None;
    };
    (*used > since + opts.straggler_window && !opts.force).then(|| Plan::Refuse(format!(
        "key {} was used at {} ({service} in {region}), {} minutes after {after} (window {} minutes): something outside the manifest still uses it. Find it (CloudTrail, or the service above), update it, and run deactivate again, or pass force",
        old.id,
        used.format("%Y-%m-%d %H:%M:%S UTC"),
        (*used - since).num_minutes(),
        opts.straggler_window.num_minutes()
    )))
}
