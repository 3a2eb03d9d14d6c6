//! `on-exposure: revoke` (CONTRACT §17): the exposed key is made Inactive first, then the
//! rotation runs. Consumers fail until they hold the new key; the holder of the leaked one
//! has no window. A revoked rotation leaves the user, until it is verified, with an Inactive
//! exposed key beside the newer Active one: a shape no ordinary rotation has, decided here.

use super::{Act, Deletion, Facts, Options, Plan, rotation};
use crate::manifest::{OnExposure, UserSpec};
use crate::model::{KeyInfo, KeyStatus};
use crate::rotation::journal::Phase;

/// The rotation that answers the exposed key `exposed` (after deleting `first`): under
/// `revoke`, `exposed` goes Inactive before the new key is made, unless this step signs with
/// it (a revoked step could make no key): then it is rotated first and deactivated by the first
/// job that starts with the new key, as under `rotate`.
pub(super) fn answer(
    user: &UserSpec,
    facts: &Facts,
    opts: &Options,
    first: Option<Deletion>,
    exposed: &KeyInfo,
) -> Act {
    let mut act = rotation(user, opts, first);
    if user.on_exposure == OnExposure::Revoke
        && exposed.status == KeyStatus::Active
        && facts.exposed(exposed)
        && facts.step_key_id.as_deref() != Some(exposed.id.as_str())
        && let Act::Rotate { revoke, .. } = &mut act
    {
        *revoke = Some(exposed.id.clone());
    }
    act
}

/// The user's keys after a revoke: the exposed key Inactive (alone, or with the newer key of a
/// rotation not yet verified). `None` for any other shape.
pub(super) fn after_revoke(user: &UserSpec, facts: &Facts, opts: &Options) -> Option<Plan> {
    match facts.keys.as_slice() {
        // Stopped between the revoke and the new key: the new key now.
        [old] if old.status == KeyStatus::Inactive && facts.exposed(old) => {
            Some(Plan::act(rotation(user, opts, None), Some(old)))
        }
        [old, new]
            if old.status == KeyStatus::Inactive
                && new.status == KeyStatus::Active
                && facts.exposed(old)
                && !facts.exposed(new) =>
        {
            unfinished(user, facts, opts, old, new)
        }
        _ => None,
    }
}

/// An Inactive exposed key beside the newer Active one: the rotation after a revoke (or after a
/// person deactivated the exposed key by hand), by the newer key's journal.
fn unfinished(
    user: &UserSpec,
    facts: &Facts,
    opts: &Options,
    old: &KeyInfo,
    new: &KeyInfo,
) -> Option<Plan> {
    // Stopped right after CreateAccessKey: the key nobody received goes, another comes.
    if let Some((orphan, run)) = facts.orphan_key() {
        let why = format!("created by run {run}, which stopped before any secret carried it");
        return Some(Plan::act(
            rotation(user, opts, Some(Deletion::new(orphan, &why))),
            Some(old),
        ));
    }
    let phase = facts.journal_of_newest().map(|j| j.phase)?;
    Some(match phase {
        // Verified, the record of the old key's deactivation not yet written (or a
        // person deactivated the exposed key by hand after the rotation).
        Phase::Verified => Plan::act(
            Act::Deactivate {
                key_id: old.id.clone(),
            },
            Some(old),
        ),
        Phase::Written if !user.verify.is_empty() && !opts.force => {
            Plan::act(Act::Verify(user.verify.clone()), Some(old))
        }
        Phase::Creating
        | Phase::Writing
        | Phase::Written
        | Phase::RolledBack
        | Phase::Partial
        | Phase::RollingBack
            if facts.step_key_id.as_deref() == Some(new.id.as_str()) =>
        {
            Plan::act(
                Act::Adopt {
                    writes: super::writes(user, opts),
                    verify: user.verify.clone(),
                },
                Some(old),
            )
        }
        Phase::RolledBack | Phase::Partial | Phase::RollingBack if !opts.force => {
            Plan::Refuse(format!(
                "the exposed key {} was revoked (on-exposure: revoke) and the rotation to {} did not succeed: consumers may hold the Inactive key. Find out why (the verification's run, the report), then run rotate with force: it deletes {} and writes another new key everywhere",
                old.id, new.id, new.id
            ))
        }
        // This tool's rotation after a revoke, stopped while making or writing the new
        // key: nobody can be working with the revoked one, so another new key, written
        // everywhere, costs nothing more.
        Phase::Creating
        | Phase::Writing
        | Phase::Written
        | Phase::RolledBack
        | Phase::Partial
        | Phase::RollingBack => replace(user, opts, old, new),
        // Anything else (deactivated: pending deletion; no record of this tool's): not a
        // revoke's to decide.
        _ => return None,
    })
}

/// Another new key in place of `new`, written everywhere.
fn replace(user: &UserSpec, opts: &Options, old: &KeyInfo, new: &KeyInfo) -> Plan {
    let why = "the rotation after a revoke did not finish; another key replaces it";
    Plan::act(
        rotation(user, opts, Some(Deletion::new(new, why))),
        Some(old),
    )
}
