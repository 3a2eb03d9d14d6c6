//! The run's configuration (CONTRACT §1, §2): the inputs as given by either face
//! ([`RawInputs`]: the CLI's flags or the action's `INPUT_*`), every input in one table
//! ([`inputs`]), the typed [`Settings`] derived from them once, and the timing knobs
//! ([`tuning`]). The faces fill a `RawInputs`; nothing else reads an input.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::time::Duration;

use clap::ValueEnum;
use secrecy::SecretString;

use crate::bounds::{self, Bound};

pub use inputs::{CommandName, INPUTS, Input, Kind, command_name};
pub use tuning::{DEFAULT_CONCURRENT_USERS, Tuning};
pub mod inputs;
pub mod tuning;

/// Which face the inputs came from: it decides how messages name them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Face {
    #[default]
    Action,
    Cli,
}

/// Inputs as strings, whichever face they came from ("" means not set).
#[derive(Debug, Default, Clone)]
pub struct RawInputs {
    values: BTreeMap<&'static str, String>,
    secrets: BTreeMap<&'static str, SecretString>,
    pub face: Face,
}

pub(crate) fn spec(name: &str) -> &'static Input {
    INPUTS
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} is not in INPUTS"))
}

fn token(value: &str) -> Option<SecretString> {
    let t = value.trim();
    (!t.is_empty()).then(|| SecretString::from(t.to_owned()))
}

impl RawInputs {
    /// The raw value of input `name` ("" when not set).
    pub fn get(&self, name: &str) -> &str {
        self.values
            .get(spec(name).name)
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.values.insert(spec(name).name, value.into());
        self
    }

    /// A secret input, when given and not blank.
    pub fn secret(&self, name: &str) -> Option<&SecretString> {
        self.secrets.get(spec(name).name)
    }

    pub fn set_secret(&mut self, name: &str, value: &str) -> &mut Self {
        if let Some(v) = token(value) {
            self.secrets.insert(spec(name).name, v);
        }
        self
    }

    /// The action's inputs: the runner upper-cases names and keeps dashes (`INPUT_DRY-RUN`).
    pub fn from_env(env: &HashMap<String, String>) -> Self {
        let mut raw = RawInputs::default();
        for i in INPUTS {
            let value = env
                .get(&format!("INPUT_{}", i.name.to_ascii_uppercase()))
                .cloned()
                .unwrap_or_default();
            match i.kind {
                Kind::Secret(_) => {
                    if let Some(v) = token(&value) {
                        raw.secrets.insert(i.name, v);
                    }
                }
                _ => {
                    raw.values.insert(i.name, value);
                }
            }
        }
        raw
    }

    /// How a message names input `name` to this face's user.
    pub fn named(&self, name: &str) -> String {
        named(self.face, name)
    }
}

/// How a message names input `name`: "input config" in Actions, "flag --config" on the CLI.
pub fn named(face: Face, name: &str) -> String {
    {
        let i = spec(name);
        match (face, i.kind) {
            (Face::Action, _) => format!("input {}", i.name),
            (Face::Cli, Kind::Command) => "the command".to_owned(),
            (Face::Cli, Kind::Secret(var)) => format!("env {var}"),
            (Face::Cli, _) => format!("flag --{}", i.name),
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
    /// Which face the inputs came from (messages name inputs its way).
    pub face: Face,
    pub command: CommandName,
    pub config: ManifestSource,
    pub user: Option<String>,
    pub iam_user: Option<String>,
    pub environments: String,
    pub github_token: Option<SecretString>,
    /// GitHub App authentication: the App's id and private key (exclusive with the token).
    pub app: Option<(u64, SecretString)>,
    pub dry_run: bool,
    pub force: bool,
    pub json: bool,
    pub delete_inactive: bool,
    /// `exposed-only` (CONTRACT §17): `rotate` acts for exposed users only.
    pub exposed_only: bool,
    pub old_access_key_id: Option<String>,
    pub straggler_window: chrono::Duration,
    /// Overrides of the manifest's grace periods.
    pub deactivate_after: Option<chrono::Duration>,
    pub delete_after: Option<chrono::Duration>,
    pub expected_access_key_id: Option<String>,
    pub expected_role_arn: Option<String>,
    /// Vault's JWT login (CONTRACT §14): the role, the auth mount, the token's audience.
    pub vault_role: Option<String>,
    pub vault_auth_mount: String,
    pub vault_audience: Option<String>,
    pub verify_timeout: Duration,
    pub poll_interval: Duration,
    /// Where a user that needs a person gets its issue (CONTRACT §16).
    pub issue_repository: IssueRepository,
    pub issue_token: Option<SecretString>,
    /// `policy --for`: whose policy (CONTRACT §12a).
    pub policy_for: PolicyFor,
    /// `compromised-key-id` (CONTRACT §17).
    pub compromised_key_id: Option<String>,
    /// `discover --sarif FILE` (CONTRACT §18).
    pub sarif_file: Option<String>,
}

/// Whose IAM policy `policy` prints (CONTRACT §12a): two identities, two policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyFor {
    /// The daily rotator: keys, tags and stores, never a role, provider or variable write.
    Rotator,
    /// The identity that runs `migrate` (a person, or a protected environment's workflow).
    Migrate,
}

/// `issue-repository`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueRepository {
    /// Unset: the workflow's own repository (`GITHUB_REPOSITORY`), when there is one.
    Own,
    /// `none`.
    Off,
    Named(String),
}

