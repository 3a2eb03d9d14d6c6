//! What each consumer's two secrets hold, as far as this run knows. Pure bookkeeping, no I/O:
//! the executor tells it what it wrote and what GitHub answered, and asks it what to repair and
//! what to report.
//!
//! A write whose answer was lost may or may not have landed. It is settled later by the
//! secret's `updated_at` against the value read *before* that write (never against the runner's
//! clock): unchanged means it did not land, changed means it did.

use chrono::{DateTime, Utc};

/// One of a consumer's two secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    Id,
    Secret,
}

pub const PARTS: [Part; 2] = [Part::Id, Part::Secret];

impl Part {
    fn index(self) -> usize {
        match self {
            Part::Id => 0,
            Part::Secret => 1,
        }
    }
}

/// What one secret holds: a key id (`None`: the secret does not exist), or unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holding {
    Key(Option<String>),
    Unknown,
}

impl Holding {
    pub fn key(id: &str) -> Self {
        Holding::Key(Some(id.to_owned()))
    }
}

/// A write whose answer was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    was: Holding,
    sent: String,
}

/// The `updated_at` this run last saw for a secret, or `Stale` once it wrote the secret since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stamp {
    Seen(Option<DateTime<Utc>>),
    Stale,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Slot {
    holds: Holding,
    stamp: Stamp,
    pending: Option<Pending>,
    /// This run sent the new key to this secret (landed or maybe).
    sent_new: bool,
}

/// What a consumer holds, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// Both secrets hold this key.
    Key(String),
    /// Neither secret exists.
    Nothing,
    /// At least one secret's value is unknown (a write that could not be settled).
    Unknown,
    /// The two secrets hold different keys (or one is missing).
    Split {
        id: Option<String>,
        secret: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    slots: Vec<[Slot; 2]>,
}

