//! The steps of a plan that change a user's keys (CONTRACT §5, §12, §17): deleting,
//! recording a retirement, deactivating, revoking an exposed key, creating and proving the new
//! key, adopting the step's own. Each re-reads what it is about to change and records the
//! journal before the change that needs it.

use super::execute::Rotation;
use super::journal::{Journal, Phase};
use super::outcome::{Done, Halt};
use super::plan::{Deletion, Step};
use crate::exit::RUN_AGAIN;
use crate::ports::{Iam, IamErrorKind, NewKey, Ports, StepKey};

impl<'c, 'a, P: Ports> Rotation<'c, 'a, P> {
    pub(super) async fn delete_step(&mut self, d: &Deletion) -> Result<(), Halt> {
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
    pub(super) async fn start_retirement(&mut self, key_id: &str) -> Result<Done, Halt> {
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
                "could not record on IAM user {} that every consumer assumes the role ({e}). {RUN_AGAIN}",
                self.user.name
            )));
        }
        Ok(Done::Noted(format!(
            "every consumer assumes the role: no new key; key {key_id} is retired by deactivate and delete after their grace periods (recorded now)"
        )))
    }

    pub(super) async fn deactivate(&mut self, key_id: &str) -> Result<(), Halt> {
        self.stop_before(&Step::Deactivate {
            key_id: key_id.to_owned(),
        })?;
        self.recheck(&format!("before deactivating key {key_id}"))
            .await?;
        let name = self.user.name.clone();
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
                "could not record the deactivation on IAM user {name} ({e}). {RUN_AGAIN}"
            )));
        }
        if let Err(e) = self.set_inactive_settled(key_id).await {
            // Back to when it was verified (or the retirement recorded), so the grace period
            // is not restarted; through the recorder, which then knows it too.
            if verified.is_some() {
                let scene = self.scene();
                self.recorder.put_back(scene, verified).await;
            }
            return Err(Halt::Failed(format!(
                "could not deactivate key {key_id}: {e}. It stays Active; run again"
            )));
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
    pub(super) async fn revoke(&mut self, key_id: &str) -> Result<(), Halt> {
        self.stop_before(&Step::Deactivate {
            key_id: key_id.to_owned(),
        })?;
        self.recheck(&format!("before revoking key {key_id}"))
            .await?;
        if let Err(e) = self.set_inactive_settled(key_id).await {
            return Err(Halt::Failed(format!(
                "could not deactivate the exposed key {key_id} (on-exposure: revoke): {e}. It stays Active and nothing else was changed; run again"
            )));
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
    pub(super) async fn settle_revoke(&mut self) -> Result<(), Halt> {
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
    pub(super) async fn create_key(&mut self) -> Result<(), Halt> {
        let name = self.user.name.clone();
        let scene = self.scene();
        let prior = self.recorder.journal.clone();
        let intent = Journal::creating(&self.ctx.lease.run_id, scene.now());
        if let Err(e) = self.recorder.write(scene, intent).await {
            return Err(Halt::Failed(format!(
                "could not record the rotation's start on IAM user {name} ({e}). {RUN_AGAIN}"
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
    pub(super) async fn create_failed(
        &mut self,
        e: crate::ports::IamError,
        before: &[String],
    ) -> Halt {
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
    pub(super) fn adopt_step_key(&mut self) -> Result<StepKey, Halt> {
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
    pub(super) async fn prove_new_key(&mut self) -> Result<StepKey, Halt> {
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

    /// UpdateAccessKey to Inactive; an error whose call took effect anyway (a lost answer) is
    /// settled by listing the keys: `Err` only while the key is still Active.
    async fn set_inactive_settled(&self, key_id: &str) -> Result<(), crate::ports::IamError> {
        let (iam, name) = (self.ctx.iam(), self.user.name.as_str());
        let Err(e) = iam.set_inactive(name, key_id).await else {
            return Ok(());
        };
        let now_inactive = matches!(
            iam.list_keys(name).await,
            Ok(keys) if keys.iter().any(|k| k.id == key_id && k.status == crate::model::KeyStatus::Inactive)
        );
        if now_inactive { Ok(()) } else { Err(e) }
    }
}
