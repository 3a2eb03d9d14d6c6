//! GitHub secret scanning as a source of exposures, and its alerts closed once the key is out
//! of service (CONTRACT §17).
//!
//! Who else writes an alert: GitHub raises it, but what it holds is whatever anyone who can push
//! to a repository of the owner committed. A key id is no secret (it is in every CloudTrail
//! record), so anyone with push access can raise an alert naming a managed key. An alert is
//! therefore believed only as far as it is harmless to: it makes `rotate` answer at once, the
//! same procedure a schedule runs, every consumer kept on a working key. Under
//! `on-exposure: revoke` (an outage by choice) an alert whose pair GitHub found not to work
//! (validity `inactive` while the key is Active: the secret beside the id is not the key's) is
//! answered with a rotation, never with the outage.

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::{Scope, UserSpec};
use crate::model::KeyStatus;
use crate::ports::{Alerts, GhErrorKind, KeyAlert};
use crate::rotation::outcome::UserReport;

/// What one run saw of secret scanning.
#[derive(Debug, Default)]
pub struct Sightings {
    /// Open alerts naming an access key id, in the owners the manifest names.
    pub alerts: Vec<KeyAlert>,
    /// Owners or repositories whose alerts could not be read, each with GitHub's answer.
    pub unreadable: Vec<String>,
}

/// The repositories the manifest names, by owner (lower-case): where a user's alerts are read
/// when the owner is no organization.
fn repositories(users: &[UserSpec]) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_owner: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |r: &str| {
        if let Some(owner) = r.split('/').next() {
            by_owner
                .entry(owner.to_ascii_lowercase())
                .or_default()
                .insert(r.to_owned());
        }
    };
    for u in users {
        for c in &u.consumers {
            if let Scope::Repository(r)
            | Scope::Environment { repository: r, .. }
            | Scope::RepositoryDependabot(r) = &c.scope
            {
                add(r);
            }
        }
        u.verify.iter().for_each(|v| add(&v.repository));
    }
    by_owner
}

/// Reads the open `aws_access_key_id` alerts of every owner of the manifest's GitHub consumers
/// (reads only): an organization's at once, a user's repository by repository. A repository
/// whose alerts GitHub does not serve (404: secret scanning is off, or the repository is not
/// visible) has none to see; a refusal is kept, for one warning.
pub async fn look(github: &impl Alerts, users: &[UserSpec]) -> Sightings {
    let mut seen = Sightings::default();
    let repositories = repositories(users);
    for owner in crate::discover::owners(users) {
        match github.org_key_alerts(&owner).await {
            Ok(Some(found)) => seen.alerts.extend(found),
            Ok(None) => {
                for r in repositories.get(&owner).into_iter().flatten() {
                    match github.repo_key_alerts(r).await {
                        Ok(found) => seen.alerts.extend(found),
                        Err(e) if e.kind == GhErrorKind::NotFound => {}
                        Err(e) => seen.unreadable.push(format!("{r} ({})", e.message)),
                    }
                }
            }
            Err(e) => seen.unreadable.push(format!("{owner} ({})", e.message)),
        }
    }
    seen
}

impl Sightings {
    /// The run's one warning when some alerts could not be read: which, and the permission.
    pub fn warning(&self) -> Option<String> {
        (!self.unreadable.is_empty()).then(|| {
            format!(
                "could not read the secret scanning alerts of {}: the token needs the permission secret_scanning_alerts: read (a GitHub App's or fine-grained token's \"Secret scanning alerts\"; a classic token's security_events scope, by an organization owner or security manager for an organization's alerts). A key GitHub found exposed there is not detected by this run; the run goes on",
                self.unreadable.join(", ")
            )
        })
    }
}

/// The alerts to resolve after a run: those naming a key its user's report shows Inactive, or
/// an exposed key the report no longer lists (deleted).
pub fn to_resolve<'a>(
    alerts: &'a [KeyAlert],
    reports: &[UserReport],
) -> Vec<(&'a KeyAlert, String)> {
    alerts
        .iter()
        .filter_map(|a| {
            reports.iter().find_map(|r| {
                let listed = r.keys.list.iter().find(|k| k.id == a.key_id);
                let exposed = r
                    .exposure
                    .as_ref()
                    .is_some_and(|x| x.sighting.keys.contains(&a.key_id));
                match listed {
                    Some(k) if k.status == KeyStatus::Inactive => Some(format!(
                        "access key {} of IAM user {} is Inactive",
                        a.key_id, r.user.name
                    )),
                    None if exposed => Some(format!(
                        "access key {} of IAM user {} is deleted",
                        a.key_id, r.user.name
                    )),
                    _ => None,
                }
                .map(|why| (a, why))
            })
        })
        .collect()
}

/// Resolves each alert of [`to_resolve`] as `revoked`, with a comment naming the run; what
/// could not be resolved is said (the next run tries again: the alert stays open).
pub async fn resolve(
    github: &impl Alerts,
    alerts: &[KeyAlert],
    reports: &[UserReport],
    run_url: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for (a, why) in to_resolve(alerts, reports) {
        let comment = match run_url {
            Some(url) => format!("aws-key-rotator: {why} ({url})"),
            None => format!("aws-key-rotator: {why}"),
        };
        match github.resolve_alert(&a.repository, a.number, &comment).await {
            Ok(()) => done.push(format!(
                "secret scanning alert #{} of {} resolved as revoked: {why}",
                a.number, a.repository
            )),
            Err(e) => failed.push(format!(
                "could not resolve secret scanning alert #{} of {} ({e}); the next run tries again, or resolve it as revoked by hand",
                a.number, a.repository
            )),
        }
    }
    (done, failed)
}

#[cfg(test)]
mod tests;
