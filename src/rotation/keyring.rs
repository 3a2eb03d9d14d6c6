//! The user's keys as this run last saw or left them: the one place they are kept (the report
//! takes them at the end), with the calls that change them and never resend.

use super::context::Scene;
use super::state::{KeyInfo, KeyStatus};
use crate::ports::{Iam, IamError, IamErrorKind, NewKey, Ports, StepKey};

#[derive(Debug, Default)]
pub(super) struct KeyRing {
    /// Oldest first.
    pub keys: Vec<KeyInfo>,
    /// The key consumers held before this rotation (the plan's `old_key`).
    pub old: Option<String>,
    /// The rotation's new key, once created or adopted.
    pub new: Option<NewKey>,
    /// This run created the new key (a repair works with one made earlier).
    pub created_here: bool,
    /// Keys this run deleted.
    pub deleted: Vec<String>,
}

impl KeyRing {
    pub fn new(keys: Vec<KeyInfo>, old: Option<String>) -> Self {
        Self {
            keys,
            old,
            ..Self::default()
        }
    }

    /// The new key's id: the one this run holds, else (a verification-only repair, which
    /// never sees its secret) the newer of two keys.
    pub fn new_id(&self) -> Option<String> {
        self.new
            .as_ref()
            .map(|k| k.id.clone())
            .or_else(|| match self.keys.as_slice() {
                [_, new] => Some(new.id.clone()),
                _ => None,
            })
    }

    /// The new key as a pair to write.
    pub fn new_pair(&self) -> Option<StepKey> {
        self.new.as_ref().map(|k| StepKey {
            id: k.id.clone(),
            secret: k.secret.clone(),
        })
    }

    /// A key this run made or adopted joins the ring.
    pub fn adopt(&mut self, key: NewKey, created_here: bool) {
        if created_here {
            self.keys.push(KeyInfo {
                id: key.id.clone(),
                status: KeyStatus::Active,
                created: key.created,
            });
        }
        self.new = Some(key);
        self.created_here = created_here;
    }

    pub fn set_inactive(&mut self, key_id: &str) {
        for k in self.keys.iter_mut().filter(|k| k.id == key_id) {
            k.status = KeyStatus::Inactive;
        }
    }

    /// DeleteAccessKey, sent once: NoSuchEntity means it is done (a resent or raced delete);
    /// after any other error the keys are listed to see whether it happened.
    pub async fn delete<P: Ports>(
        &mut self,
        s: Scene<'_, '_, P>,
        key_id: &str,
    ) -> Result<(), String> {
        let iam = s.ctx.iam();
        match iam.delete_key(s.name(), key_id).await {
            Ok(()) => {}
            Err(e) if e.kind == IamErrorKind::NoSuchKey => {}
            Err(e) => match iam.list_keys(s.name()).await {
                Ok(keys) if keys.iter().all(|k| k.id != key_id) => {}
                Ok(_) => return Err(e.to_string()),
                Err(l) => return Err(format!("{e}; listing the keys to check also failed ({l})")),
            },
        }
        self.deleted.push(key_id.to_owned());
        self.keys.retain(|k| k.id != key_id);
        if self.new.as_ref().is_some_and(|k| k.id == key_id) {
            self.new = None;
        }
        Ok(())
    }

    /// The keys that appeared since `before` (a CreateAccessKey whose answer was lost).
    pub async fn appeared<P: Ports>(
        &self,
        s: Scene<'_, '_, P>,
        before: &[String],
    ) -> Result<Vec<String>, IamError> {
        let keys = s.ctx.iam().list_keys(s.name()).await?;
        Ok(keys
            .into_iter()
            .map(|k| k.id)
            .filter(|id| !before.contains(id))
            .collect())
    }
}
