//! What one run works with: the ports, the settings, and where its messages go.

use chrono::{DateTime, Utc};

use super::journal::HolderRun;
use super::plan::Options;
use super::verify::VerifySettings;
use crate::manifest::UserSpec;
use crate::ports::{Clock, Events, Ports, StepKey, Stop};

/// The ports and settings one run works with.
pub struct Ctx<'a, P: Ports> {
    pub ports: &'a P,
    pub events: &'a dyn Events,
    pub verify: VerifySettings,
    pub step_key: Option<&'a StepKey>,
    pub opts: &'a Options,
    pub dry_run: bool,
    pub lease: &'a LeaseSettings,
    /// Set on SIGINT/SIGTERM: no new mutation starts.
    pub stop: &'a Stop,
}

impl<'a, P: Ports> Ctx<'a, P> {
    /// The same context, reporting to `events` (one user's own log).
    pub fn with_events<'b>(&self, events: &'b dyn Events) -> Ctx<'b, P>
    where
        'a: 'b,
    {
        Ctx {
            ports: self.ports,
            events,
            verify: self.verify.clone(),
            step_key: self.step_key,
            opts: self.opts,
            dry_run: self.dry_run,
            lease: self.lease,
            stop: self.stop,
        }
    }
    pub fn iam(&self) -> &'a P::Iam {
        self.ports.iam()
    }
    pub fn store(&self) -> &'a P::Store {
        self.ports.store()
    }
    pub fn workflows(&self) -> &'a P::Workflows {
        self.ports.workflows()
    }
    pub fn clock(&self) -> &'a P::Clock {
        self.ports.clock()
    }
}

/// One user's run as the executor's parts see it: the context, the user, and until when this
/// run's lease holds (once taken). Copied into each call, so the parts borrow nothing of the
/// executor.
pub(super) struct Scene<'c, 'a, P: Ports> {
    pub ctx: &'c Ctx<'a, P>,
    pub user: &'c UserSpec,
    pub lease_until: Option<DateTime<Utc>>,
}

impl<P: Ports> Clone for Scene<'_, '_, P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: Ports> Copy for Scene<'_, '_, P> {}

impl<P: Ports> Scene<'_, '_, P> {
    /// Now, in whole seconds (what the journal and the lease record).
    pub fn now(&self) -> DateTime<Utc> {
        let t = self.ctx.clock().now();
        DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
    }
    pub fn name(&self) -> &str {
        &self.user.name
    }
    /// Whether this run's lease lasts long enough for `calls` more mutating calls, each with
    /// twice the call timeout to spare (before the lease is taken: yes).
    pub fn lease_holds(&self, calls: i32) -> bool {
        self.lease_until.is_none_or(|until| {
            until - self.ctx.clock().now() >= self.ctx.lease.call_timeout * (2 * calls.max(1))
        })
    }
}

/// Attempts for the idempotent calls the core repeats on purpose (tags, secret writes while
/// compensating): the same value written again is harmless.
pub(super) const ATTEMPTS: usize = 3;

/// `call`, tried [`ATTEMPTS`] times until it succeeds: the last error otherwise.
pub(super) async fn retry<T, E, F, Fut>(mut call: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt >= ATTEMPTS => return Err(e),
            Err(_) => attempt += 1,
        }
    }
}

/// How this run takes the lease on a user (CONTRACT §5).
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// This run's id, written in the lease.
    pub run_id: String,
    /// How long to wait between writing the lease and reading it back: two runs that both saw
    /// the lease free both write it, and the wait lets the later write win for both of them.
    pub settle: std::time::Duration,
    /// How long the lease lasts (past the verification timeout), should the run die.
    pub ttl: chrono::Duration,
    /// The workflow run and runner this run is, in Actions: written in the lease, so a later
    /// run can ask GitHub whether the holder is gone.
    pub github: Option<HolderRun>,
    /// The longest one AWS or GitHub call may take: no mutation starts unless the lease has
    /// twice that left (CONTRACT §12: a lease that expires under a call fences nothing).
    pub call_timeout: chrono::Duration,
}
