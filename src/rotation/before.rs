//! What each consumer holds before this run changes anything, as the [`Ledger`] starts from:
//! a readable store's own value, else what the keys, the journal and the stamps imply.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::journal::Phase;
use super::ledger::{Holding, Ledger};
use super::plan::Facts;
use super::prepare::Reading;
use super::state::{KeyInfo, State};

/// The ledger at the start: per consumer, what each secret most likely holds and when it was
/// written. `unread`: the stores could not be read, so nothing is claimed.
pub(super) fn ledger(
    facts: &Facts,
    consumers: usize,
    readings: &[Reading],
    splits: &[(usize, String)],
    unread: bool,
) -> Ledger {
    let mut before: Vec<[(Holding, Option<DateTime<Utc>>); 2]> = (0..consumers)
        .map(|i| {
            let r = readings.get(i);
            let mut guess = if unread {
                [Holding::Unknown, Holding::Unknown]
            } else {
                guess(facts, r.map(|r| &r.stamps))
            };
            // A readable store says what it holds: its id value is the key id.
            if let Some(Reading {
                old: Some([id, _]), ..
            }) = r
            {
                let held = Holding::Key(id.as_ref().map(|v| v.expose_secret().to_owned()));
                guess = [held.clone(), held];
            }
            let at = r.map_or([None, None], |r| r.stamps);
            let [a, b] = guess;
            [(a, at[0]), (b, at[1])]
        })
        .collect();
    if let [old, new] = facts.keys.as_slice() {
        // The stamps say it: the secret kept one key, the id holds the other.
        for (i, kept) in splits {
            let other = if *kept == old.id { &new.id } else { &old.id };
            before[*i][0].0 = Holding::key(other);
            before[*i][1].0 = Holding::key(kept);
        }
    }
    Ledger::new(before)
}

/// What a consumer most likely holds before this run, from the keys, the journal and, when
/// read, when its secrets were written. Unread (a command that needs no stamps: `deactivate`,
/// `delete`), the journal's word stands: the state says which key every consumer holds.
fn guess(facts: &Facts, stamps: Option<&[Option<DateTime<Utc>>; 2]>) -> [Holding; 2] {
    let keys = &facts.keys;
    let id = |k: Option<&KeyInfo>| Holding::Key(k.map(|k| k.id.clone()));
    let guess = match facts.state() {
        State::Current | State::PendingDeletion | State::PendingDeactivation => id(keys.last()),
        State::RolledBack => id(keys.first()),
        State::Incomplete => match facts.journal_of_newest().map(|j| j.phase) {
            Some(Phase::Written | Phase::Verified) => id(keys.last()),
            Some(Phase::Partial | Phase::RollingBack | Phase::RolledBack | Phase::Writing) => {
                Holding::Unknown
            }
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
