//! Reading a user before anything changes: the keys, the journal, what each store holds and
//! when it was written, the last uses, and the plan decided from them (CONTRACT §4, §5). Reads
//! only; a store that cannot be read stops the user here, untouched.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::context::Ctx;
use super::exposure;
use super::journal::Phase;
use super::lease::read_tags;
use super::ledger::PARTS;
use super::outcome::{Command, Fault, Outcome, UserReport, iam_fault};
use super::plan::{self, Facts, LastUse, Plan};
use super::state::{self, Freshness, KeyInfo, State};
use super::writes::{OldValues, secret_name};
use crate::manifest::{Consumer, Scope, UserSpec, Visibility};
use crate::ports::{Clock, Iam, Ports, SecretStore, StoreError, StoreErrorKind};
use crate::seal::ScopeKey;

/// What one consumer's store said before anything changed.
#[derive(Debug, Default)]
pub struct Reading {
    /// Its two secrets' `updated_at` (`None`: missing).
    pub stamps: [Option<DateTime<Utc>>; 2],
    /// What a readable (AWS) store holds; `None` for GitHub stores, which are write-only.
    pub old: OldValues,
    /// Who reads it, where the store says (organization secrets).
    pub access: Option<String>,
}

impl Reading {
    /// The key id a readable store holds.
    fn id_value(&self) -> Option<String> {
        self.old
            .as_ref()
            .and_then(|[id, _]| id.as_ref().map(|id| id.expose_secret().to_owned()))
    }
}

/// A user's facts and plan, made without changing anything.
#[derive(Debug)]
pub struct Prepared {
    pub facts: Facts,
    pub plan: Plan,
    pub scope_keys: BTreeMap<Scope, ScopeKey>,
    /// GetAccessKeyLastUsed for every key (status only).
    pub last_used: Vec<(String, LastUse)>,
    /// Each consumer's store, in manifest order, when read (empty: not read).
    pub readings: Vec<Reading>,
    /// `status` only: why the stores could not be read (then nothing is said of what they hold).
    pub unread: Option<Fault>,
    /// Why the user needs a person, if it does.
    pub attention: Option<String>,
    /// Consumers a killed run left split, each with the key id that makes it whole
    /// ([`state::split_pairs`]): every changing command mends them first.
    pub splits: Vec<(usize, String)>,
}

impl Prepared {
    /// What each readable store held before, in manifest order.
    pub(super) fn readings_old(&self) -> Vec<OldValues> {
        self.readings.iter().map(|r| r.old.clone()).collect()
    }
}

fn store_fault(scope: &Scope, e: StoreError) -> Fault {
    match e.kind {
        StoreErrorKind::NotFound if scope.is_readable() => Fault::Invalid(format!(
            "{scope}: it does not exist, or these credentials cannot see it ({e}). Create it first (the tool keeps its type, KMS key and other fields), or fix the manifest"
        )),
        StoreErrorKind::NotFound => Fault::Invalid(format!(
            "{scope}: GitHub answered 404: the repository or environment does not exist, or the token cannot see it. Check the manifest, create the environment, or grant the token access to the repository"
        )),
        StoreErrorKind::Unauthorized | StoreErrorKind::Forbidden | StoreErrorKind::Rejected => {
            Fault::Invalid(about(scope, e))
        }
        StoreErrorKind::Unavailable => Fault::Failed(about(scope, e)),
    }
}

/// The error, prefixed with the store unless it already names it (each thing said once).
fn about(scope: &Scope, e: StoreError) -> String {
    let name = scope.to_string();
    if e.message.contains(&name) {
        e.message
    } else {
        format!("{name}: {}", e.message)
    }
}

