//! An exposed key (CONTRACT §17), in the core's terms: what a run sees (the recorded sighting,
//! AWS's quarantine policy, a person's `compromised-key-id`, a secret scanning alert) and what
//! it records. The run's answer (the record before acting, the deactivation after the
//! rotation) is in `answer.rs`, what it records, and the
//! deactivation that follows a rotation in the same run. The decisions themselves are in `plan`.

use super::context::Ctx;
use super::journal::{EXPOSURE_TAG, Exposure, ExposureSource, Tags};
use super::outcome::{Command, Fault, iam_fault};
use super::state::{self, KeyInfo};
use crate::manifest::UserSpec;
use crate::ports::{Clock, Iam, Ports};

/// The names AWS gives the policy it attaches when it finds a user's key exposed.
pub const QUARANTINE_PREFIX: &str = "AWSCompromisedKeyQuarantine";

/// What a run sees of an exposure.
#[derive(Debug, Default)]
pub struct Seen {
    /// The sighting that stands (recorded, or first seen by this run), or one that is over
    /// (reported, so that its issue closes).
    pub exposure: Option<Exposure>,
    /// This run saw it first: it records it.
    pub first_seen: bool,
    /// AWS's quarantine policy is attached to the user.
    pub quarantined: bool,
}

/// Reads whether AWS's quarantine policy is on the user (one IAM read, every command) and
/// decides what is exposed. A recorded sighting stands while one of its keys exists, and a
/// quarantine's while the policy stays attached: the policy names no key, so the keys made
/// after it are not exposed by it. `status`, `rotate` and `deactivate` also look for a new
/// sighting: a person's `compromised-key-id` naming one of the user's keys, else the quarantine
/// policy, which covers every key the user has, else an open secret scanning alert naming one
/// of them (the app read the alerts once for the run).
pub(super) async fn detect<P: Ports>(
    ctx: &Ctx<'_, P>,
    user: &UserSpec,
    command: Command,
    keys: &[KeyInfo],
    tags: &Tags,
) -> Result<Seen, Fault> {
    let now = ctx.clock().now();
    // A sighting from a time to come is a forgery: read as none.
    let recorded = tags
        .exposure()
        .cloned()
        .filter(|e| e.at <= now + state::clock_slack());
    let live = recorded
        .as_ref()
        .is_some_and(|e| e.keys.iter().any(|k| keys.iter().any(|x| x.id == *k)));
    let quarantined = ctx
        .iam()
        .attached_policies(&user.name)
        .await
        .map_err(|e| iam_fault(user, "iam:ListAttachedUserPolicies", e))?
        .iter()
        .any(|p| p.starts_with(QUARANTINE_PREFIX));
    let standing = recorded
        .as_ref()
        .is_some_and(|e| live || (e.source == ExposureSource::Quarantine && quarantined));
    // `delete` looks for nothing new (it reads the policy for the exposure's issue), nor is
    // there anything to see without a key.
    if standing || command == Command::Delete || keys.is_empty() {
        return Ok(Seen {
            exposure: recorded,
            first_seen: false,
            quarantined,
        });
    }
    let first = |keys: Vec<String>, source| Seen {
        exposure: Some(Exposure {
            keys,
            source,
            at: now,
        }),
        first_seen: true,
        quarantined,
    };
    if let Some(id) = &ctx.opts.compromised
        && keys.iter().any(|k| k.id == *id)
    {
        return Ok(first(vec![id.clone()], ExposureSource::Manual));
    }
    if quarantined {
        let all = keys.iter().map(|k| k.id.clone()).collect();
        return Ok(first(all, ExposureSource::Quarantine));
    }
    // GitHub's secret scanning found one of the user's key ids in code.
    let alerted: Vec<String> = keys
        .iter()
        .filter(|k| ctx.opts.alerts.iter().any(|a| a.key_id == k.id))
        .map(|k| k.id.clone())
        .collect();
    if !alerted.is_empty() {
        return Ok(first(alerted, ExposureSource::Alert));
    }
    // An earlier sighting that is over is still reported, so that its issue closes.
    Ok(Seen {
        exposure: recorded,
        first_seen: false,
        quarantined,
    })
}

/// Records an exposure seen first, so that every later run knows it (CONTRACT §17). A write
/// that fails is said; the next run sees the exposure again.
pub(super) async fn record<P: Ports>(ctx: &Ctx<'_, P>, user: &UserSpec, e: &Exposure) {
    let name = &user.name;
    match ctx.iam().set_tag(name, EXPOSURE_TAG, &e.value()).await {
        Ok(()) => ctx.events.warn(&format!(
            "user {name}: access key {} exposed ({}): recorded; rotate takes it out of service at once",
            e.keys.join(", "),
            e.source.as_str()
        )),
        Err(err) => ctx.events.warn(&format!(
            "user {name}: could not record the exposure of {} ({err}); the next run sees it again",
            e.keys.join(", ")
        )),
    }
}
