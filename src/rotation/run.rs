//! Executes plans against the ports, with the compensation of CONTRACT §5.
//! Reads the world only through the ports; says things only through [`Events`].

use std::collections::BTreeMap;

use secrecy::SecretString;

use super::plan::{self, Facts, LastUse, Options, Plan, Step};
use super::state::{self, Freshness, KeyInfo, State};
use crate::manifest::{Consumer, Scope, UserSpec};
use crate::ports::{
    Clock, Events, GhError, GhErrorKind, Iam, IamError, IamErrorKind, NewKey, SecretStore, StepKey,
};
use crate::seal::{self, ScopeKey};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Status,
    Rotate,
    Deactivate,
    Delete,
}

/// The ports and settings one run works with.
pub struct Ctx<'a, I, S, E, C> {
    pub iam: &'a I,
    pub store: &'a S,
    pub events: &'a E,
    pub clock: &'a C,
    pub step_key: Option<&'a StepKey>,
    pub opts: &'a Options,
    pub dry_run: bool,
}

/// Why a user could not even be planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Bad input, manifest or credentials (exit 2).
    Invalid(String),
    /// Something failed that may work on a retry (exit 1).
    Failed(String),
}

/// A user's facts and plan, made without changing anything.
#[derive(Debug)]
pub struct Prepared {
    pub facts: Facts,
    pub plan: Plan,
    pub scope_keys: BTreeMap<Scope, ScopeKey>,
    /// GetAccessKeyLastUsed for every key (status only).
    pub last_used: Vec<(String, LastUse)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Nothing(String),
    Refused(String),
    Invalid(String),
    /// Dry run: the steps that would be taken.
    Planned(Vec<String>),
    Rotated,
    Deactivated,
    Deleted,
    /// An operation failed; compensation (if any) has run.
    Failed(String),
    /// `status`: nothing was asked.
    Reported,
}

impl Outcome {
    /// CONTRACT §7.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Failed(_) => 1,
            Outcome::Invalid(_) => 2,
            Outcome::Refused(_) => 3,
            _ => 0,
        }
    }
}

/// What happened to one consumer, and which key it holds afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerReport {
    pub consumer: Consumer,
    pub result: String,
    /// The key id it holds; a description when its two secrets disagree or are unknown.
    pub holds: Option<String>,
}

/// Everything the reports need about one user.
#[derive(Clone, Debug)]
pub struct UserReport {
    pub user: UserSpec,
    pub state: Option<State>,
    pub due: bool,
    pub keys: Vec<KeyInfo>,
    pub last_used: Vec<(String, LastUse)>,
    pub outcome: Outcome,
    pub consumers: Vec<ConsumerReport>,
    pub new_key: Option<String>,
    pub old_key: Option<String>,
    pub notes: Vec<String>,
}

impl UserReport {
    pub fn new(user: &UserSpec, outcome: Outcome) -> Self {
        Self {
            user: user.clone(),
            state: None,
            due: false,
            keys: Vec::new(),
            last_used: Vec::new(),
            outcome,
            consumers: Vec::new(),
            new_key: None,
            old_key: None,
            notes: Vec::new(),
        }
    }
    pub fn rotated(&self) -> bool {
        self.outcome == Outcome::Rotated
    }
}

fn iam_fault(user: &UserSpec, action: &str, e: IamError) -> Fault {
    match e.kind {
        IamErrorKind::NoSuchUser => Fault::Invalid(format!(
            "{}: IAM user {:?} does not exist in this account: fix the name in the manifest or create the user",
            user.origin, user.name
        )),
        IamErrorKind::Credentials => Fault::Invalid(format!("{action}: {e}")),
        _ => Fault::Failed(format!("{action}: {e}")),
    }
}

pub(crate) fn gh_fault(scope: &Scope, e: GhError) -> Fault {
    match e.kind {
        GhErrorKind::NotFound => Fault::Invalid(format!(
            "{scope}: GitHub answered 404: the repository or environment does not exist, or the token cannot see it. Check the manifest, create the environment, or grant the token access to the repository"
        )),
        GhErrorKind::Unauthorized | GhErrorKind::Forbidden | GhErrorKind::Rejected => {
            Fault::Invalid(format!("{scope}: {e}"))
        }
        GhErrorKind::Unavailable => Fault::Failed(format!("{scope}: {e}")),
    }
}