impl IssueRepository {
    /// The repository issues go to, given the workflow's own.
    pub fn resolve(&self, own: Option<&str>) -> Option<String> {
        match self {
            IssueRepository::Own => own.map(str::to_owned),
            IssueRepository::Off => None,
            IssueRepository::Named(r) => Some(r.clone()),
        }
    }
}

pub use crate::model::is_access_key_id;

pub const DEFAULT_CONFIG: &str = ".github/aws-key-rotation.yml";

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl RawInputs {
    fn boolean(&self, name: &str) -> Result<bool, String> {
        match self.get(name).trim().to_ascii_lowercase().as_str() {
            "" | "false" => Ok(false),
            "true" => Ok(true),
            other => Err(format!(
                "{} must be true or false, not {other:?}",
                self.named(name)
            )),
        }
    }

    /// A number in `bound`'s range (`default` when unset).
    fn number(&self, bound: Bound, default: u32) -> Result<u32, String> {
        Ok(self.optional_number(bound)?.unwrap_or(default))
    }

    /// `app-id` and `app-private-key`: both or neither, and not with `github-token`.
    fn app(&self) -> Result<Option<(u64, SecretString)>, String> {
        let id = opt(self.get("app-id"));
        let key = self.secret("app-private-key");
        match (id, key) {
            (None, None) => Ok(None),
            (Some(_), None) | (None, Some(_)) => Err(format!(
                "{} and {} go together: give both to authenticate as a GitHub App, or neither",
                self.named("app-id"),
                self.named("app-private-key")
            )),
            (Some(_), Some(_)) if self.secret("github-token").is_some() => Err(format!(
                "{} and the GitHub App ({}, {}) are exclusive: authenticate one way",
                self.named("github-token"),
                self.named("app-id"),
                self.named("app-private-key")
            )),
            (Some(id), Some(key)) => match id.parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some((n, key.clone()))),
                _ => Err(format!(
                    "{} must be the App's numeric id (its settings page shows it), not {id:?}",
                    self.named("app-id")
                )),
            },
        }
    }

    /// `issue-repository`: unset, `none`, or `owner/name`.
    fn issue_repository(&self) -> Result<IssueRepository, String> {
        match self.get("issue-repository").trim() {
            "" => Ok(IssueRepository::Own),
            s if s.eq_ignore_ascii_case("none") => Ok(IssueRepository::Off),
            s if crate::manifest::valid_repository(s) => Ok(IssueRepository::Named(s.to_owned())),
            s => Err(format!(
                "{} must be a repository as owner/name, or none to open no issues; not {s:?}",
                self.named("issue-repository")
            )),
        }
    }

    /// A number in `bound`'s range that may be left unset (then the manifest decides).
    fn optional_number(&self, bound: Bound) -> Result<Option<u32>, String> {
        match self.get(bound.name).trim() {
            "" => Ok(None),
            s => bound
                .parse(s)
                .map(Some)
                .map_err(|why| format!("{} {why}", self.named(bound.name))),
        }
    }
}

