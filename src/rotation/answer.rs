//! Before a changing run acts on a user with an exposure (CONTRACT §17): its sighting recorded
//! when the run only waits, or its record removed once it is over. (The exposed key's
//! deactivation in the same run, right after its rotation, is `execute::retire_at_once`.)

use super::context::Ctx;
use super::exposure::record;
use super::journal::EXPOSURE_TAG;
use super::outcome::Command;
use super::plan::Plan;
use super::prepare::Prepared;
use crate::manifest::UserSpec;
use crate::ports::{Iam, Ports};

/// Before a changing run acts: a sighting it sees first is recorded when it only waits (a
/// grace, a rolled-back key's six hours; an acting run records it under its lease, before
/// anything else), and one that is over (its keys gone, no quarantine policy left) loses its
/// record, so that a later quarantine is a new sighting (its issue closes in this run). A
/// refusal records nothing: the next run sees it again.
pub(super) async fn before_acting<P: Ports>(
    ctx: &Ctx<'_, P>,
    user: &UserSpec,
    command: Command,
    prepared: &Prepared,
    mend: bool,
) {
    let facts = &prepared.facts;
    let Some(e) = &facts.exposure else { return };
    if ctx.dry_run || command == Command::Status {
        return;
    }
    let waiting = matches!(prepared.plan, Plan::Nothing(_)) && !mend;
    if waiting && facts.exposure_new {
        record(ctx, user, e).await;
    }
    let over = !facts.quarantined && !facts.keys.iter().any(|k| e.keys.contains(&k.id));
    if over && let Err(err) = ctx.iam().remove_tag(&user.name, EXPOSURE_TAG).await {
        ctx.events.warn(&format!(
            "user {}: could not remove the record of an exposure that is over ({err})",
            user.name
        ));
    }
}
