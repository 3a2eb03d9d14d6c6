//! The step's outputs (CONTRACT §6) and the run's exit code, from every user's report.

use crate::exit::Exit;
use crate::rotation::outcome::UserReport;

/// The most serious outcome wins: invalid, then failed, then refused.
pub fn exit_code(reports: &[UserReport]) -> Exit {
    reports
        .iter()
        .map(UserReport::exit)
        .max()
        .unwrap_or(Exit::Ok)
}

/// CONTRACT §6. With one user the values are that user's; with several, `state` and the key
/// ids are `user=value` pairs joined by commas, and `rotated` is true when any user rotated.
/// `users` and `users-due` (JSON lists) feed a workflow matrix; `users-deletion-due` lets a
/// workflow skip its deletion job; `needs-person` names the users this run left to a person
/// (each one's exit would be 3: a refusal, or a state only a person can resolve).
pub(super) fn outputs(reports: &[UserReport]) -> Vec<(&'static str, String)> {
    let pick = |f: &dyn Fn(&UserReport) -> Option<String>| -> String {
        match reports {
            [one] => f(one).unwrap_or_default(),
            many => many
                .iter()
                .filter_map(|r| f(r).map(|v| format!("{}={v}", r.user.name)))
                .collect::<Vec<_>>()
                .join(","),
        }
    };
    // JSON lists of user names, for a workflow matrix (`fromJSON`).
    let names = |keep: &dyn Fn(&UserReport) -> bool| {
        serde_json::to_string(
            &reports
                .iter()
                .filter(|r| keep(r))
                .map(|r| r.user.name.as_str())
                .collect::<Vec<_>>(),
        )
        .expect("names serialize")
    };
    vec![
        ("state", pick(&|r| r.keys.state.map(|s| s.to_string()))),
        (
            "rotated",
            reports.iter().any(UserReport::rotated).to_string(),
        ),
        ("new-access-key-id", pick(&|r| r.keys.new.clone())),
        ("old-access-key-id", pick(&|r| r.keys.old.clone())),
        ("users", names(&|_| true)),
        ("users-due", names(&|r| r.keys.due)),
        ("users-deletion-due", names(&|r| r.keys.deletion_due)),
        // An exposed key `status` reports is loud, yet due: `rotate` answers it without a
        // person (CONTRACT §17), so it is not named here; a refused answer is, by `rotate`.
        (
            "needs-person",
            names(&|r| {
                r.exit() == Exit::Refused
                    && !(r.outcome == crate::rotation::run::Outcome::Reported
                        && r.keys.state == Some(crate::rotation::state::State::Exposed)
                        && r.keys.due)
            }),
        ),
        (
            "verification-run-urls",
            reports
                .iter()
                .flat_map(|r| r.runs.iter().filter_map(|run| run.url.clone()))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    ]
}

/// The `exit-code` output, written on every way out: a workflow tells "a user needs a person"
/// (3) from a failure (1), bad input (2) or a signal (130, 143) by it, not by the step's outcome.
pub fn exit_output(code: Exit) -> [(&'static str, String); 1] {
    [("exit-code", code.code().to_string())]
}
