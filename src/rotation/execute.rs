//! Carries out a prepared plan (CONTRACT §4, §5): the lease first, a re-read before every
//! destructive step, the journal at every phase, no blind resends, and compensation when a
//! step fails. Reads the world only through the ports and speaks only through `Events`.
//!
//! [`Rotation`] composes the parts, each in its own room: the [`LeaseGuard`], the
//! [`Recorder`] (the journal), the [`KeyRing`] (the keys), the [`Writer`] (every secret write
//! and what each consumer holds); the compensation is in `compensate.rs`.

use secrecy::SecretString;

use super::before;
use super::context::{Ctx, Scene};
use super::exposure;
use super::journal::{Exposure, Journal, Phase};
use super::keyring::KeyRing;
use super::lease::{self, LeaseGuard};
use super::ledger::{Held, Part};
use super::outcome::{Command, ConsumerResult, Done, Halt, Outcome, UserReport};
use super::plan::{Act, Deletion, Plan, Step};
use super::prepare::{self, Prepared};
use super::recorder::Recorder;
use super::reporting::{conclude, dry_run, first_report};
use super::verify;
use super::writes::{Writer, secret_name};
use crate::manifest::{Consumer, UserSpec, VerifyWorkflow};
use crate::ports::{Clock, Iam, IamErrorKind, NewKey, Ports, StepKey};

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
    exposure::before_acting(ctx, user, command, &prepared, mend).await;
    let (act, old_key, after_mend) = match prepared.plan {
        Plan::Nothing(_) if command == Command::Status => {
            if let Some(f) = prepared.unread {
                // What could be read is reported; the run still fails (CONTRACT §7).
                report.outcome = Outcome::of_fault(f, command);
            }
            return report;
        }
        Plan::Nothing(why) if !mend => {
            report.outcome = Outcome::Nothing(why);
            return report;
        }
        Plan::Refuse(why) if !mend => {
            report.outcome = Outcome::Refused(why);
            return report;
        }
        Plan::Invalid(why) => {
            report.outcome = Outcome::Invalid(why);
            return report;
        }
        Plan::Nothing(why) => (None, None, Some(Outcome::Nothing(why))),
        Plan::Refuse(why) => (None, None, Some(Outcome::Refused(why))),
        Plan::Act { act, old_key } => (Some(act), old_key, None),
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
        return exposure::retire_at_once(ctx, user, report).await;
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

    fn stop_before(&self, step: &Step) -> Result<(), Halt> {
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

    // ---- the steps ---------------------------------------------------------------------------

    async fn delete_step(&mut self, d: &Deletion) -> Result<(), Halt> {
        let Deletion { key_id, why } = d;
        self.stop_before(&Step::DeleteKey {
            key_id: key_id.clone(),
            why: why.clone(),
        })?;
        self.recheck(&format!("before deleting key {key_id}"))
            .await?;
        let scene = self.scene();
        if let Err(e) = self.ring.delete(scene, key_id).await {
            return Err(self
                .compensate(format!("could not delete key {key_id} ({why}): {e}"))
                .await);
        }
        self.ctx
            .events
            .info(&format!("deleted access key {key_id} ({why})"));
        if self.recorder.journal.as_ref().is_some_and(|j| {
            &j.key == key_id || matches!(j.phase, Phase::Deactivated | Phase::Creating)
        }) {
            self.recorder.forget(scene).await;
        }
        Ok(())
    }

    /// Every consumer assumes the role: the journal records since when, for `key_id`, so the
    /// retirement's grace period and straggler rule count from now (CONTRACT §13).
    async fn start_retirement(&mut self, key_id: &str) -> Result<Done, Halt> {
        self.stop_before(&Step::RecordMoved {
            key_id: key_id.to_owned(),
        })?;
        let scene = self.scene();
        if let Err(e) = self
            .recorder
            .record(scene, Some(key_id), Phase::Moved)
            .await
        {
            return Err(Halt::Failed(format!(
                "could not record on IAM user {} that every consumer assumes the role ({e}). Nothing was changed; run again",
                self.user.name
            )));
        }
        Ok(Done::Noted(format!(
            "every consumer assumes the role: no new key; key {key_id} is retired by deactivate and delete after their grace periods (recorded now)"
        )))
    }

    async fn deactivate(&mut self, key_id: &str) -> Result<(), Halt> {
        self.stop_before(&Step::Deactivate {
            key_id: key_id.to_owned(),
        })?;
        self.recheck(&format!("before deactivating key {key_id}"))
            .await?;
        let name = self.user.name.clone();
        let iam = self.ctx.iam();
        // The journal first: a key made Inactive with no record of when would leave the user a
        // conflict. `deactivated` on two Active keys still reads as pending-deactivation, so a
        // failed attempt is simply tried again.
        let verified = self.recorder.journal.clone();
        // A moved user's only key: the journal is about that key.
        let about = self.ring.new_id().unwrap_or_else(|| key_id.to_owned());
        let scene = self.scene();
        if let Err(e) = self
            .recorder
            .record(scene, Some(&about), Phase::Deactivated)
            .await
        {
            return Err(Halt::Failed(format!(
                "could not record the deactivation on IAM user {name} ({e}). Nothing was changed; run again"
            )));
        }
        if let Err(e) = iam.set_inactive(&name, key_id).await {
            let now_inactive = matches!(
                iam.list_keys(&name).await,
                Ok(keys) if keys.iter().any(|k| k.id == key_id && k.status == crate::model::KeyStatus::Inactive)
            );
            if !now_inactive {
                // Back to when it was verified (or the retirement recorded), so the grace
                // period is not restarted; through the recorder, which then knows it too.
                if verified.is_some() {
                    let scene = self.scene();
                    self.recorder.put_back(scene, verified).await;
                }
                return Err(Halt::Failed(format!(
                    "could not deactivate key {key_id}: {e}. It stays Active; run again"
                )));
            }
        }
        self.ctx
            .events
            .info(&format!("access key {key_id} is now Inactive"));
        self.ring.set_inactive(key_id);
        Ok(())
    }

    /// `on-exposure: revoke` (CONTRACT §17): the exposed key Inactive before the new key is
    /// made. Consumers fail until they hold the new key; the exposure's record (written under
    /// the lease, before this) tells the next run what happened if this one stops.
    async fn revoke(&mut self, key_id: &str) -> Result<(), Halt> {
        self.stop_before(&Step::Deactivate {
            key_id: key_id.to_owned(),
        })?;
        self.recheck(&format!("before revoking key {key_id}"))
            .await?;
        let name = self.user.name.clone();
        let iam = self.ctx.iam();
        if let Err(e) = iam.set_inactive(&name, key_id).await {
            let now_inactive = matches!(
                iam.list_keys(&name).await,
                Ok(keys) if keys.iter().any(|k| k.id == key_id && k.status == crate::model::KeyStatus::Inactive)
            );
            if !now_inactive {
                return Err(Halt::Failed(format!(
                    "could not deactivate the exposed key {key_id} (on-exposure: revoke): {e}. It stays Active and nothing else was changed; run again"
                )));
            }
        }
        self.ring.set_inactive(key_id);
        let note = format!(
            "the exposed key {key_id} is Inactive: revoked before the new key was made (on-exposure: revoke); consumers fail until they hold the new key"
        );
        self.ctx.events.warn(&note);
        self.report.notes.push(note);
        Ok(())
    }

    /// After a revoke, once the new key is proven everywhere: the record says the old key is
    /// Inactive (`deactivated`), so the user reads as an ordinary pending deletion. Nothing to
    /// do when the old key is still Active (no revoke).
    async fn settle_revoke(&mut self) -> Result<(), Halt> {
        let revoked = matches!(
            self.ring.keys.as_slice(),
            [old, _] if old.status == crate::model::KeyStatus::Inactive
        );
        let verified = self
            .recorder
            .journal
            .as_ref()
            .is_some_and(|j| j.phase == Phase::Verified);
        if revoked
            && verified
            && let Err(e) = self.record(Phase::Deactivated).await
        {
            return Err(Halt::Failed(format!(
                "every consumer holds the new key, but recording that the revoked key is Inactive failed ({e}): run rotate again to record it"
            )));
        }
        Ok(())
    }

    /// CreateAccessKey, after recording the intent (CONTRACT §12): a run killed after it
    /// leaves a key whose origin the next run can tell, and delete at once.
    async fn create_key(&mut self) -> Result<(), Halt> {
        let name = self.user.name.clone();
        let scene = self.scene();
        let prior = self.recorder.journal.clone();
        let intent = Journal::creating(&self.ctx.lease.run_id, scene.now());
        if let Err(e) = self.recorder.write(scene, intent).await {
            return Err(Halt::Failed(format!(
                "could not record the rotation's start on IAM user {name} ({e}). Nothing was changed; run again"
            )));
        }
        let before: Vec<String> = self.ring.keys.iter().map(|k| k.id.clone()).collect();
        let key = match self.ctx.iam().create_key(&name).await {
            Ok(k) => k,
            Err(e) => {
                let halt = self.create_failed(e, &before).await;
                // No key of this run exists: the intent is void.
                self.recorder.put_back(scene, prior).await;
                return Err(halt);
            }
        };
        self.ctx.events.mask(&key.secret);
        self.ctx
            .events
            .info(&format!("created access key {} for user {name}", key.id));
        self.recorder.rotation_id(scene, &key.id);
        self.ring.adopt(key, true);
        if let Err(e) = self.record(Phase::Writing).await {
            let why = format!("could not record the rotation on IAM user {name} ({e})");
            return Err(self.compensate(why).await);
        }
        Ok(())
    }

    /// CreateAccessKey failed. It is never resent: list the keys, and delete any key that
    /// appeared, which only this run (holding the lease) can have made and nobody received.
    async fn create_failed(&mut self, e: crate::ports::IamError, before: &[String]) -> Halt {
        let name = self.user.name.clone();
        let what = format!("could not create an access key for user {name}: {e}");
        if matches!(e.kind, IamErrorKind::NoSuchUser | IamErrorKind::Credentials) {
            return Halt::Failed(format!("{what}. Nothing was changed"));
        }
        let scene = self.scene();
        let appeared = match self.ring.appeared(scene, before).await {
            Ok(a) => a,
            Err(l) => {
                return Halt::Failed(format!(
                    "{what}; listing the keys to see whether one was created also failed ({l}): run status, and if it shows a key no journal records, rotate with force"
                ));
            }
        };
        if e.kind == IamErrorKind::LimitExceeded {
            // Sent once: this call created nothing. Someone else did.
            return Halt::Refused(format!(
                "stopped: user {name} got another key ({}) from outside this run while it held the lease. Nothing was changed; run status",
                appeared.join(", ")
            ));
        }
        let mut why = what;
        for id in appeared {
            match self.ring.delete(scene, &id).await {
                Ok(()) => why.push_str(&format!(
                    "; the call had created key {id} although its answer was lost; nobody could hold it, so it was deleted"
                )),
                Err(d) => why.push_str(&format!(
                    "; the call had created key {id} although its answer was lost, and deleting it failed ({d}): delete it by hand (aws iam delete-access-key --user-name {name} --access-key-id {id})"
                )),
            }
        }
        why.push_str(". No secret was written; run again");
        Halt::Failed(why)
    }

    /// Repair with the step's own credentials, the new key: its secret is known again.
    fn adopt_step_key(&mut self) -> Result<StepKey, Halt> {
        let Some(step) = self.ctx.step_key else {
            return Err(Halt::Failed(
                "this repair needs the step's own credentials (the new key), and there are none"
                    .into(),
            ));
        };
        let created = self
            .ring
            .keys
            .last()
            .map_or_else(|| self.scene().now(), |k| k.created);
        self.ring.adopt(
            NewKey {
                id: step.id.clone(),
                secret: step.secret.clone(),
                created,
            },
            false,
        );
        self.recorder.rotation_id(self.scene(), &step.id);
        Ok(step.clone())
    }

    /// STS GetCallerIdentity with the new key: a key that never works is compensated.
    async fn prove_new_key(&mut self) -> Result<StepKey, Halt> {
        let (Some(key), Some(pair)) = (self.ring.new.as_ref(), self.ring.new_pair()) else {
            return Err(Halt::Failed("there is no new key to prove".into()));
        };
        if let Err(e) = self.ctx.iam().prove_key(key).await {
            let why = format!(
                "the new key {} never worked with STS GetCallerIdentity ({e})",
                pair.id
            );
            return Err(self.compensate(why).await);
        }
        self.ctx
            .events
            .info(&format!("STS accepts the new key {}", pair.id));
        Ok(pair)
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
