//! Timing knobs, from `AWS_KEY_ROTATOR_*` variables (docs/development.md).

use std::collections::HashMap;
use std::time::Duration;

use crate::adapters::github::Pacing;

/// Users worked on at once by default: enough that one user's verification overlaps the
/// next users' writes, few enough that memory and open connections stay small.
pub const DEFAULT_CONCURRENT_USERS: usize = 8;

/// Timing knobs, from `AWS_KEY_ROTATOR_*` variables (documented in the README).
#[derive(Clone, Debug)]
pub struct Tuning {
    pub pacing: Pacing,
    pub propagation: Duration,
    /// Overrides poll-interval-seconds and verify-timeout-minutes with finer units.
    pub poll_interval: Option<Duration>,
    pub verify_timeout: Option<Duration>,
    /// How long a run waits between writing the lease and reading it back.
    pub lease_settle: Duration,
    /// How many users are read, and worked on, at once.
    pub max_concurrent_users: usize,
}

impl Tuning {
    pub fn from_env(env: &HashMap<String, String>) -> Self {
        let ms = |k: &str| {
            env.get(k)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        let mut pacing = Pacing::default();
        if let Some(d) = ms("AWS_KEY_ROTATOR_GITHUB_WRITE_INTERVAL_MS") {
            pacing.write_interval = d;
        }
        if let Some(d) = ms("AWS_KEY_ROTATOR_RETRY_BASE_MS") {
            pacing.retry_base = d;
        }
        let count = |k: &str| env.get(k).and_then(|v| v.trim().parse::<usize>().ok());
        if let Some(n) = count("AWS_KEY_ROTATOR_GITHUB_WRITES_PER_MINUTE") {
            pacing.per_minute = n;
        }
        if let Some(n) = count("AWS_KEY_ROTATOR_GITHUB_WRITES_PER_HOUR") {
            pacing.per_hour = n;
        }
        if let Some(n) = env
            .get("AWS_KEY_ROTATOR_CALL_TIMEOUT_SECONDS")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|n| (1..=600).contains(n))
        {
            pacing.call_timeout = Duration::from_secs(n);
        }
        if let Some(d) = ms("AWS_KEY_ROTATOR_CODE_SEARCH_INTERVAL_MS") {
            pacing.search_interval = d;
        }
        if let Some(n) = count("AWS_KEY_ROTATOR_GITHUB_CLOCK_SPEEDUP") {
            pacing.clock_speedup = u32::try_from(n).unwrap_or(u32::MAX).max(1);
        }
        Self {
            pacing,
            poll_interval: ms("AWS_KEY_ROTATOR_POLL_INTERVAL_MS"),
            verify_timeout: ms("AWS_KEY_ROTATOR_VERIFY_TIMEOUT_MS"),
            max_concurrent_users: count("AWS_KEY_ROTATOR_MAX_CONCURRENT_USERS")
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_CONCURRENT_USERS),
            lease_settle: ms("AWS_KEY_ROTATOR_LEASE_SETTLE_MS").unwrap_or(Duration::from_secs(3)),
            propagation: env
                .get("AWS_KEY_ROTATOR_PROPAGATION_TIMEOUT_SECONDS")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_secs(120)),
        }
    }
}
