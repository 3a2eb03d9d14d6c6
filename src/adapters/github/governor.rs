//! One governor for every content-creating request of the process (CONTRACT §11): at least
//! `spacing` between two writes, at most `per_minute` in any minute and `per_hour` in any hour,
//! and a pause for everyone when GitHub answers with a secondary rate limit. Pure: times are
//! offsets from the governor's start, so a test drives it with a fake clock.

use std::collections::VecDeque;
use std::time::Duration;

/// GitHub's guidance for one token, with room left for a person's own work in the hour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub spacing: Duration,
    pub per_minute: usize,
    pub per_hour: usize,
    /// The windows of those caps: a minute and an hour, unless GitHub's clock is sped up
    /// (benchmarks against a fake).
    pub minute: Duration,
    pub hour: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            spacing: Duration::from_secs(1),
            per_minute: 80,
            per_hour: 450,
            minute: Duration::from_secs(60),
            hour: Duration::from_secs(3600),
        }
    }
}

impl Limits {
    /// The same limits on a clock running `factor` times fast: spacing and windows divided.
    pub fn sped_up(self, factor: u32) -> Self {
        let f = factor.max(1);
        Self {
            spacing: self.spacing / f,
            minute: self.minute / f,
            hour: self.hour / f,
            ..self
        }
    }
}

#[derive(Clone, Debug)]
pub struct Governor {
    limits: Limits,
    /// When each write of the last hour went, oldest first.
    sent: VecDeque<Duration>,
    paused_until: Duration,
}

impl Governor {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            sent: VecDeque::new(),
            paused_until: Duration::ZERO,
        }
    }

    fn forget_before(&mut self, now: Duration) {
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= self.limits.hour)
        {
            self.sent.pop_front();
        }
    }

    /// The earliest time at or after `now` when the next write may go.
    pub fn next_slot(&mut self, now: Duration) -> Duration {
        self.forget_before(now);
        let mut at = now.max(self.paused_until);
        if let Some(last) = self.sent.back() {
            at = at.max(*last + self.limits.spacing);
        }
        let n = self.sent.len();
        // The write `per_minute` back must be a minute old; likewise for the hour.
        if self.limits.per_minute > 0 && n >= self.limits.per_minute {
            at = at.max(self.sent[n - self.limits.per_minute] + self.limits.minute);
        }
        if self.limits.per_hour > 0 && n >= self.limits.per_hour {
            at = at.max(self.sent[n - self.limits.per_hour] + self.limits.hour);
        }
        at
    }

    /// A write went at `at` (the slot it was given).
    pub fn record(&mut self, at: Duration) {
        self.sent.push_back(at);
    }

    /// GitHub asked to wait: every write waits, not only the one that was refused.
    pub fn pause_until(&mut self, until: Duration) {
        self.paused_until = self.paused_until.max(until);
    }

    /// How many writes the current hour still allows.
    pub fn left_this_hour(&mut self, now: Duration) -> usize {
        self.forget_before(now);
        self.limits.per_hour.saturating_sub(self.sent.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many callers asking for writes at random times, served in order on a fake clock: no two
    /// writes closer than the spacing, never more than the caps in any window.
    #[test]
    fn writes_keep_the_spacing_and_the_caps_on_a_fake_clock() {
        for (limits, asks) in [
            (Limits::default(), 1200),
            (
                Limits {
                    spacing: Duration::from_millis(100),
                    ..Limits::default()
                },
                1200,
            ),
            // A clock sped up tenfold: the windows shrink with the spacing.
            (Limits::default().sped_up(10), 1200),
            (
                Limits {
                    spacing: Duration::ZERO,
                    per_minute: 5,
                    per_hour: 12,
                    ..Limits::default()
                },
                60,
            ),
        ] {
            let mut g = Governor::new(limits.clone());
            let mut seed = 0x2545_F491_4F6C_DD1Du64;
            let mut now = Duration::ZERO;
            let mut sent = Vec::new();
            for _ in 0..asks {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                now += Duration::from_millis(seed % 1500);
                let slot = g.next_slot(now);
                assert!(slot >= now);
                g.record(slot);
                sent.push(slot);
                now = slot;
            }
            for w in sent.windows(2) {
                assert!(w[1] - w[0] >= limits.spacing, "{limits:?}: {:?}", w);
            }
            for (i, t) in sent.iter().enumerate() {
                let in_minute = sent[i..]
                    .iter()
                    .take_while(|u| **u - *t < limits.minute)
                    .count();
                let in_hour = sent[i..]
                    .iter()
                    .take_while(|u| **u - *t < limits.hour)
                    .count();
                assert!(
                    in_minute <= limits.per_minute,
                    "{limits:?}: {in_minute} in a minute"
                );
                assert!(
                    in_hour <= limits.per_hour,
                    "{limits:?}: {in_hour} in an hour"
                );
            }
        }
    }

    #[test]
    fn a_secondary_limit_pauses_every_write_and_the_budget_is_counted() {
        let mut g = Governor::new(Limits {
            spacing: Duration::from_secs(1),
            per_minute: 80,
            per_hour: 3,
            ..Limits::default()
        });
        let t = Duration::from_secs(10);
        assert_eq!(g.next_slot(t), t);
        g.record(t);
        g.pause_until(Duration::from_secs(70));
        assert_eq!(
            g.next_slot(Duration::from_secs(12)),
            Duration::from_secs(70)
        );
        g.record(Duration::from_secs(70));
        g.record(Duration::from_secs(71));
        assert_eq!(g.left_this_hour(Duration::from_secs(72)), 0);
        // The fourth write waits until the first is an hour old.
        assert_eq!(
            g.next_slot(Duration::from_secs(72)),
            Duration::from_secs(3610)
        );
        assert_eq!(g.left_this_hour(Duration::from_secs(3610)), 1);
    }
}
