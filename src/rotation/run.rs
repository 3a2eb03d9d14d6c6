//! Executes plans against the ports (CONTRACT §4, §5): the lease, the journal, a re-read before
//! every destructive step, no blind resends, and compensation. Reads the world only through the
//! ports and says things only through [`Events`]; what each consumer holds is kept by [`Ledger`].

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::journal::{HolderRun, JOURNAL_TAG, Journal, LEASE_TAG, Lease, Phase, Tags};
use super::ledger::{Held, Holding, Ledger, PARTS, Part};
use super::plan::{self, Facts, LastUse, Options, Plan, Step};
use super::state::{self, Freshness, KeyInfo, KeyStatus, State};
use super::verify::{self, RunResult, VerifySettings};
use crate::exit::Exit;
use crate::manifest::{Consumer, Scope, UserSpec, VerifyWorkflow, Visibility};
use crate::ports::{
    Clock, Events, GhError, GhErrorKind, Iam, IamError, IamErrorKind, NewKey, SecretStore, StepKey,
    Stop, Workflows,
};
use crate::seal::ScopeKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Status,
    Rotate,
    Deactivate,
    Delete,
}

/// How this run takes the lease on a user (CONTRACT §5).
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// This run's id, written in the lease.
    pub run_id: String,
    /// How long to wait between writing the lease and reading it back: two runs that both saw
    /// the lease free both write it, and the wait lets the later write win for both of them.
    pub settle: std::time::Duration,
    /// How long the lease lasts (past the verification timeout), should the run die.
    pub ttl: chrono::Duration,
    /// The workflow run and runner this run is, in Actions: written in the lease, so a later
    /// run can ask GitHub whether the holder is gone.
    pub github: Option<HolderRun>,
    /// The longest one AWS or GitHub call may take: no mutation starts unless the lease has
    /// twice that left (CONTRACT §12: a lease that expires under a call fences nothing).
    pub call_timeout: chrono::Duration,
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
    pub lease: &'a LeaseSettings,
    /// Set on SIGINT/SIGTERM: no new mutation starts.
    pub stop: &'a Stop,
}

impl<'a, I, S, W, E, C> Ctx<'a, I, S, W, E, C> {
    /// The same context, reporting to `events` (one user's own log).
    pub fn with_events<'b, E2>(&self, events: &'b E2) -> Ctx<'b, I, S, W, E2, C>
    where
        'a: 'b,
    {
        Ctx {
            iam: self.iam,
            store: self.store,
            workflows: self.workflows,
            verify: self.verify.clone(),
            events,
            clock: self.clock,
            step_key: self.step_key,
            opts: self.opts,
            dry_run: self.dry_run,
            lease: self.lease,
            stop: self.stop,
        }
    }
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
    /// Each consumer's two secrets' `updated_at`, when read (`None` inside: missing).
    pub stamps: Vec<[Option<DateTime<Utc>>; 2]>,
    /// What each readable (AWS) store holds before anything changes, read with the stamps;
    /// `None` for GitHub stores, which are write-only.
    pub old_values: Vec<Option<[Option<SecretString>; 2]>>,
    /// Who reads each consumer's secret, where the store says (organization secrets).
    pub access: Vec<Option<String>>,
    /// `status` only: why the stores could not be read (then nothing is said of what they hold).
    pub unread: Option<String>,
    /// Why the user needs a person, if it does.
    pub attention: Option<String>,
    /// Consumers a killed run left split, each with the key id that makes it whole
    /// ([`state::split_pairs`]): every changing command mends them first.
    pub splits: Vec<(usize, String)>,
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
    /// `rotate --force` put the old key back everywhere (a repair).
    RolledBack(String),
    /// Not started: the hour's write budget cannot fit the whole rotation; the next run takes it.
    Deferred(String),
    /// An operation failed; compensation (if any) has run.
    Failed(String),
    /// `status`: nothing was asked.
    Reported,
    /// Stopped by a signal before it finished: where it stopped.
    Interrupted(String),
}

