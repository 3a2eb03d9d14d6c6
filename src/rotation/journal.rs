//! The journal and the lease: two tags on the IAM user (CONTRACT §4, §5). Pure: parsing,
//! formatting and the rules that read them; the adapter only stores strings.
//!
//! Tag values use only what IAM allows (letters, digits, spaces and `_.:/=+-@`):
//!
//! ```text
//! aws-key-rotator/rotation = v1 phase=written key=AKIA… rotation=AKIA…-1764158400 at=2026-11-26T12:00:00Z held=2026-11-26T12:00:00Z
//! aws-key-rotator/lease    = v1 run=gh-123456-1-4242-1764158400 until=2026-11-26T12:45:00Z gh=acme/ops:123456:1 runner=GitHub_Actions_12
//! ```
//!
//! A lease taken in Actions names its workflow run (`gh=REPOSITORY:RUN_ID:ATTEMPT`) and its
//! runner: a later run asks GitHub whether that run, or that job's runner, is still at work, and
//! a lease whose holder is gone is dead at once (CONTRACT §12).
//!
//! `at` is when the phase was reached; `held` (from `written` on) is when every consumer held
//! the new key, the moment the straggler rule measures from. Before `CreateAccessKey` a run
//! records its intent, naming itself (the key does not exist yet):
//!
//! ```text
//! aws-key-rotator/rotation = v1 phase=creating run=gh-123456-1-4242-1764158400000 at=2026-11-26T12:00:00Z
//! ```

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

pub const JOURNAL_TAG: &str = "aws-key-rotator/rotation";
pub const LEASE_TAG: &str = "aws-key-rotator/lease";
/// Which keys were seen exposed, by what, and when first (CONTRACT §17).
pub const EXPOSURE_TAG: &str = "aws-key-rotator/exposure";

/// Where an exposure was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExposureSource {
    /// AWS attached an `AWSCompromisedKeyQuarantine*` managed policy to the user.
    Quarantine,
    /// An open GitHub secret-scanning alert holds the key id.
    Alert,
    /// A person said so (`compromised-key-id`).
    Manual,
}

impl ExposureSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ExposureSource::Quarantine => "quarantine",
            ExposureSource::Alert => "alert",
            ExposureSource::Manual => "manual",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "quarantine" => ExposureSource::Quarantine,
            "alert" => ExposureSource::Alert,
            "manual" => ExposureSource::Manual,
            _ => return None,
        })
    }
}

/// The first sighting of an exposure: the keys exposed (a quarantine names none, so every key
/// the user had then), its source and when. Written once; later runs only read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposure {
    pub keys: Vec<String>,
    pub source: ExposureSource,
    pub at: DateTime<Utc>,
}

impl Exposure {
    /// `v1 keys=K1+K2 source=quarantine at=TIME` (IAM's tag alphabet has no comma).
    pub fn value(&self) -> String {
        format!(
            "v1 keys={} source={} at={}",
            self.keys.join("+"),
            self.source.as_str(),
            time(self.at)
        )
    }
    pub fn parse(value: &str) -> Option<Self> {
        let f = fields(value)?;
        let keys: Vec<String> = f
            .get("keys")?
            .split('+')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
        if keys.is_empty() {
            return None;
        }
        Some(Self {
            keys,
            source: ExposureSource::parse(f.get("source")?)?,
            at: parse_time(f.get("at")?)?,
        })
    }
}

