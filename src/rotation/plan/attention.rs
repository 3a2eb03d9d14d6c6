//! When a user needs a person (CONTRACT §4: a scheduled run is loud), and the words for a
//! combination of keys no command handles.

use super::{Facts, Options, describe, job_lifetime, overdue_after, when};
use crate::manifest::UserSpec;
use crate::model::KeyStatus;
use crate::rotation::journal::JOURNAL_TAG;
use crate::rotation::state::Standing;

/// Why a user needs a person (CONTRACT §4: a scheduled run is loud), if it does.
pub fn attention(user: &UserSpec, facts: &Facts, opts: &Options) -> Option<String> {
    if facts.moved {
        return super::moved::attention(user, facts, opts);
    }
    let name = &user.name;
    let j = facts.journal_of_newest();
    // An exposed key that still works is loud until it is Inactive (CONTRACT §17).
    if let Some(e) = &facts.exposure
        && let Some(k) = facts.exposed_active().first()
    {
        return Some(format!(
            "access key {} of user {name} is exposed ({}, first seen {}): rotate takes it out of service at once (a new key everywhere, then the exposed one Inactive)",
            k.id,
            e.source.as_str(),
            super::when(e.at)
        ));
    }
    match facts.standing() {
        Standing::Inactive(_) => Some(format!("user {name} has only an Inactive key")),
        Standing::Conflict => Some(match facts.journal_contradiction() {
            Some(why) => format!(
                "the journal tag of user {name} contradicts its keys ({why}): someone other than the rotator wrote it"
            ),
            None => format!("user {name} has keys in a combination no command handles"),
        }),
        // The next rotate finishes these by itself.
        Standing::Incomplete { .. }
            if facts.orphan_key().is_some()
                || facts.verification_to_resume()
                || facts.repairs_itself() =>
        {
            None
        }
        Standing::Incomplete { .. } if !opts.force => Some(format!(
            "user {name} has an incomplete rotation: run rotate with force"
        )),
        Standing::PendingDeactivation { old, .. } => {
            let due = j.map(|j| j.at)? + opts.deactivate_after(user);
            (facts.now > due + overdue_after()).then(|| {
                format!(
                    "the old key {} of user {name} was due for deactivation at {} and is still Active (a straggler, external consumers or a failed deactivate hold it back)",
                    old.id,
                    when(due)
                )
            })
        }
        Standing::PendingDeletion { old, .. } => {
            let due = j.map(|j| j.at)? + opts.delete_after(user);
            (facts.now > due + overdue_after()).then(|| {
                format!(
                    "the Inactive key {} of user {name} was due for deletion at {} and still exists",
                    old.id,
                    when(due)
                )
            })
        }
        Standing::RolledBack { new, .. } => {
            let since = j.map(|j| j.at)?;
            (facts.now > since + job_lifetime() + overdue_after()).then(|| {
                format!(
                    "the rolled-back key {} of user {name} is still there: run rotate",
                    new.id
                )
            })
        }
        _ => None,
    }
}

/// Why `command` does not act on a user whose keys are in conflict, and what to do.
pub(super) fn conflict(user: &UserSpec, facts: &Facts, command: &str) -> String {
    let name = &user.name;
    if let Some(why) = facts.journal_contradiction() {
        return format!(
            "the journal tag {JOURNAL_TAG} of user {name} contradicts its keys ({why}): it was not written by this tool's run, so {command} does not act on it. Find out who tagged the user (CloudTrail: TagUser), deny iam:TagUser on aws-key-rotator/* to everyone but the rotator (see the README), then remove the tag (aws iam untag-user --user-name {name} --tag-keys {JOURNAL_TAG}) and run status"
        );
    }
    let hint = match facts.keys.as_slice() {
        [old, new] if old.status == KeyStatus::Inactive && new.status == KeyStatus::Active => {
            format!(
                " The Inactive key {} was not retired by this tool (no journal records it): if nothing uses it, run delete with force",
                old.id
            )
        }
        _ => String::new(),
    };
    format!(
        "user {name} has keys in a combination {command} does not handle ({}).{hint} Otherwise sort them out by hand (aws iam list-access-keys --user-name {name}) and run status",
        describe(&facts.keys)
    )
}
