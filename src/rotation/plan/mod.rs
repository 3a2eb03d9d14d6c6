//! (state, facts, options) → what to do. Every safety rule of CONTRACT §5 that can be decided
//! before acting lives here, as pure functions: the facts and the plan's types here, one
//! decider per command (`rotate`, `retire`), and when a user needs a person (`attention`).

use std::fmt;

use chrono::{DateTime, Duration, Utc};

mod attention;
mod grace;
mod moved;
mod retire;
mod revoke;
mod rotate;
#[cfg(test)]
mod tests;

pub use attention::attention;
use attention::conflict;
pub(crate) use retire::straggler;
pub use retire::{deactivate, delete, deletion_due};
pub use rotate::rotate;

use super::journal::{Exposure, Journal, Phase};
use super::state::{self, Freshness, KeyInfo, KeyStatus, Standing, State};
use crate::manifest::{Consumer, Scope, UserSpec, VerifyWorkflow};

pub use crate::model::LastUse;

/// Everything known about one user before deciding.
#[derive(Clone, Debug)]
pub struct Facts {
    /// Oldest first.
    pub keys: Vec<KeyInfo>,
    /// Every consumer's secret timestamps; gathered when both keys are Active.
    pub freshness: Vec<Freshness>,
    pub now: DateTime<Utc>,
    /// The access key id this step is authenticated with, when it is a long-term key.
    pub step_key_id: Option<String>,
    /// The older key's last use; gathered for `deactivate`.
    pub old_last_used: Option<LastUse>,
    /// The newer key's last use; gathered when a `creating` journal stands beside two keys.
    pub newest_last_used: Option<LastUse>,
    /// The journal tag, when it is readable.
    pub journal: Option<Journal>,
    /// Whether the user has verification workflows.
    pub has_verify: bool,
    /// With two keys: no consumer's secret was written since the newer key was created (by
    /// the stores' stamps, with the clock slack counted against it), and no readable store
    /// holds its id: no consumer can hold the newer key.
    pub newest_unheld: bool,
    /// Every consumer assumes the role (CONTRACT §13): the keys are retired, never rotated.
    pub moved: bool,
    /// An expired lease tag is on the user (a stopped run's).
    pub lease_tag: bool,
    /// The keys seen exposed (CONTRACT §17): recorded, or first seen by this run.
    pub exposure: Option<Exposure>,
    /// This run saw the exposure first: it records it before it acts.
    pub exposure_new: bool,
    /// AWS's quarantine policy is attached to the user (read by `status`, `rotate` and
    /// `deactivate`).
    pub quarantined: bool,
}

/// How long a rolled-back key is kept: GitHub's longest job may still hold it.
pub fn job_lifetime() -> Duration {
    Duration::hours(6)
}

/// How long after a `creating` intent its key can appear: the intent is written just before
/// CreateAccessKey, whose tries and timeouts end well within this.
pub fn intent_window() -> Duration {
    Duration::minutes(10)
}

/// A retirement this much past its grace period needs a person.
pub fn overdue_after() -> Duration {
    Duration::days(1)
}

impl Facts {
    /// The newer of two keys, when a run recorded its intent to create it (`creating`) just
    /// before it appeared and nobody can hold it: the run stopped between CreateAccessKey and
    /// the first write (CONTRACT §12). Anyone with `iam:TagUser` can write a `creating`
    /// journal, so the key must be provably nobody's (§12a): created inside the intent's
    /// window, no consumer's secret written after it, never used by anyone (IAM has no last
    /// use), and not this step's own key.
    pub fn orphan_key(&self) -> Option<(&KeyInfo, &str)> {
        let (new, j) = self.creating_intent()?;
        self.intent_unproven()
            .is_none()
            .then(|| (new, j.run.as_deref().unwrap_or("an earlier run")))
            .filter(|_| new.status == KeyStatus::Active)
    }

    /// With two keys and a `creating` journal: the newer key and the intent.
    fn creating_intent(&self) -> Option<(&KeyInfo, &Journal)> {
        let [_, new] = self.keys.as_slice() else {
            return None;
        };
        let j = self
            .journal
            .as_ref()
            .filter(|j| j.phase == Phase::Creating)?;
        Some((new, j))
    }

    /// Why the newer key cannot be the orphan a `creating` journal speaks of, if it cannot.
    pub fn intent_unproven(&self) -> Option<String> {
        let (new, j) = self.creating_intent()?;
        let slack = state::clock_slack();
        if new.created < j.at - slack || new.created > j.at + intent_window() + slack {
            return Some(format!(
                "key {} was created at {}, outside the window of the creating journal written at {}",
                new.id,
                when(new.created),
                when(j.at)
            ));
        }
        if !self.newest_unheld {
            return Some(format!(
                "a consumer's secret was written after key {} was created, or holds it",
                new.id
            ));
        }
        match &self.newest_last_used {
            Some(LastUse { date: None, .. }) => {}
            Some(LastUse {
                date: Some(d),
                service,
                ..
            }) => {
                return Some(format!(
                    "key {} has been used (last {} through {service}): someone holds it",
                    new.id,
                    when(*d)
                ));
            }
            None => return Some(format!("the last use of key {} is not known", new.id)),
        }
        if self.step_key_id.as_deref() == Some(new.id.as_str()) {
            return Some(format!("this step is authenticated with key {}", new.id));
        }
        None
    }