/// Where a rotation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A run (`run`) is about to create the new key: a second key that appears after this, and
    /// that no consumer's secret was written after, was made by that run and reached nobody.
    Creating,
    /// The new key exists; secrets are being written.
    Writing,
    /// Every consumer holds the new key; verification has not succeeded yet.
    Written,
    /// Every consumer holds the new key and the verification workflows succeeded.
    Verified,
    /// A failed rotation is putting the old values back (CONTRACT §12a): recorded before the
    /// first write-back, so a run cut short there is finished later, never resumed.
    RollingBack,
    /// Every consumer holds the old key again; the new key waits until no job can hold it.
    RolledBack,
    /// A failure left consumers on different keys (or on unknown values): a person decides.
    Partial,
    /// The old key is Inactive since `at`.
    Deactivated,
    /// Every consumer assumes the role since `at` (CONTRACT §13): the key is retired.
    Moved,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Creating => "creating",
            Phase::Writing => "writing",
            Phase::Written => "written",
            Phase::Verified => "verified",
            Phase::RollingBack => "rolling-back",
            Phase::RolledBack => "rolled-back",
            Phase::Partial => "partial",
            Phase::Deactivated => "deactivated",
            Phase::Moved => "moved",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "creating" => Phase::Creating,
            "writing" => Phase::Writing,
            "written" => Phase::Written,
            "verified" => Phase::Verified,
            "rolling-back" => Phase::RollingBack,
            "rolled-back" => Phase::RolledBack,
            "partial" => Phase::Partial,
            "deactivated" => Phase::Deactivated,
            "moved" => Phase::Moved,
            _ => return None,
        })
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The record of the user's latest rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Journal {
    pub phase: Phase,
    /// The access key id the rotation created (empty while `creating`).
    pub key: String,
    /// The rotation's id (empty while `creating`).
    pub rotation: String,
    /// The run that is creating the key (`creating` only).
    pub run: Option<String>,
    /// When `phase` was reached.
    pub at: DateTime<Utc>,
    /// When every consumer held the new key (from `written` on).
    pub held: Option<DateTime<Utc>>,
    /// When a run last gave split consumers their ids back (CONTRACT §12a): an id written
    /// then, after its secret, is a mended pair, not a split one.
    pub mended: Option<DateTime<Utc>>,
}

/// Who may change the user right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub run: String,
    pub until: DateTime<Utc>,
    /// The workflow run and runner that hold it, when taken in Actions.
    pub github: Option<HolderRun>,
}

/// A workflow run attempt, and the runner of the job in it that holds a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderRun {
    pub repository: String,
    pub id: u64,
    pub attempt: u64,
    /// `RUNNER_NAME`, with every character a tag cannot hold as `_`.
    pub runner: String,
}

impl HolderRun {
    pub fn new(repository: &str, id: u64, attempt: u64, runner: &str) -> Self {
        Self {
            repository: repository.to_owned(),
            id,
            attempt,
            runner: tag_word(runner),
        }
    }
}

