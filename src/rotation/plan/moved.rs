//! A user whose every consumer assumes the role (CONTRACT §13): no key is created any more;
//! its keys are retired one at a time, oldest first, with a rotation's grace periods, straggler
//! rule and refusals, until the user is `migrated`.

use super::{Act, Deletion, Facts, Options, Plan, span, straggler, when};
use crate::manifest::UserSpec;
use crate::rotation::journal::Journal;
use crate::rotation::state::Standing;

fn on_role(user: &UserSpec) -> String {
    user.on_role
        .iter()
        .map(|c| c.scope.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A migrated user: nothing to do, in `words`, once no tag a stopped run left is on it (the
/// journal, an expired lease); else those go first.
fn migrated(facts: &Facts, words: String) -> Plan {
    if facts.journal.is_some() || facts.lease_tag {
        Plan::act(Act::ClearTags, None)
    } else {
        Plan::Nothing(words)
    }
}

/// Keys in a combination the retirement of a moved user does not handle.
fn unhandled(name: &str) -> Plan {
    Plan::Refuse(format!(
        "user {name} has keys in a combination no command handles; run status"
    ))
}

/// The journal entry about the key being retired.
fn journal_of<'a>(facts: &'a Facts, key_id: &str) -> Option<&'a Journal> {
    facts.journal.as_ref().filter(|j| j.key == key_id)
}

/// `rotate` and `deactivate` start the retirement of the oldest key.
fn start(key_id: &str) -> Plan {
    Plan::act(
        Act::StartRetirement {
            key_id: key_id.to_owned(),
        },
        None,
    )
}

/// `rotate`: no new key; the retirement of the oldest starts.
pub fn rotate(user: &UserSpec, facts: &Facts) -> Plan {
    let name = &user.name;
    match facts.standing() {
        Standing::Migrated => migrated(
            facts,
            format!(
                "user {name} is migrated: every consumer assumes the role ({}) and no key is left",
                on_role(user)
            ),
        ),
        Standing::Migrating(k) => start(&k.id),
        Standing::Retiring(k) => Plan::Nothing(format!(
            "every consumer assumes the role; key {} awaits `deactivate` (no new key is created)",
            k.id
        )),
        Standing::Retired(k) => Plan::Nothing(format!(
            "every consumer assumes the role; the Inactive key {} awaits `delete`",
            k.id
        )),
        Standing::Inactive(k) => Plan::Refuse(inactive(user, &k.id)),
        _ => unhandled(name),
    }
}

fn inactive(user: &UserSpec, key_id: &str) -> String {
    format!(
        "every consumer of user {} assumes the role, and its key {key_id} is Inactive with no record of when it was deactivated: if nothing uses it, run delete with force",
        user.name
    )
}

/// `deactivate`: the oldest key, once the retirement's grace has passed and nothing used it
/// since the last consumer moved.
pub fn deactivate(user: &UserSpec, facts: &Facts, opts: &Options) -> Plan {
    let name = &user.name;
    let key = match facts.standing() {
        Standing::Migrating(k) => return start(&k.id),
        Standing::Retiring(k) => k,
        Standing::Migrated => {
            return migrated(facts, format!("user {name} is migrated: no key is left"));
        }
        Standing::Retired(k) => {
            return Plan::Nothing(format!(
                "key {} is already Inactive; it awaits `delete`",
                k.id
            ));
        }
        Standing::Inactive(k) => return Plan::Refuse(inactive(user, &k.id)),
        _ => {
            return unhandled(name);
        }
    };
    if let Some(named) = opts.old_access_key_id.as_deref()
        && named != key.id
    {
        return Plan::Invalid(format!(
            "old-access-key-id {named} is not the key being retired ({}): every consumer of user {name} assumes the role, and its keys are retired oldest first",
            key.id
        ));
    }
    if facts.step_key_id.as_deref() == Some(key.id.as_str()) {
        return Plan::Refuse(format!(
            "this step is authenticated with {}, the key it would deactivate: run deactivate with other credentials",
            key.id
        ));
    }
    let since = journal_of(facts, &key.id).map_or(facts.now, |j| j.held.unwrap_or(j.at));
    let grace_ends = since + opts.deactivate_after(user);
    if facts.now < grace_ends && !opts.force {
        return Plan::Nothing(format!(
            "not yet: key {} stays Active until {} (deactivate-after-hours: {} after every consumer assumed the role, recorded at {}); force deactivates now",
            key.id,
            when(grace_ends),
            span(opts.deactivate_after(user)),
            when(since)
        ));
    }
    if !user.external.is_empty() && !opts.force {
        return Plan::Refuse(format!(
            "user {name} has consumers outside GitHub that a person updates ({}): confirm they no longer use key {}, then run deactivate with force",
            user.external.join("; "),
            key.id
        ));
    }
    if let Some(refusal) = straggler(
        facts,
        opts,
        key,
        since,
        "the last consumer moved to the role",
    ) {
        return refusal;
    }
    Plan::act(
        Act::Deactivate {
            key_id: key.id.clone(),
        },
        Some(key),
    )
}

/// `delete`: the Inactive oldest key, after delete-after-days.
pub fn delete(user: &UserSpec, facts: &Facts, opts: &Options) -> Plan {
    let name = &user.name;
    match facts.standing() {
        Standing::Retired(k) => {
            if let Some(named) = opts.old_access_key_id.as_deref()
                && named != k.id
            {
                return Plan::Invalid(format!(
                    "old-access-key-id {named} is not the Inactive key being retired ({})",
                    k.id
                ));
            }
            let since = facts.journal.as_ref().map_or(facts.now, |j| j.at);
            super::grace::delete_after_grace(
                user,
                facts,
                opts,
                k,
                since,
                "retired: every consumer assumes the role",
            )
        }
        Standing::Inactive(k) if opts.force => Plan::act(
            Act::Delete(Deletion::new(
                k,
                "an Inactive key no journal records (force); every consumer assumes the role",
            )),
            Some(k),
        ),
        Standing::Inactive(k) => Plan::Refuse(inactive(user, &k.id)),
        Standing::Migrated => migrated(facts, format!("user {name} is migrated: no key is left")),
        Standing::Migrating(k) | Standing::Retiring(k) => Plan::Nothing(format!(
            "key {} is still Active: nothing to delete yet (deactivate retires it first)",
            k.id
        )),
        _ => unhandled(name),
    }
}

/// Why a moved user needs a person: a retirement overdue by more than a day, or a journal
/// that contradicts the keys.
pub fn attention(user: &UserSpec, facts: &Facts, opts: &Options) -> Option<String> {
    let name = &user.name;
    match facts.standing() {
        Standing::Conflict => Some(super::conflict(user, facts, "anything")),
        Standing::Inactive(_) => Some(format!(
            "user {name} has only an Inactive key that no journal records"
        )),
        Standing::Retiring(k) => {
            let j = journal_of(facts, &k.id)?;
            let due = j.held.unwrap_or(j.at) + opts.deactivate_after(user);
            (facts.now > due + super::overdue_after()).then(|| format!(
                "key {} of user {name} was due for deactivation at {} and is still Active, though every consumer assumes the role (a straggler, external consumers or a failed deactivate hold it back)",
                k.id,
                when(due)
            ))
        }
        Standing::Retired(k) => {
            let due = facts.journal.as_ref()?.at + opts.delete_after(user);
            (facts.now > due + super::overdue_after()).then(|| format!(
                "the Inactive key {} of user {name} was due for deletion at {} and still exists",
                k.id,
                when(due)
            ))
        }
        _ => None,
    }
}
