//! (state, facts, options) → what to do. Every safety rule of CONTRACT §5 that can be decided
//! before acting lives here, as pure functions.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use super::state::{self, Freshness, KeyInfo, KeyStatus, State};
use crate::manifest::{Consumer, UserSpec, VerifyWorkflow};

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
}

impl Facts {
    pub fn state(&self) -> State {
        state::derive(&self.keys, &self.freshness)
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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            force: false,
            delete_inactive: false,
            straggler_window: Duration::minutes(15),
            old_access_key_id: None,
        }
    }
}

/// One mutating call (or group of calls) of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    DeleteKey { key_id: String, why: String },
    CreateKey,
    ProveNewKey,
    WriteSecrets(Consumer),
    DispatchVerification(VerifyWorkflow),
    Deactivate { key_id: String },
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

fn rotation_steps(user: &UserSpec, delete_first: Option<Step>) -> Vec<Step> {
    delete_first
        .into_iter()
        .chain([Step::CreateKey, Step::ProveNewKey])
        .chain(user.consumers.iter().cloned().map(Step::WriteSecrets))
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

/// `rotate` (CONTRACT §4, last column).
pub fn rotate(user: &UserSpec, facts: &Facts, opts: &Options) -> Plan {
    let name = &user.name;
    let keys = &facts.keys;
    let due_in = |k: &KeyInfo| user.max_age_days as i64 - state::age_days(k.created, facts.now);
    match facts.state() {
        State::None => Plan::Act {
            steps: rotation_steps(user, None),
            old_key: None,
        },
        State::Current => {
            let k = &keys[0];
            let left = due_in(k);
            if left <= 0 || opts.force {
                Plan::Act {
                    steps: rotation_steps(user, None),
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
        State::Incomplete => {
            let (old, new) = (&keys[0], &keys[1]);
            if !opts.force {
                return Plan::Refuse(format!(
                    "an earlier rotation did not finish: user {name} has two Active keys, but these consumers were not updated after the new key {} was created: {}. Run rotate with force to recover (it deletes {}, creates another key and writes it to every consumer)",
                    new.id,
                    list_stale(facts),
                    new.id
                ));
            }
            if facts.step_key_id.as_deref() == Some(new.id.as_str()) {
                return Plan::Refuse(format!(
                    "recovering would delete key {}, which this step is authenticated with: run it with the old key {} or another identity",
                    new.id, old.id
                ));
            }
            Plan::Act {
                steps: rotation_steps(
                    user,
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
                    "key {} is current; the leftover Inactive key {} awaits `delete`",
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
                    Some(Step::DeleteKey {
                        key_id: old.id.clone(),
                        why: "the leftover Inactive key (delete-inactive)".into(),
                    }),
                ),
                old_key: Some(active.id.clone()),
            }
        }
        State::Conflict => Plan::Refuse(format!(
            "user {name} has keys in a combination rotate does not handle ({}): an Inactive key is newer than an Active one, or there are more than two. Sort them out by hand (aws iam list-access-keys --user-name {name}) and run status",
            describe(keys)
        )),
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

/// `deactivate`: set the older key Inactive after the safety checks.
pub fn deactivate(user: &UserSpec, facts: &Facts, opts: &Options) -> Plan {
    if let Some(p) = already_gone(facts, opts) {
        return p;
    }
    if let Err(p) = check_named_old_key(user, facts, opts) {
        return p;
    }
    let name = &user.name;
    let state = facts.state();
    match state {
        State::None => {
            return Plan::Refuse(format!(
                "user {name} has no access key: nothing to deactivate"
            ));
        }
        State::Current | State::Inactive => {
            return Plan::Refuse(format!(
                "user {name} has a single key ({}): the only key is never deactivated. Run rotate first",
                facts.keys[0].id
            ));
        }
        State::PendingDeletion => {
            return Plan::Nothing(format!(
                "the old key {} is already Inactive; it awaits `delete`",
                facts.keys[0].id
            ));
        }
        State::Conflict => {
            return Plan::Refuse(format!(
                "user {name} has keys in a combination deactivate does not handle ({}); sort them out by hand",
                describe(&facts.keys)
            ));
        }
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
        return Plan::Refuse(format!(
            "these consumers were not updated after the new key {} was created and still hold the old key {}: {}. Finish the rotation first (rotate with force); force does not override this",
            new.id,
            old.id,
            list_stale(facts)
        ));
    }
    if let Some(LastUse {
        date: Some(used),
        service,
        region,
    }) = &facts.old_last_used
    {
        let limit = new.created + opts.straggler_window;
        if *used > limit && !opts.force {
            return Plan::Refuse(format!(
                "key {} was used at {} ({service} in {region}), {} minutes after the new key was created (window {} minutes): something outside the manifest still uses it. Find it (CloudTrail, or the service above), update it, and run deactivate again, or pass force",
                old.id,
                used.format("%Y-%m-%d %H:%M:%S UTC"),
                (*used - new.created).num_minutes(),
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

/// `delete`: remove the older key, only if it is already Inactive.
pub fn delete(user: &UserSpec, facts: &Facts, opts: &Options) -> Plan {
    if let Some(p) = already_gone(facts, opts) {
        return p;
    }
    if let Err(p) = check_named_old_key(user, facts, opts) {
        return p;
    }
    let name = &user.name;
    match facts.state() {
        State::PendingDeletion => {
            let old = &facts.keys[0];
            Plan::Act {
                steps: vec![Step::DeleteKey {
                    key_id: old.id.clone(),
                    why: "the Inactive old key".into(),
                }],
                old_key: Some(old.id.clone()),
            }
        }
        State::PendingDeactivation | State::Incomplete => Plan::Refuse(format!(
            "the old key {} is Active: delete removes only an Inactive key. Run deactivate first",
            facts.keys[0].id
        )),
        State::Current | State::Inactive => Plan::Refuse(format!(
            "user {name} has a single key ({}): the only key is never deleted",
            facts.keys[0].id
        )),
        State::None => Plan::Refuse(format!("user {name} has no access key: nothing to delete")),
        State::Conflict => Plan::Refuse(format!(
            "user {name} has keys in a combination delete does not handle ({}); sort them out by hand",
            describe(&facts.keys)
        )),
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
            consumers: vec![Consumer {
                scope: Scope::Repository("acme/web".into()),
                secrets: SecretNames::default(),
            }],
            verify: vec![],
            external: vec![],
            origin: "m.yml:3:5".into(),
        }
    }
    fn facts(keys: Vec<KeyInfo>, updated: Option<DateTime<Utc>>) -> Facts {
        Facts {
            freshness: vec![Freshness {
                consumer: user().consumers[0].clone(),
                updated_at: updated,
            }],
            keys,
            now: now(),
            step_key_id: None,
            old_last_used: None,
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
        let f = facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
            Some(days_ago(2)),
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
        assert!(refused(
            &rotate(&user(), &own, &force()),
            "authenticated with"
        ));
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
        // the only key, no key
        assert!(refused(
            &deactivate(
                &user(),
                &facts(vec![key("K1", A, days_ago(1))], None),
                &force()
            ),
            "only key"
        ));
        assert!(refused(
            &deactivate(&user(), &facts(vec![], None), &force()),
            "no access key"
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
        let stale = facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
            Some(days_ago(3)),
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
        let p = deactivate(&user(), &f, &Options::default());
        assert!(
            refused(
                &p,
                "16 minutes after the new key was created (window 15 minutes)"
            ),
            "{p:?}"
        );
        assert!(refused(&p, "s3 in eu-west-1"));
        assert!(is_act(&deactivate(&user(), &f, &force())));
        f.old_last_used = Some(used(15));
        assert!(is_act(&deactivate(&user(), &f, &Options::default())));
        let narrow = Options {
            straggler_window: Duration::minutes(5),
            ..Options::default()
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
        assert!(is_act(&deactivate(&user(), &f, &Options::default())));
    }

    #[test]
    fn delete_rules() {
        let pending = facts(
            vec![key("K1", I, days_ago(100)), key("K2", A, days_ago(1))],
            None,
        );
        assert!(
            matches!(delete(&user(), &pending, &Options::default()), Plan::Act { steps, .. } if matches!(&steps[0], Step::DeleteKey { key_id, .. } if key_id == "K1"))
        );
        let active = facts(
            vec![key("K1", A, days_ago(100)), key("K2", A, days_ago(1))],
            Some(now()),
        );
        assert!(refused(&delete(&user(), &active, &force()), "is Active"));
        assert!(refused(
            &delete(
                &user(),
                &facts(vec![key("K1", I, days_ago(1))], None),
                &force()
            ),
            "only key"
        ));
        assert!(refused(
            &delete(
                &user(),
                &facts(vec![key("K1", A, days_ago(1))], None),
                &force()
            ),
            "only key"
        ));
        let named = Options {
            old_access_key_id: Some("K2".into()),
            ..Options::default()
        };
        assert!(refused(&delete(&user(), &pending, &named), "newest"));
    }
}