/// Reads the keys, the journal and what the command's decision needs, and decides. Reads no
/// public key: see [`read_for_writes`].
pub async fn plan_user<P: Ports>(
    ctx: &Ctx<'_, P>,
    user: &UserSpec,
    command: Command,
) -> Result<Prepared, Fault> {
    let keys = ctx
        .iam()
        .list_keys(&user.name)
        .await
        .map_err(|e| iam_fault(user, "iam:ListAccessKeys", e))?;
    let keys = state::oldest_first(keys);
    let tags = read_tags(ctx.iam(), &user.name)
        .await
        .map_err(|e| iam_fault(user, "iam:ListUserTags", e))?;
    // `status` reads them too: it reports what each store holds, AWS stores read back.
    let mut readings = Vec::new();
    let mut unread = None;
    if state::needs_freshness(&keys) || command == Command::Status {
        match read_stores(ctx, user).await {
            Ok(read) => readings = read,
            // `status` reports what it could read, and says what it could not.
            Err(f) if command == Command::Status => unread = Some(f),
            Err(f) => return Err(f),
        }
    }
    let last_used = last_uses(ctx, user, command, &keys).await?;
    let journal = tags.journal().cloned();
    let newest_last_used = newest_last_used(ctx, user, &keys, journal.as_ref(), &last_used).await?;
    let freshness = freshness(user, &readings, keys.last());
    let seen = exposure::detect(ctx, user, command, &keys, &tags).await?;
    let facts = Facts {
        exposure: seen.exposure,
        exposure_new: seen.first_seen,
        quarantined: seen.quarantined,
        newest_last_used,
        old_last_used: (command == Command::Deactivate)
            .then(|| last_used.first().map(|(_, u)| u.clone()))
            .flatten(),
        newest_unheld: newest_unheld(&keys, &readings),
        keys,
        freshness,
        now: ctx.clock().now(),
        step_key_id: ctx.step_key.map(|k| k.id.clone()),
        journal,
        has_verify: !user.verify.is_empty(),
        moved: user.moved(),
        lease_tag: tags.lease().is_some_and(|l| l.until <= ctx.clock().now()),
    };
    let plan = decide(command, user, &facts, ctx.opts);
    let stamps: Vec<_> = readings.iter().map(|r| r.stamps).collect();
    let mended = facts.journal.as_ref().and_then(|j| j.mended);
    let splits = state::split_pairs(&facts.keys, &stamps, mended);
    let mut attention = plan::attention(user, &facts, ctx.opts);
    if !splits.is_empty() && attention.is_none() && command == Command::Status {
        attention = Some(split_words(user, &splits));
    }
    Ok(Prepared {
        facts,
        plan,
        scope_keys: BTreeMap::new(),
        last_used,
        readings,
        unread,
        attention,
        splits,
    })
}

/// `GetAccessKeyLastUsed` for every key, where the command needs it: `status` (to report), and
/// `deactivate` of an old key beside a new one or of a moved user's key (the straggler rule).
async fn last_uses<P: Ports>(
    ctx: &Ctx<'_, P>,
    user: &UserSpec,
    command: Command,
    keys: &[KeyInfo],
) -> Result<Vec<(String, LastUse)>, Fault> {
    let wants_last_use = match command {
        Command::Status => true,
        Command::Deactivate => keys.len() == 2 || (user.moved() && !keys.is_empty()),
        _ => false,
    };
    let mut last_used = Vec::new();
    for k in keys.iter().filter(|_| wants_last_use) {
        let used = ctx
            .iam()
            .last_used(&k.id)
            .await
            .map_err(|e| iam_fault(user, "iam:GetAccessKeyLastUsed", e))?;
        last_used.push((k.id.clone(), used));
    }
    Ok(last_used)
}

/// The command's decider.
fn decide(command: Command, user: &UserSpec, facts: &Facts, opts: &plan::Options) -> Plan {
    match command {
        Command::Status => Plan::Nothing(String::new()),
        Command::Rotate => plan::rotate(user, facts, opts),
        Command::Deactivate => plan::deactivate(user, facts, opts),
        Command::Delete => plan::delete(user, facts, opts),
    }
}

