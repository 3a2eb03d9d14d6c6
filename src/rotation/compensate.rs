//! Compensation (CONTRACT §5): something failed after the new key existed. Put back what is
//! known, keep every key someone may hold, record where the rotation stands, and say who holds
//! what. Also the repair that writes the old key back everywhere (`rotate --force` run with it).

use super::execute::Rotation;
use super::journal::Phase;
use super::ledger::Held;
use super::outcome::{ConsumerResult, Done, Halt};
use super::plan;
use crate::ports::{Ports, StepKey};

impl<P: Ports> Rotation<'_, '_, P> {
    /// The step's own credentials, when they are the old key: the old values, known.
    fn step_is_old(&self) -> Option<StepKey> {
        match (&self.ring.old, self.ctx.step_key) {
            (Some(old), Some(step)) if &step.id == old => Some(step.clone()),
            _ => None,
        }
    }

    /// What consumer `i` held before, when it is known: a readable (AWS) store's own values,
    /// else, for a GitHub store, the step's credentials when they are the old key.
    fn old_pair(&self, i: usize) -> Option<StepKey> {
        if self.user.consumers[i].scope.is_readable() {
            return self.writer.old_pair(i);
        }
        self.step_is_old()
    }

    /// Something failed after the new key existed: put back what is known, keep every key
    /// someone may hold, record where the rotation stands, and say who holds what.
    pub(super) async fn compensate(&mut self, mut why: String) -> Halt {
        let scene = self.scene();
        self.writer.settle_all(scene).await;
        let Some(new_id) = self.ring.new.as_ref().map(|k| k.id.clone()) else {
            return Halt::Failed(self.with_deleted_note(why));
        };
        if self.ring.created_here && !self.writer.ledger.new_key_went_out() {
            // No secret ever carried it: nobody can hold it.
            match self.ring.delete(scene, &new_id).await {
                Ok(()) => {
                    why.push_str(&format!(
                        "; no secret had been written, so the new key {new_id} was deleted"
                    ));
                    self.recorder.forget(scene).await;
                }
                Err(e) => why.push_str(&format!(
                    "; no secret had been written, but deleting the new key {new_id} failed ({e}): delete it by hand"
                )),
            }
            return Halt::Failed(self.with_deleted_note(why));
        }
        // Before putting anything back: the keys and the journal must be as this run left them
        // (a deactivate started meanwhile would make the old key a broken one to restore).
        let moved =
            super::lease::moved(scene, &self.ring.keys, self.recorder.journal.as_ref()).await;
        // The intent first (CONTRACT §12a): a write-back cut short must be finished by a later
        // run, never taken for a rotation whose verification is still to come.
        let mut put_back = moved.is_ok();
        if put_back && let Err(e) = self.record(Phase::RollingBack).await {
            why.push_str(&format!(
                "; recording the rollback's start failed ({e}), so nothing was put back"
            ));
            put_back = false;
        }
        match &moved {
            Err(m) => why.push_str(&format!("; nothing was put back: {m}")),
            Ok(()) if put_back => self.put_back(&why).await,
            Ok(()) => {}
        }
        self.writer.settle_all(scene).await;
        let old_id = self.ring.old.clone();
        match &old_id {
            Some(old) if put_back && self.writer.ledger.all_hold(old) => {
                let free_at = scene.now() + plan::job_lifetime();
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
                self.recorder.forget(scene).await;
                why.push_str(&format!(
                    "; the new key {new_id} stays (consumers hold it): fix the cause and run rotate with force to reach the rest"
                ));
            }
        }
        Halt::Failed(self.with_deleted_note(why))
    }

    /// Puts the old key back in every consumer that changed, where its values are known; where
    /// only the old id is known (it is not secret), a consumer whose id changed while its
    /// secret did not gets the old id back, a whole pair again.
    async fn put_back(&mut self, why: &str) {
        let scene = self.scene();
        let consumers = self.user.consumers.len();
        if (0..consumers).any(|i| self.old_pair(i).is_some()) {
            self.ctx.events.warn(&format!(
                "{why}; putting the old values back in every consumer that changed, where they are known"
            ));
        }
        // The rotator's own repository last here too (CONTRACT §12a): a write-back cut short
        // must not leave the next job a pair it cannot authenticate with.
        for i in plan::write_order(&self.user.consumers, self.ctx.opts) {
            match self.old_pair(i) {
                Some(old) => {
                    if self.writer.ledger.held(i) == Held::Key(old.id.clone()) {
                        continue;
                    }
                    match self.writer.restore(scene, i, &old).await {
                        Ok(()) => self.report.consumers[i].result = ConsumerResult::Restored,
                        Err(e) => self.ctx.events.warn(&format!(
                            "could not restore {}: {e}",
                            self.user.consumers[i].scope
                        )),
                    }
                }
                None => {
                    let Some(old) = self.ring.old.clone() else {
                        continue;
                    };
                    if !self.writer.ledger.id_split_from(i, &old) {
                        continue;
                    }
                    if self.writer.write_id(scene, i, &old).await.is_ok() {
                        self.report.consumers[i].result = ConsumerResult::Restored;
                    }
                }
            }
        }
    }

    fn with_deleted_note(&self, mut why: String) -> String {
        let holds_deleted = self
            .ring
            .deleted
            .iter()
            .any(|d| self.writer.ledger.may_hold(d));
        if holds_deleted {
            why.push_str(
                "; some consumers hold a deleted key (see the report) and need rotate with force",
            );
        }
        why
    }

    /// `rotate --force` with the old key as credentials: write it back everywhere.
    pub(super) async fn roll_back_repair(&mut self) -> Result<Done, Halt> {
        let Some(old) = self.step_is_old() else {
            return Err(Halt::Failed(
                "this repair needs the step's own credentials to be the old key".into(),
            ));
        };
        let scene = self.scene();
        let new_id = self.ring.new_id().unwrap_or_default();
        if let Err(e) = self.record(Phase::RollingBack).await {
            return Err(Halt::Failed(format!(
                "could not record the rollback's start on the IAM user ({e}); nothing was put back: run rotate again"
            )));
        }
        // Every store gets the old key, readable ones too: what they held when this run
        // started is the incomplete rotation's doing, not the old values.
        for i in plan::write_order(&self.user.consumers, self.ctx.opts) {
            self.report.consumers[i].result = match self.writer.restore(scene, i, &old).await {
                Ok(()) => ConsumerResult::Restored,
                Err(e) => ConsumerResult::RestoreFailed(e.to_string()),
            };
        }
        self.writer.settle_all(scene).await;
        if !self.writer.ledger.all_hold(&old.id) {
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
        let free_at = scene.now() + plan::job_lifetime();
        Ok(Done::Rolled(format!(
            "every consumer holds the old key {} again; the new key {new_id} is deleted by the next rotate from {} on",
            old.id,
            free_at.format("%Y-%m-%d %H:%M UTC")
        )))
    }
}
