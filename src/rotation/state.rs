//! Key states (CONTRACT §4), derived from ListAccessKeys and the journal kept on the IAM user.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::journal::{Journal, Phase};
use crate::manifest::Consumer;

pub use crate::model::{KeyInfo, KeyStatus};

/// When a consumer's two secrets were last written (`None`: a secret is missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freshness {
    pub consumer: Consumer,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    None,
    Current,
    Inactive,
    PendingDeactivation,
    Incomplete,
    RolledBack,
    PendingDeletion,
    Conflict,
    /// Every consumer assumes the role; the key's retirement is not recorded yet.
    Migrating,
    /// Every consumer assumes the role and the user has no key left.
    Migrated,
    /// A key of the user was seen exposed and still works (CONTRACT §17): reported, loud, over
    /// whatever the keys' state is; `rotate` takes it out of service at once.
    Exposed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::None => "none",
            State::Current => "current",
            State::Inactive => "inactive",
            State::PendingDeactivation => "pending-deactivation",
            State::Incomplete => "incomplete",
            State::RolledBack => "rolled-back",
            State::PendingDeletion => "pending-deletion",
            State::Conflict => "conflict",
            State::Migrating => "migrating",
            State::Migrated => "migrated",
            State::Exposed => "exposed",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Orders keys oldest first (ties by id, so the order is stable).
pub fn oldest_first(mut keys: Vec<KeyInfo>) -> Vec<KeyInfo> {
    keys.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
    keys
}

/// Whether the state depends on the consumers' secrets (two Active keys).
pub fn needs_freshness(keys: &[KeyInfo]) -> bool {
    matches!(keys, [a, b] if a.status == KeyStatus::Active && b.status == KeyStatus::Active)
}

/// Whether a consumer's secrets were both written late enough to hold a key created at
/// `created`: at or after it, give or take [`clock_slack`] (GitHub stamps `updated_at` with its
/// clock, AWS stamps the key with its own). A missing secret holds no key.
pub fn written_since(f: &Freshness, created: DateTime<Utc>) -> bool {
    f.updated_at.is_some_and(|u| u >= created - clock_slack())
}

/// Consumers that cannot hold a key created at `created` ([`written_since`] fails): the ones
/// that keep a user from `pending-deactivation`.
pub fn stale_consumers(created: DateTime<Utc>, freshness: &[Freshness]) -> Vec<&Consumer> {
    freshness
        .iter()
        .filter(|f| !written_since(f, created))
        .map(|f| &f.consumer)
        .collect()
}

