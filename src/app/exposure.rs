//! The app's part of an exposed key (CONTRACT §17): secret scanning read once for the run and
//! closed once the keys are out of service, and the evidence of who used an exposed key.

use crate::action::Console;
use crate::alerts::{self, Sightings};
use crate::github::GitHub;
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
