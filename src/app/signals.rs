//! SIGINT and SIGTERM (how the runner cancels a job, CONTRACT §12): before anything changes a
//! signal ends the run at once; while changing, no new mutation starts, the users' runs get a
//! moment to reach their next stop point, and what is left gives its leases back.

use std::future::Future;
use std::time::Duration;

use super::Stop;
use crate::exit::Exit;

/// How long a stopped run's users get to reach their next stop point by themselves (a pair
/// being written is finished), and then how long giving their leases back may take: within
/// the 5 seconds CONTRACT §12 allows, well before the runner's SIGKILL.
pub(super) const STOP_WITHIN: Duration = Duration::from_millis(2500);
pub(super) const GIVE_BACK_WITHIN: Duration = Duration::from_millis(2000);

/// How the runner cancels a job: SIGINT, then SIGTERM 7.5 s later, then SIGKILL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub(super) fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
    pub(super) fn exit(self) -> Exit {
        match self {
            Signal::Interrupt => Exit::Interrupted,
            Signal::Terminate => Exit::Terminated,
        }
    }
}

/// SIGINT and SIGTERM, listened to by a changing command from before its reads (the default
/// would end the process at once, lease and all). Where they cannot be listened to, none ever
/// arrives.
pub struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl Signals {
    /// None ever arrives (a command that changes nothing ends at once, as any program does).
    pub fn none() -> Self {
        Signals(None)
    }
    pub fn listen() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Signals(
            signal(SignalKind::interrupt())
                .ok()
                .zip(signal(SignalKind::terminate()).ok()),
        )
    }
    async fn recv(&mut self) -> Signal {
        match &mut self.0 {
            Some((int, term)) => tokio::select! {
                _ = int.recv() => Signal::Interrupt,
                _ = term.recv() => Signal::Terminate,
            },
            None => std::future::pending().await,
        }
    }
}

/// Reads that change nothing, unless a signal arrives first: then the run ends at once with
/// the signal's exit code, nothing changed.
pub(super) async fn before_changes<T>(
    reads: impl Future<Output = T>,
    signals: &mut Signals,
) -> Result<T, Stop> {
    tokio::select! {
        t = reads => Ok(t),
        s = signals.recv() => Err(Stop::new(
            s.exit(),
            format!("stopped by {} while reading, before anything changed", s.name()),
        )),
    }
}

/// Runs `acting` to its end, unless a signal arrives: then no new mutation starts (`stop`),
/// the runs get [`STOP_WITHIN`] to reach their next stop point, and what is left of them is
/// dropped. Returns the signal, if one came.
pub(super) async fn interruptible(
    acting: impl Future<Output = ()>,
    signals: &mut Signals,
    stop: &crate::ports::Stop,
) -> Option<Signal> {
    tokio::pin!(acting);
    tokio::select! {
        () = &mut acting => None,
        s = signals.recv() => {
            stop.request();
            let _ = tokio::time::timeout(STOP_WITHIN, &mut acting).await;
            Some(s)
        }
    }
}
