//! (state, facts, options) → what to do. Every safety rule of CONTRACT §5 that can be decided
//! before acting lives here, as pure functions.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use super::journal::{JOURNAL_TAG, Journal, Phase};
use super::state::{self, Freshness, KeyInfo, KeyStatus, State};
use crate::manifest::{Consumer, Scope, UserSpec, VerifyWorkflow};

/// What GetAccessKeyLastUsed said about a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastUse {
    pub date: Option<DateTime<Utc>>,
    pub service: String,
    pub region: String,
}

impl fmt::Display for LastUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.date {
            None => f.write_str("never used"),
            Some(d) => write!(
                f,
                "last used {} ({} in {})",
                d.format("%Y-%m-%d %H:%M:%S UTC"),
                self.service,
                self.region
            ),
        }
    }
}

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
    /// The journal tag, when it is readable.
    pub journal: Option<Journal>,
    /// Whether the user has verification workflows.
    pub has_verify: bool,
    /// With two keys: no consumer's secret was written since the newer key was created (by
    /// the stores' stamps, with the clock slack counted against it), and no readable store
    /// holds its id: no consumer can hold the newer key.
    pub newest_unheld: bool,
}

/// How long a rolled-back key is kept: GitHub's longest job may still hold it.
pub fn job_lifetime() -> Duration {
    Duration::hours(6)
}

/// A retirement this much past its grace period needs a person.
pub fn overdue_after() -> Duration {
    Duration::days(1)
}