fn split_words(user: &UserSpec, splits: &[(usize, String)]) -> String {
    format!(
        "{} hold an id and a secret of different keys (a run stopped between the two writes) and cannot authenticate: the next rotate, deactivate or delete gives them the id that matches",
        splits
            .iter()
            .map(|(i, _)| user.consumers[*i].scope.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Reads, decides, and reads what the plan's writes need: [`plan_user`], then
/// [`read_for_writes`].
pub async fn prepare<P: Ports>(
    ctx: &Ctx<'_, P>,
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
pub async fn read_for_writes<P: Ports>(
    ctx: &Ctx<'_, P>,
    user: &UserSpec,
    prepared: &mut Prepared,
) -> Result<(), Fault> {
    let writes = !prepared.splits.is_empty()
        || matches!(&prepared.plan, Plan::Act { act, .. } if act.writes());
    if !writes {
        return Ok(());
    }
    if prepared.readings.is_empty() {
        prepared.readings = read_stores(ctx, user).await?;
        prepared.facts.freshness = freshness(user, &prepared.readings, prepared.facts.keys.last());
    }
    for (c, reading) in user.consumers.iter().zip(&prepared.readings) {
        fit_for_writes(ctx, c, reading).await?;
    }
    for c in user.consumers.iter().filter(|c| c.scope.is_github()) {
        if !prepared.scope_keys.contains_key(&c.scope) {
            let key = ctx
                .store()
                .public_key(&c.scope)
                .await
                .map_err(|e| store_fault(&c.scope, e))?;
            prepared.scope_keys.insert(c.scope.clone(), key);
        }
    }
    Ok(())
}

/// A store this run may write: the secret half only where the store encrypts it (an SSM
/// SecureString), and a new organization secret readable by whom the manifest says, never by
/// GitHub's default (every private repository of the organization).
async fn fit_for_writes<P: Ports>(
    ctx: &Ctx<'_, P>,
    c: &Consumer,
    reading: &Reading,
) -> Result<(), Fault> {
    ctx.store()
        .fit_for_secret(&c.scope, secret_name(c, super::ledger::Part::Secret))
        .await
        .map_err(|e| store_fault(&c.scope, e))?;
    if let Scope::Organization {
        visibility: None, ..
    } = &c.scope
        && let Some((part, _)) = PARTS
            .iter()
            .zip(reading.stamps)
            .find(|(_, at)| at.is_none())
    {
        return Err(Fault::Invalid(format!(
            "{}: secret {} does not exist yet, and the manifest does not say who may read it: add `visibility: private`, `visibility: selected` or `visibility: all` to its entry (GitHub's default would let every private repository of the organization read the key)",
            c.scope,
            secret_name(c, *part)
        )));
    }
    Ok(())
}

/// A `creating` or `rolled-back` journal beside two keys: the newer key's last use decides
/// whether it is one nobody holds (CONTRACT §12a). Read once: from `last_used` when there.
async fn newest_last_used<P: Ports>(
    ctx: &Ctx<'_, P>,
    user: &UserSpec,
    keys: &[KeyInfo],
    journal: Option<&crate::rotation::journal::Journal>,
    last_used: &[(String, LastUse)],
) -> Result<Option<LastUse>, Fault> {
    let ([_, new], Some(j)) = (keys, journal) else {
        return Ok(None);
    };
    if !(j.phase == Phase::Creating || (j.phase == Phase::RolledBack && j.key == new.id)) {
        return Ok(None);
    }
    if let Some((_, u)) = last_used.iter().find(|(id, _)| *id == new.id) {
        return Ok(Some(u.clone()));
    }
    ctx.iam()
        .last_used(&new.id)
        .await
        .map(Some)
        .map_err(|e| iam_fault(user, "iam:GetAccessKeyLastUsed", e))
}

/// When each consumer's pair was last written. A readable store that holds another key's id
/// than the newest key's counts as never written since (CONTRACT §12a: what it holds is
/// decided by the value, not by a timestamp a write-back also moves).
fn freshness(user: &UserSpec, readings: &[Reading], newest: Option<&KeyInfo>) -> Vec<Freshness> {
    user.consumers
        .iter()
        .zip(readings)
        .map(|(c, r)| Freshness {
            consumer: c.clone(),
            updated_at: match (r.stamps, r.id_value(), newest) {
                (_, Some(id), Some(new)) if id != new.id => None,
                ([Some(a), Some(b)], _, _) => Some(a.min(b)),
                _ => None,
            },
        })
        .collect()
}

/// Every consumer's store: its two secrets' `updated_at` (a GitHub store in one listing,
/// which also proves it exists), a readable store's two values, and who reads an
/// organization secret.
async fn read_stores<P: Ports>(ctx: &Ctx<'_, P>, user: &UserSpec) -> Result<Vec<Reading>, Fault> {
    let mut readings = Vec::new();
    // One listing per store where it can list (GitHub): it also proves the store exists.
    let mut listed: BTreeMap<Scope, Option<BTreeMap<String, DateTime<Utc>>>> = BTreeMap::new();
    for c in &user.consumers {
        let fault = |e| store_fault(&c.scope, e);
        let mut reading = Reading::default();
        if c.scope.is_github() {
            if !listed.contains_key(&c.scope) {
                let l = ctx.store().stamps(&c.scope).await.map_err(fault)?;
                listed.insert(c.scope.clone(), l);
            }
        } else {
            let mut both = [None, None];
            for (slot, part) in both.iter_mut().zip(PARTS) {
                *slot = ctx
                    .store()
                    .read(&c.scope, secret_name(c, part))
                    .await
                    .map_err(fault)?;
            }
            reading.old = Some(both);
        }
        for (slot, part) in reading.stamps.iter_mut().zip(PARTS) {
            let name = secret_name(c, part);
            *slot = match listed.get(&c.scope) {
                Some(Some(list)) => list.get(&name.to_ascii_uppercase()).copied(),
                _ => ctx
                    .store()
                    .updated_at(&c.scope, name)
                    .await
                    .map_err(fault)?,
            };
        }
        // Who reads it, where the store says: reported, never changed.
        if reading.stamps[0].is_some() {
            reading.access = ctx
                .store()
                .access(&c.scope, secret_name(c, super::ledger::Part::Id))
                .await
                .map_err(fault)?;
        }
        warn_if_everyone_reads(ctx, c, reading.access.as_deref());
        readings.push(reading);
    }
    Ok(readings)
}

fn warn_if_everyone_reads<P: Ports>(ctx: &Ctx<'_, P>, c: &Consumer, access: Option<&str>) {
    let visibility_all = matches!(
        &c.scope,
        Scope::Organization {
            visibility: Some(Visibility::All),
            ..
        }
    );
    if access == Some("all repositories") || (access.is_none() && visibility_all) {
        ctx.events.warn(&format!(
            "{}: every repository of the organization can read this key (visibility all): narrow it to `selected` where you can",
            c.scope
        ));
    }
}

/// Whether the newest Active key is at least max-age-days old (or there is none).
pub fn is_due(user: &UserSpec, facts: &Facts) -> bool {
    let old_enough =
        |k: &KeyInfo| state::age_days(k.created, facts.now) >= i64::from(user.max_age_days);
    // An exposed key that still works is due at once, whatever its age (CONTRACT §17).
    if !facts.exposed_active().is_empty() {
        return true;
    }
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
fn newest_unheld(keys: &[KeyInfo], readings: &[Reading]) -> bool {
    let [_, new] = keys else { return false };
    !readings.is_empty()
        && readings
            .iter()
            .flat_map(|r| r.stamps)
            .flatten()
            .all(|t| t < new.created - state::clock_slack())
        && readings
            .iter()
            .filter_map(Reading::id_value)
            .all(|v| v != new.id)
}

/// GitHub writes a prepared plan makes when nothing fails: two per consumer written, one per
/// verification dispatched (a user is rotated entirely or not started).
pub fn writes_needed(prepared: &Prepared) -> usize {
    match &prepared.plan {
        Plan::Act { act, .. } => {
            2 * act.written().iter().filter(|c| c.scope.is_github()).count()
                + act.verifications().len()
        }
        _ => 0,
    }
}

/// A user left for the next run: what would have been done, and why not now.
pub fn defer(user: &UserSpec, prepared: &Prepared, why: String) -> UserReport {
    let mut report = UserReport::new(user, Outcome::Deferred(why));
    report.keys.state = Some(prepared.facts.reported_state());
    report.keys.due = is_due(user, &prepared.facts);
    report.keys.list = prepared.facts.keys.clone();
    report.attention = prepared.attention.clone();
    report
}
