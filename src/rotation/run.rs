//! Executes plans against the ports, with the compensation of CONTRACT §5.
//! Reads the world only through the ports; says things only through [`Events`].

use std::collections::BTreeMap;

use secrecy::SecretString;

use super::plan::{self, Facts, LastUse, Options, Plan, Step};
use super::state::{self, Freshness, KeyInfo, State};
use super::verify::{self, RunResult, VerifySettings};
use crate::manifest::{Consumer, Scope, UserSpec, VerifyWorkflow};
use crate::ports::{
    Clock, Events, GhError, GhErrorKind, Iam, IamError, IamErrorKind, NewKey, SecretStore, StepKey,
    Workflows,
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
pub struct Ctx<'a, I, S, W, E, C> {
    pub iam: &'a I,
    pub store: &'a S,
    pub workflows: &'a W,
    pub verify: VerifySettings,
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
    /// Verification workflow runs, in manifest order.
    pub runs: Vec<RunResult>,
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
            runs: Vec::new(),
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

fn gh_fault(scope: &Scope, e: GhError) -> Fault {
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
pub async fn prepare<I: Iam, S: SecretStore, W: Workflows, E: Events, C: Clock>(
    ctx: &Ctx<'_, I, S, W, E, C>,
    user: &UserSpec,
    command: Command,
) -> Result<Prepared, Fault> {
    let keys = ctx
        .iam
        .list_keys(&user.name)
        .await
        .map_err(|e| iam_fault(user, "iam:ListAccessKeys", e))?;
    let keys = state::oldest_first(keys);
    // One public key per scope, fetched before anything changes and before any secret is read:
    // a repository or environment that does not exist, or a token that cannot read it, stops
    // the run here (and a 404 on a secret then means only that the secret is missing).
    let mut scope_keys = BTreeMap::new();
    let mut freshness = Vec::new();
    if state::needs_freshness(&keys) {
        freshness = read_freshness(ctx, user, &mut scope_keys).await?;
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
    let mut facts = facts;
    let writes = matches!(&plan, Plan::Act { steps, .. } if steps.iter().any(|s| matches!(s, Step::WriteSecrets(_))));
    if writes && facts.freshness.is_empty() {
        // Which consumers hold a secret at all, for an exact report if something fails.
        facts.freshness = read_freshness(ctx, user, &mut scope_keys).await?;
    }
    Ok(Prepared {
        facts,
        plan,
        scope_keys,
        last_used,
    })
}

/// Each consumer's scope key (fetched once per scope) and the time both its secrets were
/// last written (`None` when one is missing).
async fn read_freshness<I: Iam, S: SecretStore, W: Workflows, E: Events, C: Clock>(
    ctx: &Ctx<'_, I, S, W, E, C>,
    user: &UserSpec,
    scope_keys: &mut BTreeMap<Scope, ScopeKey>,
) -> Result<Vec<Freshness>, Fault> {
    let mut freshness = Vec::new();
    for c in &user.consumers {
        if !scope_keys.contains_key(&c.scope) {
            let key = ctx
                .store
                .public_key(&c.scope)
                .await
                .map_err(|e| gh_fault(&c.scope, e))?;
            scope_keys.insert(c.scope.clone(), key);
        }
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
    Ok(freshness)
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
pub async fn execute<I: Iam, S: SecretStore, W: Workflows, E: Events, C: Clock>(
    ctx: &Ctx<'_, I, S, W, E, C>,
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
    let before: Vec<Holding> = run_holdings(&report);
    let mut run = Rotation {
        ctx,
        user,
        report,
        scope_keys,
        old_key,
        new_key: None,
        deleted: Vec::new(),
        holding: before.iter().map(|h| [h.clone(), h.clone()]).collect(),
        before,
        write_started: None,
    };
    let mut failure = None;
    let verifications: Vec<_> = steps
        .iter()
        .filter_map(|s| match s {
            Step::DispatchVerification(v) => Some(v.clone()),
            _ => None,
        })
        .collect();
    for step in steps
        .iter()
        .filter(|s| !matches!(s, Step::DispatchVerification(_)))
    {
        if let Err(why) = run.step(step).await {
            failure = Some(why);
            break;
        }
    }
    if failure.is_none()
        && !verifications.is_empty()
        && let Err(why) = run.verify(&verifications).await
    {
        failure = Some(why);
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
    let missing = facts
        .freshness
        .iter()
        .any(|f| &f.consumer == c && f.updated_at.is_none());
    if missing {
        return None;
    }
    match facts.state() {
        State::Current | State::PendingDeletion | State::PendingDeactivation => {
            facts.keys.last().map(|k| k.id.clone())
        }
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

fn run_holdings(report: &UserReport) -> Vec<Holding> {
    report
        .consumers
        .iter()
        .map(|c| Holding::Key(c.holds.clone()))
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Id,
    Secret,
}

const PARTS: [Part; 2] = [Part::Id, Part::Secret];

impl Part {
    fn index(self) -> usize {
        self as usize
    }
}

/// What one secret holds, as far as this run knows: a key id (None: no key), or unknown
/// (a write that may or may not have landed).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Holding {
    Key(Option<String>),
    Unknown,
}

struct Rotation<'c, 'a, I, S, W, E, C> {
    ctx: &'c Ctx<'a, I, S, W, E, C>,
    user: &'c UserSpec,
    report: UserReport,
    scope_keys: BTreeMap<Scope, ScopeKey>,
    old_key: Option<String>,
    new_key: Option<NewKey>,
    /// Keys this run deleted.
    deleted: Vec<String>,
    /// What each consumer's two secrets held before the run, and hold now.
    before: Vec<Holding>,
    holding: Vec<[Holding; 2]>,
    /// When the first secret write started (to tell a lost write from a landed one).
    write_started: Option<chrono::DateTime<chrono::Utc>>,
}

impl<I: Iam, S: SecretStore, W: Workflows, E: Events, C: Clock> Rotation<'_, '_, I, S, W, E, C> {
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
                self.deleted.push(key_id.clone());
                self.report.keys.retain(|k| &k.id != key_id);
            }
            Step::Deactivate { key_id } => {
                ctx.iam
                    .set_inactive(name, key_id)
                    .await
                    .map_err(|e| format!("could not deactivate key {key_id}: {e}"))?;
                ctx.events
                    .info(&format!("access key {key_id} is now Inactive"));
                for k in &mut self.report.keys {
                    if &k.id == key_id {
                        k.status = state::KeyStatus::Inactive;
                    }
                }
            }
            Step::CreateKey => {
                let key = match ctx.iam.create_key(name).await {
                    Ok(k) => k,
                    Err(e) => {
                        let why = format!("could not create an access key for user {name}: {e}");
                        return Err(self.after_failure(why).await);
                    }
                };
                ctx.events.mask(&key.secret);
                ctx.events
                    .info(&format!("created access key {} for user {name}", key.id));
                self.report.new_key = Some(key.id.clone());
                self.report.keys.push(KeyInfo {
                    id: key.id.clone(),
                    status: state::KeyStatus::Active,
                    created: key.created,
                });
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
                        Ok(()) => {
                            self.deleted.push(id.clone());
                            self.report.keys.retain(|k| k.id != id);
                            self.report.new_key = None;
                            self.new_key = None;
                            "deleted it before writing any secret".to_owned()
                        }
                        Err(d) => format!(
                            "could not delete it ({d}): delete it by hand; no secret was written"
                        ),
                    };
                    let why = format!(
                        "the new key {id} never worked with STS GetCallerIdentity ({e}); {cleanup}"
                    );
                    return Err(self.after_failure(why).await);
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
                let new_id = key.id.clone();
                self.write_started.get_or_insert_with(|| ctx.clock.now());
                for (part, value) in values {
                    if let Err(e) = self.write(index, part, &value).await {
                        if e.uncertain {
                            self.holding[index][part.index()] = Holding::Unknown;
                        }
                        self.report.consumers[index].result = format!("write failed: {e}");
                        let why = format!(
                            "writing {} in {} failed: {e}",
                            secret_name(c, part),
                            c.scope
                        );
                        return Err(self.compensate(why).await);
                    }
                    self.holding[index][part.index()] = Holding::Key(Some(new_id.clone()));
                }
                self.report.consumers[index].result = "updated".into();
                self.report.consumers[index].holds = Some(new_id);
                ctx.events.info(&format!(
                    "wrote {} and {} in {}",
                    c.secrets.access_key_id, c.secrets.secret_access_key, c.scope
                ));
            }
            Step::DispatchVerification(_) => unreachable!("verification runs as one group"),
        }
        Ok(())
    }

    async fn write(&self, index: usize, part: Part, value: &SecretString) -> Result<(), GhError> {
        let c = &self.user.consumers[index];
        let key = &self.scope_keys[&c.scope];
        let sealed = seal::seal(key, value).map_err(|e| GhError {
            kind: GhErrorKind::Rejected,
            message: e.to_string(),
            uncertain: false,
            status: None,
        })?;
        self.ctx
            .store
            .put(&c.scope, secret_name(c, part), &sealed)
            .await
    }

    /// Dispatches the verification workflows and waits for them; a failure is compensated.
    async fn verify(&mut self, entries: &[VerifyWorkflow]) -> Result<(), String> {
        let ctx = self.ctx;
        let key_id = self
            .new_key
            .as_ref()
            .expect("verification follows the writes")
            .id
            .clone();
        let rotation_id = format!("{key_id}-{}", ctx.clock.now().timestamp());
        let results = verify::verify_all(
            ctx.workflows,
            ctx.clock,
            ctx.events,
            entries,
            &key_id,
            &rotation_id,
            &ctx.verify,
        )
        .await;
        self.report.runs = results.clone();
        let failed: Vec<String> = results
            .iter()
            .filter(|r| !r.ok)
            .map(|r| {
                format!(
                    "{} in {}: {}",
                    r.workflow.workflow, r.workflow.repository, r.conclusion
                )
            })
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        let why = format!("verification did not succeed ({})", failed.join("; "));
        Err(self.compensate(why).await)
    }

    /// A failure before any secret was written: only consumers holding a key this run deleted
    /// (recovering an incomplete rotation) need anything.
    async fn after_failure(&mut self, why: String) -> String {
        let holds_deleted = self.holding.iter().flatten().any(|h| self.is_deleted(h));
        if holds_deleted {
            self.compensate(why).await
        } else {
            why
        }
    }

    fn is_deleted(&self, h: &Holding) -> bool {
        matches!(h, Holding::Key(Some(id)) if self.deleted.contains(id))
    }

    /// The step's own credentials, when they are the old key: the old values, known.
    fn old_values(&self) -> Option<StepKey> {
        match (&self.old_key, self.ctx.step_key) {
            (Some(old), Some(step)) if &step.id == old => Some(step.clone()),
            _ => None,
        }
    }

    /// Something failed after consumers changed: put back what is known, repair half-written
    /// consumers, keep every key someone holds, and say who holds what.
    async fn compensate(&mut self, mut why: String) -> String {
        let ctx = self.ctx;
        let user = self.user;
        let new_id = self.new_key.as_ref().map(|k| k.id.clone());
        let old_id = self.old_key.clone();
        let old_holding = Holding::Key(old_id.clone());
        // Settle lost answers first: what is really where decides what needs repair.
        self.resolve_unknowns().await;
        if let Some(old) = self.old_values() {
            ctx.events.warn(&format!(
                "{why}; putting the old key {} back in every consumer that changed",
                old.id
            ));
            for i in 0..user.consumers.len() {
                if self.holding[i].iter().all(|h| *h == old_holding) {
                    continue;
                }
                match self.restore(i, &old).await {
                    Ok(()) => self.report.consumers[i].result = "restored to the old key".into(),
                    Err(e) => ctx.events.warn(&format!(
                        "could not restore {}: {e}",
                        user.consumers[i].scope
                    )),
                }
            }
            self.resolve_unknowns().await;
        } else if let Some(old) = &old_id {
            // The old secret is unknown, but its id is not secret: a consumer whose id was
            // written and whose secret was not gets the old id back, matching its secret again.
            for i in 0..user.consumers.len() {
                let [id, secret] = &self.holding[i];
                let id_changed = *id == Holding::Key(new_id.clone()) || *id == Holding::Unknown;
                if !id_changed || *secret != self.before[i] {
                    continue;
                }
                if self.before[i] != old_holding {
                    continue;
                }
                match self
                    .write(i, Part::Id, &SecretString::from(old.clone()))
                    .await
                {
                    Ok(()) => {
                        self.holding[i][Part::Id.index()] = old_holding.clone();
                        self.report.consumers[i].result = "restored to the old key".into();
                    }
                    Err(e) => {
                        if e.uncertain {
                            self.holding[i][Part::Id.index()] = Holding::Unknown;
                        }
                    }
                }
            }
        }
        self.resolve_unknowns().await;

        // Which key each consumer holds now.
        for i in 0..user.consumers.len() {
            let holds = self.describe(i);
            self.report.consumers[i].holds = Some(holds);
        }
        let holds_deleted = self.holding.iter().flatten().any(|h| self.is_deleted(h));
        let deleted_note =
            "; some consumers hold a deleted key (see the report) and need rotate with force";
        let Some(new_id) = new_id else {
            if holds_deleted {
                why.push_str(deleted_note);
            }
            return why;
        };
        let new_holding = Holding::Key(Some(new_id.clone()));
        let anyone_holds_new = self
            .holding
            .iter()
            .flatten()
            .any(|h| *h == new_holding || *h == Holding::Unknown);
        if !anyone_holds_new {
            match ctx.iam.delete_key(&user.name, &new_id).await {
                Ok(()) => {
                    why.push_str(&format!(
                        "; no consumer holds the new key {new_id}, so it was deleted"
                    ));
                    self.report.new_key = None;
                    self.report.keys.retain(|k| k.id != new_id);
                }
                Err(e) => why.push_str(&format!(
                    "; no consumer holds the new key {new_id}, but deleting it failed ({e}): delete it by hand"
                )),
            }
        } else if old_id.is_some() {
            why.push_str(&format!(
                "; both keys stay Active because consumers hold the new key {new_id} and the old values could not be put back everywhere (they are known only when this step runs with the old key): fix the cause and run rotate with force to finish"
            ));
        } else {
            why.push_str(&format!(
                "; the new key {new_id} stays (consumers hold it): fix the cause and run rotate with force to reach the rest"
            ));
        }
        if holds_deleted {
            why.push_str(deleted_note);
        }
        why
    }

    /// Writes the old id, then the old secret. If the secret fails after the id was written,
    /// the id goes back to what matches the secret, so the pair never splits.
    async fn restore(&mut self, i: usize, old: &StepKey) -> Result<(), GhError> {
        let old_holding = Holding::Key(Some(old.id.clone()));
        let prior_id = self.holding[i][Part::Id.index()].clone();
        if prior_id != old_holding {
            if let Err(e) = self
                .write(i, Part::Id, &SecretString::from(old.id.clone()))
                .await
            {
                if e.uncertain {
                    self.holding[i][Part::Id.index()] = Holding::Unknown;
                }
                return Err(e);
            }
            self.holding[i][Part::Id.index()] = old_holding.clone();
        }
        if self.holding[i][Part::Secret.index()] != old_holding {
            if let Err(e) = self.write(i, Part::Secret, &old.secret).await {
                if e.uncertain {
                    self.holding[i][Part::Secret.index()] = Holding::Unknown;
                }
                // Put the id back to what the secret still holds.
                if let Holding::Key(Some(id)) = self.holding[i][Part::Secret.index()].clone()
                    && self
                        .write(i, Part::Id, &SecretString::from(id.clone()))
                        .await
                        .is_ok()
                {
                    self.holding[i][Part::Id.index()] = Holding::Key(Some(id));
                }
                return Err(e);
            }
            self.holding[i][Part::Secret.index()] = old_holding;
        }
        Ok(())
    }

    /// A write that may have landed is settled by the secret's `updated_at`: clearly older than
    /// the first write of this run (a minute of slack for clock skew) means it did not land.
    async fn resolve_unknowns(&mut self) {
        let Some(started) = self.write_started else {
            return;
        };
        for i in 0..self.user.consumers.len() {
            for part in PARTS {
                if self.holding[i][part.index()] != Holding::Unknown {
                    continue;
                }
                let c = &self.user.consumers[i];
                match self
                    .ctx
                    .store
                    .updated_at(&c.scope, secret_name(c, part))
                    .await
                {
                    Ok(None) => self.holding[i][part.index()] = Holding::Key(None),
                    Ok(Some(at)) if at < started - chrono::Duration::minutes(1) => {
                        self.holding[i][part.index()] = self.before[i].clone();
                    }
                    _ => {}
                }
            }
        }
    }

    fn describe(&self, i: usize) -> String {
        let name = |h: &Holding| match h {
            Holding::Key(Some(id)) if self.deleted.contains(id) => {
                format!("{id} (deleted: broken until rotated)")
            }
            Holding::Key(Some(id)) => id.clone(),
            Holding::Key(None) => "no key".into(),
            Holding::Unknown => "unknown (a write may have landed)".into(),
        };
        let [id, secret] = &self.holding[i];
        if id == secret && *id != Holding::Unknown {
            name(id)
        } else {
            let c = &self.user.consumers[i];
            format!(
                "mismatched: {} holds {}, {} holds {}",
                c.secrets.access_key_id,
                name(id),
                c.secrets.secret_access_key,
                name(secret)
            )
        }
    }
}

fn secret_name(c: &Consumer, part: Part) -> &str {
    match part {
        Part::Id => &c.secrets.access_key_id,
        Part::Secret => &c.secrets.secret_access_key,
    }
}
