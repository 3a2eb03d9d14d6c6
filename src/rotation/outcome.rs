//! What a run says about one user: the outcome (CONTRACT §7), what each consumer holds and
//! what happened to it, and the keys as the run left them. The reports (`report.rs`) and the
//! outputs (`app.rs`) read these and nothing else of the core.

use crate::exit::RUN_AGAIN;
use std::fmt;

use serde::Serialize;

use super::journal::Journal;
use super::ledger::Held;
use super::state::State;
use super::verify::RunResult;
use crate::exit::Exit;
use crate::manifest::{Consumer, UserSpec};
use crate::model::{KeyInfo, LastUse};
use crate::ports::{IamError, IamErrorKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Status,
    Rotate,
    Deactivate,
    Delete,
}

/// Why a user could not even be planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Bad input, manifest or credentials (exit 2).
    Invalid(String),
    /// Something failed that may work on a retry (exit 1).
    Failed(String),
}

impl Fault {
    /// What went wrong, in words.
    pub fn message(&self) -> &str {
        match self {
            Fault::Invalid(m) | Fault::Failed(m) => m,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Nothing(String),
    Refused(String),
    Invalid(String),
    /// Dry run: the steps that would be taken.
    Planned(Vec<String>),
    Rotated,
    Deactivated,
    Deleted,
    /// `rotate --force` put the old key back everywhere (a repair).
    RolledBack(String),
    /// Not started: the hour's write budget cannot fit the whole rotation; the next run takes it.
    Deferred(String),
    /// An operation failed; compensation (if any) has run.
    Failed(String),
    /// `status`: nothing was asked.
    Reported,
    /// Stopped by a signal before it finished: where it stopped.
    Interrupted(String),
}

impl Outcome {
    /// CONTRACT §7.
    pub fn exit(&self) -> Exit {
        match self {
            Outcome::Failed(_) | Outcome::Interrupted(_) => Exit::Failed,
            Outcome::Invalid(_) => Exit::Invalid,
            Outcome::Refused(_) => Exit::Refused,
            _ => Exit::Ok,
        }
    }

    /// A user whose account could not be reached (CONTRACT §15), with the exit code it carries.
    pub fn unreached(code: Exit, why: &str) -> Outcome {
        let why = why.to_owned();
        match code {
            Exit::Invalid => Outcome::Invalid(why),
            Exit::Refused => Outcome::Refused(why),
            _ => Outcome::Failed(why),
        }
    }

    /// What a command that finished its plan did.
    pub fn done(command: Command) -> Outcome {
        match command {
            Command::Rotate => Outcome::Rotated,
            Command::Deactivate => Outcome::Deactivated,
            Command::Delete => Outcome::Deleted,
            Command::Status => Outcome::Reported,
        }
    }

    /// The outcome when reading the user failed: `status` reports what it read and still
    /// fails; any other command changed nothing.
    pub fn of_fault(fault: Fault, command: Command) -> Outcome {
        match fault {
            Fault::Invalid(m) => Outcome::Invalid(m),
            Fault::Failed(m) if command == Command::Status => Outcome::Failed(m),
            Fault::Failed(m) => Outcome::Failed(format!("{m}. {RUN_AGAIN}")),
        }
    }
}

/// What happened to one consumer in this run. Serialised as the words the JSON report has
/// always carried (`report.schema.json`: a string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerResult {
    Unchanged,
    /// `status` could not read its store: nothing is said of what it holds.
    NotRead,
    WouldUpdate,
    /// Dry run: a split pair would get this id back.
    WouldMend(String),
    Updated,
    WriteFailed(String),
    /// A split pair got this id back beside its secret.
    Mended(String),
    Restored,
    RestoreFailed(String),
}

impl fmt::Display for ConsumerResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsumerResult::Unchanged => f.write_str("unchanged"),
            ConsumerResult::NotRead => f.write_str("not read (its store could not be read)"),
            ConsumerResult::WouldUpdate => f.write_str("would be updated (dry run)"),
            ConsumerResult::WouldMend(id) => write!(f, "would get the id {id} back (dry run)"),
            ConsumerResult::Updated => f.write_str("updated"),
            ConsumerResult::WriteFailed(e) => write!(f, "write failed: {e}"),
            ConsumerResult::Mended(id) => write!(f, "mended: the id {id} back beside its secret"),
            ConsumerResult::Restored => f.write_str("restored to the old key"),
            ConsumerResult::RestoreFailed(e) => write!(f, "restore failed: {e}"),
        }
    }
}

impl Serialize for ConsumerResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What happened to one consumer, and which key it holds afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerReport {
    pub consumer: Consumer,
    pub result: ConsumerResult,
    /// The key id it holds; a description when its two secrets disagree or are unknown.
    pub holds: Option<String>,
    /// The same, as data.
    pub held: Held,
    /// Who reads it, where the store says ("selected: 3 repositories").
    pub access: Option<String>,
}

