//! The `--json` document (CONTRACT §1): one per run. Its wire shape, [`ReportView`], is the
//! committed schema's source (`schema/report.schema.json`) and keeps a field per kind of
//! answer; a document is made only from a [`Body`], so it carries exactly one of them.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use super::{UserView, VerifyView, view};
use crate::rotation::outcome::UserReport;

/// What a document answers: the users, why the run stopped early, `verify`'s finding, or
/// `migrate`'s report.
pub enum Body {
    Users(Vec<UserView>),
    Error(ErrorView),
    Verify(VerifyView),
    Migration(crate::migrate::report::MigrationView),
}

/// The whole report (`--json`; its shape is documented in the README).
#[derive(Serialize, JsonSchema)]
pub struct ReportView {
    pub command: String,
    pub users: Vec<UserView>,
    /// Set when the run stopped before any user was looked at (then `users` is empty).
    pub error: Option<ErrorView>,
    /// `verify`: what the credentials turned out to be.
    pub verify: Option<VerifyView>,
    /// `migrate`: the provider, and each user's role, consumers and workflows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<crate::migrate::report::MigrationView>,
}

impl ReportView {
    /// The document of `command` answering `body`.
    pub fn of(command: &str, body: Body) -> Self {
        let mut doc = ReportView {
            command: command.into(),
            users: Vec::new(),
            error: None,
            verify: None,
            migration: None,
        };
        match body {
            Body::Users(users) => doc.users = users,
            Body::Error(e) => doc.error = Some(e),
            Body::Verify(v) => doc.verify = Some(v),
            Body::Migration(m) => doc.migration = Some(m),
        }
        doc
    }
}

/// The `--json` document of `verify`.
pub fn verify_json(v: VerifyView) -> String {
    json(&ReportView::of("verify", Body::Verify(v)))
}

/// `migrate`'s report as the `--json` document.
pub fn migration_json(v: crate::migrate::report::MigrationView) -> String {
    json(&ReportView::of("migrate", Body::Migration(v)))
}

/// Why a run stopped before any user was looked at.
#[derive(Serialize, JsonSchema)]
pub struct ErrorView {
    /// The process's exit code (CONTRACT §7): 1 failed, 2 invalid input, 3 refused.
    pub exit_code: u8,
    pub message: String,
}

/// The `--json` document of a run that stopped early.
pub fn error_json(command: &str, exit_code: u8, message: &str) -> String {
    json(&ReportView::of(
        command,
        Body::Error(ErrorView {
            exit_code,
            message: message.into(),
        }),
    ))
}

/// The JSON Schema of the `--json` document (committed as `schema/report.schema.json`).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ReportView);
    serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n"
}

/// The users' reports as the document of `command`.
pub fn views(command: &str, reports: &[UserReport], now: DateTime<Utc>) -> ReportView {
    ReportView::of(
        command,
        Body::Users(reports.iter().map(|r| view(r, now)).collect()),
    )
}

/// The `--json` document.
pub fn json(report: &ReportView) -> String {
    serde_json::to_string_pretty(report).expect("the report serializes") + "\n"
}
