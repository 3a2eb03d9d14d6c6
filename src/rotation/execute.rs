//! Carries out a prepared plan (CONTRACT §4, §5): the lease first, a re-read before every
//! destructive step, the journal at every phase, no blind resends, and compensation when a
//! step fails. Reads the world only through the ports and speaks only through `Events`.
//!
//! [`Rotation`] composes the parts, each in its own room: the [`LeaseGuard`], the
//! [`Recorder`] (the journal), the [`KeyRing`] (the keys), the [`Writer`] (every secret write
//! and what each consumer holds); the compensation is in `compensate.rs`.

use secrecy::SecretString;

use super::answer;
use super::before;
use super::context::{Ctx, Scene};
use super::exposure;
use super::journal::{Exposure, Phase};
use super::keyring::KeyRing;
use super::lease::{self, LeaseGuard};
use super::ledger::{Held, Part};
use super::outcome::{Command, ConsumerResult, Done, Fault, Halt, Outcome, UserReport};
use super::plan::{Act, Plan, Step};
use super::prepare::{self, Prepared};
use super::recorder::Recorder;
use super::reporting::{conclude, dry_run, first_report};
use super::verify;
use super::writes::{Writer, secret_name};
use crate::manifest::{Consumer, UserSpec, VerifyWorkflow};
use crate::ports::{Clock, Ports, StepKey};

/// Reads, decides and carries out one user's command.
pub async fn run_user<P: Ports>(ctx: &Ctx<'_, P>, user: &UserSpec, command: Command) -> UserReport {
    match prepare::prepare(ctx, user, command).await {
        Ok(p) => execute(ctx, user, command, p).await,
        Err(f) => UserReport::new(user, Outcome::of_fault(f, command)),
    }
}

/// Carries out a prepared plan and reports.
pub async fn execute<P: Ports>(
    ctx: &Ctx<'_, P>,
    user: &UserSpec,
    command: Command,
    prepared: Prepared,
) -> UserReport {
    let facts = &prepared.facts;
    let unread = prepared.unread.is_some();
    let ledger = before::ledger(
        facts,
        user.consumers.len(),
        &prepared.readings,
        &prepared.splits,
        unread,
    );
    let mut report = first_report(ctx, user, &prepared, &ledger);
    let old_values = prepared.readings_old();
    // Split pairs are mended first, whatever the plan (CONTRACT §12): a plan that does nothing
    // or refuses still ends the same way, after the mend.
    let mend = !prepared.splits.is_empty() && command != Command::Status;
    answer::before_acting(ctx, user, command, &prepared, mend).await;
    let (act, old_key, after_mend) = match to_act(prepared.plan, command, mend, prepared.unread) {
        Ok(to_act) => to_act,
        Err(outcome) => {
            if let Some(o) = outcome {
                report.outcome = o;
            }
            return report;
        }
    };
    report.keys.old = old_key.clone();
    if ctx.dry_run {
        return dry_run(user, &prepared.splits, act.as_ref(), report);
    }
    let mut run = Rotation {
        ctx,
        user,
        report,
        lease: LeaseGuard::default(),
        recorder: Recorder::new(prepared.facts.journal.clone()),
        ring: KeyRing::new(prepared.facts.keys.clone(), old_key),
        writer: Writer::new(ledger, prepared.scope_keys, old_values),
        splits: prepared.splits,
        sighting: prepared.facts.first_sighting(),
    };
    // An exposed key this run rotated away: deactivated next, in this run (unless revoked first).
    let revoked = matches!(
        &act,
        Some(Act::Rotate {
            revoke: Some(_),
            ..
        })
    );
    let exposed =
        command == Command::Rotate && !revoked && !prepared.facts.exposed_active().is_empty();
    let result = run.act(act.as_ref()).await;
    run.release().await;
    let report = conclude(run.finish(), result, after_mend, command);
    if exposed && report.outcome == Outcome::Rotated {
        return retire_at_once(ctx, user, report).await;
    }
    report
}

/// The act a plan asks of this run, the old key it concerns, and, after a mend, the outcome it
/// ends with.
type ToAct = (Option<Act>, Option<String>, Option<Outcome>);