    /// Every consumer holds the newest key (`written`) and only its proof is missing: the
    /// verification workflows run again, without a person.
    pub fn verification_to_resume(&self) -> bool {
        let Some(new) = self.newest() else {
            return false;
        };
        self.state() == State::Incomplete
            && self.has_verify
            && self.journal_of_newest().map(|j| j.phase) == Some(Phase::Written)
            && !self.freshness.is_empty()
            && state::stale_consumers(new.created, &self.freshness).is_empty()
    }

    /// The exposure this run saw first, to record.
    pub fn first_sighting(&self) -> Option<Exposure> {
        self.exposure.clone().filter(|_| self.exposure_new)
    }

    /// Whether key `k` was seen exposed.
    pub fn exposed(&self, k: &KeyInfo) -> bool {
        self.exposure
            .as_ref()
            .is_some_and(|e| e.keys.contains(&k.id))
    }

    /// The exposed keys that still work (CONTRACT §17: `exposed`, loud, until they are
    /// Inactive).
    pub fn exposed_active(&self) -> Vec<&KeyInfo> {
        self.keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active && self.exposed(k))
            .collect()
    }

    /// Whether the next rotate repairs an incomplete rotation without a person (CONTRACT §12a),
    /// as `force` would, because this step's credentials make every value known: a rotation
    /// stopped while writing or awaiting its proof, with either of its keys; a rollback cut
    /// short (`rolling-back`), with the old key only (it is finished, never resumed).
    pub fn repairs_itself(&self) -> bool {
        let [old, new] = self.keys.as_slice() else {
            return false;
        };
        let step = self.step_key_id.as_deref();
        let with_old = step == Some(old.id.as_str());
        let with_new = step == Some(new.id.as_str());
        self.state() == State::Incomplete
            && match self.journal_of_newest().map(|j| j.phase) {
                Some(Phase::Writing | Phase::Written) => with_old || with_new,
                Some(Phase::RollingBack) => with_old,
                _ => false,
            }
    }

    pub fn state(&self) -> State {
        self.standing().state()
    }
    /// The state a report shows: `exposed` while an exposed key works, else [`Facts::state`].
    pub fn reported_state(&self) -> State {
        if self.exposed_active().is_empty() {
            self.state()
        } else {
            State::Exposed
        }
    }
    /// The state with the keys it is about.
    pub fn standing(&self) -> Standing<'_> {
        // A `creating` journal whose key is not provably nobody's is no run's leftover to
        // finish or delete (CONTRACT §12a).
        if self.intent_unproven().is_some() {
            return Standing::Conflict;
        }
        if self.moved {
            return state::moved_standing(&self.keys, self.journal.as_ref(), self.now);
        }
        state::standing(
            &self.keys,
            self.journal.as_ref(),
            &self.freshness,
            self.has_verify,
            self.now,
        )
    }
    /// Why the journal cannot be believed, when it contradicts the keys (a forged tag).
    pub fn journal_contradiction(&self) -> Option<String> {
        if let Some(why) = self.intent_unproven() {
            return Some(format!("it records a run creating a key, but {why}"));
        }
        let j = self.journal.as_ref()?;
        state::contradiction(&self.keys, j, self.now)
    }
    /// The journal, when it is about the newest key.
    pub fn journal_of_newest(&self) -> Option<&Journal> {
        let new = self.newest()?;
        self.journal.as_ref().filter(|j| j.key == new.id)
    }
    fn newest(&self) -> Option<&KeyInfo> {
        self.keys.last()
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub force: bool,
    pub delete_inactive: bool,
    pub straggler_window: Duration,
    pub old_access_key_id: Option<String>,
    /// Inputs `deactivate-after-hours` / `delete-after-days`: override the manifest's.
    pub deactivate_after: Option<Duration>,
    pub delete_after: Option<Duration>,
    /// `GITHUB_REPOSITORY`, the rotator's own repository: written last.
    pub own_repository: Option<String>,
    /// `compromised-key-id` (CONTRACT §17): a person says this key is exposed.
    pub compromised: Option<String>,
    /// Open secret scanning alerts naming an access key id (CONTRACT §17), read by the app.
    pub alerts: Vec<crate::ports::KeyAlert>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            force: false,
            delete_inactive: false,
            straggler_window: Duration::minutes(15),
            old_access_key_id: None,
            deactivate_after: None,
            delete_after: None,
            own_repository: None,
            compromised: None,
            alerts: Vec::new(),
        }
    }
}

