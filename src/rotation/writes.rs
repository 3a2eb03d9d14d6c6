//! The writer: every secret write of a run, with what it knows to make them safe (CONTRACT §5,
//! §12). It owns the [`Ledger`] (what each secret holds), when it last sent each secret, the
//! scopes' public keys and the readable stores' old values; it writes, settles a lost answer
//! against the secret's `updated_at`, and restores a consumer's pair as one unit.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::context::{ATTEMPTS, Scene};
use super::ledger::{Holding, Ledger, Part};
use crate::manifest::{Consumer, Scope};
use crate::ports::{Clock, Ports, SecretStore, StepKey, StoreError, StoreErrorKind};
use crate::seal::ScopeKey;

/// What a readable store held in a consumer's two secrets before this run.
pub type OldValues = Option<[Option<SecretString>; 2]>;

pub(super) struct Writer {
    pub ledger: Ledger,
    /// Each GitHub scope's public key, read before anything changed.
    scope_keys: BTreeMap<Scope, ScopeKey>,
    /// What each readable store held before (its old values, put back on a rollback).
    old_values: Vec<OldValues>,
    /// When this run last sent each secret (two writes of one secret are a second apart, so
    /// GitHub's whole-second `updated_at` tells them apart).
    last_sent: HashMap<(usize, Part), DateTime<Utc>>,
}

pub fn secret_name(c: &Consumer, part: Part) -> &str {
    match part {
        Part::Id => &c.secrets.access_key_id,
        Part::Secret => &c.secrets.secret_access_key,
    }
}

fn not_sent(message: String) -> StoreError {
    StoreError {
        kind: StoreErrorKind::Unavailable,
        message,
        uncertain: false,
        status: None,
    }
}

impl Writer {
    pub fn new(
        ledger: Ledger,
        scope_keys: BTreeMap<Scope, ScopeKey>,
        old_values: Vec<OldValues>,
    ) -> Self {
        Self {
            ledger,
            scope_keys,
            old_values,
            last_sent: HashMap::new(),
        }
    }

    /// What consumer `i`'s readable store held before this run, when both halves are known.
    pub fn old_pair(&self, i: usize) -> Option<StepKey> {
        match self.old_values.get(i) {
            Some(Some([Some(id), Some(secret)])) => Some(StepKey {
                id: id.expose_secret().to_owned(),
                secret: secret.clone(),
            }),
            _ => None,
        }
    }