/// Reads everything a command needs about `user` and decides. Changes nothing.
pub async fn prepare<I: Iam, S: SecretStore, E: Events, C: Clock>(
    ctx: &Ctx<'_, I, S, E, C>,
    user: &UserSpec,
    command: Command,
) -> Result<Prepared, Fault> {
    let keys = ctx
        .iam
        .list_keys(&user.name)
        .await
        .map_err(|e| iam_fault(user, "iam:ListAccessKeys", e))?;
    let keys = state::oldest_first(keys);
    let mut freshness = Vec::new();
    if state::needs_freshness(&keys) {
        for c in &user.consumers {
            let mut updated = Some(chrono::DateTime::<chrono::Utc>::MAX_UTC);
            for name in [&c.secrets.access_key_id, &c.secrets.secret_access_key] {
                let at = ctx
                    .store
                    .updated_at(&c.scope, name)
                    .await
                    .map_err(|e| gh_fault(&c.scope, e))?;
                updated = match (updated, at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                };
            }
            freshness.push(Freshness {
                consumer: c.clone(),
                updated_at: updated,
            });
        }
    }
    let mut last_used = Vec::new();
    let wants_last_use = match command {
        Command::Status => true,
        Command::Deactivate => keys.len() == 2,
        _ => false,
    };
    if wants_last_use {
        for k in &keys {
            let used = ctx
                .iam
                .last_used(&k.id)
                .await
                .map_err(|e| iam_fault(user, "iam:GetAccessKeyLastUsed", e))?;
            last_used.push((k.id.clone(), used));
        }
    }
    let facts = Facts {
        old_last_used: (command == Command::Deactivate)
            .then(|| last_used.first().map(|(_, u)| u.clone()))
            .flatten(),
        keys,
        freshness,
        now: ctx.clock.now(),
        step_key_id: ctx.step_key.map(|k| k.id.clone()),
    };
    let plan = match command {
        Command::Status => Plan::Nothing(String::new()),
        Command::Rotate => plan::rotate(user, &facts, ctx.opts),
        Command::Deactivate => plan::deactivate(user, &facts, ctx.opts),
        Command::Delete => plan::delete(user, &facts, ctx.opts),
    };
    // One public key per scope, fetched before anything changes: a repository or environment
    // that does not exist, or a token that cannot read it, stops the run here.
    let mut scope_keys = BTreeMap::new();
    if let Plan::Act { steps, .. } = &plan {
        for step in steps {
            if let Step::WriteSecrets(c) = step
                && !scope_keys.contains_key(&c.scope)
            {
                let key = ctx
                    .store
                    .public_key(&c.scope)
                    .await
                    .map_err(|e| gh_fault(&c.scope, e))?;
                scope_keys.insert(c.scope.clone(), key);
            }
        }
    }
    Ok(Prepared {
        facts,
        plan,
        scope_keys,
        last_used,
    })
}

/// Whether the newest Active key is at least max-age-days old (or there is none).
pub fn is_due(user: &UserSpec, facts: &Facts) -> bool {
    match facts.state() {
        State::None => true,
        State::Current | State::PendingDeletion => facts
            .keys
            .last()
            .is_some_and(|k| state::age_days(k.created, facts.now) >= i64::from(user.max_age_days)),
        State::Incomplete => true,
        _ => false,
    }
}