/// The user's keys as this run read (or left) them.
#[derive(Clone, Debug, Default)]
pub struct KeyReport {
    pub state: Option<State>,
    /// Rotation is due.
    pub due: bool,
    /// `delete` would delete the old key now (its grace has passed).
    pub deletion_due: bool,
    /// Oldest first.
    pub list: Vec<KeyInfo>,
    pub last_used: Vec<(String, LastUse)>,
    /// The journal on the user as this run read (or left) it.
    pub journal: Option<Journal>,
    pub new: Option<String>,
    pub old: Option<String>,
}

/// Everything the reports need about one user.
#[derive(Clone, Debug)]
pub struct UserReport {
    pub user: UserSpec,
    pub outcome: Outcome,
    /// Why a person is needed (a scheduled run is loud: exit 3).
    pub attention: Option<String>,
    pub keys: KeyReport,
    pub consumers: Vec<ConsumerReport>,
    /// Verification workflow runs, in manifest order.
    pub runs: Vec<RunResult>,
    pub notes: Vec<String>,
    /// The AWS account the user is in, when known (CONTRACT §15).
    pub account: Option<String>,
    /// An exposure of the user's keys, when one is known (CONTRACT §17).
    pub exposure: Option<ExposureReport>,
}

/// What a person told of an exposure needs: the sighting, whether AWS's quarantine policy is
/// still attached, and the evidence of who used the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExposureReport {
    pub sighting: crate::rotation::journal::Exposure,
    pub quarantined: bool,
    /// CloudTrail's calls with the exposed keys since the sighting, newest first (the app
    /// reads them after the run), or why they could not be read.
    pub trail: Option<Result<Vec<crate::ports::TrailEvent>, String>>,
}

impl UserReport {
    pub fn new(user: &UserSpec, outcome: Outcome) -> Self {
        Self {
            user: user.clone(),
            outcome,
            attention: None,
            keys: KeyReport::default(),
            consumers: Vec::new(),
            runs: Vec::new(),
            notes: Vec::new(),
            account: None,
            exposure: None,
        }
    }
    pub fn rotated(&self) -> bool {
        self.outcome == Outcome::Rotated
    }
    /// CONTRACT §7, with §4's rule that a user who needs a person makes the run loud.
    pub fn exit(&self) -> Exit {
        match self.outcome.exit() {
            Exit::Ok if self.attention.is_some() => Exit::Refused,
            e => e,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.exit().code()
    }
}

/// How an act ended well.
pub(super) enum Done {
    Finished,
    /// Only the journal changed (a moved user's retirement recorded, or its tags cleared): as
    /// good as nothing to do, in these words.
    Noted(String),
    /// A repair put the old key back everywhere.
    Rolled(String),
}

/// How an act stopped.
pub(super) enum Halt {
    /// An operation failed (compensation has run): exit 1.
    Failed(String),
    /// A lease or a re-read stopped it before it acted: exit 3.
    Refused(String),
    /// A stop was requested (a signal): no new mutation was started.
    Interrupted(String),
}

impl Halt {
    pub(super) fn outcome(self) -> Outcome {
        match self {
            Halt::Failed(why) => Outcome::Failed(why),
            Halt::Refused(why) => Outcome::Refused(why),
            Halt::Interrupted(why) => Outcome::Interrupted(why),
        }
    }
}

pub(super) fn iam_fault(user: &UserSpec, action: &str, e: IamError) -> Fault {
    match e.kind {
        IamErrorKind::NoSuchUser => Fault::Invalid(format!(
            "{}: IAM user {:?} does not exist in this account: fix the name in the manifest or create the user",
            user.origin, user.name
        )),
        IamErrorKind::Credentials => Fault::Invalid(with_action(action, e)),
        _ => Fault::Failed(with_action(action, e)),
    }
}

/// The error, prefixed with the action unless it already names it.
fn with_action(action: &str, e: IamError) -> String {
    if e.message.contains(action) {
        e.message
    } else {
        format!("{action}: {}", e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words are part of the JSON contract: each variant keeps its text.
    #[test]
    fn consumer_results_read_as_the_report_has_always_said() {
        let cases = [
            (ConsumerResult::Unchanged, "unchanged"),
            (ConsumerResult::WouldUpdate, "would be updated (dry run)"),
            (
                ConsumerResult::WouldMend("K".into()),
                "would get the id K back (dry run)",
            ),
            (ConsumerResult::Updated, "updated"),
            (ConsumerResult::WriteFailed("e".into()), "write failed: e"),
            (
                ConsumerResult::Mended("K".into()),
                "mended: the id K back beside its secret",
            ),
            (ConsumerResult::Restored, "restored to the old key"),
            (
                ConsumerResult::RestoreFailed("e".into()),
                "restore failed: e",
            ),
        ];
        for (result, words) in cases {
            assert_eq!(result.to_string(), words);
            assert_eq!(serde_json::to_value(&result).unwrap(), words);
        }
    }

    #[test]
    fn a_status_that_could_not_read_fails_without_claiming_nothing_changed() {
        let f = || Fault::Failed("GitHub is unreachable".into());
        assert_eq!(
            Outcome::of_fault(f(), Command::Status),
            Outcome::Failed("GitHub is unreachable".into())
        );
        assert!(matches!(
            Outcome::of_fault(f(), Command::Rotate),
            Outcome::Failed(m) if m.ends_with(RUN_AGAIN)
        ));
    }
}
