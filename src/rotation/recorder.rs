//! The journal as this run keeps it (CONTRACT §5): every phase of a rotation recorded on the
//! IAM user, tried a few times (a tag written again is harmless), and read back when a write's
//! answer was lost, so the next re-check compares with what is really there.

use super::context::{Scene, retry};
use super::journal::{JOURNAL_TAG, Journal, Phase};
use super::lease::read_tags_again;
use crate::ports::{Iam, IamError, IamErrorKind, Ports};

#[derive(Debug, Default)]
pub(super) struct Recorder {
    /// The journal as this run last read or wrote it.
    pub journal: Option<Journal>,
    /// The rotation id chosen for a key: `(key id, rotation id)`.
    rotation: Option<(String, String)>,
}

impl Recorder {
    pub fn new(journal: Option<Journal>) -> Self {
        Self {
            journal,
            rotation: None,
        }
    }

    /// The id of the rotation of `key_id`: the journal's, when it is about that key (a repair
    /// continues it), else `{key id}-{unix time}`, fixed once chosen. It always names its key
    /// (a journal whose rotation id does not is a forgery, CONTRACT §12).
    pub fn rotation_id<P: Ports>(&mut self, s: Scene<'_, '_, P>, key_id: &str) -> String {
        if let Some((key, id)) = &self.rotation
            && key == key_id
        {
            return id.clone();
        }
        let id = self
            .journal
            .as_ref()
            .filter(|j| j.key == key_id)
            .map_or_else(
                || format!("{key_id}-{}", s.now().timestamp()),
                |j| j.rotation.clone(),
            );
        self.rotation = Some((key_id.to_owned(), id.clone()));
        id
    }

    /// Moves the journal of `key_id` (the new key) on to `phase`, now.
    pub async fn record<P: Ports>(
        &mut self,
        s: Scene<'_, '_, P>,
        key_id: Option<&str>,
        phase: Phase,
    ) -> Result<(), IamError> {
        let now = s.now();
        let j = match &self.journal {
            Some(j) if Some(j.key.as_str()) == key_id => j.moved(phase, now),
            _ => {
                let key_id = key_id.unwrap_or_default();
                Journal::new(phase, key_id, &self.rotation_id(s, key_id), now)
            }
        };
        self.write(s, j).await
    }

    /// TagUser with the journal (idempotent, so tried a few times).
    pub async fn write<P: Ports>(
        &mut self,
        s: Scene<'_, '_, P>,
        j: Journal,
    ) -> Result<(), IamError> {
        if !s.lease_holds(1) {
            return Err(IamError {
                kind: IamErrorKind::Other,
                message: "not sent: this run's lease ends too soon to write the journal".into(),
            });
        }
        let value = j.value();
        match retry(|| s.ctx.iam().set_tag(s.name(), JOURNAL_TAG, &value)).await {
            Ok(()) => {
                self.journal = Some(j);
                Ok(())
            }
            Err(e) => {
                // The write may have landed: read what is there.
                self.read_back(s).await;
                Err(e)
            }
        }
    }

    /// Puts back the journal as it was before this run's intent (`None`: no journal).
    pub async fn put_back<P: Ports>(&mut self, s: Scene<'_, '_, P>, prior: Option<Journal>) {
        match prior {
            Some(j) => {
                let _ = self.write(s, j).await;
            }
            None => self.forget(s).await,
        }
    }

    /// Removes the journal (the rotation is over, or never was).
    pub async fn forget<P: Ports>(&mut self, s: Scene<'_, '_, P>) {
        if self.journal.is_none() {
            return;
        }
        match retry(|| s.ctx.iam().remove_tag(s.name(), JOURNAL_TAG)).await {
            Ok(()) => self.journal = None,
            Err(_) => self.read_back(s).await,
        }
    }

    async fn read_back<P: Ports>(&mut self, s: Scene<'_, '_, P>) {
        if let Ok(t) = read_tags_again(s).await {
            self.journal = t.journal().cloned();
        }
    }
}
