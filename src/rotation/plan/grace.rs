//! A grace period's end, shared by the plans of a rotation's old key and of a retired one.

use super::{Act, Deletion, Facts, Options, Plan, span, when};
use crate::manifest::UserSpec;
use crate::model::KeyInfo;

/// The Inactive key `old`, deleted once its grace has passed since it was deactivated
/// (`since`); `why` says which key it is.
pub(super) fn delete_after_grace(
    user: &UserSpec,
    facts: &Facts,
    opts: &Options,
    old: &KeyInfo,
    since: chrono::DateTime<chrono::Utc>,
    why: &str,
) -> Plan {
    let grace_ends = since + opts.delete_after(user);
    if facts.now < grace_ends && !opts.force {
        return Plan::Nothing(format!(
            "not yet: the Inactive key {} is kept until {} (delete-after-days: {} after it was deactivated at {}); force deletes now",
            old.id,
            when(grace_ends),
            span(opts.delete_after(user)),
            when(since)
        ));
    }
    Plan::act(Act::Delete(Deletion::new(old, why)), Some(old))
}