/// `s` as one word of a tag value: letters, digits and `_.-/@+` kept, anything else `_`.
pub fn tag_word(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-/@+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn fields(value: &str) -> Option<BTreeMap<&str, &str>> {
    let mut words = value.split(' ').filter(|w| !w.is_empty());
    if words.next()? != "v1" {
        return None;
    }
    words.map(|w| w.split_once('=')).collect()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Journal {
    pub fn new(phase: Phase, key: &str, rotation: &str, at: DateTime<Utc>) -> Self {
        Self {
            phase,
            key: key.to_owned(),
            rotation: rotation.to_owned(),
            run: None,
            at,
            held: (phase == Phase::Moved).then_some(at),
            mended: None,
        }
    }

    /// The intent of run `run` to create a key, recorded before `CreateAccessKey`.
    pub fn creating(run: &str, at: DateTime<Utc>) -> Self {
        Self {
            phase: Phase::Creating,
            key: String::new(),
            rotation: String::new(),
            run: Some(run.to_owned()),
            at,
            held: None,
            mended: None,
        }
    }

    /// The same rotation, moved on to `phase` at `at`.
    pub fn moved(&self, phase: Phase, at: DateTime<Utc>) -> Self {
        let held = match phase {
            Phase::Written | Phase::Moved => Some(at),
            Phase::Verified | Phase::Deactivated => self.held.or(Some(at)),
            _ => self.held,
        };
        Self {
            phase,
            at,
            held,
            // Kept: the mended pairs' ids stay written after their secrets (a write-back that
            // finds a pair already holding the key it puts back writes nothing). A split a later
            // write of this rotation leaves inside the clock slack is not named by `status`,
            // but its rotation still reads as incomplete and its repair rewrites every pair.
            ..self.clone()
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        let f = fields(value)?;
        let phase = Phase::parse(f.get("phase")?)?;
        let creating = phase == Phase::Creating;
        let named = |k: &str| match f.get(k) {
            Some(v) if !creating => Some(v.to_string()),
            None if creating => Some(String::new()),
            _ => None,
        };
        Some(Self {
            phase,
            key: named("key")?,
            rotation: named("rotation")?,
            run: match f.get("run") {
                Some(r) => Some(r.to_string()),
                None if creating => return None,
                None => None,
            },
            at: parse_time(f.get("at")?)?,
            held: match f.get("held") {
                Some(t) => Some(parse_time(t)?),
                None => None,
            },
            mended: match f.get("mended") {
                Some(t) => Some(parse_time(t)?),
                None => None,
            },
        })
    }

    /// The same record, noting that split consumers got their ids back at `at`.
    pub fn mended_at(&self, at: DateTime<Utc>) -> Self {
        Self {
            mended: Some(at),
            ..self.clone()
        }
    }

    /// The tag value.
    pub fn value(&self) -> String {
        if self.phase == Phase::Creating {
            return format!(
                "v1 phase={} run={} at={}",
                self.phase,
                self.run.as_deref().unwrap_or_default(),
                time(self.at)
            );
        }
        let mut v = format!(
            "v1 phase={} key={} rotation={} at={}",
            self.phase,
            self.key,
            self.rotation,
            time(self.at)
        );
        if let Some(h) = self.held {
            v.push_str(&format!(" held={}", time(h)));
        }
        if let Some(m) = self.mended {
            v.push_str(&format!(" mended={}", time(m)));
        }
        v
    }
}

impl Lease {
    pub fn parse(value: &str) -> Option<Self> {
        let f = fields(value)?;
        let github = match (f.get("gh"), f.get("runner")) {
            (Some(gh), Some(runner)) => {
                let mut parts = gh.rsplitn(3, ':');
                let attempt = parts.next()?.parse().ok()?;
                let id = parts.next()?.parse().ok()?;
                Some(HolderRun {
                    repository: parts.next()?.to_owned(),
                    id,
                    attempt,
                    runner: (*runner).to_owned(),
                })
            }
            _ => None,
        };
        Some(Self {
            run: f.get("run")?.to_string(),
            until: parse_time(f.get("until")?)?,
            github,
        })
    }
    pub fn value(&self) -> String {
        let mut v = format!("v1 run={} until={}", self.run, time(self.until));
        if let Some(g) = &self.github {
            v.push_str(&format!(
                " gh={}:{}:{} runner={}",
                g.repository, g.id, g.attempt, g.runner
            ));
        }
        v
    }
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.until > now
    }
}

/// The tool's two tags as read from ListUserTags. A tag that cannot be parsed is kept as text
/// so that it is reported, never silently replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    pub journal: Option<Result<Journal, String>>,
    pub lease: Option<Result<Lease, String>>,
    pub exposure: Option<Result<Exposure, String>>,
}

impl Tags {
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut tags = Tags::default();
        for (k, v) in pairs {
            match k {
                JOURNAL_TAG => tags.journal = Some(Journal::parse(v).ok_or_else(|| v.to_owned())),
                LEASE_TAG => tags.lease = Some(Lease::parse(v).ok_or_else(|| v.to_owned())),
                EXPOSURE_TAG => {
                    tags.exposure = Some(Exposure::parse(v).ok_or_else(|| v.to_owned()));
                }
                _ => {}
            }
        }
        tags
    }
    /// The journal, if it is readable.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref().and_then(|j| j.as_ref().ok())
    }
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref().and_then(|l| l.as_ref().ok())
    }
    pub fn exposure(&self) -> Option<&Exposure> {
        self.exposure.as_ref().and_then(|e| e.as_ref().ok())
    }
}

/// Builds a run id that is unique enough across runners: the workflow run and attempt (when
/// in Actions), the process id and the start time.
pub fn run_id(github_run: Option<(&str, &str)>, pid: u32, now: DateTime<Utc>) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(24)
            .collect()
    };
    match github_run {
        Some((run, attempt)) => format!(
            "gh-{}-{}-{pid}-{}",
            clean(run),
            clean(attempt),
            now.timestamp_millis()
        ),
        None => format!("cli-{pid}-{}", now.timestamp_millis()),
    }
}