impl Options {
    pub fn deactivate_after(&self, user: &UserSpec) -> Duration {
        self.deactivate_after
            .unwrap_or_else(|| Duration::hours(i64::from(user.deactivate_after_hours)))
    }
    pub fn delete_after(&self, user: &UserSpec) -> Duration {
        self.delete_after
            .unwrap_or_else(|| Duration::days(i64::from(user.delete_after_days)))
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn span(d: Duration) -> String {
    if d.num_hours() >= 48 && d.num_hours() % 24 == 0 {
        format!("{} days", d.num_days())
    } else if d.num_minutes() >= 60 && d.num_minutes() % 60 == 0 {
        format!("{} hours", d.num_hours())
    } else {
        format!("{} minutes", d.num_minutes())
    }
}

/// One mutating call (or group of calls) of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    DeleteKey {
        key_id: String,
        why: String,
    },
    CreateKey,
    ProveNewKey,
    WriteSecrets(Consumer),
    DispatchVerification(VerifyWorkflow),
    Deactivate {
        key_id: String,
    },
    /// Repair: the step runs with the new key, so its secret is known again.
    AdoptStepKey,
    /// Repair: put the old values (the step's own key) back in every consumer.
    RollBack,
    /// Record on the IAM user that every consumer assumes the role, so `key_id` is retired.
    RecordMoved {
        key_id: String,
    },
    /// Remove the journal and lease tags of a migrated user.
    ClearTags,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::DeleteKey { key_id, why } => write!(f, "delete access key {key_id} ({why})"),
            Step::CreateKey => f.write_str("create a new access key"),
            Step::ProveNewKey => f.write_str("check the new key with STS GetCallerIdentity"),
            Step::WriteSecrets(c) => write!(
                f,
                "write {} and {} in {}",
                c.secrets.access_key_id, c.secrets.secret_access_key, c.scope
            ),
            Step::DispatchVerification(v) => write!(
                f,
                "dispatch workflow {} in {} on {}",
                v.workflow,
                v.repository,
                v.git_ref.as_deref().unwrap_or("the default branch")
            ),
            Step::Deactivate { key_id } => write!(f, "set access key {key_id} Inactive"),
            Step::AdoptStepKey => {
                f.write_str("use this step's own credentials (the new key) to finish the push")
            }
            Step::RollBack => f.write_str(
                "write this step's own credentials (the old key) back into every consumer",
            ),
            Step::ClearTags => f.write_str(
                "remove the journal and lease tags a stopped run left on the migrated user",
            ),
            Step::RecordMoved { key_id } => write!(
                f,
                "record that every consumer assumes the role, starting the retirement of access key {key_id}"
            ),
        }
    }
}

/// A key deletion a plan makes, and why (the journal and the report say it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub key_id: String,
    pub why: String,
}

impl Deletion {
    fn new(key: &KeyInfo, why: &str) -> Self {
        Self {
            key_id: key.id.clone(),
            why: why.to_owned(),
        }
    }
}

/// What a plan changes, as the executor carries it out: each variant names everything it
/// needs, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    /// A new key: (after deleting `first`) create it, prove it with STS, write it into every
    /// consumer in `writes` order, and dispatch the verification workflows.
    Rotate {
        first: Option<Deletion>,
        /// `on-exposure: revoke`: this exposed key is made Inactive before the new one is
        /// created (CONTRACT §17).
        revoke: Option<String>,
        writes: Vec<Consumer>,
        verify: Vec<VerifyWorkflow>,
    },
    /// Repair: the step runs with the new key, so its secret is known again: write it
    /// everywhere and verify.
    Adopt {
        writes: Vec<Consumer>,
        verify: Vec<VerifyWorkflow>,
    },
    /// Every consumer holds the newest key: only its proof is missing.
    Verify(Vec<VerifyWorkflow>),
    /// Repair: put the old values (the step's own key) back in every consumer.
    RollBack,
    Deactivate {
        key_id: String,
    },
    Delete(Deletion),
    /// Every consumer assumes the role: record that the retirement of `key_id` starts now
    /// (its grace period and the straggler rule count from here).
    StartRetirement {
        key_id: String,
    },
    /// A migrated user (no key left) still has the journal or a lease a stopped run left:
    /// removed, so nothing of the tool stays on the user.
    ClearTags,
}