/// Carries out a prepared plan and reports.
pub async fn execute<I: Iam, S: SecretStore, E: Events, C: Clock>(
    ctx: &Ctx<'_, I, S, E, C>,
    user: &UserSpec,
    command: Command,
    prepared: Prepared,
) -> UserReport {
    let Prepared {
        facts,
        plan,
        scope_keys,
        last_used,
    } = prepared;
    let mut report = UserReport::new(user, Outcome::Reported);
    report.state = Some(facts.state());
    report.due = is_due(user, &facts);
    report.keys = facts.keys.clone();
    report.last_used = last_used;
    report.consumers = user
        .consumers
        .iter()
        .map(|c| ConsumerReport {
            consumer: c.clone(),
            result: "unchanged".into(),
            holds: holds_before(&facts, c),
        })
        .collect();
    if command == Command::Deactivate
        && let (Some(old), Some(used)) = (facts.keys.first(), &facts.old_last_used)
    {
        let note = format!("old key {}: {used}", old.id);
        ctx.events.info(&note);
        report.notes.push(note);
    }
    let (steps, old_key) = match plan {
        Plan::Nothing(why) => {
            report.outcome = if command == Command::Status {
                Outcome::Reported
            } else {
                Outcome::Nothing(why)
            };
            return report;
        }
        Plan::Refuse(why) => {
            report.outcome = Outcome::Refused(why);
            return report;
        }
        Plan::Invalid(why) => {
            report.outcome = Outcome::Invalid(why);
            return report;
        }
        Plan::Act { steps, old_key } => (steps, old_key),
    };
    report.old_key = old_key.clone();
    if ctx.dry_run {
        report.outcome = Outcome::Planned(steps.iter().map(ToString::to_string).collect());
        for c in &mut report.consumers {
            if steps.contains(&Step::WriteSecrets(c.consumer.clone())) {
                c.result = "would be updated (dry run)".into();
            }
        }
        return report;
    }
    let mut run = Rotation {
        ctx,
        user,
        report,
        scope_keys,
        old_key,
        new_key: None,
        written: Vec::new(),
    };
    let mut failure = None;
    for step in steps {
        if let Err(why) = run.step(&step).await {
            failure = Some(why);
            break;
        }
    }
    // Report the keys as they are now (best effort: the outcome does not depend on it).
    if let Ok(keys) = ctx.iam.list_keys(&user.name).await {
        run.report.keys = state::oldest_first(keys);
    }
    if let Some(why) = failure {
        run.report.outcome = Outcome::Failed(why);
        return run.report;
    }
    run.report.outcome = match command {
        Command::Rotate => Outcome::Rotated,
        Command::Deactivate => Outcome::Deactivated,
        Command::Delete => Outcome::Deleted,
        Command::Status => Outcome::Reported,
    };
    if command == Command::Rotate
        && let Some(old) = &run.old_key
    {
        run.report.notes.push(format!(
            "the old key {old} stays Active until `deactivate` runs in a later job"
        ));
    }
    run.report
}

fn holds_before(facts: &Facts, c: &Consumer) -> Option<String> {
    match facts.state() {
        State::Current | State::PendingDeletion => facts.keys.last().map(|k| k.id.clone()),
        State::PendingDeactivation => facts.keys.last().map(|k| k.id.clone()),
        State::Incomplete => {
            let new = facts.keys.last()?;
            let stale = state::stale_consumers(new.created, &facts.freshness);
            Some(if stale.contains(&c) {
                facts.keys[0].id.clone()
            } else {
                new.id.clone()
            })
        }
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Id,
    Secret,
}

/// Which key a secret holds after a write (or failed write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    New,
    Old,
    Unknown,
}

struct Rotation<'c, 'a, I, S, E, C> {
    ctx: &'c Ctx<'a, I, S, E, C>,
    user: &'c UserSpec,
    report: UserReport,
    scope_keys: BTreeMap<Scope, ScopeKey>,
    old_key: Option<String>,
    new_key: Option<NewKey>,
    /// Every secret write attempted in this run, in order.
    written: Vec<(usize, Part, Held)>,
}

