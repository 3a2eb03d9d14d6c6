//! Exit codes (CONTRACT §7), in one ordered type: a run with several users exits with the most
//! serious of their codes.

/// Declared from least to most serious, so `max()` picks what a run exits with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Done, or nothing to do (including a grace period still running).
    Ok,
    /// Refused by a safety rule, or a user needs a person.
    Refused,
    /// An operation failed (after compensation).
    Failed,
    /// Invalid input, manifest or credentials; nothing changed.
    Invalid,
    /// Stopped by SIGINT (the runner cancelling the job): 130.
    Interrupted,
    /// Stopped by SIGTERM: 143.
    Terminated,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Invalid => 2,
            Exit::Refused => 3,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
        }
    }
}

/// How a refusal ends when nothing was changed and the same command may simply run again:
/// said in one place, so every such message ends alike.
pub const RUN_AGAIN: &str = "Nothing was changed; run again";

/// Why a command stopped: the exit code, what to say, and whether nothing was changed and the
/// same command may run again (then the message ends with [`RUN_AGAIN`]). Adapters return
/// errors; the app and the use cases turn them into refusals and choose the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub exit: Exit,
    pub message: String,
    pub unchanged: bool,
}

impl Refusal {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            unchanged: false,
        }
    }

    /// Nothing was changed, and running the same command again is the fix.
    pub fn run_again(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            unchanged: true,
            ..Self::new(exit, message)
        }
    }

    /// The same refusal, its message with `context` before it.
    pub fn within(self, context: &str) -> Self {
        Self {
            message: format!("{context}: {}", self.message),
            ..self
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.unchanged {
            write!(f, "{}. {RUN_AGAIN}", self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_serious_wins() {
        assert_eq!(
            [Exit::Ok, Exit::Refused, Exit::Failed].into_iter().max(),
            Some(Exit::Failed)
        );
        assert_eq!(
            [Exit::Refused, Exit::Invalid].into_iter().max(),
            Some(Exit::Invalid)
        );
        assert_eq!(
            [Exit::Ok, Exit::Failed, Exit::Invalid, Exit::Refused].map(Exit::code),
            [0, 1, 2, 3]
        );
    }
}