impl Facts {
    /// The newer of two keys, when a run recorded its intent to create it (`creating`) just
    /// before it appeared and no consumer got it: the run stopped between CreateAccessKey and
    /// the first write, and nobody can hold the key (CONTRACT §12). Not when this step is
    /// authenticated with it.
    pub fn orphan_key(&self) -> Option<(&KeyInfo, &str)> {
        let [_, new] = self.keys.as_slice() else {
            return None;
        };
        let j = self
            .journal
            .as_ref()
            .filter(|j| j.phase == Phase::Creating)?;
        let in_window =
            new.created >= j.at - state::clock_slack() && new.created <= j.at + job_lifetime();
        (in_window && self.newest_unheld && self.step_key_id.as_deref() != Some(new.id.as_str()))
            .then(|| (new, j.run.as_deref().unwrap_or("an earlier run")))
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

    pub fn state(&self) -> State {
        state::derive(
            &self.keys,
            self.journal.as_ref(),
            &self.freshness,
            self.has_verify,
            self.now,
        )
    }
    /// Why the journal cannot be believed, when it contradicts the keys (a forged tag).
    pub fn journal_contradiction(&self) -> Option<String> {
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
    fn oldest(&self) -> Option<&KeyInfo> {
        self.keys.first()
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
    /// Mutations to make, in order. `old_key` is the key consumers hold before (if any).
    Act {
        steps: Vec<Step>,
        old_key: Option<String>,
    },
}

/// Every consumer's write, the rotator's own repository last (CONTRACT §12): with
/// self-rotation its job reads those secrets, and a run killed while writing them would leave
/// the next run unable to authenticate.
fn writes(user: &UserSpec, opts: &Options) -> Vec<Step> {
    let own = |c: &Consumer| {
        let repo = match &c.scope {
            Scope::Repository(r) | Scope::Environment { repository: r, .. } => Some(r),
            _ => None,
        };
        repo.zip(opts.own_repository.as_ref())
            .is_some_and(|(r, own)| r.eq_ignore_ascii_case(own))
    };
    let (mine, others): (Vec<&Consumer>, Vec<&Consumer>) =
        user.consumers.iter().partition(|c| own(c));
    others
        .into_iter()
        .chain(mine)
        .cloned()
        .map(Step::WriteSecrets)
        .collect()
}

fn rotation_steps(user: &UserSpec, opts: &Options, delete_first: Option<Step>) -> Vec<Step> {
    delete_first
        .into_iter()
        .chain([Step::CreateKey, Step::ProveNewKey])
        .chain(writes(user, opts))
        .chain(user.verify.iter().cloned().map(Step::DispatchVerification))
        .collect()
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

fn verify_steps(user: &UserSpec) -> impl Iterator<Item = Step> + '_ {
    user.verify.iter().cloned().map(Step::DispatchVerification)
}

/// `rotate` (CONTRACT §4, last column).
pub fn rotate(user: &UserSpec, facts: &Facts, opts: &Options) -> Plan {
    let name = &user.name;
    let keys = &facts.keys;
    let due_in = |k: &KeyInfo| user.max_age_days as i64 - state::age_days(k.created, facts.now);
    match facts.state() {
        State::None => Plan::Act {
            steps: rotation_steps(user, opts, None),
            old_key: None,
        },
        State::Current => {
            let k = &keys[0];
            let left = due_in(k);
            // A first key whose push never finished (a run killed while writing it): some
            // consumers may hold half a pair of it, and nobody has its secret any more. A new
            // key written everywhere mends them (CONTRACT §12).
            let unfinished = facts
                .journal_of_newest()
                .is_some_and(|j| j.phase == Phase::Writing);
            if left <= 0 || opts.force || unfinished {
                Plan::Act {
                    steps: rotation_steps(user, opts, None),
                    old_key: Some(k.id.clone()),
                }
            } else {
                Plan::Nothing(format!(
                    "key {} is {} days old; rotation is due in {left} days (max-age-days {}); use force to rotate now",
                    k.id,
                    state::age_days(k.created, facts.now),
                    user.max_age_days
                ))
            }
        }
        State::Inactive => Plan::Refuse(format!(
            "user {name} has only an Inactive key ({}): no consumer can be working with it. If it should still be in use, reactivate it (aws iam update-access-key --user-name {name} --access-key-id {} --status Active) and run rotate; otherwise delete it (aws iam delete-access-key) and run rotate to bootstrap a new key",
            keys[0].id, keys[0].id
        )),
        State::PendingDeactivation => Plan::Nothing(format!(
            "every consumer holds the new key {}; the old key {} awaits `deactivate`",
            keys[1].id, keys[0].id
        )),
        State::RolledBack => {
            let (old, new) = (&keys[0], &keys[1]);
            let since = facts.journal_of_newest().map_or(new.created, |j| j.at);
            let free_at = since + job_lifetime();
            if facts.now < free_at && !opts.force {
                return Plan::Nothing(format!(
                    "the rotation to {} was rolled back at {}; every consumer holds {} again. The new key is deleted from {} on, when no job can still hold it (or now with force)",
                    new.id,
                    when(since),
                    old.id,
                    when(free_at)
                ));
            }
            if facts.step_key_id.as_deref() == Some(new.id.as_str()) {
                return Plan::Refuse(format!(
                    "the rolled-back key {} is the one this step is authenticated with: run with the old key {} or another identity",
                    new.id, old.id
                ));
            }
            let delete = Step::DeleteKey {
                key_id: new.id.clone(),
                why: "rolled back; no job can still hold it".into(),
            };
            let steps = if due_in(old) <= 0 || opts.force {
                rotation_steps(user, opts, Some(delete))
            } else {
                vec![delete]
            };
            Plan::Act {
                steps,
                old_key: Some(old.id.clone()),
            }
        }
        State::Incomplete => {
            let (old, new) = (&keys[0], &keys[1]);
            let phase = facts.journal_of_newest().map(|j| j.phase);
            if let Some((orphan, run)) = facts.orphan_key() {
                let delete = Step::DeleteKey {
                    key_id: orphan.id.clone(),
                    why: format!(
                        "created by run {run}, which stopped before any secret carried it"
                    ),
                };
                let steps = if due_in(old) <= 0 || opts.force {
                    rotation_steps(user, opts, Some(delete))
                } else {
                    vec![delete]
                };
                return Plan::Act {
                    steps,
                    old_key: Some(old.id.clone()),
                };
            }
            if facts.verification_to_resume() && !opts.force {
                return Plan::Act {
                    steps: verify_steps(user).collect(),
                    old_key: Some(old.id.clone()),
                };
            }
            if !opts.force {
                let what = match phase {
                    Some(Phase::Partial) => {
                        "a rotation failed and could not be rolled back everywhere".to_owned()
                    }
                    Some(Phase::Written) => {
                        "a rotation wrote every consumer but its verification did not succeed"
                            .to_owned()
                    }
                    Some(p) => format!("a rotation stopped while {p}"),
                    None => "an earlier rotation did not finish (no journal records it)".to_owned(),
                };
                let stale = list_stale(facts);
                let stale = if stale.is_empty() {
                    String::new()
                } else {
                    format!(
                        " These consumers were not updated after the new key was created: {stale}."
                    )
                };
                return Plan::Refuse(format!(
                    "{what}: user {name} has two Active keys ({} and the new {}).{stale} Run rotate with force to repair: {}",
                    old.id,
                    new.id,
                    repair_words(facts, old, new, phase)
                ));
            }
            let step = facts.step_key_id.as_deref();
            if step == Some(new.id.as_str()) {
                return Plan::Act {
                    steps: std::iter::once(Step::AdoptStepKey)
                        .chain(writes(user, opts))
                        .chain(verify_steps(user))
                        .collect(),
                    old_key: Some(old.id.clone()),
                };
            }
            if step == Some(old.id.as_str()) {
                return Plan::Act {
                    steps: vec![Step::RollBack],
                    old_key: Some(old.id.clone()),
                };
            }
            if phase == Some(Phase::Written) && !user.verify.is_empty() {
                return Plan::Act {
                    steps: verify_steps(user).collect(),
                    old_key: Some(old.id.clone()),
                };
            }
            Plan::Act {
                steps: rotation_steps(
                    user,
                    opts,
                    Some(Step::DeleteKey {
                        key_id: new.id.clone(),
                        why: "recovering an incomplete rotation".into(),
                    }),
                ),
                old_key: Some(old.id.clone()),
            }
        }
        State::PendingDeletion => {
            let (old, active) = (&keys[0], &keys[1]);
            let left = due_in(active);
            if left > 0 && !opts.force {
                return Plan::Nothing(format!(
                    "key {} is current; the Inactive old key {} awaits `delete`",
                    active.id, old.id
                ));
            }
            if !opts.delete_inactive {
                return Plan::Refuse(format!(
                    "key {} is due for rotation, but user {name} already has two keys and the Inactive key {} must go first: run `delete`, or rotate with delete-inactive: true",
                    active.id, old.id
                ));
            }
            Plan::Act {
                steps: rotation_steps(
                    user,
                    opts,
                    Some(Step::DeleteKey {
                        key_id: old.id.clone(),
                        why: "the leftover Inactive key (delete-inactive)".into(),
                    }),
                ),
                old_key: Some(active.id.clone()),
            }
        }
        State::Conflict => Plan::Refuse(conflict(user, facts, "rotate")),
    }
}

/// What `rotate --force` would do with an incomplete rotation, in words.
fn repair_words(facts: &Facts, old: &KeyInfo, new: &KeyInfo, phase: Option<Phase>) -> String {
    let step = facts.step_key_id.as_deref();
    if step == Some(new.id.as_str()) {
        format!(
            "with this step's credentials (the new key {}) it writes the new key into every consumer and verifies it",
            new.id
        )
    } else if step == Some(old.id.as_str()) {
        format!(
            "with this step's credentials (the old key {}) it writes the old key back into every consumer",
            old.id
        )
    } else if phase == Some(Phase::Written) {
        "it runs the verification workflows again".to_owned()
    } else {
        format!(
            "it deletes {}, creates another key and writes it to every consumer (consumers holding {} fail until then; run it with the old or the new key as credentials to avoid that)",
            new.id, new.id
        )
    }
}

fn conflict(user: &UserSpec, facts: &Facts, command: &str) -> String {
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

/// Why a user needs a person (CONTRACT §4: a scheduled run is loud), if it does.
pub fn attention(user: &UserSpec, facts: &Facts, opts: &Options) -> Option<String> {
    let name = &user.name;
    let j = facts.journal_of_newest();
    match facts.state() {
        State::Inactive => Some(format!("user {name} has only an Inactive key")),
        State::Conflict => Some(match facts.journal_contradiction() {
            Some(why) => format!(
                "the journal tag of user {name} contradicts its keys ({why}): someone other than the rotator wrote it"
            ),
            None => format!("user {name} has keys in a combination no command handles"),
        }),
        // The next rotate finishes these by itself.
        State::Incomplete if facts.orphan_key().is_some() || facts.verification_to_resume() => None,
        State::Incomplete if !opts.force => Some(format!(
            "user {name} has an incomplete rotation: run rotate with force"
        )),
        State::PendingDeactivation => {
            let since = j.map(|j| j.at)?;
            let due = since + opts.deactivate_after(user);
            (facts.now > due + overdue_after()).then(|| {
                format!(
                    "the old key {} of user {name} was due for deactivation at {} and is still Active (a straggler, external consumers or a failed deactivate hold it back)",
                    facts.keys[0].id,
                    when(due)
                )
            })
        }
        State::PendingDeletion => {
            let since = j.map(|j| j.at)?;
            let due = since + opts.delete_after(user);
            (facts.now > due + overdue_after()).then(|| {
                format!(
                    "the Inactive key {} of user {name} was due for deletion at {} and still exists",
                    facts.keys[0].id,
                    when(due)
                )
            })
        }
        State::RolledBack => {
            let since = j.map(|j| j.at)?;
            (facts.now > since + job_lifetime() + overdue_after()).then(|| {
                format!(
                    "the rolled-back key {} of user {name} is still there: run rotate",
                    facts.keys[1].id
                )
            })
        }
        _ => None,
    }
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

/// Checks input `old-access-key-id` against the user's keys. `Err` is the plan to return.
fn check_named_old_key(user: &UserSpec, facts: &Facts, opts: &Options) -> Result<(), Plan> {
    let Some(named) = opts.old_access_key_id.as_deref() else {
        return Ok(());
    };
    match (facts.oldest(), facts.newest()) {
        (Some(old), _) if facts.keys.len() >= 2 && old.id == named => Ok(()),
        (_, Some(new)) if new.id == named => Err(Plan::Refuse(format!(
            "old-access-key-id {named} is the newest key of user {}: only the older key is ever retired",
            user.name
        ))),
        _ => Err(Plan::Invalid(format!(
            "old-access-key-id {named} is not a key of user {} (its keys: {}): pass the old-access-key-id output of the rotate step",
            user.name,
            if facts.keys.is_empty() {
                "none".to_owned()
            } else {
                describe(&facts.keys)
            }
        ))),
    }
}

/// A retirement command re-run after it already happened has nothing to do.
fn already_gone(facts: &Facts, opts: &Options) -> Option<Plan> {
    let named = opts.old_access_key_id.as_deref()?;
    match facts.keys.as_slice() {
        [only] if only.id != named && only.status == KeyStatus::Active => {
            Some(Plan::Nothing(format!(
                "key {named} is not among the user's keys (already deleted, or mistyped); {} is the only key: nothing to do",
                only.id
            )))
        }
        _ => None,
    }
}

/// `deactivate`: set the older key Inactive after the safety checks and the grace period.
pub fn deactivate(user: &UserSpec, facts: &Facts, opts: &Options) -> Plan {
    if let Some(p) = already_gone(facts, opts) {
        return p;
    }
    if let Err(p) = check_named_old_key(user, facts, opts) {
        return p;
    }
    let name = &user.name;
    let named = opts.old_access_key_id.is_some();
    let state = facts.state();
    match state {
        State::None if named => {
            return Plan::Refuse(format!(
                "user {name} has no access key: nothing to deactivate"
            ));
        }
        State::None => return Plan::Nothing(format!("user {name} has no access key")),
        State::Current | State::Inactive if named => {
            return Plan::Refuse(format!(
                "user {name} has a single key ({}): the only key is never deactivated. Run rotate first",
                facts.keys[0].id
            ));
        }
        State::Current => {
            return Plan::Nothing(format!(
                "user {name} has a single key ({}): nothing to deactivate",
                facts.keys[0].id
            ));
        }
        State::Inactive => {
            return Plan::Refuse(format!(
                "user {name} has only an Inactive key ({}): the only key is never touched; see status",
                facts.keys[0].id
            ));
        }
        State::PendingDeletion => {
            return Plan::Nothing(format!(
                "the old key {} is already Inactive; it awaits `delete`",
                facts.keys[0].id
            ));
        }
        State::RolledBack => {
            return Plan::Nothing(format!(
                "the rotation to {} was rolled back: every consumer holds {} again, which stays Active",
                facts.keys[1].id, facts.keys[0].id
            ));
        }
        State::Conflict => return Plan::Refuse(conflict(user, facts, "deactivate")),
        State::PendingDeactivation | State::Incomplete => {}
    }
    let (old, new) = (&facts.keys[0], &facts.keys[1]);
    if facts.step_key_id.as_deref() == Some(old.id.as_str()) {
        return Plan::Refuse(format!(
            "this step is authenticated with {}, the key it would deactivate: secrets are read when a job starts, so run deactivate in a later job (whose secrets hold the new key {})",
            old.id, new.id
        ));
    }
    if state == State::Incomplete {
        let stale = list_stale(facts);
        let who = if stale.is_empty() {
            "the journal does not record that every consumer holds and has proven it".to_owned()
        } else {
            format!("these consumers were not updated after it was created: {stale}")
        };
        return Plan::Refuse(format!(
            "the new key {} is not known to be in use everywhere ({who}), so the old key {} stays Active. Finish the rotation first (rotate with force); force does not override this",
            new.id, old.id,
        ));
    }
    let j = facts.journal_of_newest();
    let verified_at = j.map_or(new.created, |j| j.at);
    let grace_ends = verified_at + opts.deactivate_after(user);
    if facts.now < grace_ends && !opts.force {
        return Plan::Nothing(format!(
            "not yet: the old key {} stays Active until {} (deactivate-after-hours: {} after the new key {} was verified at {}); force deactivates now",
            old.id,
            when(grace_ends),
            span(opts.deactivate_after(user)),
            new.id,
            when(verified_at)
        ));
    }
    if !user.external.is_empty() && !opts.force {
        return Plan::Refuse(format!(
            "user {name} has consumers outside GitHub that a person updates ({}): confirm they hold the new key {}, then run deactivate with force",
            user.external.join("; "),
            new.id
        ));
    }
    if let Some(LastUse {
        date: Some(used),
        service,
        region,
    }) = &facts.old_last_used
    {
        let held = j.and_then(|j| j.held).unwrap_or(new.created);
        let limit = held + opts.straggler_window;
        if *used > limit && !opts.force {
            return Plan::Refuse(format!(
                "key {} was used at {} ({service} in {region}), {} minutes after every consumer held the new key (window {} minutes): something outside the manifest still uses it. Find it (CloudTrail, or the service above), update it, and run deactivate again, or pass force",
                old.id,
                used.format("%Y-%m-%d %H:%M:%S UTC"),
                (*used - held).num_minutes(),
                opts.straggler_window.num_minutes()
            ));
        }
    }
    Plan::Act {
        steps: vec![Step::Deactivate {
            key_id: old.id.clone(),
        }],
        old_key: Some(old.id.clone()),
    }
}

/// Whether `delete` would delete a key now (its grace has passed), without `force` or a named
/// key: what lets a workflow skip its deletion job (and its reviewers) on the days it has
/// nothing to do.
pub fn deletion_due(user: &UserSpec, facts: &Facts, opts: &Options) -> bool {
    let plain = Options {
        force: false,
        old_access_key_id: None,
        ..opts.clone()
    };
    matches!(delete(user, facts, &plain), Plan::Act { .. })
}

/// `delete`: remove the older key, only if it is already Inactive and its grace has passed.
pub fn delete(user: &UserSpec, facts: &Facts, opts: &Options) -> Plan {
    if let Some(p) = already_gone(facts, opts) {
        return p;
    }
    if let Err(p) = check_named_old_key(user, facts, opts) {
        return p;
    }
    let name = &user.name;
    let named = opts.old_access_key_id.is_some();
    let delete_old = |why: &str| Plan::Act {
        steps: vec![Step::DeleteKey {
            key_id: facts.keys[0].id.clone(),
            why: why.into(),
        }],
        old_key: Some(facts.keys[0].id.clone()),
    };
    match facts.state() {
        State::PendingDeletion => {
            let old = &facts.keys[0];
            let since = facts.journal_of_newest().map_or(facts.now, |j| j.at);
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
            delete_old("the Inactive old key")
        }
        State::Conflict
            if opts.force
                && matches!(facts.keys.as_slice(), [o, n] if o.status == KeyStatus::Inactive && n.status == KeyStatus::Active) =>
        {
            delete_old("an Inactive old key no journal records (force)")
        }
        State::PendingDeactivation | State::Incomplete | State::RolledBack if named => {
            Plan::Refuse(format!(
                "the old key {} is Active: delete removes only an Inactive key. Run deactivate first",
                facts.keys[0].id
            ))
        }
        State::PendingDeactivation | State::RolledBack => Plan::Nothing(format!(
            "the old key {} is still Active: nothing to delete yet",
            facts.keys[0].id
        )),
        State::Incomplete => Plan::Refuse(format!(
            "the old key {} is Active and the rotation is incomplete: nothing can be deleted. Run rotate with force first",
            facts.keys[0].id
        )),
        State::Current | State::Inactive if named => Plan::Refuse(format!(
            "user {name} has a single key ({}): the only key is never deleted",
            facts.keys[0].id
        )),
        State::Current => Plan::Nothing(format!(
            "user {name} has a single key ({}): nothing to delete",
            facts.keys[0].id
        )),
        State::Inactive => Plan::Refuse(format!(
            "user {name} has only an Inactive key ({}): the only key is never deleted; see status",
            facts.keys[0].id
        )),
        State::None if named => {
            Plan::Refuse(format!("user {name} has no access key: nothing to delete"))
        }
        State::None => Plan::Nothing(format!("user {name} has no access key")),
        State::Conflict => Plan::Refuse(conflict(user, facts, "delete")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Scope, SecretNames};
    use KeyStatus::{Active as A, Inactive as I};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }
    fn days_ago(d: i64) -> DateTime<Utc> {
        now() - Duration::days(d)
    }
    fn key(id: &str, status: KeyStatus, created: DateTime<Utc>) -> KeyInfo {
        KeyInfo {
            id: id.into(),
            status,
            created,
        }
    }
    fn user() -> UserSpec {
        UserSpec {
            name: "ci".into(),
            max_age_days: 90,
            deactivate_after_hours: 24,
            delete_after_days: 7,
            consumers: vec![Consumer {
                scope: Scope::Repository("acme/web".into()),
                secrets: SecretNames::default(),
            }],
            verify: vec![],
            external: vec![],
            origin: "m.yml:3:5".into(),
        }
    }
    /// Facts with the journal a finished step leaves: two Active keys are `verified` and an
    /// Inactive old key `deactivated`, both when the new key was created (tests override).
    fn facts(keys: Vec<KeyInfo>, updated: Option<DateTime<Utc>>) -> Facts {
        let journal = match keys.as_slice() {
            [o, n] => {
                let phase = if o.status == A {
                    Phase::Verified
                } else {
                    Phase::Deactivated
                };
                let mut j = Journal::new(phase, &n.id, &format!("{}-1", n.id), n.created);
                j.held = Some(n.created);
                Some(j)
            }
            _ => None,
        };
        Facts {
            freshness: vec![Freshness {
                consumer: user().consumers[0].clone(),
                updated_at: updated,
            }],
            keys,
            now: now(),
            step_key_id: None,
            old_last_used: None,
            journal,
            has_verify: false,
            newest_unheld: false,
        }
    }
    fn with_phase(mut f: Facts, phase: Phase, at: DateTime<Utc>) -> Facts {
        let j = f.journal.as_mut().expect("two keys");
        j.phase = phase;
        j.at = at;
        f
    }
    fn no_grace() -> Options {
        Options {
            deactivate_after: Some(Duration::zero()),
            delete_after: Some(Duration::zero()),
            ..Options::default()
        }
    }
    fn force() -> Options {
        Options {
            force: true,
            ..Options::default()
        }
    }
    fn is_act(p: &Plan) -> bool {
        matches!(p, Plan::Act { .. })
    }
    fn refused(p: &Plan, needle: &str) -> bool {
        matches!(p, Plan::Refuse(m) if m.contains(needle))
    }

    #[test]
    fn bootstrap_creates_and_writes() {
        let p = rotate(&user(), &facts(vec![], None), &Options::default());
        let Plan::Act { steps, old_key } = p else {
            panic!("{p:?}")
        };
        assert_eq!(old_key, None);
        assert_eq!(steps[0], Step::CreateKey);
        assert_eq!(steps[1], Step::ProveNewKey);
        assert!(
            matches!(&steps[2], Step::WriteSecrets(c) if c.scope == Scope::Repository("acme/web".into()))
        );
    }

    #[test]
    fn current_rotates_only_when_due_or_forced() {
        let young = facts(vec![key("K1", A, days_ago(89))], None);
        let p = rotate(&user(), &young, &Options::default());
        assert!(
            matches!(&p, Plan::Nothing(m) if m.contains("due in 1 days")),
            "{p:?}"
        );
        assert!(is_act(&rotate(&user(), &young, &force())));
        let due = facts(vec![key("K1", A, days_ago(90))], None);
        assert!(
            matches!(rotate(&user(), &due, &Options::default()), Plan::Act { old_key: Some(k), .. } if k == "K1")
        );
    }

    #[test]
    fn inactive_and_conflict_refuse() {
        let p = rotate(
            &user(),
            &facts(vec![key("K1", I, days_ago(200))], None),
            &force(),
        );
        assert!(refused(&p, "only an Inactive key"), "{p:?}");
        let p = rotate(
            &user(),
            &facts(
                vec![key("K1", A, days_ago(9)), key("K2", I, days_ago(1))],
                None,
            ),
            &force(),
        );
        assert!(refused(&p, "combination"), "{p:?}");
    }

    #[test]
    fn pending_deactivation_does_nothing() {
        let f = facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
            Some(now()),
        );
        assert!(
            matches!(rotate(&user(), &f, &Options::default()), Plan::Nothing(m) if m.contains("awaits `deactivate`"))
        );
    }

    #[test]
    fn incomplete_refuses_and_force_recovers() {
        let f = with_phase(
            facts(
                vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
                Some(days_ago(2)),
            ),
            Phase::Partial,
            days_ago(1),
        );
        assert!(refused(
            &rotate(&user(), &f, &Options::default()),
            "acme/web (repository secrets)"
        ));
        let Plan::Act { steps, old_key } = rotate(&user(), &f, &force()) else {
            panic!()
        };
        assert_eq!(old_key.as_deref(), Some("K1"));
        assert!(matches!(&steps[0], Step::DeleteKey { key_id, .. } if key_id == "K2"));
        let mut own = f.clone();
        own.step_key_id = Some("K2".into());
        // Repairs: with the new key as credentials, finish the push; with the old, roll back.
        let Plan::Act { steps, .. } = rotate(&user(), &own, &force()) else {
            panic!()
        };
        assert_eq!(steps[0], Step::AdoptStepKey);
        assert!(matches!(&steps[1], Step::WriteSecrets(_)));
        own.step_key_id = Some("K1".into());
        assert!(
            matches!(rotate(&user(), &own, &force()), Plan::Act { steps, .. } if steps == vec![Step::RollBack])
        );
    }

    #[test]
    fn pending_deletion_waits_refuses_or_deletes_first() {
        let young = facts(
            vec![key("K1", I, days_ago(100)), key("K2", A, days_ago(10))],
            None,
        );
        assert!(
            matches!(rotate(&user(), &young, &Options::default()), Plan::Nothing(m) if m.contains("awaits `delete`"))
        );
        let due = facts(
            vec![key("K1", I, days_ago(200)), key("K2", A, days_ago(95))],
            None,
        );
        assert!(refused(
            &rotate(&user(), &due, &Options::default()),
            "delete-inactive"
        ));
        let opts = Options {
            delete_inactive: true,
            ..Options::default()
        };
        let Plan::Act { steps, old_key } = rotate(&user(), &due, &opts) else {
            panic!()
        };
        assert_eq!(old_key.as_deref(), Some("K2"));
        assert!(matches!(&steps[0], Step::DeleteKey { key_id, .. } if key_id == "K1"));
    }

    #[test]
    fn deactivate_rules() {
        let two = facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
            Some(now()),
        );
        assert!(
            matches!(deactivate(&user(), &two, &Options::default()), Plan::Act { steps, .. } if steps == vec![Step::Deactivate { key_id: "K1".into() }])
        );
        // the only key, no key: nothing to do (a fleet-wide deactivate passes over them)
        assert!(matches!(
            deactivate(&user(), &facts(vec![key("K1", A, days_ago(1))], None), &force()),
            Plan::Nothing(m) if m.contains("nothing to deactivate")
        ));
        assert!(matches!(
            deactivate(&user(), &facts(vec![], None), &force()),
            Plan::Nothing(m) if m.contains("no access key")
        ));
        assert!(refused(
            &deactivate(
                &user(),
                &facts(vec![key("K1", I, days_ago(1))], None),
                &force()
            ),
            "only key"
        ));
        // the step's own key
        let mut own = two.clone();
        own.step_key_id = Some("K1".into());
        assert!(refused(
            &deactivate(&user(), &own, &force()),
            "authenticated with K1"
        ));
        // named key: the newest, a stranger, the right one
        let named = |id: &str| Options {
            old_access_key_id: Some(id.into()),
            ..Options::default()
        };
        assert!(refused(&deactivate(&user(), &two, &named("K2")), "newest"));
        assert!(
            matches!(deactivate(&user(), &two, &named("K9")), Plan::Invalid(m) if m.contains("not a key of user ci"))
        );
        assert!(is_act(&deactivate(&user(), &two, &named("K1"))));
        // incomplete needs force
        let stale = with_phase(
            facts(
                vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
                Some(days_ago(3)),
            ),
            Phase::Partial,
            days_ago(1),
        );
        assert!(refused(
            &deactivate(&user(), &stale, &Options::default()),
            "not updated"
        ));
        assert!(refused(
            &deactivate(&user(), &stale, &force()),
            "force does not override"
        ));
        // already done
        let done = facts(
            vec![key("K1", I, days_ago(100)), key("K2", A, days_ago(1))],
            None,
        );
        assert!(matches!(
            deactivate(&user(), &done, &Options::default()),
            Plan::Nothing(_)
        ));
        let gone = facts(vec![key("K2", A, days_ago(1))], None);
        assert!(
            matches!(deactivate(&user(), &gone, &named("K1")), Plan::Nothing(m) if m.contains("already deleted, or mistyped"))
        );
    }

    #[test]
    fn stragglers_refuse_unless_forced() {
        let new_created = now() - Duration::hours(2);
        let mut f = facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, new_created)],
            Some(now()),
        );
        let used = |minutes_after: i64| LastUse {
            date: Some(new_created + Duration::minutes(minutes_after)),
            service: "s3".into(),
            region: "eu-west-1".into(),
        };
        f.old_last_used = Some(used(16));
        let p = deactivate(&user(), &f, &no_grace());
        assert!(
            refused(
                &p,
                "16 minutes after every consumer held the new key (window 15 minutes)"
            ),
            "{p:?}"
        );
        assert!(refused(&p, "s3 in eu-west-1"));
        assert!(is_act(&deactivate(&user(), &f, &force())));
        f.old_last_used = Some(used(15));
        assert!(is_act(&deactivate(&user(), &f, &no_grace())));
        let narrow = Options {
            straggler_window: Duration::minutes(5),
            ..no_grace()
        };
        f.old_last_used = Some(used(6));
        assert!(refused(
            &deactivate(&user(), &f, &narrow),
            "window 5 minutes"
        ));
        f.old_last_used = Some(LastUse {
            date: None,
            service: "N/A".into(),
            region: "N/A".into(),
        });
        assert!(is_act(&deactivate(&user(), &f, &no_grace())));
    }