/// A state with the keys it is about (oldest first): deciders match on this, and never index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing<'a> {
    None,
    Current(&'a KeyInfo),
    Inactive(&'a KeyInfo),
    PendingDeactivation {
        old: &'a KeyInfo,
        new: &'a KeyInfo,
    },
    Incomplete {
        old: &'a KeyInfo,
        new: &'a KeyInfo,
    },
    RolledBack {
        old: &'a KeyInfo,
        new: &'a KeyInfo,
    },
    /// The old key Inactive, the new one Active.
    PendingDeletion {
        old: &'a KeyInfo,
        new: &'a KeyInfo,
    },
    Conflict,
    /// Moved (every consumer assumes the role), no key left.
    Migrated,
    /// Moved; the oldest key is Active and its retirement is not recorded yet.
    Migrating(&'a KeyInfo),
    /// Moved; the retirement of this Active key (the oldest) is recorded: it awaits `deactivate`.
    Retiring(&'a KeyInfo),
    /// Moved; this key (the oldest) is Inactive since the journal's `deactivated`.
    Retired(&'a KeyInfo),
}

impl Standing<'_> {
    pub fn state(&self) -> State {
        match self {
            Standing::None => State::None,
            Standing::Current(_) => State::Current,
            Standing::Inactive(_) => State::Inactive,
            Standing::PendingDeactivation { .. } => State::PendingDeactivation,
            Standing::Incomplete { .. } => State::Incomplete,
            Standing::RolledBack { .. } => State::RolledBack,
            Standing::PendingDeletion { .. } => State::PendingDeletion,
            Standing::Conflict => State::Conflict,
            Standing::Migrated => State::Migrated,
            Standing::Migrating(_) => State::Migrating,
            Standing::Retiring(_) => State::PendingDeactivation,
            Standing::Retired(_) => State::PendingDeletion,
        }
    }
}

/// The standing of a user whose every consumer assumes the role (CONTRACT §13): its keys are
/// retired one at a time, oldest first, each with the grace periods of a rotation. The journal
/// records `moved` for a key when its retirement starts, then `deactivated`.
pub fn moved_standing<'a>(
    keys: &'a [KeyInfo],
    journal: Option<&Journal>,
    now: DateTime<Utc>,
) -> Standing<'a> {
    let Some(key) = keys.first() else {
        return Standing::Migrated;
    };
    // A journal that contradicts the keys was not written by the tool (CONTRACT §12).
    if journal.is_some_and(|j| contradiction(keys, j, now).is_some()) {
        return Standing::Conflict;
    }
    let newest = keys.last().map(|k| k.id.as_str());
    let phase = journal.map(|j| (j.key == key.id, Some(j.key.as_str()) == newest, j.phase));
    match (key.status, phase) {
        (KeyStatus::Active, Some((true, _, Phase::Moved))) => Standing::Retiring(key),
        // Anything else (a `deactivated` of a failed attempt among them) starts the
        // retirement again: the grace is never shortened.
        (KeyStatus::Active, _) => Standing::Migrating(key),
        // The deactivation is recorded for this key, or for the newest when there were two.
        (KeyStatus::Inactive, Some((this, last, Phase::Deactivated))) if this || last => {
            Standing::Retired(key)
        }
        (KeyStatus::Inactive, _) => Standing::Inactive(key),
    }
}

/// The state of a user's keys (`keys` oldest first) and the journal. `freshness` is consulted
/// only when both keys are Active (a missing secret holds no key); `has_verify` says whether
/// the user has verification workflows (without them `written` is as good as `verified`).
pub fn derive(
    keys: &[KeyInfo],
    journal: Option<&Journal>,
    freshness: &[Freshness],
    has_verify: bool,
    now: DateTime<Utc>,
) -> State {
    standing(keys, journal, freshness, has_verify, now).state()
}

/// The state with its keys: see [`derive`].
pub fn standing<'a>(
    keys: &'a [KeyInfo],
    journal: Option<&Journal>,
    freshness: &[Freshness],
    has_verify: bool,
    now: DateTime<Utc>,
) -> Standing<'a> {
    use KeyStatus::{Active, Inactive};
    let about = |k: &KeyInfo| journal.filter(|j| j.key == k.id).map(|j| j.phase);
    match keys {
        [] => Standing::None,
        [k] if k.status == Active => Standing::Current(k),
        [k] => Standing::Inactive(k),
        // Anyone allowed iam:TagUser can write the journal: one that contradicts the keys is
        // never a reason to delete, deactivate or skip a grace period.
        [_, _] if journal.is_some_and(|j| contradiction(keys, j, now).is_some()) => {
            Standing::Conflict
        }
        [old, new] => match (old.status, new.status, about(new)) {
            // The journal is written only after every secret was written, so it is trusted; but
            // a secret missing now, or last written well before the new key existed, cannot hold
            // it (someone changed it since). "Well before": GitHub's and AWS's clocks may differ.
            (Active, Active, phase)
                if proven(phase, has_verify)
                    && freshness.iter().all(|f| written_since(f, new.created)) =>
            {
                Standing::PendingDeactivation { old, new }
            }
            (Active, Active, Some(Phase::RolledBack)) => Standing::RolledBack { old, new },
            (Active, Active, _) => Standing::Incomplete { old, new },
            (Inactive, Active, Some(Phase::Deactivated)) => Standing::PendingDeletion { old, new },
            _ => Standing::Conflict,
        },
        _ => Standing::Conflict,
    }
}