impl Ledger {
    /// `before[i]`: what consumer `i`'s secrets hold and their `updated_at`, as read before acting.
    pub fn new(before: Vec<[(Holding, Option<DateTime<Utc>>); 2]>) -> Self {
        Self {
            slots: before
                .into_iter()
                .map(|parts| {
                    parts.map(|(holds, at)| Slot {
                        holds,
                        stamp: Stamp::Seen(at),
                        pending: None,
                        sent_new: false,
                    })
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn slot(&self, i: usize, part: Part) -> &Slot {
        &self.slots[i][part.index()]
    }
    fn slot_mut(&mut self, i: usize, part: Part) -> &mut Slot {
        &mut self.slots[i][part.index()]
    }

    pub fn holds(&self, i: usize, part: Part) -> &Holding {
        &self.slot(i, part).holds
    }

    /// Whether the secret's `updated_at` must be read again before the next write to it (so a
    /// lost answer can be settled against it).
    pub fn needs_stamp(&self, i: usize, part: Part) -> bool {
        self.slot(i, part).stamp == Stamp::Stale
    }

    /// Whether the secret has a lost write to settle before it may be written again.
    pub fn is_unsettled(&self, i: usize, part: Part) -> bool {
        self.slot(i, part).pending.is_some()
    }

    pub fn stamped(&mut self, i: usize, part: Part, at: Option<DateTime<Utc>>) {
        self.slot_mut(i, part).stamp = Stamp::Seen(at);
    }

    /// A write landed or may have landed; `is_new` marks the rotation's new key.
    pub fn sending(&mut self, i: usize, part: Part, is_new: bool) {
        if is_new {
            self.slot_mut(i, part).sent_new = true;
        }
    }

    /// GitHub confirmed the write of `key`.
    pub fn wrote(&mut self, i: usize, part: Part, key: &str) {
        let s = self.slot_mut(i, part);
        s.holds = Holding::key(key);
        s.pending = None;
        s.stamp = Stamp::Stale;
    }

    /// A write of `key` failed; `uncertain` when it may have landed.
    pub fn write_failed(&mut self, i: usize, part: Part, key: &str, uncertain: bool) {
        if !uncertain {
            return;
        }
        let s = self.slot_mut(i, part);
        let was = match s.pending.take() {
            // The same value sent again: still one question, landed or not.
            Some(p) if p.sent == key => p.was,
            // Two different values in flight: no stamp can tell which one is there.
            Some(_) => {
                s.holds = Holding::Unknown;
                s.stamp = Stamp::Stale;
                return;
            }
            None => s.holds.clone(),
        };
        s.pending = Some(Pending {
            was,
            sent: key.to_owned(),
        });
        s.holds = Holding::Unknown;
    }

    /// Secrets with a write whose answer was lost.
    pub fn unsettled(&self) -> Vec<(usize, Part)> {
        (0..self.slots.len())
            .flat_map(|i| PARTS.map(|p| (i, p)))
            .filter(|&(i, p)| self.slot(i, p).pending.is_some())
            .collect()
    }

    /// Settles a lost write with the secret's `updated_at` read now.
    pub fn settle(&mut self, i: usize, part: Part, now: Option<DateTime<Utc>>) {
        let s = self.slot_mut(i, part);
        let Some(p) = s.pending.take() else {
            return;
        };
        let Stamp::Seen(before) = s.stamp else {
            // Nothing to compare with: it stays unknown.
            s.pending = Some(p);
            return;
        };
        if now == before {
            s.holds = p.was;
        } else {
            s.holds = Holding::Key(Some(p.sent));
            s.stamp = Stamp::Seen(now);
        }
        if s.holds != Holding::Unknown {
            s.stamp = Stamp::Seen(now);
        }
    }

    /// Settles a lost write by what the store holds now (a store that keeps the pair
    /// together and is readable: its id field names the key the whole pair belongs to).
    pub fn settle_by_value(&mut self, i: usize, part: Part, id_now: Option<&str>) {
        let s = self.slot_mut(i, part);
        if s.pending.take().is_some() {
            s.holds = Holding::Key(id_now.map(str::to_owned));
        }
    }

    /// What consumer `i` holds.
    pub fn held(&self, i: usize) -> Held {
        let (id, secret) = (self.holds(i, Part::Id), self.holds(i, Part::Secret));
        match (id, secret) {
            (Holding::Unknown, _) | (_, Holding::Unknown) => Held::Unknown,
            (Holding::Key(a), Holding::Key(b)) if a == b => match a {
                Some(k) => Held::Key(k.clone()),
                None => Held::Nothing,
            },
            (Holding::Key(a), Holding::Key(b)) => Held::Split {
                id: a.clone(),
                secret: b.clone(),
            },
        }
    }

    /// Whether any secret holds `key`, or may (unknown).
    pub fn may_hold(&self, key: &str) -> bool {
        self.slots.iter().flatten().any(|s| {
            s.holds == Holding::key(key)
                || s.holds == Holding::Unknown
                    && (s.pending.as_ref().is_none_or(|p| {
                        p.sent == key || p.was == Holding::key(key) || p.was == Holding::Unknown
                    }))
        })
    }

    /// Whether the new key was ever sent anywhere: a job may have read it since.
    pub fn new_key_went_out(&self) -> bool {
        self.slots.iter().flatten().any(|s| s.sent_new)
    }

    /// Whether every consumer's two secrets hold `key`.
    pub fn all_hold(&self, key: &str) -> bool {
        (0..self.slots.len()).all(|i| self.held(i) == Held::Key(key.to_owned()))
    }

    /// Consumers that must be written to hold `key` again (the parts that do not hold it).
    pub fn parts_not_holding(&self, i: usize, key: &str) -> Vec<Part> {
        PARTS
            .into_iter()
            .filter(|&p| *self.holds(i, p) != Holding::key(key))
            .collect()
    }

    /// Consumers whose id secret was changed away from `old` while the secret part still holds
    /// `old`: writing the old id back makes the pair whole, even without the old secret.
    pub fn id_split_from(&self, i: usize, old: &str) -> bool {
        *self.holds(i, Part::Secret) == Holding::key(old)
            && *self.holds(i, Part::Id) != Holding::key(old)
    }
}

impl Held {
    /// Words for the report; `deleted` says which keys no longer exist.
    pub fn describe(&self, names: (&str, &str), deleted: &dyn Fn(&str) -> bool) -> String {
        let key = |k: &Option<String>| match k {
            Some(id) if deleted(id) => format!("{id} (deleted: broken until rotated)"),
            Some(id) => id.clone(),
            None => "nothing".into(),
        };
        match self {
            Held::Key(k) => key(&Some(k.clone())),
            Held::Nothing => "no key".into(),
            Held::Unknown => "unknown (a write may have landed)".into(),
            Held::Split { id, secret } => format!(
                "mismatched: {} holds {}, {} holds {}",
                names.0,
                key(id),
                names.1,
                key(secret)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> Option<DateTime<Utc>> {
        Some(Utc.timestamp_opt(1_764_158_400 + s, 0).unwrap())
    }
    fn k(id: &str) -> Holding {
        Holding::key(id)
    }
    /// One consumer holding `old` in both secrets, written at t=0.
    fn one(old: Option<&str>) -> Ledger {
        let h = Holding::Key(old.map(str::to_owned));
        let t = if old.is_some() { at(0) } else { None };
        Ledger::new(vec![[(h.clone(), t), (h, t)]])
    }

    #[test]
    fn writes_and_reports() {
        // (writes applied in order: part, key, outcome) → what it holds
        #[derive(Clone, Copy)]
        enum W {
            Ok,
            Failed,
            Lost,
        }
        use Part::{Id, Secret};
        type Case<'a> = (&'a str, Vec<(Part, &'a str, W)>, Held);
        let cases: Vec<Case> = vec![
            ("nothing written", vec![], Held::Key("OLD".into())),
            (
                "both written",
                vec![(Id, "NEW", W::Ok), (Secret, "NEW", W::Ok)],
                Held::Key("NEW".into()),
            ),
            (
                "secret failed cleanly",
                vec![(Id, "NEW", W::Ok), (Secret, "NEW", W::Failed)],
                Held::Split {
                    id: Some("NEW".into()),
                    secret: Some("OLD".into()),
                },
            ),
            (
                "secret lost",
                vec![(Id, "NEW", W::Ok), (Secret, "NEW", W::Lost)],
                Held::Unknown,
            ),
            (
                "id put back after a split",
                vec![
                    (Id, "NEW", W::Ok),
                    (Secret, "NEW", W::Failed),
                    (Id, "OLD", W::Ok),
                ],
                Held::Key("OLD".into()),
            ),
        ];
        for (name, writes, want) in cases {
            let mut l = one(Some("OLD"));
            for (part, key, w) in writes {
                l.sending(0, part, key == "NEW");
                match w {
                    W::Ok => l.wrote(0, part, key),
                    W::Failed => l.write_failed(0, part, key, false),
                    W::Lost => l.write_failed(0, part, key, true),
                }
            }
            assert_eq!(l.held(0), want, "{name}");
        }
    }

    #[test]
    fn lost_writes_settle_against_the_stamp_read_before() {
        // (stamp before, updated_at now) → holds
        let cases = [
            (at(0), at(0), k("OLD")),         // unchanged: did not land
            (at(0), at(5), k("NEW")),         // changed: landed
            (at(0), at(-120), k("NEW")),      // changed, even if GitHub's clock looks "older"
            (None, None, Holding::Key(None)), // still missing: did not land
            (None, at(3), k("NEW")),
        ];
        for (before, now, want) in cases {
            let h = if before.is_some() {
                k("OLD")
            } else {
                Holding::Key(None)
            };
            let mut l = Ledger::new(vec![[(h.clone(), before), (h, before)]]);
            l.write_failed(0, Part::Secret, "NEW", true);
            assert_eq!(l.unsettled(), vec![(0, Part::Secret)]);
            assert!(l.may_hold("NEW"));
            l.settle(0, Part::Secret, now);
            assert_eq!(*l.holds(0, Part::Secret), want, "{before:?} → {now:?}");
            assert!(l.unsettled().is_empty());
        }
    }

    #[test]
    fn a_written_secret_needs_a_fresh_stamp_before_it_can_settle() {
        let mut l = one(Some("OLD"));
        l.wrote(0, Part::Id, "NEW");
        assert!(l.needs_stamp(0, Part::Id));
        // Without a stamp a lost restore cannot be settled: it stays unknown.
        l.write_failed(0, Part::Id, "OLD", true);
        l.settle(0, Part::Id, at(9));
        assert_eq!(l.held(0), Held::Unknown);
        // With one it can.
        let mut l = one(Some("OLD"));
        l.wrote(0, Part::Id, "NEW");
        l.stamped(0, Part::Id, at(7));
        l.write_failed(0, Part::Id, "OLD", true);
        l.settle(0, Part::Id, at(7));
        assert_eq!(*l.holds(0, Part::Id), k("NEW"));
        assert!(!l.needs_stamp(0, Part::Id));
    }

    #[test]
    fn who_may_hold_what() {
        let mut l = Ledger::new(vec![
            [(k("OLD"), at(0)), (k("OLD"), at(0))],
            [(Holding::Key(None), None), (Holding::Key(None), None)],
        ]);
        assert!(l.may_hold("OLD") && !l.may_hold("NEW"));
        assert!(!l.new_key_went_out());
        l.write_failed(1, Part::Id, "NEW", false);
        assert!(
            !l.new_key_went_out(),
            "a write GitHub refused carried nothing"
        );
        assert!(!l.may_hold("NEW"));
        l.sending(0, Part::Id, true);
        l.wrote(0, Part::Id, "NEW");
        assert!(l.may_hold("NEW"));
        assert!(l.id_split_from(0, "OLD"));
        assert_eq!(l.parts_not_holding(0, "OLD"), vec![Part::Id]);
        assert!(!l.all_hold("NEW"));
        assert_eq!(l.held(1), Held::Nothing);
    }

    #[test]
    fn two_lost_writes_in_a_row() {
        let mut l = one(Some("OLD"));
        l.write_failed(0, Part::Id, "NEW", true);
        l.write_failed(0, Part::Id, "NEW", true);
        l.settle(0, Part::Id, at(0));
        assert_eq!(*l.holds(0, Part::Id), k("OLD"));
        let mut l = one(Some("OLD"));
        l.write_failed(0, Part::Id, "NEW", true);
        l.write_failed(0, Part::Id, "OLD", true);
        assert!(
            l.unsettled().is_empty(),
            "two values in flight cannot be settled"
        );
        l.settle(0, Part::Id, at(3));
        assert_eq!(l.held(0), Held::Unknown);
        assert!(l.may_hold("NEW") && l.may_hold("OLD"));
    }

    #[test]
    fn descriptions() {
        let none = |_: &str| false;
        let names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY");
        assert_eq!(Held::Key("K2".into()).describe(names, &none), "K2");
        assert_eq!(
            Held::Key("K2".into()).describe(names, &|k| k == "K2"),
            "K2 (deleted: broken until rotated)"
        );
        assert_eq!(
            Held::Split {
                id: Some("K2".into()),
                secret: None
            }
            .describe(names, &none),
            "mismatched: AWS_ACCESS_KEY_ID holds K2, AWS_SECRET_ACCESS_KEY holds nothing"
        );
        assert_eq!(Held::Nothing.describe(names, &none), "no key");
    }
}