impl Outcome {
    /// CONTRACT §7.
    pub fn exit(&self) -> Exit {
        match self {
            Outcome::Failed(_) | Outcome::Interrupted(_) => Exit::Failed,
            Outcome::Invalid(_) => Exit::Invalid,
            Outcome::Refused(_) => Exit::Refused,
            _ => Exit::Ok,
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
    /// The same, as data.
    pub held: Held,
    /// Who reads it, where the store says ("selected: 3 repositories").
    pub access: Option<String>,
}

/// Everything the reports need about one user.
#[derive(Clone, Debug)]
pub struct UserReport {
    pub user: UserSpec,
    pub state: Option<State>,
    pub due: bool,
    /// `delete` would delete the old key now (its grace has passed).
    pub deletion_due: bool,
    pub keys: Vec<KeyInfo>,
    pub last_used: Vec<(String, LastUse)>,
    pub outcome: Outcome,
    pub consumers: Vec<ConsumerReport>,
    pub new_key: Option<String>,
    pub old_key: Option<String>,
    pub notes: Vec<String>,
    /// Verification workflow runs, in manifest order.
    pub runs: Vec<RunResult>,
    /// Why a person is needed (a scheduled run is loud: exit 3).
    pub attention: Option<String>,
    /// The journal on the user as this run read (or left) it.
    pub journal: Option<Journal>,
}

impl UserReport {
    pub fn new(user: &UserSpec, outcome: Outcome) -> Self {
        Self {
            user: user.clone(),
            state: None,
            due: false,
            deletion_due: false,
            keys: Vec::new(),
            last_used: Vec::new(),
            outcome,
            consumers: Vec::new(),
            new_key: None,
            old_key: None,
            notes: Vec::new(),
            runs: Vec::new(),
            attention: None,
            journal: None,
        }
    }
    pub fn rotated(&self) -> bool {
        self.outcome == Outcome::Rotated
    }
    /// CONTRACT §7, with §4's rule that a user who needs a person makes the run loud.
    pub fn exit(&self) -> Exit {
        match self.outcome.exit() {
            Exit::Ok if self.attention.is_some() => Exit::Refused,
            e => e,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.exit().code()
    }
}

fn iam_fault(user: &UserSpec, action: &str, e: IamError) -> Fault {
    match e.kind {
        IamErrorKind::NoSuchUser => Fault::Invalid(format!(
            "{}: IAM user {:?} does not exist in this account: fix the name in the manifest or create the user",
            user.origin, user.name
        )),
        IamErrorKind::Credentials => Fault::Invalid(with_action(action, e)),
        _ => Fault::Failed(with_action(action, e)),
    }
}

/// The error, prefixed with the action unless it already names it.
fn with_action(action: &str, e: IamError) -> String {
    if e.message.contains(action) {
        e.message
    } else {
        format!("{action}: {}", e.message)
    }
}

fn gh_fault(scope: &Scope, e: GhError) -> Fault {
    match e.kind {
        GhErrorKind::NotFound if scope.is_readable() => Fault::Invalid(format!(
            "{scope}: it does not exist, or these credentials cannot see it ({e}). Create it first (the tool keeps its type, KMS key and other fields), or fix the manifest"
        )),
        GhErrorKind::NotFound => Fault::Invalid(format!(
            "{scope}: GitHub answered 404: the repository or environment does not exist, or the token cannot see it. Check the manifest, create the environment, or grant the token access to the repository"
        )),
        GhErrorKind::Unauthorized | GhErrorKind::Forbidden | GhErrorKind::Rejected => {
            Fault::Invalid(about(scope, e))
        }
        GhErrorKind::Unavailable => Fault::Failed(about(scope, e)),
    }
}

/// The error, prefixed with the store unless it already names it (each thing said once).
fn about(scope: &Scope, e: GhError) -> String {
    let name = scope.to_string();
    if e.message.contains(&name) {
        e.message
    } else {
        format!("{name}: {}", e.message)
    }
}

/// Reads the keys, the journal and what the command's decision needs, and decides. Reads no
/// public key: see [`read_for_writes`].
pub async fn plan_user<I: Iam, S: SecretStore, W: Workflows, E: Events, C: Clock>(
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
    let tags = read_tags(ctx.iam, &user.name)
        .await
        .map_err(|e| iam_fault(user, "iam:ListUserTags", e))?;
    let mut stamps = Vec::new();
    let mut old_values = Vec::new();
    let mut access = Vec::new();
    // `status` reads them too: it reports what each store holds, AWS stores read back.
    let mut unread = None;
    if state::needs_freshness(&keys) || command == Command::Status {
        match read_stamps(ctx, user).await {
            Ok(read) => (stamps, old_values, access) = read,
            // `status` reports what it could read, and says what it could not.
            Err(Fault::Invalid(m) | Fault::Failed(m)) if command == Command::Status => {
                unread = Some(m)
            }
            Err(f) => return Err(f),
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
    let id_values: Vec<Option<String>> = old_values
        .iter()
        .map(|v| {
            v.as_ref()
                .and_then(|[id, _]| id.as_ref().map(|id| id.expose_secret().to_owned()))
        })
        .collect();
    let facts = Facts {
        old_last_used: (command == Command::Deactivate)
            .then(|| last_used.first().map(|(_, u)| u.clone()))
            .flatten(),
        newest_unheld: newest_unheld(&keys, &stamps, &id_values),
        keys,
        freshness: freshness(user, &stamps),
        now: ctx.clock.now(),
        step_key_id: ctx.step_key.map(|k| k.id.clone()),
        journal: tags.journal().cloned(),
        has_verify: !user.verify.is_empty(),
    };
    let plan = match command {
        Command::Status => Plan::Nothing(String::new()),
        Command::Rotate => plan::rotate(user, &facts, ctx.opts),
        Command::Deactivate => plan::deactivate(user, &facts, ctx.opts),
        Command::Delete => plan::delete(user, &facts, ctx.opts),
    };
    let splits = state::split_pairs(&facts.keys, &stamps);
    let mut attention = plan::attention(user, &facts, ctx.opts);
    if !splits.is_empty() && attention.is_none() && command == Command::Status {
        attention = Some(format!(
            "{} hold an id and a secret of different keys (a run stopped between the two writes) and cannot authenticate: the next rotate, deactivate or delete gives them the id that matches",
            splits
                .iter()
                .map(|(i, _)| user.consumers[*i].scope.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Prepared {
        facts,
        plan,
        scope_keys: BTreeMap::new(),
        last_used,
        stamps,
        old_values,
        access,
        attention,
        unread,
        splits,
    })
}

/// Reads, decides, and reads what the plan's writes need: [`plan_user`], then
/// [`read_for_writes`].
pub async fn prepare<I: Iam, S: SecretStore, W: Workflows, E: Events, C: Clock>(
    ctx: &Ctx<'_, I, S, W, E, C>,
    user: &UserSpec,
    command: Command,
) -> Result<Prepared, Fault> {
    let mut prepared = plan_user(ctx, user, command).await?;
    read_for_writes(ctx, user, &mut prepared).await?;
    Ok(prepared)
}

/// What a plan that writes needs before anything changes: every secret's `updated_at` (a lost
/// write is settled against it), readable stores' old values, and each GitHub store's public
/// key, once. A plan that writes nothing reads nothing here.
pub async fn read_for_writes<I: Iam, S: SecretStore, W: Workflows, E: Events, C: Clock>(
    ctx: &Ctx<'_, I, S, W, E, C>,
    user: &UserSpec,
    prepared: &mut Prepared,
) -> Result<(), Fault> {
    let writes = !prepared.splits.is_empty()
        || matches!(&prepared.plan, Plan::Act { steps, .. } if steps.iter().any(|s| matches!(s, Step::WriteSecrets(_) | Step::RollBack)));
    if !writes {
        return Ok(());
    }
    if prepared.stamps.is_empty() {
        (prepared.stamps, prepared.old_values, prepared.access) = read_stamps(ctx, user).await?;
        prepared.facts.freshness = freshness(user, &prepared.stamps);
    }
    for (c, stamps) in user.consumers.iter().zip(&prepared.stamps) {
        // The secret half only where the store encrypts it (an SSM SecureString).
        ctx.store
            .fit_for_secret(&c.scope, secret_name(c, Part::Secret))
            .await
            .map_err(|e| gh_fault(&c.scope, e))?;
        // A new organization secret is readable by whom the manifest says, never by GitHub's
        // default (every private repository of the organization).
        if let Scope::Organization {
            visibility: None, ..
        } = &c.scope
            && let Some((part, _)) = PARTS.iter().zip(stamps).find(|(_, at)| at.is_none())
        {
            return Err(Fault::Invalid(format!(
                "{}: secret {} does not exist yet, and the manifest does not say who may read it: add `visibility: private`, `visibility: selected` or `visibility: all` to its entry (GitHub's default would let every private repository of the organization read the key)",
                c.scope,
                secret_name(c, *part)
            )));
        }
    }
    for c in user.consumers.iter().filter(|c| c.scope.is_github()) {
        if !prepared.scope_keys.contains_key(&c.scope) {
            let key = ctx
                .store
                .public_key(&c.scope)
                .await
                .map_err(|e| gh_fault(&c.scope, e))?;
            prepared.scope_keys.insert(c.scope.clone(), key);
        }
    }
    Ok(())
}

async fn read_tags<I: Iam>(iam: &I, user: &str) -> Result<Tags, IamError> {
    let pairs = iam.tags(user).await?;
    Ok(Tags::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

fn freshness(user: &UserSpec, stamps: &[[Option<DateTime<Utc>>; 2]]) -> Vec<Freshness> {
    user.consumers
        .iter()
        .zip(stamps)
        .map(|(c, [a, b])| Freshness {
            consumer: c.clone(),
            updated_at: match (a, b) {
                (Some(a), Some(b)) => Some(*a.min(b)),
                _ => None,
            },
        })
        .collect()
}

/// The consumers' stamps, old values and access: [`read_stamps`].
type Stamps = (
    Vec<[Option<DateTime<Utc>>; 2]>,
    Vec<Option<[Option<SecretString>; 2]>>,
    Vec<Option<String>>,
);

/// Every consumer's two secrets' `updated_at` (a GitHub store in one listing, which also proves
/// it exists), each readable store's two values, and who reads each organization secret.
async fn read_stamps<I: Iam, S: SecretStore, W: Workflows, E: Events, C: Clock>(
    ctx: &Ctx<'_, I, S, W, E, C>,
    user: &UserSpec,
) -> Result<Stamps, Fault> {
    let mut stamps = Vec::new();
    let mut values = Vec::new();
    let mut access = Vec::new();
    // One listing per store where it can list (GitHub): it also proves the store exists.
    let mut listed: BTreeMap<Scope, Option<BTreeMap<String, DateTime<Utc>>>> = BTreeMap::new();
    for c in &user.consumers {
        let mut old = None;
        if c.scope.is_github() {
            if !listed.contains_key(&c.scope) {
                let l = ctx
                    .store
                    .stamps(&c.scope)
                    .await
                    .map_err(|e| gh_fault(&c.scope, e))?;
                listed.insert(c.scope.clone(), l);
            }
        } else {
            let mut both = [None, None];
            for (slot, part) in both.iter_mut().zip(PARTS) {
                *slot = ctx
                    .store
                    .read(&c.scope, secret_name(c, part))
                    .await
                    .map_err(|e| gh_fault(&c.scope, e))?;
            }
            old = Some(both);
        }
        let mut both = [None, None];
        for (slot, part) in both.iter_mut().zip(PARTS) {
            let name = secret_name(c, part);
            *slot = match listed.get(&c.scope) {
                Some(Some(list)) => list.get(&name.to_ascii_uppercase()).copied(),
                _ => ctx
                    .store
                    .updated_at(&c.scope, name)
                    .await
                    .map_err(|e| gh_fault(&c.scope, e))?,
            };
        }
        // Who reads it, where the store says: reported, never changed.
        let reach = if both[0].is_some() {
            ctx.store
                .access(&c.scope, secret_name(c, Part::Id))
                .await
                .map_err(|e| gh_fault(&c.scope, e))?
        } else {
            None
        };
        let visibility_all = matches!(
            &c.scope,
            Scope::Organization {
                visibility: Some(Visibility::All),
                ..
            }
        );
        if reach.as_deref() == Some("all repositories") || (reach.is_none() && visibility_all) {
            ctx.events.warn(&format!(
                "{}: every repository of the organization can read this key (visibility all): narrow it to `selected` where you can",
                c.scope
            ));
        }
        stamps.push(both);
        values.push(old);
        access.push(reach);
    }
    Ok((stamps, values, access))
}

/// Whether the newest Active key is at least max-age-days old (or there is none).
pub fn is_due(user: &UserSpec, facts: &Facts) -> bool {
    let old_enough =
        |k: &KeyInfo| state::age_days(k.created, facts.now) >= i64::from(user.max_age_days);
    match facts.state() {
        State::None | State::Incomplete => true,
        // A first key whose push never finished is due at once (see `plan::rotate`).
        State::Current
            if facts
                .journal_of_newest()
                .is_some_and(|j| j.phase == Phase::Writing) =>
        {
            true
        }
        State::Current | State::PendingDeletion => facts.keys.last().is_some_and(old_enough),
        State::RolledBack => facts.keys.first().is_some_and(old_enough),
        _ => false,
    }
}

/// With two keys, whether no consumer can hold the newer one: every secret that exists was
/// last written before it was created (by more than the clock slack), and no readable store
/// holds its id. Unread stamps prove nothing.
fn newest_unheld(
    keys: &[KeyInfo],
    stamps: &[[Option<DateTime<Utc>>; 2]],
    id_values: &[Option<String>],
) -> bool {
    let [_, new] = keys else { return false };
    !stamps.is_empty()
        && stamps
            .iter()
            .flatten()
            .flatten()
            .all(|t| *t < new.created - state::clock_slack())
        && id_values.iter().flatten().all(|v| *v != new.id)
}

/// What consumer `i` most likely holds before this run, from the keys, the journal and when
/// its secrets were written.
fn guess_before(facts: &Facts, stamps: Option<&[Option<DateTime<Utc>>; 2]>) -> [Holding; 2] {
    // Without reading the store, nothing is claimed about what it holds.
    if stamps.is_none() {
        return [Holding::Unknown, Holding::Unknown];
    }
    let keys = &facts.keys;
    let id = |k: Option<&KeyInfo>| Holding::Key(k.map(|k| k.id.clone()));
    let guess = match facts.state() {
        State::Current | State::PendingDeletion | State::PendingDeactivation => id(keys.last()),
        State::RolledBack => id(keys.first()),
        State::Incomplete => match facts.journal_of_newest().map(|j| j.phase) {
            Some(Phase::Written | Phase::Verified) => id(keys.last()),
            Some(Phase::Partial | Phase::RolledBack | Phase::Writing) => Holding::Unknown,
            _ => {
                // No journal (an older release): written after the new key means the new key.
                let new = keys.last();
                let fresh = stamps.is_some_and(|s| {
                    s.iter().all(|t| {
                        t.is_some_and(|t| {
                            new.is_some_and(|n| t.timestamp() >= n.created.timestamp())
                        })
                    })
                });
                if fresh { id(new) } else { id(keys.first()) }
            }
        },
        _ => Holding::Unknown,
    };
    let mut both = [guess.clone(), guess];
    if let Some(s) = stamps {
        for (h, t) in both.iter_mut().zip(s) {
            if t.is_none() {
                *h = Holding::Key(None);
            }
        }
    }
    both
}

/// After a stop that could not wait for `user`'s run: gives its lease back if it is still this
/// run's, and says where the rotation stopped (the journal's phase).
pub async fn give_back_lease<I: Iam, S: SecretStore, W: Workflows, E: Events, C: Clock>(
    ctx: &Ctx<'_, I, S, W, E, C>,
    user: &UserSpec,
) -> String {
    let tags = match read_tags(ctx.iam, &user.name).await {
        Ok(t) => t,
        Err(e) => {
            return format!("could not read the lease to give it back ({e}): it expires by itself");
        }
    };
    let phase = tags
        .journal()
        .map_or("no journal".to_owned(), |j| format!("journal {}", j.phase));
    match tags.lease() {
        Some(l) if l.run == ctx.lease.run_id => {
            match ctx.iam.remove_tag(&user.name, LEASE_TAG).await {
                Ok(()) => format!("{phase}; the lease is given back"),
                Err(e) => format!(
                    "{phase}; giving the lease back failed ({e}): it expires at {}",
                    l.until.format("%Y-%m-%d %H:%M:%S UTC")
                ),
            }
        }
        _ => format!("{phase}; this run held no lease"),
    }
}

/// Reads, decides and carries out one user's command.
pub async fn run_user<I: Iam, S: SecretStore, W: Workflows, E: Events, C: Clock>(
    ctx: &Ctx<'_, I, S, W, E, C>,
    user: &UserSpec,
    command: Command,
) -> UserReport {
    match prepare(ctx, user, command).await {
        Ok(p) => execute(ctx, user, command, p).await,
        Err(Fault::Invalid(m)) => UserReport::new(user, Outcome::Invalid(m)),
        Err(Fault::Failed(m)) => UserReport::new(
            user,
            Outcome::Failed(format!("{m}. Nothing was changed; run again")),
        ),
    }
}

/// GitHub writes a prepared plan makes when nothing fails: two per consumer written, one per
/// verification dispatched (a user is rotated entirely or not started).
pub fn writes_needed(prepared: &Prepared) -> usize {
    match &prepared.plan {
        Plan::Act { steps, .. } => steps
            .iter()
            .map(|s| match s {
                Step::WriteSecrets(c) if c.scope.is_github() => 2,
                Step::DispatchVerification(_) => 1,
                Step::RollBack => 0,
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

/// A user left for the next run: what would have been done, and why not now.
pub fn defer(user: &UserSpec, prepared: &Prepared, why: String) -> UserReport {
    let mut report = UserReport::new(user, Outcome::Deferred(why));
    report.state = Some(prepared.facts.state());
    report.due = is_due(user, &prepared.facts);
    report.keys = prepared.facts.keys.clone();
    report.attention = prepared.attention.clone();
    report
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
        stamps,
        old_values,
        access,
        attention,
        unread,
        splits,
    } = prepared;
    let mut report = UserReport::new(user, Outcome::Reported);
    report.state = Some(facts.state());
    report.due = is_due(user, &facts);
    report.deletion_due = plan::deletion_due(user, &facts, ctx.opts);
    report.keys = facts.keys.clone();
    report.last_used = last_used;
    report.attention = attention;
    report.journal = facts.journal.clone();
    if let Some(why) = unread {
        let note = format!(
            "the secret stores could not be read, so what each consumer holds is not known: {why}"
        );
        ctx.events.warn(&note);
        report.notes.push(note);
    }
    let mut before: Vec<[(Holding, Option<DateTime<Utc>>); 2]> = (0..user.consumers.len())
        .map(|i| {
            let s = stamps.get(i);
            let mut guess = guess_before(&facts, s);
            // A readable store says what it holds: its id value is the key id.
            if let Some(Some([id, _])) = old_values.get(i) {
                let held = Holding::Key(id.as_ref().map(|v| v.expose_secret().to_owned()));
                guess = [held.clone(), held];
            }
            let at = s.copied().unwrap_or([None, None]);
            [(guess[0].clone(), at[0]), (guess[1].clone(), at[1])]
        })
        .collect();
    if let [old, new] = facts.keys.as_slice() {
        // The stamps say it: the secret kept one key, the id holds the other.
        for (i, kept) in &splits {
            let other = if *kept == old.id { &new.id } else { &old.id };
            before[*i][0].0 = Holding::key(other);
            before[*i][1].0 = Holding::key(kept);
        }
    }
    let ledger = Ledger::new(before);
    report.consumers = user
        .consumers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let held = ledger.held(i);
            ConsumerReport {
                consumer: c.clone(),
                result: "unchanged".into(),
                holds: describe_before(&held),
                held,
                access: access.get(i).cloned().flatten(),
            }
        })
        .collect();
    if command == Command::Deactivate
        && let (Some(old), Some(used)) = (facts.keys.first(), &facts.old_last_used)
    {
        let note = format!("old key {}: {used}", old.id);
        ctx.events.info(&note);
        report.notes.push(note);
    }
    // Split pairs are mended first, whatever the plan (CONTRACT §12): a plan that does nothing
    // or refuses still ends the same way, after the mend.
    let mend = !splits.is_empty() && command != Command::Status;
    let (steps, old_key, after_mend) = match plan {
        Plan::Nothing(why) if !mend => {
            report.outcome = if command == Command::Status {
                Outcome::Reported
            } else {
                Outcome::Nothing(why)
            };
            return report;
        }
        Plan::Refuse(why) if !mend => {
            report.outcome = Outcome::Refused(why);
            return report;
        }
        Plan::Nothing(why) => (Vec::new(), None, Some(Outcome::Nothing(why))),
        Plan::Refuse(why) => (Vec::new(), None, Some(Outcome::Refused(why))),
        Plan::Invalid(why) => {
            report.outcome = Outcome::Invalid(why);
            return report;
        }
        Plan::Act { steps, old_key } => (steps, old_key, None),
    };
    report.old_key = old_key.clone();
    if ctx.dry_run {
        let mut planned: Vec<String> = splits
            .iter()
            .map(|(i, kept)| mend_words(user, *i, kept))
            .collect();
        planned.extend(steps.iter().map(ToString::to_string));
        report.outcome = Outcome::Planned(planned);
        for c in &mut report.consumers {
            if steps.contains(&Step::WriteSecrets(c.consumer.clone()))
                || steps.contains(&Step::RollBack)
            {
                c.result = "would be updated (dry run)".into();
            }
        }
        for (i, kept) in &splits {
            report.consumers[*i].result = format!("would get the id {kept} back (dry run)");
        }
        return report;
    }
    let mut run = Rotation {
        ctx,
        user,
        report,
        scope_keys,
        keys: facts.keys.clone(),
        journal: facts.journal.clone(),
        old_key,
        new_key: None,
        created_here: false,
        rotation_id: String::new(),
        deleted: Vec::new(),
        ledger,
        old_values,
        last_sent: HashMap::new(),
        leased: false,
        lease_until: None,
        splits,
    };
    let result = run.act(&steps).await;
    run.release().await;
    let mut report = run.finish();
    report.outcome = match result {
        Ok(Done::Rolled(why)) => Outcome::RolledBack(why),
        // A plan that did nothing or refused ends that way, after its mend.
        Ok(Done::Finished) => after_mend.unwrap_or(match command {
            Command::Rotate => Outcome::Rotated,
            Command::Deactivate => Outcome::Deactivated,
            Command::Delete => Outcome::Deleted,
            Command::Status => Outcome::Reported,
        }),
        Err(Halt::Failed(why)) => Outcome::Failed(why),
        Err(Halt::Refused(why)) => Outcome::Refused(why),
        Err(Halt::Interrupted(why)) => Outcome::Interrupted(why),
    };
    if matches!(
        report.outcome,
        Outcome::Rotated | Outcome::Deactivated | Outcome::Deleted | Outcome::RolledBack(_)
    ) {
        // What needed a person was just done.
        report.attention = None;
    }
    if report.outcome == Outcome::Rotated
        && let Some(old) = &report.old_key
    {
        report.notes.push(format!(
            "the old key {old} stays Active until `deactivate` runs after the grace period"
        ));
    }
    report
}

/// The mend of split consumer `i`, in words (dry run).
fn mend_words(user: &UserSpec, i: usize, kept: &str) -> String {
    let c = &user.consumers[i];
    format!(
        "write the id {kept} into {} of {} (its secret is {kept}'s; a run stopped between the two writes)",
        c.secrets.access_key_id, c.scope
    )
}

fn describe_before(held: &Held) -> Option<String> {
    match held {
        Held::Key(k) => Some(k.clone()),
        Held::Nothing | Held::Unknown => None,
        Held::Split { .. } => None,
    }
}

/// How an act ended well.
enum Done {
    Finished,
    /// A repair put the old key back everywhere.
    Rolled(String),
}

/// How an act stopped.
enum Halt {
    /// An operation failed (compensation has run): exit 1.
    Failed(String),
    /// A lease or a re-read stopped it before it acted: exit 3.
    Refused(String),
    /// A stop was requested (a signal): no new mutation was started.
    Interrupted(String),
}

/// Attempts for the idempotent calls the core repeats on purpose (tags, secret writes while
/// compensating): the same value written again is harmless.
const ATTEMPTS: usize = 3;

struct Rotation<'c, 'a, I, S, W, E, C> {
    ctx: &'c Ctx<'a, I, S, W, E, C>,
    user: &'c UserSpec,
    report: UserReport,
    scope_keys: BTreeMap<Scope, ScopeKey>,
    /// The keys as this run last saw or left them, oldest first.
    keys: Vec<KeyInfo>,
    /// The journal as this run last read or wrote it.
    journal: Option<Journal>,
    old_key: Option<String>,
    new_key: Option<NewKey>,
    /// This run created the new key (a repair works with one made earlier).
    created_here: bool,
    rotation_id: String,
    /// Keys this run deleted.
    deleted: Vec<String>,
    ledger: Ledger,
    /// What each readable store held before (its old values, put back on a rollback).
    old_values: Vec<Option<[Option<SecretString>; 2]>>,
    /// When this run last sent each secret (two writes of one secret are a second apart, so
    /// GitHub's whole-second `updated_at` tells them apart).
    last_sent: HashMap<(usize, usize), DateTime<Utc>>,
    leased: bool,
    /// Until when this run's lease holds, once taken.
    lease_until: Option<DateTime<Utc>>,
    /// Consumers to mend before anything else, with the key id that makes each whole.
    splits: Vec<(usize, String)>,
}

impl<I: Iam, S: SecretStore, W: Workflows, E: Events, C: Clock> Rotation<'_, '_, I, S, W, E, C> {
    fn now(&self) -> DateTime<Utc> {
        let t = self.ctx.clock.now();
        DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
    }

    fn name(&self) -> &str {
        &self.user.name
    }

    async fn act(&mut self, steps: &[Step]) -> Result<Done, Halt> {
        self.stop_point("before it changed anything")?;
        self.take_lease().await?;
        self.recheck("before starting").await?;
        self.mend_splits().await?;
        let verifications: Vec<VerifyWorkflow> = steps
            .iter()
            .filter_map(|s| match s {
                Step::DispatchVerification(v) => Some(v.clone()),
                _ => None,
            })
            .collect();
        let writes = steps.iter().any(|s| matches!(s, Step::WriteSecrets(_)));
        for step in steps {
            self.stop_point(&format!("before it would {step}"))?;
            match step {
                Step::DispatchVerification(_) => {}
                Step::RollBack => return self.roll_back_repair().await,
                other => self.step(other).await?,
            }
        }
        if writes {
            let phase = if verifications.is_empty() {
                Phase::Verified
            } else {
                Phase::Written
            };
            if let Err(e) = self.record(phase).await {
                if phase == Phase::Verified {
                    return Err(Halt::Failed(format!(
                        "every consumer holds the new key, but recording it on the IAM user failed ({e}): run rotate with force to record it"
                    )));
                }
                self.ctx
                    .events
                    .warn(&format!("could not record phase written: {e}"));
            }
        }
        if !verifications.is_empty() {
            self.stop_point("before it would dispatch the verification workflows")?;
            self.verify(&verifications).await?;
            if let Err(e) = self.record(Phase::Verified).await {
                return Err(Halt::Failed(format!(
                    "the verification succeeded, but recording it on the IAM user failed ({e}): the old key stays Active; run rotate with force to verify again and record it"
                )));
            }
        }
        Ok(Done::Finished)
    }

    /// Whether this run's lease lasts long enough for `calls` more mutating calls, each with
    /// twice the call timeout to spare (before the lease is taken: yes).
    fn lease_holds(&self, calls: i32) -> bool {
        self.lease_until.is_none_or(|until| {
            until - self.ctx.clock.now() >= self.ctx.lease.call_timeout * (2 * calls.max(1))
        })
    }

    /// Where a requested stop takes effect: between steps, never inside one (a consumer's pair
    /// is written whole, or not at all).
    fn stop_point(&self, before: &str) -> Result<(), Halt> {
        // A step makes at most a pair of writes: it starts only with room for both.
        if !self.lease_holds(2) {
            return Err(Halt::Failed(format!(
                "stopped {before}: this run's lease on user {} ends at {}, too soon to start another change (each call may take {}); nothing more was changed, and the next run goes on from here",
                self.name(),
                self.lease_until.map_or("?".into(), |t| t
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string()),
                crate::human::duration(self.ctx.lease.call_timeout.to_std().unwrap_or_default())
            )));
        }
        if !self.ctx.stop.requested() {
            return Ok(());
        }
        let phase = self
            .journal
            .as_ref()
            .map_or("no journal".to_owned(), |j| format!("journal {}", j.phase));
        Err(Halt::Interrupted(format!(
            "stopped by a signal {before} ({phase}); the lease is given back, and the next run goes on from here"
        )))
    }

    /// Gives every split consumer the id of the key its secret kept (CONTRACT §12): ids are
    /// not secret, and both keys are Active.
    async fn mend_splits(&mut self) -> Result<(), Halt> {
        for (i, kept) in std::mem::take(&mut self.splits) {
            let scope = self.user.consumers[i].scope.clone();
            match self
                .write_again(i, Part::Id, &kept, &SecretString::from(kept.clone()))
                .await
            {
                Ok(()) => {
                    self.report.consumers[i].result =
                        format!("mended: the id {kept} back beside its secret");
                    self.ctx.events.warn(&format!(
                        "{scope} held an id and a secret of different keys (a run stopped between the two writes): its id is {kept} again, and it works"
                    ));
                }
                Err(e) => {
                    return Err(Halt::Failed(format!(
                        "{scope} holds an id and a secret of different keys and cannot authenticate; writing the id {kept} failed ({e}): run again"
                    )));
                }
            }
        }
        Ok(())
    }

    // ---- the lease --------------------------------------------------------------------------

    async fn take_lease(&mut self) -> Result<(), Halt> {
        let ctx = self.ctx;
        let me = &ctx.lease.run_id;
        let tags = self.read_tags().await.map_err(|e| {
            Halt::Failed(format!(
                "could not read the tags of IAM user {}: {e}. Nothing was changed; run again",
                self.name()
            ))
        })?;
        match &tags.lease {
            Some(Ok(l)) if &l.run != me && l.live(ctx.clock.now()) && self.holder_gone(l).await => {
                let note = format!(
                    "the lease of run {} on user {} lasts until {}, but GitHub says its holder has finished: it is dead, and this run takes it",
                    l.run,
                    self.name(),
                    l.until.format("%Y-%m-%d %H:%M:%S UTC")
                );
                ctx.events.warn(&note);
                self.report.notes.push(note);
            }
            Some(Ok(l)) if &l.run != me && l.live(ctx.clock.now()) => {
                return Err(Halt::Refused(format!(
                    "run {} is changing user {} (its lease lasts until {}): one run at a time. Wait for it; if it died, the lease expires at that time",
                    l.run,
                    self.name(),
                    l.until.format("%Y-%m-%d %H:%M:%S UTC")
                )));
            }
            Some(Err(raw)) => {
                return Err(Halt::Refused(format!(
                    "the lease tag {LEASE_TAG} of user {} holds {raw:?}, which this release cannot read: if no run is changing the user, remove it (aws iam untag-user --user-name {} --tag-keys {LEASE_TAG}) and run again",
                    self.name(),
                    self.name()
                )));
            }
            _ => {}
        }
        let lease = Lease {
            run: me.clone(),
            until: self.now() + ctx.lease.ttl,
            github: ctx.lease.github.clone(),
        };
        self.leased = true;
        if let Err(e) = ctx
            .iam
            .set_tag(&self.user.name, LEASE_TAG, &lease.value())
            .await
        {
            return Err(Halt::Failed(format!(
                "could not take the lease on IAM user {} (iam:TagUser: {e}). Nothing was changed; run again",
                self.name()
            )));
        }
        ctx.clock.sleep(ctx.lease.settle).await;
        let tags = self.read_tags().await.map_err(|e| {
            Halt::Failed(format!(
                "could not read back the lease on IAM user {}: {e}. Nothing was changed; run again",
                self.name()
            ))
        })?;
        match tags.lease() {
            Some(l) if &l.run == me => {
                self.lease_until = Some(l.until);
                Ok(())
            }
            Some(l) => {
                self.leased = false;
                Err(Halt::Refused(format!(
                    "run {} took the lease on user {} at the same time: one run at a time. Nothing was changed",
                    l.run,
                    self.name()
                )))
            }
            None => Err(Halt::Refused(format!(
                "the lease on user {} was removed while this run took it (another run or a person): nothing was changed; run again",
                self.name()
            ))),
        }
    }

    /// Whether the workflow run that holds a live lease is gone (CONTRACT §12): another run
    /// that GitHub reports completed (or re-run since), or another job of this very run attempt
    /// whose runner no unfinished job uses but this one. Anything GitHub cannot tell: not gone.
    async fn holder_gone(&self, lease: &Lease) -> bool {
        let Some(theirs) = &lease.github else {
            return false;
        };
        let w = self.ctx.workflows;
        let same_attempt = self.ctx.lease.github.as_ref().filter(|me| {
            me.repository.eq_ignore_ascii_case(&theirs.repository)
                && me.id == theirs.id
                && me.attempt == theirs.attempt
        });
        match same_attempt {
            Some(me) => match w
                .busy_runners(&theirs.repository, theirs.id, theirs.attempt)
                .await
            {
                Ok(busy) => {
                    me.runner == theirs.runner
                        || !busy
                            .iter()
                            .any(|r| super::journal::tag_word(r) == theirs.runner)
                }
                Err(_) => false,
            },
            None => match w.run_attempt(&theirs.repository, theirs.id).await {
                Ok((status, attempt)) => status == "completed" || attempt > theirs.attempt,
                Err(_) => false,
            },
        }
    }

    /// Gives the lease back, if it is still this run's.
    async fn release(&mut self) {
        if !self.leased {
            return;
        }
        for _ in 0..ATTEMPTS {
            let tags = match self.read_tags().await {
                Ok(t) => t,
                Err(_) => continue,
            };
            match tags.lease() {
                Some(l) if l.run == self.ctx.lease.run_id => {}
                _ => return,
            }
            if self
                .ctx
                .iam
                .remove_tag(&self.user.name, LEASE_TAG)
                .await
                .is_ok()
            {
                return;
            }
        }
        let note = format!(
            "could not give back the lease tag {LEASE_TAG} of user {}: it expires by itself",
            self.name()
        );
        self.ctx.events.warn(&note);
        self.report.notes.push(note);
    }

    async fn read_tags(&self) -> Result<Tags, IamError> {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match read_tags(self.ctx.iam, &self.user.name).await {
                Ok(t) => return Ok(t),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Reads the keys, the journal and the lease again: if anything moved since this run last
    /// looked (or left them), stop.
    async fn recheck(&mut self, before: &str) -> Result<(), Halt> {
        self.moved().await.map_err(|m| {
            Halt::Refused(format!(
                "stopped {before}: {m}. Nothing more was changed; run status"
            ))
        })
    }

    async fn moved(&self) -> Result<(), String> {
        let keys = self
            .ctx
            .iam
            .list_keys(&self.user.name)
            .await
            .map_err(|e| format!("could not read the keys again ({e})"))?;
        let keys = state::oldest_first(keys);
        let tags = self
            .read_tags()
            .await
            .map_err(|e| format!("could not read the journal again ({e})"))?;
        let same_keys = keys.len() == self.keys.len()
            && keys
                .iter()
                .zip(&self.keys)
                .all(|(a, b)| a.id == b.id && a.status == b.status);
        if !same_keys {
            return Err(format!(
                "the keys of user {} changed under this run (now: {})",
                self.name(),
                keys.iter()
                    .map(|k| format!("{} {:?}", k.id, k.status))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if tags.journal() != self.journal.as_ref() {
            return Err(format!(
                "the rotation journal of user {} changed under this run (another run or a person)",
                self.name()
            ));
        }
        match tags.lease() {
            Some(l) if l.run == self.ctx.lease.run_id => Ok(()),
            Some(l) => Err(format!(
                "run {} holds the lease on user {} now",
                l.run,
                self.name()
            )),
            None => Err(format!("the lease on user {} was removed", self.name())),
        }
    }

    // ---- the journal ------------------------------------------------------------------------

    /// Moves the journal of the new key on to `phase` (now).
    async fn record(&mut self, phase: Phase) -> Result<(), IamError> {
        let now = self.now();
        let j = match &self.journal {
            Some(j) if Some(&j.key) == self.new_id().as_ref() => j.moved(phase, now),
            _ => Journal::new(
                phase,
                &self.new_id().unwrap_or_default(),
                &self.rotation_id(),
                now,
            ),
        };
        self.write_journal(j).await
    }

    /// The id of the rotation of the new key: the journal's, when it is about that key (a
    /// repair continues it), else `{key id}-{unix time}`, fixed once chosen. It always names
    /// its key (a journal whose rotation id does not is a forgery, CONTRACT §12).
    fn rotation_id(&mut self) -> String {
        if self.rotation_id.is_empty() {
            let key_id = self.new_id().unwrap_or_default();
            self.rotation_id = self
                .journal
                .as_ref()
                .filter(|j| j.key == key_id)
                .map_or_else(
                    || format!("{key_id}-{}", self.now().timestamp()),
                    |j| j.rotation.clone(),
                );
        }
        self.rotation_id.clone()
    }

    /// TagUser with the journal (idempotent, so tried a few times).
    async fn write_journal(&mut self, j: Journal) -> Result<(), IamError> {
        if !self.lease_holds(1) {
            return Err(IamError {
                kind: IamErrorKind::Other,
                message: "not sent: this run's lease ends too soon to write the journal".into(),
            });
        }
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match self
                .ctx
                .iam
                .set_tag(&self.user.name, JOURNAL_TAG, &j.value())
                .await
            {
                Ok(()) => {
                    self.journal = Some(j);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        // The write may have landed: read what is there, so the next re-read compares with it.
        if let Ok(t) = self.read_tags().await {
            self.journal = t.journal().cloned();
        }
        Err(last.expect("at least one attempt"))
    }

    /// Puts back the journal as it was before this run's intent (`None`: no journal).
    async fn put_back_journal(&mut self, prior: Option<Journal>) {
        match prior {
            Some(j) => {
                let _ = self.write_journal(j).await;
            }
            None => self.forget_journal().await,
        }
    }

    async fn forget_journal(&mut self) {
        if self.journal.is_none() {
            return;
        }
        for _ in 0..ATTEMPTS {
            if self
                .ctx
                .iam
                .remove_tag(&self.user.name, JOURNAL_TAG)
                .await
                .is_ok()
            {
                self.journal = None;
                return;
            }
        }
        if let Ok(t) = self.read_tags().await {
            self.journal = t.journal().cloned();
        }
    }

    fn new_id(&self) -> Option<String> {
        self.new_key.as_ref().map(|k| k.id.clone()).or_else(|| {
            // A verification-only repair works with the newest key, whose secret it never sees.
            match self.keys.as_slice() {
                [_, new] => Some(new.id.clone()),
                _ => None,
            }
        })
    }

    // ---- keys -------------------------------------------------------------------------------

    /// DeleteAccessKey, sent once: NoSuchEntity means it is done (a resent or raced delete);
    /// after any other error the keys are listed to see whether it happened.
    async fn delete_key(&mut self, key_id: &str) -> Result<(), String> {
        let result = self.ctx.iam.delete_key(&self.user.name, key_id).await;
        let gone = match result {
            Ok(()) => true,
            Err(e) if e.kind == IamErrorKind::NoSuchKey => true,
            Err(e) => match self.ctx.iam.list_keys(&self.user.name).await {
                Ok(keys) if keys.iter().all(|k| k.id != key_id) => true,
                Ok(_) => return Err(e.to_string()),
                Err(l) => return Err(format!("{e}; listing the keys to check also failed ({l})")),
            },
        };
        if gone {
            self.deleted.push(key_id.to_owned());
            self.keys.retain(|k| k.id != key_id);
            self.report.keys.retain(|k| k.id != key_id);
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step) -> Result<(), Halt> {
        let ctx = self.ctx;
        let name = self.user.name.clone();
        match step {
            Step::DeleteKey { key_id, why } => {
                self.recheck(&format!("before deleting key {key_id}"))
                    .await?;
                if let Err(e) = self.delete_key(key_id).await {
                    return Err(self
                        .compensate(format!("could not delete key {key_id} ({why}): {e}"))
                        .await);
                }
                ctx.events
                    .info(&format!("deleted access key {key_id} ({why})"));
                if self.journal.as_ref().is_some_and(|j| {
                    &j.key == key_id || matches!(j.phase, Phase::Deactivated | Phase::Creating)
                }) {
                    self.forget_journal().await;
                }
            }
            Step::Deactivate { key_id } => {
                self.recheck(&format!("before deactivating key {key_id}"))
                    .await?;
                // The journal first: a key made Inactive with no record of when would leave
                // the user a conflict. `deactivated` on two Active keys still reads as
                // pending-deactivation, so a failed attempt is simply tried again.
                let verified = self.journal.clone();
                if let Err(e) = self.record(Phase::Deactivated).await {
                    return Err(Halt::Failed(format!(
                        "could not record the deactivation on IAM user {name} ({e}). Nothing was changed; run again"
                    )));
                }
                if let Err(e) = ctx.iam.set_inactive(&name, key_id).await {
                    let now_inactive = matches!(
                        ctx.iam.list_keys(&name).await,
                        Ok(keys) if keys.iter().any(|k| &k.id == key_id && k.status == KeyStatus::Inactive)
                    );
                    if !now_inactive {
                        // Back to when it was verified, so the grace period is not restarted.
                        if let Some(j) = verified {
                            let _ = ctx.iam.set_tag(&name, JOURNAL_TAG, &j.value()).await;
                        }
                        return Err(Halt::Failed(format!(
                            "could not deactivate key {key_id}: {e}. It stays Active; run again"
                        )));
                    }
                }
                ctx.events
                    .info(&format!("access key {key_id} is now Inactive"));
                for k in self.keys.iter_mut().chain(self.report.keys.iter_mut()) {
                    if &k.id == key_id {
                        k.status = KeyStatus::Inactive;
                    }
                }
            }
            Step::CreateKey => {
                // The intent first (CONTRACT §12): a run killed after CreateAccessKey leaves a
                // key whose origin the next run can tell, and delete at once.
                let prior = self.journal.clone();
                let intent = Journal::creating(&ctx.lease.run_id, self.now());
                if let Err(e) = self.write_journal(intent).await {
                    return Err(Halt::Failed(format!(
                        "could not record the rotation's start on IAM user {name} ({e}). Nothing was changed; run again"
                    )));
                }
                let before: Vec<String> = self.keys.iter().map(|k| k.id.clone()).collect();
                let key = match ctx.iam.create_key(&name).await {
                    Ok(k) => k,
                    Err(e) => {
                        let halt = self.create_failed(e, &before).await;
                        // No key of this run exists: the intent is void.
                        self.put_back_journal(prior).await;
                        return Err(halt);
                    }
                };
                ctx.events.mask(&key.secret);
                ctx.events
                    .info(&format!("created access key {} for user {name}", key.id));
                self.rotation_id = format!("{}-{}", key.id, self.now().timestamp());
                self.report.new_key = Some(key.id.clone());
                let info = KeyInfo {
                    id: key.id.clone(),
                    status: KeyStatus::Active,
                    created: key.created,
                };
                self.report.keys.push(info.clone());
                self.keys.push(info);
                self.new_key = Some(key);
                self.created_here = true;
                if let Err(e) = self.record(Phase::Writing).await {
                    let why = format!("could not record the rotation on IAM user {name} ({e})");
                    return Err(self.compensate(why).await);
                }
            }
            Step::AdoptStepKey => {
                let step = ctx.step_key.expect("planned only with a step key");
                let created = self.keys.last().map_or_else(|| self.now(), |k| k.created);
                self.new_key = Some(NewKey {
                    id: step.id.clone(),
                    secret: step.secret.clone(),
                    created,
                });
                self.report.new_key = Some(step.id.clone());
                self.rotation_id.clear();
                self.rotation_id();
            }
            Step::ProveNewKey => {
                let key = self
                    .new_key
                    .as_ref()
                    .expect("the plan creates the key first");
                if let Err(e) = ctx.iam.prove_key(key).await {
                    let id = key.id.clone();
                    let why =
                        format!("the new key {id} never worked with STS GetCallerIdentity ({e})");
                    return Err(self.compensate(why).await);
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
                    .expect("the plan has the new key first");
                let new_id = key.id.clone();
                let values = [
                    (Part::Id, SecretString::from(key.id.clone())),
                    (Part::Secret, key.secret.clone()),
                ];
                for (part, value) in values {
                    if let Err(e) = self.write(index, part, &new_id, &value, true).await {
                        self.report.consumers[index].result = format!("write failed: {e}");
                        let why = format!(
                            "writing {} in {} failed: {e}",
                            secret_name(c, part),
                            c.scope
                        );
                        return Err(self.compensate(why).await);
                    }
                }
                self.report.consumers[index].result = "updated".into();
                ctx.events.info(&format!(
                    "wrote {} and {} in {}",
                    c.secrets.access_key_id, c.secrets.secret_access_key, c.scope
                ));
            }
            Step::DispatchVerification(_) | Step::RollBack => {
                unreachable!("handled by act")
            }
        }
        Ok(())
    }

    /// CreateAccessKey failed. It is never resent: list the keys, and delete any key that
    /// appeared, which only this run (holding the lease) can have made and nobody received.
    async fn create_failed(&mut self, e: IamError, before: &[String]) -> Halt {
        let name = self.user.name.clone();
        let what = format!("could not create an access key for user {name}: {e}");
        if matches!(e.kind, IamErrorKind::NoSuchUser | IamErrorKind::Credentials) {
            return Halt::Failed(format!("{what}. Nothing was changed"));
        }
        let keys = match self.ctx.iam.list_keys(&name).await {
            Ok(k) => k,
            Err(l) => {
                return Halt::Failed(format!(
                    "{what}; listing the keys to see whether one was created also failed ({l}): run status, and if it shows a key no journal records, rotate with force"
                ));
            }
        };
        let appeared: Vec<String> = keys
            .iter()
            .map(|k| k.id.clone())
            .filter(|id| !before.contains(id))
            .collect();
        if e.kind == IamErrorKind::LimitExceeded {
            // Sent once: this call created nothing. Someone else did.
            return Halt::Refused(format!(
                "stopped: user {name} got another key ({}) from outside this run while it held the lease. Nothing was changed; run status",
                appeared.join(", ")
            ));
        }
        let mut notes = Vec::new();
        for id in appeared {
            match self.delete_key(&id).await {
                Ok(()) => notes.push(format!(
                    "the call had created key {id} although its answer was lost; nobody could hold it, so it was deleted"
                )),
                Err(d) => notes.push(format!(
                    "the call had created key {id} although its answer was lost, and deleting it failed ({d}): delete it by hand (aws iam delete-access-key --user-name {name} --access-key-id {id})"
                )),
            }
        }
        let mut why = what;
        for n in notes {
            why.push_str("; ");
            why.push_str(&n);
        }
        why.push_str(". No secret was written; run again");
        Halt::Failed(why)
    }

    /// Writes one secret of consumer `i`, a second after this run's previous write of it, with
    /// its `updated_at` read first when this run wrote it before (to settle a lost answer).
    async fn write(
        &mut self,
        i: usize,
        part: Part,
        key_id: &str,
        value: &SecretString,
        is_new: bool,
    ) -> Result<(), GhError> {
        let c = self.user.consumers[i].clone();
        if !self.lease_holds(1) {
            return Err(GhError {
                kind: GhErrorKind::Unavailable,
                message: format!(
                    "not sent: this run's lease ends too soon for another write of {}",
                    secret_name(&c, part)
                ),
                uncertain: false,
                status: None,
            });
        }
        let slot = (i, part as usize);
        // A second after this run's last write of the same secret and, for an id, of its
        // secret: a pair cut between its halves then shows as an id newer than its secret
        // (whole seconds), which the next run mends ([`state::split_pairs`]).
        let after_secret = (part == Part::Id).then_some((i, Part::Secret as usize));
        let prev = [Some(slot), after_secret]
            .into_iter()
            .flatten()
            .filter_map(|s| self.last_sent.get(&s))
            .max();
        if let Some(prev) = prev {
            let gap = self.ctx.clock.now() - *prev;
            if gap < chrono::Duration::seconds(1) {
                let wait = (chrono::Duration::seconds(1) - gap)
                    .to_std()
                    .unwrap_or_default();
                self.ctx.clock.sleep(wait).await;
            }
        }
        if self.ledger.is_unsettled(i, part) {
            self.settle(i, part).await;
        }
        if self.ledger.needs_stamp(i, part)
            && let Ok(at) = self
                .ctx
                .store
                .updated_at(&c.scope, secret_name(&c, part))
                .await
        {
            self.ledger.stamped(i, part, at);
        }
        let key = self.scope_keys.get(&c.scope);
        self.last_sent.insert(slot, self.ctx.clock.now());
        let result = self
            .ctx
            .store
            .put(&c.scope, key, secret_name(&c, part), value)
            .await;
        let landed_or_may_have = result.as_ref().map_or_else(|e| e.uncertain, |()| true);
        if landed_or_may_have {
            self.ledger.sending(i, part, is_new);
        }
        // A readable store is read back: what it holds now is what the report says.
        let result = match result {
            Ok(()) if c.scope.is_readable() => {
                match self.ctx.store.read(&c.scope, secret_name(&c, part)).await {
                    Ok(Some(v)) if v.expose_secret() == value.expose_secret() => Ok(()),
                    Ok(_) => Err(GhError {
                        kind: GhErrorKind::Unavailable,
                        message: format!(
                            "{} of {} read back something other than what was written (another writer?)",
                            secret_name(&c, part),
                            c.scope
                        ),
                        uncertain: true,
                        status: None,
                    }),
                    // The write was acknowledged; a failed read-back does not undo it.
                    Err(_) => Ok(()),
                }
            }
            other => other,
        };
        match result {
            Ok(()) => {
                self.ledger.wrote(i, part, key_id);
                Ok(())
            }
            Err(e) => {
                self.ledger.write_failed(i, part, key_id, e.uncertain);
                Err(e)
            }
        }
    }

    /// A write that repairs: tried a few times (the same value again is harmless).
    async fn write_again(
        &mut self,
        i: usize,
        part: Part,
        key_id: &str,
        value: &SecretString,
    ) -> Result<(), GhError> {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match self.write(i, part, key_id, value, false).await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    async fn settle(&mut self, i: usize, part: Part) {
        let c = &self.user.consumers[i];
        if let Ok(at) = self
            .ctx
            .store
            .updated_at(&c.scope, secret_name(c, part))
            .await
        {
            self.ledger.settle(i, part, at);
        }
    }

    async fn settle_all(&mut self) {
        for (i, part) in self.ledger.unsettled() {
            self.settle(i, part).await;
        }
    }

    // ---- verification -----------------------------------------------------------------------

    /// Dispatches the verification workflows and waits for them; a failure is compensated.
    async fn verify(&mut self, entries: &[VerifyWorkflow]) -> Result<(), Halt> {
        let ctx = self.ctx;
        let key_id = self.new_id().expect("verification follows a new key");
        let rotation_id = self.rotation_id();
        // The wait ends inside the lease, with room to record its result (CONTRACT §12).
        let mut settings = ctx.verify.clone();
        if let Some(until) = self.lease_until {
            let left = until - ctx.clock.now() - ctx.lease.call_timeout * 4;
            settings.timeout = settings.timeout.min(left.to_std().unwrap_or_default());
        }
        let results = verify::verify_all(
            ctx.workflows,
            ctx.clock,
            ctx.events,
            entries,
            &key_id,
            &format!("{rotation_id}-{}", self.now().timestamp()),
            &settings,
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

    // ---- compensation -----------------------------------------------------------------------

    /// The step's own credentials, when they are the old key: the old values, known.
    fn step_is_old(&self) -> Option<StepKey> {
        match (&self.old_key, self.ctx.step_key) {
            (Some(old), Some(step)) if &step.id == old => Some(step.clone()),
            _ => None,
        }
    }

    /// What consumer `i` held before, when it is known: a readable (AWS) store's own values,
    /// else, for a GitHub store, the step's credentials when they are the old key.
    fn old_pair(&self, i: usize) -> Option<StepKey> {
        if self.user.consumers[i].scope.is_readable() {
            return match self.old_values.get(i) {
                Some(Some([Some(id), Some(secret)])) => Some(StepKey {
                    id: id.expose_secret().to_owned(),
                    secret: secret.clone(),
                }),
                _ => None,
            };
        }
        self.step_is_old()
    }

    /// Puts consumer `i` back on `old` (id first, then secret). If the secret fails after the
    /// id was written, the id goes back to what the secret still holds, so the pair stays whole.
    async fn restore(&mut self, i: usize, old: &StepKey) -> Result<(), GhError> {
        for part in self.ledger.parts_not_holding(i, &old.id) {
            let value = match part {
                Part::Id => SecretString::from(old.id.clone()),
                Part::Secret => old.secret.clone(),
            };
            if let Err(e) = self.write_again(i, part, &old.id, &value).await {
                // A pair is one unit: settle what the failed half left, then complete the pair
                // or put its other half back to match (CONTRACT §12).
                self.settle(i, part).await;
                if part == Part::Id && *self.ledger.holds(i, Part::Id) == Holding::key(&old.id) {
                    // The id landed although no answer said so: the secret completes the pair.
                    continue;
                }
                if let Holding::Key(Some(id)) = self.ledger.holds(i, Part::Secret).clone()
                    && *self.ledger.holds(i, Part::Id) != Holding::key(&id)
                {
                    let _ = self
                        .write_again(i, Part::Id, &id, &SecretString::from(id.clone()))
                        .await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Something failed after the new key existed: put back what is known, keep every key
    /// someone may hold, record where the rotation stands, and say who holds what.
    async fn compensate(&mut self, mut why: String) -> Halt {
        let ctx = self.ctx;
        self.settle_all().await;
        let new_id = self.new_key.as_ref().map(|k| k.id.clone());
        let old_id = self.old_key.clone();
        if let Some(new) = &new_id
            && self.created_here
            && !self.ledger.new_key_went_out()
        {
            // No secret ever carried it: nobody can hold it.
            match self.delete_key(new).await {
                Ok(()) => {
                    why.push_str(&format!(
                        "; no secret had been written, so the new key {new} was deleted"
                    ));
                    self.report.new_key = None;
                    self.new_key = None;
                    self.forget_journal().await;
                }
                Err(e) => why.push_str(&format!(
                    "; no secret had been written, but deleting the new key {new} failed ({e}): delete it by hand"
                )),
            }
            return Halt::Failed(self.with_deleted_note(why));
        }
        let Some(new_id) = new_id else {
            return Halt::Failed(self.with_deleted_note(why));
        };
        // Before putting anything back: the keys and the journal must be as this run left them
        // (a deactivate started meanwhile would make the old key a broken one to restore).
        let moved = self.moved().await;
        match &moved {
            Err(m) => why.push_str(&format!("; nothing was put back: {m}")),
            Ok(()) => {
                if (0..self.user.consumers.len()).any(|i| self.old_pair(i).is_some()) {
                    ctx.events.warn(&format!(
                        "{why}; putting the old values back in every consumer that changed, where they are known"
                    ));
                }
                for i in 0..self.user.consumers.len() {
                    match self.old_pair(i) {
                        Some(old) => {
                            if self.ledger.held(i) == Held::Key(old.id.clone()) {
                                continue;
                            }
                            match self.restore(i, &old).await {
                                Ok(()) => {
                                    self.report.consumers[i].result =
                                        "restored to the old key".into()
                                }
                                Err(e) => ctx.events.warn(&format!(
                                    "could not restore {}: {e}",
                                    self.user.consumers[i].scope
                                )),
                            }
                        }
                        // The old secret is unknown, but its id is not secret: a consumer whose
                        // id changed while its secret did not gets the old id back, a whole
                        // pair again.
                        None => {
                            let Some(old) = &old_id else { continue };
                            if !self.ledger.id_split_from(i, old) {
                                continue;
                            }
                            if self
                                .write_again(i, Part::Id, old, &SecretString::from(old.clone()))
                                .await
                                .is_ok()
                            {
                                self.report.consumers[i].result = "restored to the old key".into();
                            }
                        }
                    }
                }
            }
        }
        self.settle_all().await;
        match &old_id {
            Some(old) if moved.is_ok() && self.ledger.all_hold(old) => {
                let free_at = self.now() + plan::job_lifetime();
                match self.record(Phase::RolledBack).await {
                    Ok(()) => why.push_str(&format!(
                        "; every consumer holds the old key {old} again. The new key {new_id} stays Active until {} (a job may still hold it); the next rotate deletes it then",
                        free_at.format("%Y-%m-%d %H:%M UTC")
                    )),
                    Err(e) => why.push_str(&format!(
                        "; every consumer holds the old key {old} again, but recording the rollback failed ({e}): both keys stay Active and the user reads as incomplete"
                    )),
                }
            }
            Some(_) => {
                let _ = self.record(Phase::Partial).await;
                why.push_str(&format!(
                    "; both keys stay Active because consumers hold (or may hold) the new key {new_id} and the old values could not be put back everywhere (a GitHub secret's are known only when this step runs with the old key): fix the cause and run rotate with force to repair"
                ));
            }
            None => {
                // A first key: it is the only one, and nobody else can have an older one.
                self.forget_journal().await;
                why.push_str(&format!(
                    "; the new key {new_id} stays (consumers hold it): fix the cause and run rotate with force to reach the rest"
                ));
            }
        }
        Halt::Failed(self.with_deleted_note(why))
    }

    fn with_deleted_note(&self, mut why: String) -> String {
        let holds_deleted = self.deleted.iter().any(|d| self.ledger.may_hold(d));
        if holds_deleted {
            why.push_str(
                "; some consumers hold a deleted key (see the report) and need rotate with force",
            );
        }
        why
    }

    /// `rotate --force` with the old key as credentials: write it back everywhere.
    async fn roll_back_repair(&mut self) -> Result<Done, Halt> {
        let old = self.step_is_old().expect("planned only with the old key");
        let new_id = self.new_id().unwrap_or_default();
        // Every store gets the old key, readable ones too: what they held when this run
        // started is the incomplete rotation's doing, not the old values.
        for i in 0..self.user.consumers.len() {
            match self.restore(i, &old).await {
                Ok(()) => self.report.consumers[i].result = "restored to the old key".into(),
                Err(e) => {
                    self.report.consumers[i].result = format!("restore failed: {e}");
                }
            }
        }
        self.settle_all().await;
        if !self.ledger.all_hold(&old.id) {
            let _ = self.record(Phase::Partial).await;
            return Err(Halt::Failed(format!(
                "could not put the old key {} back in every consumer (see the report); both keys stay Active: run rotate with force again",
                old.id
            )));
        }
        if let Err(e) = self.record(Phase::RolledBack).await {
            return Err(Halt::Failed(format!(
                "every consumer holds the old key {} again, but recording it failed ({e}): run rotate with force again",
                old.id
            )));
        }
        let free_at = self.now() + plan::job_lifetime();
        Ok(Done::Rolled(format!(
            "every consumer holds the old key {} again; the new key {new_id} is deleted by the next rotate from {} on",
            old.id,
            free_at.format("%Y-%m-%d %H:%M UTC")
        )))
    }

    /// The report, with what every consumer holds now.
    fn finish(mut self) -> UserReport {
        self.report.journal = self.journal.clone();
        let deleted = self.deleted.clone();
        for (i, c) in self.user.consumers.iter().enumerate() {
            let held = self.ledger.held(i);
            let names = (
                c.secrets.access_key_id.as_str(),
                c.secrets.secret_access_key.as_str(),
            );
            let text = held.describe(names, &|k| deleted.iter().any(|d| d == k));
            let r = &mut self.report.consumers[i];
            r.holds = match &held {
                Held::Nothing => None,
                _ => Some(text),
            };
            r.held = held;
        }
        self.report
    }
}

pub fn secret_name(c: &Consumer, part: Part) -> &str {
    match part {
        Part::Id => &c.secrets.access_key_id,
        Part::Secret => &c.secrets.secret_access_key,
    }
}