/// What `plan` asks of this run, or the outcome to report at once (`None`: the report as it
/// stands, a `status` that read everything). A plan that does nothing or refuses still acts
/// when split pairs are to be mended first (CONTRACT §12).
fn to_act(
    plan: Plan,
    command: Command,
    mend: bool,
    unread: Option<Fault>,
) -> Result<ToAct, Option<Outcome>> {
    match plan {
        // What could be read is reported; the run still fails (CONTRACT §7).
        Plan::Nothing(_) if command == Command::Status => {
            Err(unread.map(|f| Outcome::of_fault(f, command)))
        }
        Plan::Nothing(why) if !mend => Err(Some(Outcome::Nothing(why))),
        Plan::Refuse(why) if !mend => Err(Some(Outcome::Refused(why))),
        Plan::Invalid(why) => Err(Some(Outcome::Invalid(why))),
        Plan::Nothing(why) => Ok((None, None, Some(Outcome::Nothing(why)))),
        Plan::Refuse(why) => Ok((None, None, Some(Outcome::Refused(why)))),
        Plan::Act { act, old_key } => Ok((Some(act), old_key, None)),
    }
}

/// An exposed key's user was just rotated: the exposed key is taken out of service in the
/// same run, without a grace period (CONTRACT §17), unless this step is authenticated with
/// it: then the first job that starts with the new key does it (the reusable workflow's
/// `deactivate` job).
async fn retire_at_once<P: Ports>(
    ctx: &Ctx<'_, P>,
    user: &UserSpec,
    mut report: UserReport,
) -> UserReport {
    let second = match prepare::prepare(ctx, user, Command::Deactivate).await {
        Ok(p) => Box::pin(execute(ctx, user, Command::Deactivate, p)).await,
        Err(f) => UserReport::new(user, Outcome::of_fault(f, Command::Deactivate)),
    };
    let old = report.keys.old.clone().unwrap_or_default();
    report
        .notes
        .retain(|n| !n.contains("stays Active until `deactivate` runs"));
    match &second.outcome {
        Outcome::Deactivated => {
            report.keys.list = second.keys.list.clone();
            report.notes.push(format!(
                "the exposed key {old} is Inactive: taken out of service in this run, with no grace period; `delete` removes it after delete-after-days"
            ));
            report.notes.extend(second.notes.iter().cloned());
        }
        Outcome::Refused(why) | Outcome::Nothing(why) => report.notes.push(format!(
            "the exposed key {old} stays Active until the first job that starts with the new key runs deactivate: {why}"
        )),
        other => {
            let why = format!(
                "the exposed key {old} could not be deactivated after the rotation ({other:?}): run deactivate now"
            );
            report.notes.push(why.clone());
            report.attention = Some(why);
        }
    }
    report
}

/// One user's plan being carried out.
pub(super) struct Rotation<'c, 'a, P: Ports> {
    pub ctx: &'c Ctx<'a, P>,
    pub user: &'c UserSpec,
    pub report: UserReport,
    pub lease: LeaseGuard,
    pub recorder: Recorder,
    pub ring: KeyRing,
    pub writer: Writer,
    /// Consumers to mend before anything else, with the key id that makes each whole.
    pub splits: Vec<(usize, String)>,
    /// An exposure this run saw first, to record before it acts (CONTRACT §17).
    pub sighting: Option<Exposure>,
}

impl<'c, 'a, P: Ports> Rotation<'c, 'a, P> {
    pub fn scene(&self) -> Scene<'c, 'a, P> {
        Scene {
            ctx: self.ctx,
            user: self.user,
            lease_until: self.lease.until,
        }
    }

    pub fn name(&self) -> &str {
        &self.user.name
    }

    /// The lease, the re-check and the mends, then the plan's own steps.
    async fn act(&mut self, act: Option<&Act>) -> Result<Done, Halt> {
        self.stop_point("before it changed anything")?;
        let scene = self.scene();
        self.lease.take(scene, &mut self.report.notes).await?;
        self.recheck("before starting").await?;
        self.record_sighting().await;
        self.mend_splits().await?;
        match act {
            None => {}
            Some(Act::Rotate {
                first,
                revoke,
                writes,
                verify,
            }) => {
                if let Some(d) = first {
                    self.delete_step(d).await?;
                }
                if let Some(key_id) = revoke {
                    self.revoke(key_id).await?;
                }
                self.stop_before(&Step::CreateKey)?;
                self.create_key().await?;
                self.stop_before(&Step::ProveNewKey)?;
                let key = self.prove_new_key().await?;
                self.write_and_verify(&key, writes, verify).await?;
                self.settle_revoke().await?;
            }
            Some(Act::Adopt { writes, verify }) => {
                self.stop_before(&Step::AdoptStepKey)?;
                let key = self.adopt_step_key()?;
                self.write_and_verify(&key, writes, verify).await?;
                self.settle_revoke().await?;
            }
            Some(Act::Verify(verify)) => {
                for v in verify {
                    self.stop_before(&Step::DispatchVerification(v.clone()))?;
                }
                self.verify_and_record(verify).await?;
                self.settle_revoke().await?;
            }
            Some(Act::RollBack) => {
                self.stop_before(&Step::RollBack)?;
                return self.roll_back_repair().await;
            }
            Some(Act::Deactivate { key_id }) => self.deactivate(key_id).await?,
            Some(Act::Delete(d)) => self.delete_step(d).await?,
            Some(Act::StartRetirement { key_id }) => return self.start_retirement(key_id).await,
            Some(Act::ClearTags) => {
                self.stop_before(&Step::ClearTags)?;
                let scene = self.scene();
                self.recorder.forget(scene).await;
                return Ok(Done::Noted(format!(
                    "user {} is migrated: the tags a stopped run left are removed",
                    self.user.name
                )));
            }
        }
        Ok(Done::Finished)
    }