impl Act {
    /// The plan's mutating calls in order, as the dry run lists them.
    pub fn steps(&self) -> Vec<Step> {
        let writes = |w: &[Consumer]| {
            w.iter()
                .cloned()
                .map(Step::WriteSecrets)
                .collect::<Vec<_>>()
        };
        let verify = |v: &[VerifyWorkflow]| {
            v.iter()
                .cloned()
                .map(Step::DispatchVerification)
                .collect::<Vec<_>>()
        };
        match self {
            Act::Rotate {
                first,
                revoke,
                writes: w,
                verify: v,
            } => first
                .iter()
                .map(Step::delete)
                .chain(revoke.iter().map(|key_id| Step::Deactivate {
                    key_id: key_id.clone(),
                }))
                .chain([Step::CreateKey, Step::ProveNewKey])
                .chain(writes(w))
                .chain(verify(v))
                .collect(),
            Act::Adopt {
                writes: w,
                verify: v,
            } => std::iter::once(Step::AdoptStepKey)
                .chain(writes(w))
                .chain(verify(v))
                .collect(),
            Act::Verify(v) => verify(v),
            Act::RollBack => vec![Step::RollBack],
            Act::Deactivate { key_id } => vec![Step::Deactivate {
                key_id: key_id.clone(),
            }],
            Act::Delete(d) => vec![Step::delete(d)],
            Act::StartRetirement { key_id } => vec![Step::RecordMoved {
                key_id: key_id.clone(),
            }],
            Act::ClearTags => vec![Step::ClearTags],
        }
    }

    /// Whether it writes secrets (GitHub's or AWS's).
    pub fn writes(&self) -> bool {
        match self {
            Act::Rotate { writes, .. } | Act::Adopt { writes, .. } => !writes.is_empty(),
            Act::RollBack => true,
            _ => false,
        }
    }

    /// The consumers it writes the new key into.
    pub fn written(&self) -> &[Consumer] {
        match self {
            Act::Rotate { writes, .. } | Act::Adopt { writes, .. } => writes,
            _ => &[],
        }
    }

    /// The verification workflows it dispatches.
    pub fn verifications(&self) -> &[VerifyWorkflow] {
        match self {
            Act::Rotate { verify, .. } | Act::Adopt { verify, .. } | Act::Verify(verify) => verify,
            _ => &[],
        }
    }
}

impl Step {
    fn delete(d: &Deletion) -> Step {
        Step::DeleteKey {
            key_id: d.key_id.clone(),
            why: d.why.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to do (exit 0), and why.
    Nothing(String),
    /// A safety rule refuses (exit 3): what and what to do.
    Refuse(String),
    /// The request itself is wrong (exit 2).
    Invalid(String),
    /// Mutations to make. `old_key` is the key consumers hold before (if any).
    Act { act: Act, old_key: Option<String> },
}

impl Plan {
    fn act(act: Act, old: Option<&KeyInfo>) -> Plan {
        Plan::Act {
            act,
            old_key: old.map(|k| k.id.clone()),
        }
    }
}

/// Whether consumer `c` is in the rotator's own repository (its repository or environment
/// secrets): with self-rotation its job reads them, and a run stopped while writing them
/// would leave the next run unable to authenticate.
pub fn in_own_repository(c: &Consumer, opts: &Options) -> bool {
    let repo = match &c.scope {
        Scope::Repository(r) | Scope::Environment { repository: r, .. } => Some(r),
        _ => None,
    };
    repo.zip(opts.own_repository.as_ref())
        .is_some_and(|(r, own)| r.eq_ignore_ascii_case(own))
}

/// The order every write path takes through `consumers` (CONTRACT §12, §12a): the manifest's,
/// the rotator's own repository last.
pub fn write_order(consumers: &[Consumer], opts: &Options) -> Vec<usize> {
    let (mine, others): (Vec<usize>, Vec<usize>) =
        (0..consumers.len()).partition(|&i| in_own_repository(&consumers[i], opts));
    others.into_iter().chain(mine).collect()
}

/// Every consumer's write, the rotator's own repository last.
fn writes(user: &UserSpec, opts: &Options) -> Vec<Consumer> {
    write_order(&user.consumers, opts)
        .into_iter()
        .map(|i| user.consumers[i].clone())
        .collect()
}

/// A whole rotation, after deleting `first`.
fn rotation(user: &UserSpec, opts: &Options, first: Option<Deletion>) -> Act {
    Act::Rotate {
        first,
        revoke: None,
        writes: writes(user, opts),
        verify: user.verify.clone(),
    }
}

fn list_stale(facts: &Facts) -> String {
    let Some(new) = facts.newest() else {
        return String::new();
    };
    state::stale_consumers(new.created, &facts.freshness)
        .iter()
        .map(|c| c.scope.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(keys: &[KeyInfo]) -> String {
    keys.iter()
        .map(|k| {
            let s = match k.status {
                KeyStatus::Active => "Active",
                KeyStatus::Inactive => "Inactive",
            };
            format!("{} {s} created {}", k.id, k.created.format("%Y-%m-%d"))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