/// Why `journal` cannot be true of `keys` at `now`, if it cannot (CONTRACT §12): it is about
/// one of the keys, but its rotation id does not name that key, or one of its times is before
/// the key was created or after now (beyond [`clock_slack`]). A journal about a key that no
/// longer exists is history, and contradicts nothing.
pub fn contradiction(keys: &[KeyInfo], journal: &Journal, now: DateTime<Utc>) -> Option<String> {
    let key = keys.iter().find(|k| k.id == journal.key)?;
    if !journal
        .rotation
        .strip_prefix(journal.key.as_str())
        .is_some_and(|rest| rest.starts_with('-'))
    {
        return Some(format!(
            "its rotation id {} does not name its key {}",
            journal.rotation, journal.key
        ));
    }
    let slack = clock_slack();
    let times = [
        ("at", Some(journal.at)),
        ("held", journal.held),
        ("mended", journal.mended),
    ];
    for (name, t) in times {
        let Some(t) = t else { continue };
        if t < key.created - slack {
            return Some(format!(
                "its time {name}={} is before key {} was created ({})",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                key.id,
                key.created
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        if t > now + slack {
            return Some(format!(
                "its time {name}={} is in the future",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
    }
    None
}

/// The consumers a run killed between a pair's two writes left split (CONTRACT §12), each with
/// the key id that makes its pair whole again. Every pair is written id first, then secret, so a
/// whole pair's secret is never older than its id: an id written after its secret (by whole
/// seconds; `stamps[i]` is consumer `i`'s (id, secret) `updated_at`) was cut off from the write
/// of its secret. The secret says which key it kept: written before the newer of two Active keys
/// existed (beyond the clock slack), the old one; after it, the new one. Ids are not secret, and
/// both keys are Active, so writing that key's id mends the consumer. Within the slack it cannot
/// be told, and nothing is claimed.
pub fn split_pairs(
    keys: &[KeyInfo],
    stamps: &[[Option<DateTime<Utc>>; 2]],
    mended: Option<DateTime<Utc>>,
) -> Vec<(usize, String)> {
    let [old, new] = keys else {
        return Vec::new();
    };
    if old.status != KeyStatus::Active || new.status != KeyStatus::Active {
        return Vec::new();
    }
    stamps
        .iter()
        .enumerate()
        .filter_map(|(i, parts)| {
            let [Some(id), Some(secret)] = parts else {
                return None;
            };
            if id.timestamp() <= secret.timestamp() {
                return None;
            }
            // Its id was given back by a mend (the journal records when): whole again.
            if mended.is_some_and(|m| *id <= m + clock_slack()) {
                return None;
            }
            // GitHub stamps whole seconds: a secret written in the second the key was created
            // was written after it.
            let kept = if *secret < new.created - clock_slack() {
                old
            } else if secret.timestamp() >= new.created.timestamp() {
                new
            } else {
                return None;
            };
            Some((i, kept.id.clone()))
        })
        .collect()
}

/// How far GitHub's clock (a secret's `updated_at`) and AWS's (a key's creation date) may
/// disagree before a secret "written before the key existed" is believed.
pub fn clock_slack() -> chrono::Duration {
    chrono::Duration::minutes(15)
}

/// Every consumer holds the new key and it has proven itself (`deactivated` on two Active
/// keys: a deactivation was recorded and then did not happen).
fn proven(phase: Option<Phase>, has_verify: bool) -> bool {
    matches!(phase, Some(Phase::Verified | Phase::Deactivated))
        || (phase == Some(Phase::Written) && !has_verify)
}

/// Whole days since `created`.
pub fn age_days(created: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - created).num_days()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Scope, SecretNames};
    use chrono::TimeZone;

    fn journal(phase: Phase, key: &str) -> Journal {
        Journal::new(phase, key, &format!("{key}-100"), at(100))
    }
    /// Long after every key and journal of the tests.
    fn now() -> DateTime<Utc> {
        at(1_000_000)
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }
    fn key(id: &str, status: KeyStatus, created: i64) -> KeyInfo {
        KeyInfo {
            id: id.into(),
            status,
            created: at(created),
        }
    }
    fn fresh(repo: &str, updated: Option<i64>) -> Freshness {
        Freshness {
            consumer: Consumer {
                pull_requests: true,
                scope: Scope::Repository(repo.into()),
                secrets: SecretNames::default(),
            },
            updated_at: updated.map(at),
        }
    }
    use KeyStatus::{Active as A, Inactive as I};

    #[test]
    fn every_row_of_the_table() {
        let new_at = 100;
        let all_updated = [fresh("a/b", Some(100)), fresh("a/c", Some(150))];
        let one_stale = [fresh("a/b", Some(150)), fresh("a/c", Some(99))];
        let one_missing = [fresh("a/b", Some(150)), fresh("a/c", None)];
        // written 15 minutes before the key existed: clock skew; 16: someone else
        let long_before = [fresh("a/b", Some(150)), fresh("a/c", Some(100 - 16 * 60))];
        let one = |status| vec![key("K1", status, 0)];
        let two = || vec![key("K1", A, 0), key("K2", A, new_at)];
        let retired = || vec![key("K1", I, 0), key("K2", A, new_at)];
        let j = |phase, k: &str| Some(journal(phase, k));
        use Phase::*;
        use State as S;
        // (keys, journal, freshness, has verify entries) → state
        type Case<'a> = (Vec<KeyInfo>, Option<Journal>, &'a [Freshness], bool, State);
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            (vec![], None, &[], true, S::None),
            (one(A), None, &[], true, S::Current),
            (one(A), j(Partial, "K0"), &[], true, S::Current),
            (one(I), None, &[], true, S::Inactive),
            (two(), j(Verified, "K2"), &all_updated, true, S::PendingDeactivation),
            (two(), j(Written, "K2"), &all_updated, false, S::PendingDeactivation),
            (two(), j(Written, "K2"), &all_updated, true, S::Incomplete),
            // a second before the key existed: clock skew between GitHub and AWS
            (two(), j(Verified, "K2"), &one_stale, true, S::PendingDeactivation),
            (two(), j(Verified, "K2"), &long_before, true, S::Incomplete),
            (two(), j(Verified, "K2"), &one_missing, true, S::Incomplete),
            (two(), j(Verified, "K1"), &all_updated, true, S::Incomplete),
            (two(), None, &all_updated, true, S::Incomplete),
            (two(), j(Writing, "K2"), &all_updated, true, S::Incomplete),
            (two(), j(Partial, "K2"), &all_updated, true, S::Incomplete),
            (two(), j(RolledBack, "K2"), &all_updated, true, S::RolledBack),
            (retired(), j(Deactivated, "K2"), &[], true, S::PendingDeletion),
            (retired(), None, &[], true, S::Conflict),
            (retired(), j(Verified, "K2"), &[], true, S::Conflict),
            (vec![key("K1", A, 0), key("K2", I, new_at)], None, &[], true, S::Conflict),
            (vec![key("K1", I, 0), key("K2", I, new_at)], None, &[], true, S::Conflict),
            (vec![key("K1", A, 0), key("K2", A, 1), key("K3", A, 2)], None, &[], true, S::Conflict),
        ];
        for (keys, journal, freshness, has_verify, want) in cases {
            assert_eq!(
                derive(&keys, journal.as_ref(), freshness, has_verify, now()),
                want,
                "{keys:?} {journal:?}"
            );
        }
    }

    #[test]
    fn written_within_the_clock_slack_counts_as_updated() {
        let mut new = key("K2", A, 10_000);
        new.created += chrono::Duration::milliseconds(700);
        let slack = clock_slack().num_seconds();
        // The same second, and GitHub's clock behind AWS's by up to the slack: updated.
        for written in [10_001, 10_000, 10_000 - slack + 1] {
            assert!(
                stale_consumers(new.created, &[fresh("a/b", Some(written))]).is_empty(),
                "{written}"
            );
        }
        // Before that, or missing: stale.
        assert_eq!(
            stale_consumers(new.created, &[fresh("a/b", Some(10_000 - slack - 1))]).len(),
            1
        );
        assert_eq!(stale_consumers(new.created, &[fresh("a/b", None)]).len(), 1);
    }

    /// The refusal names exactly the consumers that keep the state from `pending-deactivation`.
    #[test]
    fn stale_consumers_are_what_derive_rejects() {
        let old = key("K1", A, 0);
        let mut new = key("K2", A, 10_000);
        new.created += chrono::Duration::milliseconds(700);
        let journal = Journal {
            phase: Phase::Verified,
            key: "K2".into(),
            rotation: "K2-10000".into(),
            run: None,
            at: at(10_100),
            held: None,
            mended: None,
        };
        let slack = clock_slack().num_seconds();
        for written in [
            Some(10_100),
            Some(10_000 - slack + 1),
            Some(10_000 - slack - 1),
            None,
        ] {
            let f = [fresh("a/b", written)];
            let state = derive(&[old.clone(), new.clone()], Some(&journal), &f, true, now());
            assert_eq!(
                state == State::PendingDeactivation,
                stale_consumers(new.created, &f).is_empty(),
                "{written:?}: {state:?}"
            );
        }
    }

    /// A forged journal (CONTRACT §12) is a conflict, never a reason to act.
    #[test]
    fn a_journal_that_contradicts_the_keys_is_a_conflict() {
        let keys = [key("K1", A, 0), key("K2", A, 10_000)];
        let fresh_all = [fresh("a/b", Some(10_050))];
        let good = Journal::new(Phase::Verified, "K2", "K2-10000", at(10_100));
        assert_eq!(
            derive(&keys, Some(&good), &fresh_all, true, now()),
            State::PendingDeactivation
        );
        let slack = clock_slack().num_seconds();
        let forged = [
            // verified "in 2000": would skip the grace period
            Journal::new(Phase::Verified, "K2", "K2-10000", at(-1_000_000)),
            // rolled back "long ago": would delete the key every consumer holds
            Journal::new(Phase::RolledBack, "K2", "K2-1", at(10_000 - slack - 1)),
            Journal::new(Phase::RolledBack, "K2", "K2-10000", at(10_000 - slack - 1)),
            // from the future
            Journal::new(
                Phase::Verified,
                "K2",
                "K2-10000",
                now() + clock_slack() + chrono::Duration::seconds(1),
            ),
            // a rotation id naming another key
            Journal::new(Phase::Verified, "K2", "K1-10000", at(10_100)),
            Journal::new(Phase::Verified, "K2", "K22-10000", at(10_100)),
            Journal {
                held: Some(at(1)),
                ..good.clone()
            },
        ];
        for j in &forged {
            assert!(contradiction(&keys, j, now()).is_some(), "{j:?}");
            assert_eq!(
                derive(&keys, Some(j), &fresh_all, true, now()),
                State::Conflict,
                "{j:?}"
            );
        }
        // Within the slack is believed; a journal of a key that is gone is history.
        let skewed = Journal::new(Phase::Verified, "K2", "K2-10000", at(10_000 - slack + 1));
        assert_eq!(contradiction(&keys, &skewed, now()), None);
        let gone = Journal::new(Phase::RolledBack, "K9", "K9-1", at(-5));
        assert_eq!(contradiction(&keys, &gone, now()), None);
        assert_eq!(
            derive(&keys, Some(&gone), &fresh_all, true, now()),
            State::Incomplete
        );
    }

    /// A kill between a pair's two writes: the id written after its secret.
    #[test]
    fn split_pairs_are_found_by_their_stamps() {
        let keys = [key("K1", A, 0), key("K2", A, 10_000)];
        let slack = clock_slack().num_seconds();
        let s = |id: Option<i64>, secret: Option<i64>| [id.map(at), secret.map(at)];
        let stamps = [
            s(Some(10_001), Some(5)),      // forward, cut: new id, old secret → K1
            s(Some(10_001), Some(10_002)), // whole: new
            s(Some(5), Some(6)),           // whole: old
            s(Some(10_009), Some(10_005)), // a rollback cut: old id, new secret → K2
            s(Some(10_001), Some(10_000 - slack + 1)), // secret within the slack: unknown
            s(Some(10_001), None),         // no secret to pair with
            s(None, Some(5)),              // no id
            s(Some(10_001), Some(10_001)), // the same second: whole
        ];
        // A secret stamped in the very second the key was created (GitHub's whole seconds)
        // was written after it.
        let mut late = keys.clone();
        late[1].created += chrono::Duration::milliseconds(600);
        assert_eq!(
            split_pairs(&late, &[s(Some(10_002), Some(10_000))], None),
            vec![(0, "K2".to_owned())]
        );
        assert_eq!(
            split_pairs(&keys, &stamps, None),
            vec![(0, "K1".to_owned()), (3, "K2".to_owned())]
        );
        // Only with two Active keys.
        let retired = [key("K1", I, 0), key("K2", A, 10_000)];
        assert!(split_pairs(&retired, &stamps, None).is_empty());
        assert!(split_pairs(&keys[..1], &stamps, None).is_empty());
        // Mended (the journal records when): whole again; a split written later is not hidden.
        let mended = Some(at(20_000));
        let after_mend = [s(Some(20_001), Some(100))];
        assert!(split_pairs(&keys, &after_mend, mended).is_empty());
        let later = [s(Some(20_000 + 3_600), Some(100))];
        assert_eq!(split_pairs(&keys, &later, mended).len(), 1);
    }

    #[test]
    fn sorts_oldest_first() {
        let keys = oldest_first(vec![key("K2", A, 5), key("K1", A, 1)]);
        assert_eq!(keys[0].id, "K1");
        assert!(needs_freshness(&keys));
        assert!(!needs_freshness(&keys[..1]));
    }

    #[test]
    fn age_is_whole_days() {
        assert_eq!(age_days(at(0), at(86_399)), 0);
        assert_eq!(age_days(at(0), at(86_400 * 90)), 90);
    }
}
