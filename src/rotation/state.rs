//! Key states (CONTRACT §4), derived from ListAccessKeys alone — no other state store.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::manifest::Consumer;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum KeyStatus {
    Active,
    Inactive,
}

/// One access key as ListAccessKeys reports it. Ids are not secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub status: KeyStatus,
    pub created: DateTime<Utc>,
}

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
    PendingDeletion,
    Conflict,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::None => "none",
            State::Current => "current",
            State::Inactive => "inactive",
            State::PendingDeactivation => "pending-deactivation",
            State::Incomplete => "incomplete",
            State::PendingDeletion => "pending-deletion",
            State::Conflict => "conflict",
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

/// Consumers whose secrets were not both written at or after `since` (second precision:
/// GitHub's `updated_at` has whole seconds).
pub fn stale_consumers(since: DateTime<Utc>, freshness: &[Freshness]) -> Vec<&Consumer> {
    let since = since.timestamp();
    freshness
        .iter()
        .filter(|f| f.updated_at.is_none_or(|u| u.timestamp() < since))
        .map(|f| &f.consumer)
        .collect()
}

/// The state of a user's keys (`keys` oldest first). `freshness` is consulted only when
/// both keys are Active and must then cover every consumer.
pub fn derive(keys: &[KeyInfo], freshness: &[Freshness]) -> State {
    use KeyStatus::{Active, Inactive};
    match keys {
        [] => State::None,
        [k] if k.status == Active => State::Current,
        [_] => State::Inactive,
        [old, new] => match (old.status, new.status) {
            (Active, Active) if stale_consumers(new.created, freshness).is_empty() => {
                State::PendingDeactivation
            }
            (Active, Active) => State::Incomplete,
            (Inactive, Active) => State::PendingDeletion,
            _ => State::Conflict,
        },
        _ => State::Conflict,
    }
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
        let cases: Vec<(Vec<KeyInfo>, &[Freshness], State)> = vec![
            (vec![], &[], State::None),
            (vec![key("K1", A, 0)], &[], State::Current),
            (vec![key("K1", I, 0)], &[], State::Inactive),
            (
                vec![key("K1", A, 0), key("K2", A, new_at)],
                &all_updated,
                State::PendingDeactivation,
            ),
            (
                vec![key("K1", A, 0), key("K2", A, new_at)],
                &one_stale,
                State::Incomplete,
            ),
            (
                vec![key("K1", A, 0), key("K2", A, new_at)],
                &one_missing,
                State::Incomplete,
            ),
            (
                vec![key("K1", I, 0), key("K2", A, new_at)],
                &[],
                State::PendingDeletion,
            ),
            (
                vec![key("K1", A, 0), key("K2", I, new_at)],
                &[],
                State::Conflict,
            ),
            (
                vec![key("K1", I, 0), key("K2", I, new_at)],
                &[],
                State::Conflict,
            ),
            (
                vec![key("K1", A, 0), key("K2", A, 1), key("K3", A, 2)],
                &[],
                State::Conflict,
            ),
        ];
        for (keys, freshness, want) in cases {
            assert_eq!(derive(&keys, freshness), want, "{keys:?}");
        }
    }

    #[test]
    fn same_second_counts_as_updated() {
        let mut new = key("K2", A, 100);
        new.created += chrono::Duration::milliseconds(700);
        assert!(stale_consumers(new.created, &[fresh("a/b", Some(100))]).is_empty());
        assert_eq!(
            stale_consumers(new.created, &[fresh("a/b", Some(99))]).len(),
            1
        );
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