    #[test]
    fn delete_rules() {
        let pending = facts(
            vec![key("K1", I, days_ago(100)), key("K2", A, days_ago(1))],
            None,
        );
        assert!(
            matches!(delete(&user(), &pending, &no_grace()), Plan::Act { steps, .. } if matches!(&steps[0], Step::DeleteKey { key_id, .. } if key_id == "K1"))
        );
        let active = facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
            Some(now()),
        );
        let k1 = Options {
            old_access_key_id: Some("K1".into()),
            ..force()
        };
        assert!(refused(&delete(&user(), &active, &k1), "is Active"));
        assert!(
            matches!(delete(&user(), &active, &force()), Plan::Nothing(m) if m.contains("still Active"))
        );
        assert!(refused(
            &delete(
                &user(),
                &facts(vec![key("K1", I, days_ago(1))], None),
                &force()
            ),
            "only key"
        ));
        assert!(matches!(
            delete(&user(), &facts(vec![key("K1", A, days_ago(1))], None), &force()),
            Plan::Nothing(m) if m.contains("nothing to delete")
        ));
        let named = Options {
            old_access_key_id: Some("K2".into()),
            ..Options::default()
        };
        assert!(refused(&delete(&user(), &pending, &named), "newest"));
    }

    #[test]
    fn grace_periods_hold_retirement_back_quietly() {
        // verified 23 hours ago: deactivate waits; 24 hours: acts; force: acts at once
        let two = |verified_hours_ago: i64| {
            with_phase(
                facts(
                    vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(2))],
                    Some(now()),
                ),
                Phase::Verified,
                now() - Duration::hours(verified_hours_ago),
            )
        };
        let p = deactivate(&user(), &two(23), &Options::default());
        assert!(
            matches!(&p, Plan::Nothing(m) if m.contains("not yet") && m.contains("2026-11-26 13:00 UTC")),
            "{p:?}"
        );
        assert!(is_act(&deactivate(&user(), &two(24), &Options::default())));
        assert!(is_act(&deactivate(&user(), &two(1), &force())));
        let shorter = Options {
            deactivate_after: Some(Duration::hours(1)),
            ..Options::default()
        };
        assert!(is_act(&deactivate(&user(), &two(1), &shorter)));
        // deactivated 6 days ago: delete waits for the 7th
        let retired = |days: i64| {
            with_phase(
                facts(
                    vec![key("K1", I, days_ago(100)), key("K2", A, days_ago(9))],
                    None,
                ),
                Phase::Deactivated,
                days_ago(days),
            )
        };
        let p = delete(&user(), &retired(6), &Options::default());
        assert!(
            matches!(&p, Plan::Nothing(m) if m.contains("delete-after-days: 7 days")),
            "{p:?}"
        );
        assert!(is_act(&delete(&user(), &retired(7), &Options::default())));
        assert!(is_act(&delete(&user(), &retired(0), &force())));
    }

    #[test]
    fn external_consumers_need_a_person() {
        let mut u = user();
        u.external = vec!["on-prem backup script".into()];
        let f = facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(2))],
            Some(now()),
        );
        assert!(refused(
            &deactivate(&u, &f, &Options::default()),
            "on-prem backup script"
        ));
        assert!(is_act(&deactivate(&u, &f, &force())));
    }

    #[test]
    fn rolled_back_keys_wait_for_every_job_to_end() {
        let rolled = |hours_ago: i64| {
            with_phase(
                facts(
                    vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
                    Some(now()),
                ),
                Phase::RolledBack,
                now() - Duration::hours(hours_ago),
            )
        };
        assert_eq!(rolled(1).state(), State::RolledBack);
        assert!(
            matches!(rotate(&user(), &rolled(5), &Options::default()), Plan::Nothing(m) if m.contains("rolled back"))
        );
        let Plan::Act { steps, .. } = rotate(&user(), &rolled(6), &Options::default()) else {
            panic!()
        };
        assert!(matches!(&steps[0], Step::DeleteKey { key_id, .. } if key_id == "K2"));
        assert_eq!(
            steps[1],
            Step::CreateKey,
            "the old key is due, so it rotates again"
        );
        assert!(matches!(
            rotate(&user(), &rolled(0), &force()),
            Plan::Act { .. }
        ));
        assert!(matches!(
            deactivate(&user(), &rolled(9), &force()),
            Plan::Nothing(_)
        ));
        assert!(matches!(
            delete(&user(), &rolled(9), &force()),
            Plan::Nothing(_)
        ));
    }

    #[test]
    fn an_unverified_rotation_is_verified_again_without_a_key_at_hand() {
        let mut u = user();
        u.verify = vec![VerifyWorkflow {
            repository: "acme/web".into(),
            workflow: "v.yml".into(),
            git_ref: None,
        }];
        let mut f = with_phase(
            facts(
                vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
                Some(now()),
            ),
            Phase::Written,
            days_ago(1),
        );
        f.has_verify = true;
        assert_eq!(f.state(), State::Incomplete);
        // CONTRACT §12: every consumer holds the new key, only the proof is missing: the next
        // rotate runs the verification again without force, and nobody is called.
        let verify_again = |p: &Plan| matches!(p, Plan::Act { steps, .. } if matches!(steps.as_slice(), [Step::DispatchVerification(_)]));
        let p = rotate(&u, &f, &Options::default());
        assert!(verify_again(&p), "{p:?}");
        assert!(verify_again(&rotate(&u, &f, &force())));
        assert_eq!(attention(&u, &f, &Options::default()), None);
        // A consumer written before the new key existed does not hold it: that needs force.
        f.freshness[0].updated_at = Some(days_ago(3));
        let p = rotate(&u, &f, &Options::default());
        assert!(refused(&p, "verification did not succeed"), "{p:?}");
        assert!(
            refused(&p, "runs the verification workflows again"),
            "{p:?}"
        );
        assert!(attention(&u, &f, &Options::default()).is_some());
    }

    /// CONTRACT §12: a run killed between CreateAccessKey and its first write leaves a key
    /// nobody got; the next rotate deletes it at once and starts over, without a person.
    #[test]
    fn a_key_created_by_a_run_that_stopped_before_any_write_is_deleted_at_once() {
        let created = days_ago(1);
        let mut f = facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, created)],
            Some(days_ago(100)),
        );
        f.journal = Some(Journal::creating(
            "gh-1-1-7-1",
            created - Duration::seconds(2),
        ));
        f.newest_unheld = true;
        assert_eq!(f.state(), State::Incomplete);
        assert_eq!(attention(&user(), &f, &Options::default()), None);
        let p = rotate(&user(), &f, &Options::default());
        let Plan::Act { steps, .. } = &p else {
            panic!("{p:?}")
        };
        assert!(
            matches!(&steps[..2], [Step::DeleteKey { key_id, why }, Step::CreateKey] if key_id == "K2" && why.contains("gh-1-1-7-1")),
            "{steps:?}"
        );
        // Not when a consumer may hold it, when the step runs with it, or when the intent is
        // far from the key's creation (a forged or stale journal).
        for change in 0..3 {
            let mut g = f.clone();
            match change {
                0 => g.newest_unheld = false,
                1 => g.step_key_id = Some("K2".into()),
                _ => g.journal = Some(Journal::creating("r", created - Duration::days(2))),
            }
            assert!(g.orphan_key().is_none(), "{change}");
            assert!(
                refused(&rotate(&user(), &g, &Options::default()), "force"),
                "{change}"
            );
        }
    }

    /// CONTRACT §12: the rotator's own repository (its repository and environment secrets) is
    /// written last; the manifest's order otherwise.
    #[test]
    fn the_rotators_own_repository_is_written_last() {
        let mut u = user();
        u.consumers = ["acme/web", "acme/api", "ACME/Web", "acme/db"]
            .iter()
            .enumerate()
            .map(|(i, r)| Consumer {
                scope: if i == 2 {
                    Scope::Environment {
                        repository: (*r).into(),
                        environment: "prod".into(),
                    }
                } else {
                    Scope::Repository((*r).into())
                },
                secrets: SecretNames::default(),
            })
            .collect();
        let opts = Options {
            own_repository: Some("acme/web".into()),
            ..Options::default()
        };
        let f = facts(vec![key("K1", A, days_ago(100))], None);
        let Plan::Act { steps, .. } = rotate(&u, &f, &opts) else {
            panic!()
        };
        let order: Vec<String> = steps
            .iter()
            .filter_map(|s| match s {
                Step::WriteSecrets(c) => Some(c.scope.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            order,
            [
                "acme/api (repository secrets)",
                "acme/db (repository secrets)",
                "acme/web (repository secrets)",
                "ACME/Web environment \"prod\""
            ]
        );
    }

    #[test]
    fn who_needs_a_person() {
        let o = Options::default();
        assert!(attention(&user(), &facts(vec![key("K1", I, days_ago(1))], None), &o).is_some());
        assert!(attention(&user(), &facts(vec![key("K1", A, days_ago(1))], None), &o).is_none());
        let stale = with_phase(
            facts(
                vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
                Some(days_ago(3)),
            ),
            Phase::Partial,
            days_ago(1),
        );
        assert!(attention(&user(), &stale, &o).is_some());
        assert!(attention(&user(), &stale, &force()).is_none());
        // a retirement a day past its grace (held back by a straggler, say)
        let verified = |hours_ago: i64| {
            with_phase(
                facts(
                    vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(3))],
                    Some(now()),
                ),
                Phase::Verified,
                now() - Duration::hours(hours_ago),
            )
        };
        assert!(attention(&user(), &verified(48), &o).is_none());
        assert!(
            attention(&user(), &verified(49), &o)
                .unwrap()
                .contains("still Active")
        );
        let retired = with_phase(
            facts(
                vec![key("K1", I, days_ago(100)), key("K2", A, days_ago(20))],
                None,
            ),
            Phase::Deactivated,
            days_ago(9),
        );
        assert!(
            attention(&user(), &retired, &o)
                .unwrap()
                .contains("due for deletion")
        );
    }
}