    /// Writes one secret of consumer `i`, a second after this run's previous write of it, with
    /// its `updated_at` read first when this run wrote it before (to settle a lost answer).
    pub async fn write<P: Ports>(
        &mut self,
        s: Scene<'_, '_, P>,
        i: usize,
        part: Part,
        key_id: &str,
        value: &SecretString,
        is_new: bool,
    ) -> Result<(), StoreError> {
        let c = &s.user.consumers[i];
        let name = secret_name(c, part);
        if !s.lease_holds(1) {
            return Err(not_sent(format!(
                "not sent: this run's lease ends too soon for another write of {name}"
            )));
        }
        self.pace(s, i, part).await;
        if self.ledger.is_unsettled(i, part) {
            self.settle(s, i, part).await;
        }
        if self.ledger.needs_stamp(i, part)
            && let Ok(at) = s.ctx.store().updated_at(&c.scope, name).await
        {
            self.ledger.stamped(i, part, at);
        }
        self.last_sent.insert((i, part), s.ctx.clock().now());
        let key = self.scope_keys.get(&c.scope);
        let result = s.ctx.store().put(&c.scope, key, name, value).await;
        if result.as_ref().map_or_else(|e| e.uncertain, |()| true) {
            self.ledger.sending(i, part, is_new);
        }
        let result = match result {
            Ok(()) if c.scope.is_readable() => read_back(s, c, name, value).await,
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

    /// Waits until a second has passed since this run's last write of the same secret and,
    /// for an id, of its secret: a pair cut between its halves then shows as an id newer than
    /// its secret (whole seconds), which the next run mends ([`super::state::split_pairs`]).
    async fn pace<P: Ports>(&self, s: Scene<'_, '_, P>, i: usize, part: Part) {
        let after_secret = (part == Part::Id).then_some((i, Part::Secret));
        let prev = [Some((i, part)), after_secret]
            .into_iter()
            .flatten()
            .filter_map(|slot| self.last_sent.get(&slot))
            .max();
        if let Some(prev) = prev {
            let gap = s.ctx.clock().now() - *prev;
            if gap < chrono::Duration::seconds(1) {
                let wait = (chrono::Duration::seconds(1) - gap)
                    .to_std()
                    .unwrap_or_default();
                s.ctx.clock().sleep(wait).await;
            }
        }
    }

    /// Writes consumer `i`'s pair as one, in a store that holds it together
    /// ([`Scope::whole_pair`]): one write, so the pair can never be split; then read back.
    pub async fn write_pair<P: Ports>(
        &mut self,
        s: Scene<'_, '_, P>,
        i: usize,
        key: &StepKey,
        is_new: bool,
    ) -> Result<(), StoreError> {
        let c = &s.user.consumers[i];
        let names = [secret_name(c, Part::Id), secret_name(c, Part::Secret)];
        // Room for the settling reads and a check-and-set write tried twice (read, write).
        if !s.lease_holds(4) {
            return Err(not_sent(format!(
                "not sent: this run's lease ends too soon for another write of {}",
                c.scope
            )));
        }
        for part in [Part::Id, Part::Secret] {
            if self.ledger.is_unsettled(i, part) {
                self.settle(s, i, part).await;
            }
            if self.ledger.needs_stamp(i, part)
                && let Ok(at) = s
                    .ctx
                    .store()
                    .updated_at(&c.scope, secret_name(c, part))
                    .await
            {
                self.ledger.stamped(i, part, at);
            }
            self.last_sent.insert((i, part), s.ctx.clock().now());
        }
        let id = SecretString::from(key.id.clone());
        let result = s
            .ctx
            .store()
            .put_pair(&c.scope, names, [&id, &key.secret])
            .await;
        if result.as_ref().map_or_else(|e| e.uncertain, |()| true) {
            self.ledger.sending(i, Part::Id, is_new);
            self.ledger.sending(i, Part::Secret, is_new);
        }
        let result = match result {
            Ok(()) => match read_back(s, c, names[0], &id).await {
                Ok(()) => read_back(s, c, names[1], &key.secret).await,
                e => e,
            },
            e => e,
        };
        for part in [Part::Id, Part::Secret] {
            match &result {
                Ok(()) => self.ledger.wrote(i, part, &key.id),
                Err(e) => self.ledger.write_failed(i, part, &key.id, e.uncertain),
            }
        }
        result
    }

    /// A write that repairs: tried a few times (the same value again is harmless).
    pub async fn write_again<P: Ports>(
        &mut self,
        s: Scene<'_, '_, P>,
        i: usize,
        part: Part,
        key_id: &str,
        value: &SecretString,
    ) -> Result<(), StoreError> {
        let mut attempt = 1;
        loop {
            match self.write(s, i, part, key_id, value, false).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= ATTEMPTS => return Err(e),
                Err(_) => attempt += 1,
            }
        }
    }

    /// Writes the id `key_id` into consumer `i` (ids are not secret), tried a few times.
    pub async fn write_id<P: Ports>(
        &mut self,
        s: Scene<'_, '_, P>,
        i: usize,
        key_id: &str,
    ) -> Result<(), StoreError> {
        let value = SecretString::from(key_id.to_owned());
        self.write_again(s, i, Part::Id, key_id, &value).await
    }

    /// Settles a write whose answer was lost against the secret's `updated_at`; in a store
    /// that keeps the pair together, by the key id it holds now (its version's time moves with
    /// any writer's change).
    pub async fn settle<P: Ports>(&mut self, s: Scene<'_, '_, P>, i: usize, part: Part) {
        let c = &s.user.consumers[i];
        if c.scope.whole_pair() {
            if let Ok(id) = s.ctx.store().read(&c.scope, secret_name(c, Part::Id)).await {
                let id = id.map(|v| v.expose_secret().to_owned());
                self.ledger.settle_by_value(i, part, id.as_deref());
            }
            return;
        }
        if let Ok(at) = s
            .ctx
            .store()
            .updated_at(&c.scope, secret_name(c, part))
            .await
        {
            self.ledger.settle(i, part, at);
        }
    }

    pub async fn settle_all<P: Ports>(&mut self, s: Scene<'_, '_, P>) {
        for (i, part) in self.ledger.unsettled() {
            self.settle(s, i, part).await;
        }
    }

    /// Puts consumer `i` back on `old` (id first, then secret). If the secret fails after the
    /// id was written, the id goes back to what the secret still holds, so the pair stays whole.
    pub async fn restore<P: Ports>(
        &mut self,
        s: Scene<'_, '_, P>,
        i: usize,
        old: &StepKey,
    ) -> Result<(), StoreError> {
        if s.user.consumers[i].scope.whole_pair() {
            if self.ledger.parts_not_holding(i, &old.id).is_empty() {
                return Ok(());
            }
            let mut attempt = 1;
            loop {
                match self.write_pair(s, i, old, false).await {
                    Ok(()) => return Ok(()),
                    Err(e) if attempt >= ATTEMPTS => return Err(e),
                    Err(_) => attempt += 1,
                }
            }
        }
        for part in self.ledger.parts_not_holding(i, &old.id) {
            let value = match part {
                Part::Id => SecretString::from(old.id.clone()),
                Part::Secret => old.secret.clone(),
            };
            if let Err(e) = self.write_again(s, i, part, &old.id, &value).await {
                // A pair is one unit: settle what the failed half left, then complete the pair
                // or put its other half back to match (CONTRACT §12).
                self.settle(s, i, part).await;
                if part == Part::Id && *self.ledger.holds(i, Part::Id) == Holding::key(&old.id) {
                    // The id landed although no answer said so: the secret completes the pair.
                    continue;
                }
                if let Holding::Key(Some(id)) = self.ledger.holds(i, Part::Secret).clone()
                    && *self.ledger.holds(i, Part::Id) != Holding::key(&id)
                {
                    let _ = self.write_id(s, i, &id).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

/// A readable store is read back after a write: what it holds now is what the report says.
async fn read_back<P: Ports>(
    s: Scene<'_, '_, P>,
    c: &Consumer,
    name: &str,
    value: &SecretString,
) -> Result<(), StoreError> {
    match s.ctx.store().read(&c.scope, name).await {
        Ok(Some(v)) if v.expose_secret() == value.expose_secret() => Ok(()),
        Ok(_) => Err(StoreError {
            kind: StoreErrorKind::Unavailable,
            message: format!(
                "{name} of {} read back something other than what was written (another writer?)",
                c.scope
            ),
            uncertain: true,
            status: None,
        }),
        // The write was acknowledged; a failed read-back does not undo it.
        Err(_) => Ok(()),
    }
}