impl Settings {
    /// How a message names input `name` to this face's user.
    pub fn named(&self, name: &str) -> String {
        named(self.face, name)
    }

    pub fn from_raw(raw: RawInputs) -> Result<Self, String> {
        let command = match raw.get("command").trim() {
            "" => CommandName::Rotate,
            s => CommandName::from_str(s, true).map_err(|_| {
                format!(
                    "{} must be one of status, rotate, deactivate, delete, discover, verify, policy, migrate; not {s:?}",
                    raw.named("command")
                )
            })?,
        };
        let config = match opt(raw.get("config")) {
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
            face: raw.face,
            command,
            config,
            user: opt(raw.get("user")),
            iam_user: opt(raw.get("iam-user")),
            environments: raw.get("environments").to_owned(),
            dry_run: raw.boolean("dry-run")?,
            force: raw.boolean("force")?,
            json: raw.boolean("json")?,
            delete_inactive: raw.boolean("delete-inactive")?,
            exposed_only: raw.boolean("exposed-only")?,
            old_access_key_id: opt(raw.get("old-access-key-id")),
            straggler_window: chrono::Duration::minutes(
                raw.number(bounds::STRAGGLER_WINDOW_MINUTES, 15)?.into(),
            ),
            deactivate_after: raw
                .optional_number(bounds::DEACTIVATE_AFTER_HOURS)?
                .map(|h| chrono::Duration::hours(h.into())),
            delete_after: raw
                .optional_number(bounds::DELETE_AFTER_DAYS)?
                .map(|d| chrono::Duration::days(d.into())),
            expected_access_key_id: opt(raw.get("expected-access-key-id")),
            vault_role: opt(raw.get("vault-role")),
            vault_auth_mount: opt(raw.get("vault-auth-mount")).unwrap_or_else(|| "jwt".into()),
            vault_audience: opt(raw.get("vault-audience")),
            expected_role_arn: expected_role_arn(&raw)?,
            verify_timeout: Duration::from_secs(
                60 * u64::from(raw.number(bounds::VERIFY_TIMEOUT_MINUTES, 30)?),
            ),
            poll_interval: Duration::from_secs(
                raw.number(bounds::POLL_INTERVAL_SECONDS, 10)?.into(),
            ),
            github_token: raw.secret("github-token").cloned(),
            app: raw.app()?,
            issue_repository: raw.issue_repository()?,
            issue_token: raw.secret("issue-token").cloned(),
            compromised_key_id: compromised_key_id(&raw)?,
            sarif_file: opt(raw.get("sarif-file")),
            policy_for: policy_for(&raw)?,
        })
    }
}

/// `expected-role-arn`: a role's ARN, if given.
fn expected_role_arn(raw: &RawInputs) -> Result<Option<String>, String> {
    Ok(match opt(raw.get("expected-role-arn")) {
        Some(arn) if crate::model::arn::parse_arn(&arn).is_none() => {
            return Err(format!(
                "{} {arn:?} is not an IAM role ARN: write arn:aws:iam::ACCOUNT:role/NAME (the role migrate made; its ARN is the consumer's Actions variable)",
                raw.named("expected-role-arn")
            ));
        }
        other => other,
    })
}

/// `compromised-key-id`: an access key id, never a secret.
fn compromised_key_id(raw: &RawInputs) -> Result<Option<String>, String> {
    Ok(match opt(raw.get("compromised-key-id")) {
        Some(id) if !is_access_key_id(&id) => {
            return Err(format!(
                "{} {} is not an access key id (AKIA followed by 16 capital letters and digits): give the id of the exposed key, never its secret",
                raw.named("compromised-key-id"),
                crate::text::quoted(&id)
            ));
        }
        other => other,
    })
}

/// `for`: whose policy `policy` prints.
fn policy_for(raw: &RawInputs) -> Result<PolicyFor, String> {
    Ok(match raw.get("for").trim() {
        "" | "rotator" => PolicyFor::Rotator,
        "migrate" => PolicyFor::Migrate,
        other => {
            return Err(format!(
                "{} {other:?} is not an identity: write rotator (the daily rotator's policy) or migrate (the policy of the identity that runs migrate)",
                raw.named("for")
            ));
        }
    })
}

#[cfg(test)]
mod tests;
