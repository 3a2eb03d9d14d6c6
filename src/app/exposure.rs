//! The app's part of an exposed key (CONTRACT §17): secret scanning read once for the run and
//! closed once the keys are out of service, and the evidence of who used an exposed key.

use crate::action::Console;
use crate::adapters::github::GitHub;
use crate::alerts::{self, Sightings};
use crate::manifest::UserSpec;
use crate::ports::Events;
use crate::rotation::run::UserReport;

/// The open `aws_access_key_id` alerts of the manifest's owners (reads only); a token that may
/// not read them is one warning, and the run goes on.
pub(super) async fn look(github: &GitHub, users: &[UserSpec], console: &Console) -> Sightings {
    let seen = alerts::look(github, users).await;
    if let Some(w) = seen.warning() {
        console.warn(&w);
    }
    seen
}

/// After a run that changed something: every alert whose key is now Inactive (or deleted) is
/// resolved as revoked, with a comment naming the run.
pub(super) async fn close_alerts(
    github: &GitHub,
    seen: &Sightings,
    reports: &[UserReport],
    run_url: Option<&str>,
    console: &Console,
) {
    let (done, failed) = alerts::resolve(github, &seen.alerts, reports, run_url).await;
    done.iter().for_each(|d| console.info(d));
    failed.iter().for_each(|f| console.warn(f));
}

/// At most this many calls with an exposed key are shown, newest first.
pub const EVIDENCE_EVENTS: usize = 50;

/// CloudTrail's record of the calls made with each exposed key since its sighting, for the
/// report, the summary and the issue: through the CloudTrail of user `i`'s account
/// (`accounts[i]`; `None`: not reached), a client made only for a user with an exposure. An
/// identity that may not call `LookupEvents` gets one line naming the permission in place of
/// the events.
pub(super) async fn gather_evidence(
    reports: &mut [Option<UserReport>],
    accounts: &[Option<&aws_config::SdkConfig>],
) {
    for (report, account) in reports.iter_mut().zip(accounts) {
        let (Some(report), Some(config)) = (report, account) else {
            continue;
        };
        let Some(x) = report.exposure.as_mut() else {
            continue;
        };
        let trail = crate::adapters::aws::trail::Trail::new(config);
        x.trail = Some(evidence(&trail, &x.sighting).await);
    }
}

async fn evidence(
    trail: &impl crate::ports::Trail,
    sighting: &crate::rotation::journal::Exposure,
) -> Result<Vec<crate::ports::TrailEvent>, String> {
    let mut events = Vec::new();
    for key in &sighting.keys {
        match trail.key_events(key, sighting.at, EVIDENCE_EVENTS).await {
            Ok(found) => events.extend(found),
            Err(e) if e.kind == crate::ports::IamErrorKind::Credentials => {
                return Err(format!(
                    "CloudTrail's record of who used the exposed key is not shown: this identity may not call cloudtrail:LookupEvents (grant it to see every call since the exposure was seen; {e})"
                ));
            }
            Err(e) => return Err(format!("CloudTrail's record could not be read: {e}")),
        }
    }
    events.sort_by_key(|e| std::cmp::Reverse(e.time));
    events.truncate(EVIDENCE_EVENTS);
    Ok(events)
}

/// `exposed-only` (an hourly schedule beside the daily one): a user with no exposure on record
/// or in sight waits for the run that rotates by age; an exposed one is answered as ever.
pub(super) fn exposed_only(
    mut p: crate::rotation::run::Prepared,
) -> crate::rotation::run::Prepared {
    if p.facts.exposure.is_none() && matches!(p.plan, crate::rotation::plan::Plan::Act { .. }) {
        p.plan = crate::rotation::plan::Plan::Nothing(
            "not exposed: this exposed-only run answers exposed keys only; the run without it (the daily one) rotates by age and repairs".into(),
        );
    }
    p
}
