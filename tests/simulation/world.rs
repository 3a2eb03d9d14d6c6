//! The simulated world: IAM keys and tags, GitHub secrets and workflow runs, and the clocks.

#[allow(unused_imports)]
use crate::*;

pub(crate) struct SimKey {
    pub(crate) id: String,
    pub(crate) active: bool,
    pub(crate) created: DateTime<Utc>,
}

pub(crate) struct WfRun {
    pub(crate) id: u64,
    pub(crate) repo: String,
    pub(crate) title: String,
    pub(crate) expected: String,
    pub(crate) created: DateTime<Utc>,
    pub(crate) done_at: DateTime<Utc>,
}

pub(crate) struct World {
    pub(crate) now: DateTime<Utc>,
    pub(crate) keys: Vec<SimKey>,
    pub(crate) deleted: BTreeSet<String>,
    /// Keys deleted while Active (a moved user's key must be deactivated first).
    pub(crate) deleted_active: Vec<String>,
    pub(crate) next_key: u32,
    pub(crate) tags: BTreeMap<String, String>,
    /// (scope, name) → (plaintext, updated_at by GitHub's clock)
    pub(crate) secrets: BTreeMap<(Scope, String), (String, DateTime<Utc>)>,
    pub(crate) wf_runs: Vec<WfRun>,
    /// The verification workflow is broken: every run fails, whatever the secrets.
    pub(crate) verify_breaks: bool,
    pub(crate) gh_skew: Duration,
    pub(crate) aws_skew: Duration,
    pub(crate) runner_skew: Vec<Duration>,
    pub(crate) calls: Vec<usize>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) broken: Vec<(usize, &'static str, Kind)>,
    pub(crate) fired: usize,
    pub(crate) sleeping: Vec<Option<DateTime<Utc>>>,
    /// Runs whose process is gone: never polled again.
    pub(crate) crashed: Vec<bool>,
    pub(crate) trace: Option<Vec<String>>,
    pub(crate) scope_key: ScopeKey,
    /// When IAM last saw each key used (GetAccessKeyLastUsed).
    pub(crate) used: BTreeMap<String, DateTime<Utc>>,
    /// A second key a person made and uses outside the manifest (no consumer holds it).
    pub(crate) outside: Option<String>,
    /// The forged-tag adversary's one write, and whether it was made.
    pub(crate) forge: Option<Forge>,
    pub(crate) forged: bool,
    /// Before this call of run 0, AWS attaches its quarantine policy to the user (CONTRACT §17).
    pub(crate) quarantine_at: Option<usize>,
    /// The quarantine policy is attached.
    pub(crate) quarantined: bool,
}

pub(crate) fn secret_of(id: &str) -> String {
    format!("{id}/sim-secret")
}

pub(crate) fn key_of_secret(value: &str) -> Option<&str> {
    value.strip_suffix("/sim-secret")
}

pub(crate) fn secs(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp(), 0).unwrap()
}

impl World {
    /// A world for up to `runs` concurrent runs of a history (and the healing runs after it).
    pub(crate) fn new(runs: usize) -> Self {
        assert!(runs < 10, "runs 10 and up are the healing runs");
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        World {
            now: Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap(),
            keys: Vec::new(),
            deleted: BTreeSet::new(),
            deleted_active: Vec::new(),
            next_key: 0,
            tags: BTreeMap::new(),
            secrets: BTreeMap::new(),
            wf_runs: Vec::new(),
            verify_breaks: false,
            gh_skew: Duration::zero(),
            aws_skew: Duration::zero(),
            runner_skew: vec![Duration::zero(); 64],
            calls: vec![0; 64],
            faults: Vec::new(),
            broken: Vec::new(),
            fired: 0,
            sleeping: vec![None; 64],
            crashed: vec![false; 64],
            trace: None,
            scope_key: ScopeKey::parse("sim-key-id", &key).unwrap(),
            used: BTreeMap::new(),
            outside: None,
            forge: None,
            forged: false,
            quarantine_at: None,
            quarantined: false,
        }
    }

    pub(crate) fn gh_now(&self) -> DateTime<Utc> {
        secs(self.now + self.gh_skew)
    }