impl<I: Iam, S: SecretStore, E: Events, C: Clock> Rotation<'_, '_, I, S, E, C> {
    async fn step(&mut self, step: &Step) -> Result<(), String> {
        let ctx = self.ctx;
        let name = &self.user.name;
        match step {
            Step::DeleteKey { key_id, why } => {
                ctx.iam
                    .delete_key(name, key_id)
                    .await
                    .map_err(|e| format!("could not delete key {key_id} ({why}): {e}"))?;
                ctx.events
                    .info(&format!("deleted access key {key_id} ({why})"));
            }
            Step::Deactivate { key_id } => {
                ctx.iam
                    .set_inactive(name, key_id)
                    .await
                    .map_err(|e| format!("could not deactivate key {key_id}: {e}"))?;
                ctx.events
                    .info(&format!("access key {key_id} is now Inactive"));
            }
            Step::CreateKey => {
                let key =
                    ctx.iam.create_key(name).await.map_err(|e| {
                        format!("could not create an access key for user {name}: {e}")
                    })?;
                ctx.events.mask(&key.secret);
                ctx.events
                    .info(&format!("created access key {} for user {name}", key.id));
                self.report.new_key = Some(key.id.clone());
                self.new_key = Some(key);
            }
            Step::ProveNewKey => {
                let key = self
                    .new_key
                    .as_ref()
                    .expect("the plan creates the key first");
                if let Err(e) = ctx.iam.prove_key(key).await {
                    let id = key.id.clone();
                    let cleanup = match ctx.iam.delete_key(name, &id).await {
                        Ok(()) => "deleted it; no secret was written".to_string(),
                        Err(d) => format!(
                            "could not delete it ({d}): delete it by hand; no secret was written"
                        ),
                    };
                    self.report.new_key = None;
                    return Err(format!(
                        "the new key {id} never worked with STS GetCallerIdentity ({e}); {cleanup}"
                    ));
                }
                ctx.events
                    .info(&format!("STS accepts the new key {}", key.id));
            }
            Step::WriteSecrets(c) => {
                let index = self
                    .user
                    .consumers
                    .iter()
                    .position(|x| x == c)
                    .expect("steps name manifest consumers");
                let key = self
                    .new_key
                    .as_ref()
                    .expect("the plan creates the key first");
                let values = [
                    (Part::Id, SecretString::from(key.id.clone())),
                    (Part::Secret, key.secret.clone()),
                ];
                for (part, value) in values {
                    if let Err(e) = self.write(index, part, &value).await {
                        let held = if e.uncertain {
                            Held::Unknown
                        } else {
                            Held::Old
                        };
                        self.written.push((index, part, held));
                        return Err(self.compensate(index, part, e).await);
                    }
                    self.written.push((index, part, Held::New));
                }
                self.report.consumers[index].result = "updated".into();
                self.report.consumers[index].holds = Some(key.id.clone());
                ctx.events.info(&format!(
                    "wrote {} and {} in {}",
                    c.secrets.access_key_id, c.secrets.secret_access_key, c.scope
                ));
            }
            Step::DispatchVerification(v) => {
                let note = format!(
                    "verification workflow {} in {} was not dispatched: this release does not dispatch verification workflows yet",
                    v.workflow, v.repository
                );
                ctx.events.warn(&note);
                self.report.notes.push(note);
            }
        }
        Ok(())
    }

    async fn write(&self, index: usize, part: Part, value: &SecretString) -> Result<(), GhError> {
        let c = &self.user.consumers[index];
        let name = match part {
            Part::Id => &c.secrets.access_key_id,
            Part::Secret => &c.secrets.secret_access_key,
        };
        let key = &self.scope_keys[&c.scope];
        let sealed = seal::seal(key, value).map_err(|e| GhError {
            kind: GhErrorKind::Rejected,
            message: e.to_string(),
            uncertain: false,
        })?;
        self.ctx.store.put(&c.scope, name, &sealed).await
    }

