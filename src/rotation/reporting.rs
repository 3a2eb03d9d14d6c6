//! One user's report as the run starts (its keys, what each consumer holds by the stores and
//! the journal), as a dry run says it would go, and as the run ends.

use super::context::Ctx;
use super::ledger::{Held, Ledger};
use super::outcome::{
    Command, ConsumerReport, ConsumerResult, Done, Halt, KeyReport, Outcome, UserReport,
};
use super::plan::{self, Act};
use super::prepare::{Prepared, is_due};
use crate::manifest::UserSpec;
use crate::ports::Ports;

/// The report of a prepared user before anything is done: its keys, and what each consumer
/// holds by the stores and the journal.
pub(super) fn first_report(
    ctx: &Ctx<'_, impl Ports>,
    user: &UserSpec,
    prepared: &Prepared,
    ledger: &Ledger,
) -> UserReport {
    let facts = &prepared.facts;
    let mut report = UserReport::new(user, Outcome::Reported);
    report.keys = KeyReport {
        state: Some(facts.reported_state()),
        due: is_due(user, facts),
        deletion_due: plan::deletion_due(user, facts, ctx.opts),
        list: facts.keys.clone(),
        last_used: prepared.last_used.clone(),
        journal: facts.journal.clone(),
        new: None,
        old: None,
    };
    report.attention = prepared.attention.clone();
    report.exposure =
        facts
            .exposure
            .clone()
            .map(|sighting| crate::rotation::outcome::ExposureReport {
                sighting,
                quarantined: facts.quarantined,
                trail: None,
            });
    if let Some(why) = &prepared.unread {
        let note = format!(
            "the secret stores could not be read, so what each consumer holds is not known: {}",
            why.message()
        );
        ctx.events.warn(&note);
        report.notes.push(note);
    }
    let result = match prepared.unread {
        Some(_) => ConsumerResult::NotRead,
        None => ConsumerResult::Unchanged,
    };
    report.consumers = user
        .consumers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let held = ledger.held(i);
            ConsumerReport {
                consumer: c.clone(),
                result: result.clone(),
                holds: match &held {
                    Held::Key(k) => Some(k.clone()),
                    _ => None,
                },
                held,
                access: prepared.readings.get(i).and_then(|r| r.access.clone()),
            }
        })
        .collect();
    if let (Some(old), Some(used)) = (facts.keys.first(), &facts.old_last_used) {
        let note = format!("old key {}: {used}", old.id);
        ctx.events.info(&note);
        report.notes.push(note);
    }
    report
}

/// The report's outcome, from how the act ended.
pub(super) fn conclude(
    mut report: UserReport,
    result: Result<Done, Halt>,
    after_mend: Option<Outcome>,
    command: Command,
) -> UserReport {
    report.outcome = match result {
        Ok(Done::Rolled(why)) => Outcome::RolledBack(why),
        Ok(Done::Noted(what)) => after_mend.unwrap_or(Outcome::Nothing(what)),
        // A plan that did nothing or refused ends that way, after its mend.
        Ok(Done::Finished) => after_mend.unwrap_or(Outcome::done(command)),
        Err(halt) => halt.outcome(),
    };
    if matches!(
        report.outcome,
        Outcome::Rotated | Outcome::Deactivated | Outcome::Deleted | Outcome::RolledBack(_)
    ) {
        // What needed a person was just done.
        report.attention = None;
    }
    if report.outcome == Outcome::Rotated
        && let Some(old) = &report.keys.old
    {
        report.notes.push(format!(
            "the old key {old} stays Active until `deactivate` runs after the grace period"
        ));
    }
    report
}

/// The dry run: every step the plan would take, and what each consumer would get.
pub(super) fn dry_run(
    user: &UserSpec,
    splits: &[(usize, String)],
    act: Option<&Act>,
    mut report: UserReport,
) -> UserReport {
    let steps = act.map(Act::steps).unwrap_or_default();
    let mut planned: Vec<String> = splits
        .iter()
        .map(|(i, kept)| {
            let c = &user.consumers[*i];
            format!(
                "write the id {kept} into {} of {} (its secret is {kept}'s; a run stopped between the two writes)",
                c.secrets.access_key_id, c.scope
            )
        })
        .collect();
    planned.extend(steps.iter().map(ToString::to_string));
    report.outcome = Outcome::Planned(planned);
    let rolls_back = matches!(act, Some(Act::RollBack));
    for c in &mut report.consumers {
        if rolls_back || act.is_some_and(|a| a.written().contains(&c.consumer)) {
            c.result = ConsumerResult::WouldUpdate;
        }
    }
    for (i, kept) in splits {
        report.consumers[*i].result = ConsumerResult::WouldMend(kept.clone());
    }
    report
}