    pub(crate) fn add_key(&mut self, active: bool, created: DateTime<Utc>) -> String {
        self.next_key += 1;
        let id = format!("AKIASIM{:05}", self.next_key);
        self.keys.push(SimKey {
            id: id.clone(),
            active,
            created: secs(created),
        });
        id
    }

    pub(crate) fn hold(&mut self, c: &Consumer, key: &str, at: DateTime<Utc>) {
        self.secrets.insert(
            (c.scope.clone(), c.secrets.access_key_id.clone()),
            (key.to_owned(), at),
        );
        self.secrets.insert(
            (c.scope.clone(), c.secrets.secret_access_key.clone()),
            (secret_of(key), at),
        );
    }

    pub(crate) fn working(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id && k.active)
    }

    /// What a consumer really holds: (id secret's key, secret secret's key).
    pub(crate) fn holds(&self, c: &Consumer) -> (Option<String>, Option<String>) {
        let id = self
            .secrets
            .get(&(c.scope.clone(), c.secrets.access_key_id.clone()))
            .map(|(v, _)| v.clone());
        let secret = self
            .secrets
            .get(&(c.scope.clone(), c.secrets.secret_access_key.clone()))
            .map(|(v, _)| key_of_secret(v).unwrap_or("?").to_owned());
        (id, secret)
    }

    pub(crate) fn held(&self, c: &Consumer) -> Held {
        match self.holds(c) {
            (None, None) => Held::Nothing,
            (Some(a), Some(b)) if a == b => Held::Key(a),
            (id, secret) => Held::Split { id, secret },
        }
    }
}

/// How many forgeries the adversary knows (see [`World::forge_tags`]).
pub(crate) const FORGERIES: usize = 14;

impl World {
    /// The adversary with `iam:TagUser` on the user (CONTRACT §12, §12a) writes forgery `what`:
    /// a well-formed journal or lease naming the keys as they are now (the values a reader of
    /// ListAccessKeys would pick), a malformed one, or a removal.
    pub(crate) fn forge_tags(&mut self, what: usize) {
        let now = self.now;
        let newest = self.keys.last().map(|k| (k.id.clone(), k.created));
        let oldest = self.keys.first().map(|k| (k.id.clone(), k.created));
        let journal =
            |phase: Phase, key: &Option<(String, DateTime<Utc>)>, at: Option<DateTime<Utc>>| {
                key.as_ref().map(|(id, created)| {
                    let mut j =
                        Journal::new(phase, id, &format!("{id}-forged"), at.unwrap_or(*created));
                    j.held = Some(at.unwrap_or(*created));
                    j.value()
                })
            };
        let value = match what {
            // The attack of item 4: an intent at the newest key's creation.
            0 => newest
                .as_ref()
                .map(|(_, c)| Journal::creating("adversary", *c).value()),
            1 => Some(Journal::creating("adversary", now).value()),
            2 => journal(Phase::Verified, &newest, None),
            3 => journal(Phase::Deactivated, &newest, Some(now)),
            4 => journal(Phase::RolledBack, &newest, None),
            5 => journal(Phase::Written, &oldest, None),
            6 => journal(Phase::Moved, &oldest, Some(now)),
            7 => journal(Phase::RollingBack, &newest, Some(now)),
            8 => journal(Phase::Written, &newest, None),
            // A rotation id that does not name its key.
            9 => newest
                .as_ref()
                .map(|(id, c)| Journal::new(Phase::Verified, id, "AKIAOTHER-1", *c).value()),
            10 => {
                self.tags.remove(JOURNAL_TAG);
                None
            }
            11 => {
                self.tags.remove(LEASE_TAG);
                return;
            }
            // The journal as it is, saying a mend happened now (it would hide a split pair).
            12 => self
                .tags
                .get(JOURNAL_TAG)
                .and_then(|v| Journal::parse(v))
                .map(|j| j.mended_at(now).value()),
            _ => {
                let lease = aws_key_rotator::rotation::journal::Lease {
                    run: "adversary".into(),
                    until: now + Duration::hours(1),
                    github: None,
                };
                self.tags.insert(LEASE_TAG.into(), lease.value());
                return;
            }
        };
        if let Some(v) = value {
            self.tags.insert(JOURNAL_TAG.into(), v);
        }
    }
}