    /// A write failed for good: put back what is known, keep every key someone holds,
    /// and say who holds what.
    async fn compensate(&mut self, failed: usize, part: Part, error: GhError) -> String {
        let ctx = self.ctx;
        let user = self.user;
        let c = &user.consumers[failed];
        let secret_name = match part {
            Part::Id => &c.secrets.access_key_id,
            Part::Secret => &c.secrets.secret_access_key,
        };
        let mut why = format!("writing {secret_name} in {} failed: {error}", c.scope);
        let new = self
            .new_key
            .as_ref()
            .expect("writes follow the key's creation");
        let new_id = new.id.clone();
        let old_values = match (&self.old_key, ctx.step_key) {
            (Some(old), Some(step)) if &step.id == old => Some(step.clone()),
            _ => None,
        };
        let mut restored_all = false;
        if let Some(old) = &old_values {
            ctx.events.warn(&format!(
                "{why}; putting the old key {} back in every consumer already written",
                old.id
            ));
            restored_all = true;
            let touched: Vec<usize> = self
                .written
                .iter()
                .filter(|(_, _, h)| *h != Held::Old)
                .map(|(i, _, _)| *i)
                .collect();
            let mut done: Vec<usize> = Vec::new();
            for i in touched {
                if done.contains(&i) {
                    continue;
                }
                done.push(i);
                let mut ok = true;
                for (p, value) in [
                    (Part::Id, SecretString::from(old.id.clone())),
                    (Part::Secret, old.secret.clone()),
                ] {
                    match self.write(i, p, &value).await {
                        Ok(()) => self.written.push((i, p, Held::Old)),
                        Err(e) => {
                            ok = false;
                            // A refused write changed nothing; one that may have landed is unknown.
                            if e.uncertain {
                                self.written.push((i, p, Held::Unknown));
                            }
                            ctx.events.warn(&format!(
                                "could not restore {}: {e}",
                                user.consumers[i].scope
                            ));
                        }
                    }
                }
                restored_all &= ok;
                if ok {
                    self.report.consumers[i].result = "restored to the old key".into();
                }
            }
        }
        // Which key each consumer holds now, from the last write of each of its secrets.
        let old_id = self.old_key.clone();
        for (i, cr) in self.report.consumers.iter_mut().enumerate() {
            let last = |p: Part| {
                self.written
                    .iter()
                    .rev()
                    .find(|(j, q, _)| *j == i && *q == p)
                    .map(|(_, _, h)| *h)
                    .unwrap_or(Held::Old)
            };
            let (id, secret) = (last(Part::Id), last(Part::Secret));
            let name_of = |h: Held| match h {
                Held::New => new_id.clone(),
                Held::Old => old_id.clone().unwrap_or_else(|| "no key".into()),
                Held::Unknown => "unknown".into(),
            };
            cr.holds = Some(if id == secret && id != Held::Unknown {
                name_of(id)
            } else {
                format!(
                    "mismatched: {} holds {}, {} holds {}",
                    cr.consumer.secrets.access_key_id,
                    name_of(id),
                    cr.consumer.secrets.secret_access_key,
                    name_of(secret)
                )
            });
            if i == failed && cr.result == "unchanged" {
                cr.result = format!("write failed: {error}");
            } else if cr.result == "updated" && restored_all && old_values.is_some() {
                cr.result = "restored to the old key".into();
            }
        }
        let anyone_holds_new = self.report.consumers.iter().any(|c| {
            c.holds
                .as_deref()
                .is_some_and(|h| h.contains(new_id.as_str()) || h.contains("unknown"))
        });
        if !anyone_holds_new && self.old_key.is_some() {
            match ctx.iam.delete_key(&user.name, &new_id).await {
                Ok(()) => {
                    why.push_str(&format!(
                        "; every consumer holds the old key again and the new key {new_id} was deleted"
                    ));
                    self.report.new_key = None;
                }
                Err(e) => why.push_str(&format!(
                    "; every consumer holds the old key again, but deleting the new key {new_id} failed ({e}): delete it by hand"
                )),
            }
        } else if self.old_key.is_some() {
            why.push_str(&format!(
                "; both keys stay Active because consumers hold the new key {new_id} and the old values could not be put back everywhere (they are known only when this step runs with the old key): fix the cause and run rotate with force to finish"
            ));
        } else {
            why.push_str(&format!(
                "; the new key {new_id} stays (it is the user's only key): fix the cause and run rotate again"
            ));
        }
        why
    }
}