    /// Writes `key` into every consumer of `writes`, records it, and verifies it.
    async fn write_and_verify(
        &mut self,
        key: &StepKey,
        writes: &[Consumer],
        verify: &[VerifyWorkflow],
    ) -> Result<(), Halt> {
        for c in writes {
            self.stop_before(&Step::WriteSecrets(c.clone()))?;
            self.write_consumer(key, c).await?;
        }
        for v in verify {
            self.stop_before(&Step::DispatchVerification(v.clone()))?;
        }
        if !writes.is_empty() {
            let phase = if verify.is_empty() {
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
        self.verify_and_record(verify).await
    }

    /// Dispatches the verification workflows, waits for them, and records the proof.
    async fn verify_and_record(&mut self, verify: &[VerifyWorkflow]) -> Result<(), Halt> {
        if verify.is_empty() {
            return Ok(());
        }
        self.stop_point("before it would dispatch the verification workflows")?;
        self.verify(verify).await?;
        if let Err(e) = self.record(Phase::Verified).await {
            return Err(Halt::Failed(format!(
                "the verification succeeded, but recording it on the IAM user failed ({e}): the old key stays Active; run rotate with force to verify again and record it"
            )));
        }
        Ok(())
    }

    pub(super) fn stop_before(&self, step: &Step) -> Result<(), Halt> {
        self.stop_point(&format!("before it would {step}"))
    }

    /// Where a requested stop takes effect: between steps, never inside one (a consumer's pair
    /// is written whole, or not at all).
    fn stop_point(&self, before: &str) -> Result<(), Halt> {
        // A step makes at most a pair of writes: it starts only with room for both.
        if !self.scene().lease_holds(2) {
            return Err(Halt::Failed(format!(
                "stopped {before}: this run's lease on user {} ends at {}, too soon to start another change (each call may take {}); nothing more was changed, and the next run goes on from here",
                self.name(),
                self.lease.until.map_or("?".into(), |t| t
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string()),
                crate::human::duration(self.ctx.lease.call_timeout.to_std().unwrap_or_default())
            )));
        }
        if !self.ctx.stop.requested() {
            return Ok(());
        }
        let phase = self
            .recorder
            .journal
            .as_ref()
            .map_or("no journal".to_owned(), |j| format!("journal {}", j.phase));
        Err(Halt::Interrupted(format!(
            "stopped by a signal {before} ({phase}); the lease is given back, and the next run goes on from here"
        )))
    }

    /// Records an exposure this run saw first (under its lease, before anything else).
    async fn record_sighting(&mut self) {
        if let Some(e) = self.sighting.take() {
            exposure::record(self.ctx, self.user, &e).await;
        }
    }

    /// Gives every split consumer the id of the key its secret kept (CONTRACT §12): ids are
    /// not secret, and both keys are Active.
    async fn mend_splits(&mut self) -> Result<(), Halt> {
        // The rotator's own repository last (CONTRACT §12a).
        let order = super::plan::write_order(&self.user.consumers, self.ctx.opts);
        let mut splits = std::mem::take(&mut self.splits);
        splits.sort_by_key(|(i, _)| order.iter().position(|o| o == i));
        let mut mended = false;
        for (i, kept) in splits {
            let scope = self.user.consumers[i].scope.clone();
            let scene = self.scene();
            if let Err(e) = self.writer.write_id(scene, i, &kept).await {
                return Err(Halt::Failed(format!(
                    "{scope} holds an id and a secret of different keys and cannot authenticate; writing the id {kept} failed ({e}): run again"
                )));
            }
            self.report.consumers[i].result = ConsumerResult::Mended(kept.clone());
            self.ctx.events.warn(&format!(
                "{scope} held an id and a secret of different keys (a run stopped between the two writes): its id is {kept} again, and it works"
            ));
            mended = true;
        }
        // Recorded, so that the pairs, their ids now written after their secrets, no longer
        // read as split (CONTRACT §12a). Without a journal (an older release's) nothing records
        // it, and a later run mends again: harmless.
        if mended && let Some(j) = self.recorder.journal.clone() {
            let scene = self.scene();
            if let Err(e) = self.recorder.write(scene, j.mended_at(scene.now())).await {
                self.ctx
                    .events
                    .warn(&format!("could not record the mend on the IAM user: {e}"));
            }
        }
        Ok(())
    }

    /// Gives the lease back, if it is still this run's.
    async fn release(&mut self) {
        if let Err(note) = self.lease.release(self.scene()).await {
            self.ctx.events.warn(&note);
            self.report.notes.push(note);
        }
    }

    /// Reads the keys, the journal and the lease again: if anything moved since this run last
    /// looked (or left them), stop.
    pub async fn recheck(&mut self, before: &str) -> Result<(), Halt> {
        lease::moved(
            self.scene(),
            &self.ring.keys,
            self.recorder.journal.as_ref(),
        )
        .await
        .map_err(|m| {
            Halt::Refused(format!(
                "stopped {before}: {m}. Nothing more was changed; run status"
            ))
        })
    }

    /// Moves the journal of the new key on to `phase` (now).
    pub async fn record(&mut self, phase: Phase) -> Result<(), crate::ports::IamError> {
        let key_id = self.ring.new_id();
        let scene = self.scene();
        self.recorder.record(scene, key_id.as_deref(), phase).await
    }

    /// Both secrets of consumer `c`, id first: a failure is compensated.
    async fn write_consumer(&mut self, key: &StepKey, c: &Consumer) -> Result<(), Halt> {
        let Some(index) = self.user.consumers.iter().position(|x| x == c) else {
            return Err(Halt::Failed(format!("{} is not in the manifest", c.scope)));
        };
        if c.scope.whole_pair() {
            let scene = self.scene();
            if let Err(e) = self.writer.write_pair(scene, index, key, true).await {
                self.report.consumers[index].result = ConsumerResult::WriteFailed(e.to_string());
                let why = format!("writing {} failed: {e}", c.scope);
                return Err(self.compensate(why).await);
            }
        } else {
            let values = [
                (Part::Id, SecretString::from(key.id.clone())),
                (Part::Secret, key.secret.clone()),
            ];
            for (part, value) in values {
                let scene = self.scene();
                if let Err(e) = self
                    .writer
                    .write(scene, index, part, &key.id, &value, true)
                    .await
                {
                    self.report.consumers[index].result =
                        ConsumerResult::WriteFailed(e.to_string());
                    let why = format!(
                        "writing {} in {} failed: {e}",
                        secret_name(c, part),
                        c.scope
                    );
                    return Err(self.compensate(why).await);
                }
            }
        }
        self.report.consumers[index].result = ConsumerResult::Updated;
        self.ctx.events.info(&format!(
            "wrote {} and {} in {}",
            c.secrets.access_key_id, c.secrets.secret_access_key, c.scope
        ));
        Ok(())
    }

    /// Dispatches the verification workflows and waits for them; a failure is compensated.
    async fn verify(&mut self, entries: &[VerifyWorkflow]) -> Result<(), Halt> {
        let ctx = self.ctx;
        let scene = self.scene();
        let Some(key_id) = self.ring.new_id() else {
            return Err(Halt::Failed("there is no new key to verify".into()));
        };
        let rotation_id = self.recorder.rotation_id(scene, &key_id);
        // The wait ends inside the lease, with room to record its result (CONTRACT §12).
        let mut settings = ctx.verify.clone();
        if let Some(until) = self.lease.until {
            let left = until - ctx.clock().now() - ctx.lease.call_timeout * 4;
            settings.timeout = settings.timeout.min(left.to_std().unwrap_or_default());
        }
        let results = verify::verify_all(
            ctx.workflows(),
            ctx.clock(),
            ctx.events,
            entries,
            &key_id,
            &format!("{rotation_id}-{}", scene.now().timestamp()),
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

    /// The report, with the keys and what every consumer holds now.
    fn finish(self) -> UserReport {
        let mut report = self.report;
        report.keys.journal = self.recorder.journal;
        report.keys.list = self.ring.keys;
        report.keys.new = self.ring.new.as_ref().map(|k| k.id.clone());
        let deleted = &self.ring.deleted;
        for (i, c) in self.user.consumers.iter().enumerate() {
            let held = self.writer.ledger.held(i);
            let names = (
                c.secrets.access_key_id.as_str(),
                c.secrets.secret_access_key.as_str(),
            );
            let text = held.describe(names, &|k| deleted.iter().any(|d| d == k));
            let r = &mut report.consumers[i];
            r.holds = match &held {
                Held::Nothing => None,
                _ => Some(text),
            };
            r.held = held;
        }
        report
    }
}
