//! Raw inputs from either face (command line or `INPUT_*`), and the typed settings derived once.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use secrecy::SecretString;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CommandName {
    Status,
    Rotate,
    Deactivate,
    Delete,
    Verify,
}

/// Rotates AWS IAM access keys and writes them into every consumer's GitHub secrets.
#[derive(Debug, Default, Parser)]
#[command(name = "aws-key-rotator", version, about)]
pub struct Cli {
    /// What to do: status | rotate | deactivate | delete | verify
    #[arg(value_enum)]
    pub command: Option<CommandName>,
    /// The manifest (default .github/aws-key-rotation.yml, relative to GITHUB_WORKSPACE)
    #[arg(long, value_name = "FILE")]
    pub config: Option<String>,
    /// Only this IAM user of the manifest
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Without a manifest: the IAM user whose consumers are this repository and --environments
    #[arg(long, value_name = "NAME")]
    pub iam_user: Option<String>,
    /// Without a manifest: environments of this repository (comma separated)
    #[arg(long, value_name = "LIST")]
    pub environments: Option<String>,
    /// Print the plan of every mutating call and make none
    #[arg(long)]
    pub dry_run: bool,
    /// Rotate a young key; recover an incomplete rotation; deactivate despite a recent use
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// rotate: delete a leftover Inactive key first
    #[arg(long)]
    pub delete_inactive: bool,
    /// deactivate/delete: the key meant (must be the older key)
    #[arg(long, value_name = "ID")]
    pub old_access_key_id: Option<String>,
    /// deactivate: refuse when the old key was used this long after the new key was created
    #[arg(long, value_name = "MINUTES")]
    pub straggler_window_minutes: Option<String>,
    /// deactivate: grace period after the new key was verified (default: the manifest's, else 24)
    #[arg(long, value_name = "HOURS")]
    pub deactivate_after_hours: Option<String>,
    /// delete: grace period after the old key was deactivated (default: the manifest's, else 7)
    #[arg(long, value_name = "DAYS")]
    pub delete_after_days: Option<String>,
    /// verify: the access key id the credentials must be
    #[arg(long, value_name = "ID")]
    pub expected_access_key_id: Option<String>,
    /// How long to wait for verification workflows
    #[arg(long, value_name = "MINUTES")]
    pub verify_timeout_minutes: Option<String>,
    /// How often to poll verification workflows
    #[arg(long, value_name = "SECONDS")]
    pub poll_interval_seconds: Option<String>,
}

/// Inputs as strings, whichever face they came from ("" means not set).
#[derive(Debug, Default, Clone)]
pub struct RawInputs {
    pub command: String,
    pub config: String,
    pub user: String,
    pub iam_user: String,
    pub environments: String,
    pub github_token: Option<SecretString>,
    pub dry_run: String,
    pub force: String,
    pub json: String,
    pub delete_inactive: String,
    pub old_access_key_id: String,
    pub straggler_window_minutes: String,
    pub deactivate_after_hours: String,
    pub delete_after_days: String,
    pub expected_access_key_id: String,
    pub verify_timeout_minutes: String,
    pub poll_interval_seconds: String,
}

impl RawInputs {
    pub fn from_cli(cli: Cli, github_token: Option<SecretString>) -> Self {
        let b = |v: bool| if v { "true".to_owned() } else { String::new() };
        Self {
            command: cli
                .command
                .and_then(|c| c.to_possible_value())
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default(),
            config: cli.config.unwrap_or_default(),
            user: cli.user.unwrap_or_default(),
            iam_user: cli.iam_user.unwrap_or_default(),
            environments: cli.environments.unwrap_or_default(),
            github_token,
            dry_run: b(cli.dry_run),
            force: b(cli.force),
            json: b(cli.json),
            delete_inactive: b(cli.delete_inactive),
            old_access_key_id: cli.old_access_key_id.unwrap_or_default(),
            straggler_window_minutes: cli.straggler_window_minutes.unwrap_or_default(),
            deactivate_after_hours: cli.deactivate_after_hours.unwrap_or_default(),
            delete_after_days: cli.delete_after_days.unwrap_or_default(),
            expected_access_key_id: cli.expected_access_key_id.unwrap_or_default(),
            verify_timeout_minutes: cli.verify_timeout_minutes.unwrap_or_default(),
            poll_interval_seconds: cli.poll_interval_seconds.unwrap_or_default(),
        }
    }
}

/// Where the users come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    /// A path; `explicit` when the user named it (then it must exist).
    File { path: String, explicit: bool },
}