/// Whether `value` fits an IAM tag value (≤ 256 of letters, digits, spaces and `_.:/=+-@`).
pub fn valid_tag_value(value: &str) -> bool {
    value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_764_158_400 + s, 0).unwrap()
    }

    #[test]
    fn journal_round_trips_through_its_tag_value() {
        let j = Journal::new(
            Phase::Writing,
            "AKIAEXAMPLE2",
            "AKIAEXAMPLE2-1764158400",
            at(0),
        );
        assert_eq!(
            j.value(),
            "v1 phase=writing key=AKIAEXAMPLE2 rotation=AKIAEXAMPLE2-1764158400 at=2025-11-26T12:00:00Z"
        );
        assert_eq!(Journal::parse(&j.value()), Some(j.clone()));
        let w = j.moved(Phase::Written, at(60));
        assert_eq!(w.held, Some(at(60)));
        let v = w.moved(Phase::Verified, at(600));
        assert_eq!((v.at, v.held), (at(600), Some(at(60))));
        assert_eq!(Journal::parse(&v.value()), Some(v.clone()));
        assert!(valid_tag_value(&v.value()));
        let c = Journal::creating("gh-1-1-7-1764158400000", at(0));
        assert_eq!(
            c.value(),
            "v1 phase=creating run=gh-1-1-7-1764158400000 at=2025-11-26T12:00:00Z"
        );
        assert_eq!(Journal::parse(&c.value()), Some(c.clone()));
        assert!(valid_tag_value(&c.value()));
        // A creating journal names its run; the others name their key and rotation.
        assert_eq!(
            Journal::parse("v1 phase=creating at=2025-11-26T12:00:00Z"),
            None
        );
        assert_eq!(
            Journal::parse("v1 phase=creating key=K rotation=R run=r at=2025-11-26T12:00:00Z"),
            None
        );
        for phase in [
            Phase::Creating,
            Phase::Writing,
            Phase::Written,
            Phase::Verified,
            Phase::RolledBack,
            Phase::Partial,
            Phase::Deactivated,
        ] {
            assert_eq!(Phase::parse(phase.as_str()), Some(phase));
        }
    }

    #[test]
    fn lease_round_trips_and_expires() {
        let l = Lease {
            run: run_id(Some(("123456", "2")), 42, at(0)),
            until: at(900),
            github: None,
        };
        let named = Lease {
            github: Some(HolderRun::new("acme/ops", 123456, 2, "GitHub Actions 12")),
            ..l.clone()
        };
        assert_eq!(
            named.value(),
            "v1 run=gh-123456-2-42-1764158400000 until=2025-11-26T12:15:00Z gh=acme/ops:123456:2 runner=GitHub_Actions_12"
        );
        assert_eq!(Lease::parse(&named.value()), Some(named.clone()));
        assert!(valid_tag_value(&named.value()));
        assert_eq!(l.run, "gh-123456-2-42-1764158400000");
        assert_eq!(Lease::parse(&l.value()), Some(l.clone()));
        assert!(valid_tag_value(&l.value()));
        assert!(l.live(at(899)));
        assert!(!l.live(at(900)));
        assert!(run_id(None, 7, at(0)).starts_with("cli-7-"));
    }

    #[test]
    fn unreadable_tags_are_kept_as_text() {
        for bad in [
            "",
            "v2 phase=written",
            "v1 phase=nope key=K rotation=R at=2025-11-26T12:00:00Z",
            "v1 phase=written key=K",
            "v1 garbage",
        ] {
            assert_eq!(Journal::parse(bad), None, "{bad}");
        }
        let tags = Tags::from_pairs([
            (JOURNAL_TAG, "hand-written"),
            ("team", "ci"),
            (LEASE_TAG, "v1 run=r until=2025-11-26T12:00:00Z"),
        ]);
        assert_eq!(tags.journal, Some(Err("hand-written".into())));
        assert_eq!(tags.journal(), None);
        assert_eq!(tags.lease().map(|l| l.run.as_str()), Some("r"));
        assert_eq!(Tags::from_pairs([]), Tags::default());
    }

    #[test]
    fn tag_values_are_checked() {
        assert!(valid_tag_value("v1 run=cli-1 until=2025-11-26T12:00:00Z"));
        assert!(!valid_tag_value("semi;colon"));
        assert!(!valid_tag_value(&"a".repeat(257)));
    }
}