/// Validated settings.
#[derive(Debug)]
pub struct Settings {
    pub command: CommandName,
    pub config: ManifestSource,
    pub user: Option<String>,
    pub iam_user: Option<String>,
    pub environments: String,
    pub github_token: Option<SecretString>,
    pub dry_run: bool,
    pub force: bool,
    pub json: bool,
    pub delete_inactive: bool,
    pub old_access_key_id: Option<String>,
    pub straggler_window: chrono::Duration,
    /// Overrides of the manifest's grace periods.
    pub deactivate_after: Option<chrono::Duration>,
    pub delete_after: Option<chrono::Duration>,
    pub expected_access_key_id: Option<String>,
    pub verify_timeout: Duration,
    pub poll_interval: Duration,
}

pub const DEFAULT_CONFIG: &str = ".github/aws-key-rotation.yml";

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn boolean(name: &str, v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "false" => Ok(false),
        "true" => Ok(true),
        other => Err(format!("input {name} must be true or false, not {other:?}")),
    }
}

fn number(name: &str, v: &str, default: u64, min: u64) -> Result<u64, String> {
    match v.trim() {
        "" => Ok(default),
        s => match s.parse::<u64>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(format!(
                "input {name} must be a whole number of at least {min}, not {s:?}"
            )),
        },
    }
}

/// A whole number that may be left unset (then the manifest decides).
fn optional_number(name: &str, v: &str) -> Result<Option<u64>, String> {
    match v.trim() {
        "" => Ok(None),
        s => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("input {name} must be a whole number (0 or more), not {s:?}")),
    }
}

impl Settings {
    pub fn from_raw(raw: RawInputs) -> Result<Self, String> {
        let command = match raw.command.trim() {
            "" => CommandName::Rotate,
            s => CommandName::from_str(s, true).map_err(|_| {
                format!("input command must be one of status, rotate, deactivate, delete, verify; not {s:?}")
            })?,
        };
        let config = match opt(&raw.config) {
            Some(path) => ManifestSource::File {
                path,
                explicit: true,
            },
            None => ManifestSource::File {
                path: DEFAULT_CONFIG.into(),
                explicit: false,
            },
        };
        Ok(Self {
            command,
            config,
            user: opt(&raw.user),
            iam_user: opt(&raw.iam_user),
            environments: raw.environments,
            github_token: raw.github_token,
            dry_run: boolean("dry-run", &raw.dry_run)?,
            force: boolean("force", &raw.force)?,
            json: boolean("json", &raw.json)?,
            delete_inactive: boolean("delete-inactive", &raw.delete_inactive)?,
            old_access_key_id: opt(&raw.old_access_key_id),
            straggler_window: chrono::Duration::minutes(number(
                "straggler-window-minutes",
                &raw.straggler_window_minutes,
                15,
                0,
            )? as i64),
            deactivate_after: optional_number(
                "deactivate-after-hours",
                &raw.deactivate_after_hours,
            )?
            .map(|h| chrono::Duration::hours(h as i64)),
            delete_after: optional_number("delete-after-days", &raw.delete_after_days)?
                .map(|d| chrono::Duration::days(d as i64)),
            expected_access_key_id: opt(&raw.expected_access_key_id),
            verify_timeout: Duration::from_secs(
                60 * number("verify-timeout-minutes", &raw.verify_timeout_minutes, 30, 1)?,
            ),
            poll_interval: Duration::from_secs(number(
                "poll-interval-seconds",
                &raw.poll_interval_seconds,
                10,
                1,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let s = Settings::from_raw(RawInputs::default()).unwrap();
        assert_eq!(s.command, CommandName::Rotate);
        assert_eq!(s.straggler_window, chrono::Duration::minutes(15));
        assert_eq!(s.verify_timeout, Duration::from_secs(1800));
        assert_eq!(
            s.config,
            ManifestSource::File {
                path: DEFAULT_CONFIG.into(),
                explicit: false
            }
        );
        let bad = RawInputs {
            dry_run: "yes".into(),
            ..RawInputs::default()
        };
        assert_eq!(
            Settings::from_raw(bad).unwrap_err(),
            "input dry-run must be true or false, not \"yes\""
        );
        let bad = RawInputs {
            command: "spin".into(),
            ..RawInputs::default()
        };
        assert!(
            Settings::from_raw(bad)
                .unwrap_err()
                .contains("not \"spin\"")
        );
        let bad = RawInputs {
            straggler_window_minutes: "-1".into(),
            ..RawInputs::default()
        };
        assert!(
            Settings::from_raw(bad)
                .unwrap_err()
                .contains("straggler-window-minutes")
        );
    }
}
