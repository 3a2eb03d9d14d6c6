//! The manifest (`.github/aws-key-rotation.yml`): every IAM user and every place its key lives.
//!
//! Two layers: `raw` types are only parsed (and describe the JSON Schema); [`Manifest`] is the
//! validated, typed form the rest of the program uses. Every error names file, line and column.

use std::collections::HashMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::bounds;

pub const DEFAULT_MAX_AGE_DAYS: u32 = 90;
pub const DEFAULT_DEACTIVATE_AFTER_HOURS: u32 = 24;
pub const DEFAULT_DELETE_AFTER_DAYS: u32 = 7;
pub const DEFAULT_ACCESS_KEY_ID_SECRET: &str = "AWS_ACCESS_KEY_ID";
pub const DEFAULT_SECRET_ACCESS_KEY_SECRET: &str = "AWS_SECRET_ACCESS_KEY";
/// The manifest format this release reads.
pub const VERSION: u32 = 1;

/// The names of the two secrets written in a consumer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretNames {
    /// Secret that receives the access key id.
    pub access_key_id: String,
    /// Secret that receives the secret access key.
    pub secret_access_key: String,
}

impl Default for SecretNames {
    fn default() -> Self {
        Self {
            access_key_id: DEFAULT_ACCESS_KEY_ID_SECRET.into(),
            secret_access_key: DEFAULT_SECRET_ACCESS_KEY_SECRET.into(),
        }
    }
}

/// Who reads an organization secret (GitHub's `visibility`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Visibility {
    /// Every repository of the organization.
    All,
    /// The organization's private (and internal) repositories.
    Private,
    /// The repositories chosen for the secret.
    Selected,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::All => "all",
            Visibility::Private => "private",
            Visibility::Selected => "selected",
        }
    }
}

/// Where a secret lives on GitHub: one public key, one set of secrets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Repository Actions secrets of `owner/name`.
    Repository(String),
    /// Secrets of an environment of a repository.
    Environment {
        repository: String,
        environment: String,
    },
    /// Repository Dependabot secrets of `owner/name`.
    RepositoryDependabot(String),
    /// Organization secrets (Actions, or Dependabot's). `visibility` is used only to create a
    /// secret that does not exist yet (default `private`): an existing secret keeps its own.
    Organization {
        organization: String,
        dependabot: bool,
        visibility: Option<Visibility>,
        /// With `visibility: selected`: the repositories (`owner/name`, in the organization)
        /// that may read a secret created new. An existing secret keeps its own.
        selected: Vec<String>,
    },
    /// One AWS Secrets Manager secret (name or ARN) whose JSON `SecretString` holds the pair
    /// under the consumer's secret names; its other fields are kept.
    SecretsManager {
        secret: String,
        region: Option<String>,
    },
    /// SSM Parameter Store: the consumer's secret names are the two parameters' names.
    ParameterStore { region: Option<String> },
}

impl Scope {
    /// GitHub stores: write-only, sealed with the scope's public key.
    pub fn is_github(&self) -> bool {
        !self.is_readable()
    }

    /// AWS stores: the tool reads the old value before writing and reads back after.
    pub fn is_readable(&self) -> bool {
        matches!(
            self,
            Scope::SecretsManager { .. } | Scope::ParameterStore { .. }
        )
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Repository(r) => write!(f, "{r} (repository secrets)"),
            Scope::Environment {
                repository,
                environment,
            } => write!(f, "{repository} environment {environment:?}"),
            Scope::RepositoryDependabot(r) => write!(f, "{r} (Dependabot secrets)"),
            Scope::Organization {
                organization,
                dependabot,
                ..
            } => write!(
                f,
                "organization {organization} ({} secrets)",
                if *dependabot { "Dependabot" } else { "Actions" }
            ),
            Scope::SecretsManager { secret, region } => {
                write!(f, "Secrets Manager secret {secret}")?;
                region.iter().try_for_each(|r| write!(f, " in {r}"))
            }
            Scope::ParameterStore { region } => {
                f.write_str("Parameter Store")?;
                region.iter().try_for_each(|r| write!(f, " in {r}"))
            }
        }
    }
}

/// One place the key lives, with the names of its two secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    pub scope: Scope,
    pub secrets: SecretNames,
}

/// A workflow dispatched after the push to prove the new secrets work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyWorkflow {
    pub repository: String,
    pub workflow: String,
    pub git_ref: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSpec {
    pub name: String,
    pub max_age_days: u32,
    /// Grace: the old key stays Active this long after the new one is verified.
    pub deactivate_after_hours: u32,
    /// Grace: the old key stays Inactive this long before it is deleted.
    pub delete_after_days: u32,
    pub consumers: Vec<Consumer>,
    pub verify: Vec<VerifyWorkflow>,
    pub external: Vec<String>,
    /// `file:line:col` of the user's entry, for errors about it (e.g. no such IAM user).
    pub origin: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Where it came from: a file path, or a note that it was built from inputs.
    pub source: String,
    pub users: Vec<UserSpec>,
}

/// A manifest problem, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ManifestError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

pub mod raw {
    //! The manifest exactly as written; also the source of the JSON Schema.
    use super::*;

    /// aws-key-rotator manifest: the IAM users whose keys are rotated and every consumer of each key.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    #[schemars(title = "aws-key-rotator manifest")]
    pub struct RawManifest {
        /// Manifest format version; must be 1.
        #[schemars(range(min = 1, max = 1))]
        pub version: u32,
        #[serde(default)]
        #[schemars(with = "Option<RawDefaults>")]
        pub defaults: Option<Spanned<RawDefaults>>,
        /// The IAM users whose access keys are rotated.
        #[schemars(with = "Vec<RawUser>", length(min = 1))]
        pub users: Vec<Spanned<RawUser>>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    pub struct RawDefaults {
        /// Rotate when the active key is at least this many days old (default 90).
        #[schemars(range(min = 1, max = 3650))]
        pub max_age_days: Option<u64>,
        /// Grace period: the old key stays Active this many hours after the new one is verified (default 24).
        #[schemars(range(min = 0, max = 8760))]
        pub deactivate_after_hours: Option<u64>,
        /// Grace period: the old key stays Inactive this many days before it is deleted (default 7).
        #[schemars(range(min = 0, max = 365))]
        pub delete_after_days: Option<u64>,
        /// Secret names written in every consumer (default AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
        pub secrets: Option<SecretNames>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    pub struct RawUser {
        /// IAM user name.
        pub name: String,
        /// Overrides defaults.max-age-days for this user.
        #[schemars(range(min = 1, max = 3650))]
        pub max_age_days: Option<u64>,
        /// Overrides defaults.deactivate-after-hours for this user.
        #[schemars(range(min = 0, max = 8760))]
        pub deactivate_after_hours: Option<u64>,
        /// Overrides defaults.delete-after-days for this user.
        #[schemars(range(min = 0, max = 365))]
        pub delete_after_days: Option<u64>,
        /// Every GitHub place the key is stored.
        #[schemars(with = "Vec<RawConsumer>", length(min = 1))]
        pub consumers: Vec<Spanned<RawConsumer>>,
        /// Workflows dispatched after the push; all must succeed.
        #[serde(default)]
        #[schemars(with = "Vec<RawVerify>")]
        pub verify: Vec<Spanned<RawVerify>>,
        /// Consumers outside GitHub, updated by people: listed in status and the summary, and
        /// `deactivate` then needs `force` (a person confirms they hold the new key).
        #[serde(default)]
        pub external: Vec<String>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    pub struct RawConsumer {
        /// `owner/name`: the repository's Actions secrets (or, with `environment`, that environment's).
        pub repository: Option<String>,
        /// An environment of `repository`.
        pub environment: Option<String>,
        /// An organization: its Actions secrets (or, with `app: dependabot`, its Dependabot
        /// secrets). Who can read them is kept as it is.
        pub organization: Option<String>,
        /// `dependabot`: the Dependabot secrets of `repository` or `organization`.
        pub app: Option<String>,
        /// With `organization`: who reads a secret that does not exist yet. Required to create
        /// one: `private`, `selected` (with `selected-repositories`) or `all`.
        pub visibility: Option<Visibility>,
        /// With `visibility: selected`: the organization's repositories (`owner/name`) that may
        /// read a secret created new.
        pub selected_repositories: Option<Vec<String>>,
        /// An AWS Secrets Manager secret (name or ARN) whose JSON holds the pair under the
        /// secret names; its other fields are kept.
        pub aws_secrets_manager: Option<String>,
        /// Two SSM Parameter Store parameters (SecureString): the pair's names.
        pub ssm_parameters: Option<SecretNames>,
        /// With an AWS store: its region (default: the run's region).
        pub region: Option<String>,
        /// Secret names for this consumer (default: defaults.secrets).
        pub secrets: Option<SecretNames>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    pub struct RawVerify {
        /// `owner/name` of the repository holding the workflow.
        pub repository: String,
        /// Workflow file name (e.g. verify-aws-credentials.yml) or id.
        pub workflow: String,
        /// Branch or tag to run on (default: the repository's default branch).
        #[serde(rename = "ref")]
        pub git_ref: Option<String>,
    }
}

/// The JSON Schema of the manifest, pretty-printed (committed as `schema/aws-key-rotation.schema.json`).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(raw::RawManifest);
    serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n"
}

/// Parses and validates a manifest's text; `file` is only used in messages.
pub fn parse(file: &str, text: &str) -> Result<Manifest, ManifestError> {
    let blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return Err(ManifestError {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: "the manifest is empty: it needs `version: 1` and a list of `users:` (see the manifest reference in the README)".into(),
        });
    }
    let raw: raw::RawManifest =
        serde_saphyr::from_str(text).map_err(|e| yaml_error(file, text, &e))?;
    Validator { file }.manifest(raw)
}

/// What a key expects, in words, with an example of it written right.
fn expectation(key: &str) -> Option<(&'static str, &'static str)> {
    Some(match key {
        "version" => ("the manifest format version, 1", "version: 1"),
        "max-age-days" => ("a whole number of days from 1 to 3650", "max-age-days: 90"),
        "deactivate-after-hours" => (
            "a whole number of hours from 0 to 8760",
            "deactivate-after-hours: 24",
        ),
        "delete-after-days" => (
            "a whole number of days from 0 to 365",
            "delete-after-days: 7",
        ),
        "visibility" => ("one of all, private or selected", "visibility: selected"),
        "users" => ("a list of users", "users:\n  - name: ci-deployer"),
        "consumers" => (
            "a list of consumers",
            "consumers:\n  - repository: acme/web",
        ),
        "verify" => (
            "a list of workflows",
            "verify:\n  - repository: acme/web\n    workflow: verify.yml",
        ),
        "external" => ("a list of names", "external:\n  - on-prem backup script"),
        "secrets" | "ssm-parameters" => (
            "both names",
            "secrets: { access-key-id: AWS_ACCESS_KEY_ID, secret-access-key: AWS_SECRET_ACCESS_KEY }",
        ),
        "name"
        | "repository"
        | "environment"
        | "organization"
        | "app"
        | "workflow"
        | "ref"
        | "region"
        | "aws-secrets-manager"
        | "access-key-id"
        | "secret-access-key" => ("a text value", "repository: acme/web"),
        _ => return None,
    })
}

/// The key written on `line` (1-based) of `text`, and the value after it.
fn key_at(text: &str, line: u64) -> Option<(String, String)> {
    let l = text.lines().nth(line.checked_sub(1)? as usize)?;
    let l = l.trim_start().trim_start_matches("- ").trim_start();
    let (key, value) = l.split_once(':')?;
    Some((key.trim().to_owned(), value.trim().to_owned()))
}

fn yaml_error(file: &str, text: &str, e: &serde_saphyr::Error) -> ManifestError {
    let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    // The crate renders "error: line L column C: message" followed by a snippet; keep the message.
    let rendered = e.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let message = first
        .split_once(": ")
        .map(|(_, rest)| rest)
        .map(|rest| match rest.split_once(": ") {
            Some((loc, msg)) if loc.starts_with("line ") => msg,
            _ => rest,
        })
        .unwrap_or(first);
    // Drop the crate's own " at line L, column C" suffix: the location leads the message.
    let message = match message.rfind(" at line ") {
        Some(i) if message[i..].contains(", column ") => &message[..i],
        _ => message,
    }
    .to_owned();
    // A value of the wrong kind: name the key, what it expects, and an example.
    let wrong_value = (message.starts_with("invalid") || message.starts_with("unknown variant"))
        && !message.contains("type: map")
        && !message.contains("type: sequence");
    if wrong_value
        && !message.starts_with("unknown field")
        && let Some((key, value)) = key_at(text, line)
        && let Some((what, example)) = expectation(&key)
    {
        let value = if value.is_empty() {
            String::new()
        } else {
            format!(", not `{value}`")
        };
        return ManifestError {
            file: file.to_owned(),
            line,
            column,
            message: format!("`{key}` must be {what}{value}; for example `{example}`"),
        };
    }
    let syntax = [
        "mapping values",
        "did not find expected",
        "while parsing",
        "could not find expected",
    ];
    let hint = if message.starts_with("unknown field") {
        " (see the manifest reference in the README)"
    } else if message.starts_with("missing field `version`") {
        " (add `version: 1` at the top)"
    } else if message.starts_with("missing field") {
        " (if it is there, check its indentation: the keys of one entry line up under its first key)"
    } else if syntax.iter().any(|s| message.contains(s)) {
        " — check the indentation around this line: YAML nests by spaces, two per level"
    } else {
        ""
    };
    ManifestError {
        file: file.to_owned(),
        line,
        column,
        message: format!("{message}{hint}"),
    }
}

struct Validator<'a> {
    file: &'a str,
}

impl Validator<'_> {
    fn err(&self, at: &serde_saphyr::Location, message: impl Into<String>) -> ManifestError {
        ManifestError {
            file: self.file.to_owned(),
            line: at.line(),
            column: at.column(),
            message: message.into(),
        }
    }

    fn manifest(&self, raw: raw::RawManifest) -> Result<Manifest, ManifestError> {
        if raw.version != VERSION {
            return Err(ManifestError {
                file: self.file.to_owned(),
                line: 1,
                column: 1,
                message: format!(
                    "unsupported manifest version {}: this release reads `version: {VERSION}`",
                    raw.version
                ),
            });
        }
        if raw.users.is_empty() {
            return Err(ManifestError {
                file: self.file.to_owned(),
                line: 1,
                column: 1,
                message: "`users` is empty: list at least one IAM user".into(),
            });
        }
        let (defaults_at, defaults) = match raw.defaults {
            Some(d) => (Some(d.referenced), d.value),
            None => (
                None,
                raw::RawDefaults {
                    max_age_days: None,
                    deactivate_after_hours: None,
                    delete_after_days: None,
                    secrets: None,
                },
            ),
        };
        let bounded = |at: Option<&serde_saphyr::Location>,
                       prefix: &str,
                       bound: bounds::Bound,
                       value: Option<u64>,
                       default: u32|
         -> Result<u32, ManifestError> {
            match value {
                None => Ok(default),
                Some(n) => bound.check(n).map_err(|why| {
                    let message = format!("{prefix}{} {why}", bound.name);
                    match at {
                        Some(at) => self.err(at, message),
                        None => ManifestError {
                            file: self.file.to_owned(),
                            line: 1,
                            column: 1,
                            message,
                        },
                    }
                }),
            }
        };
        let d_at = defaults_at.as_ref();
        let default_deactivate = bounded(
            d_at,
            "defaults.",
            bounds::DEACTIVATE_AFTER_HOURS,
            defaults.deactivate_after_hours,
            DEFAULT_DEACTIVATE_AFTER_HOURS,
        )?;
        let default_delete = bounded(
            d_at,
            "defaults.",
            bounds::DELETE_AFTER_DAYS,
            defaults.delete_after_days,
            DEFAULT_DELETE_AFTER_DAYS,
        )?;
        let default_age = bounded(
            d_at,
            "defaults.",
            bounds::MAX_AGE_DAYS,
            defaults.max_age_days,
            DEFAULT_MAX_AGE_DAYS,
        )?;
        let default_secrets = defaults.secrets.unwrap_or_default();
        let mut users = Vec::new();
        let mut seen_users: HashMap<String, u64> = HashMap::new();
        // A secret written by two entries (one user twice, or two users) would be overwritten.
        let mut seen_secrets: HashMap<(Scope, String), (String, u64)> = HashMap::new();
        for user in raw.users {
            let at = user.referenced;
            let u = user.value;
            if !valid_iam_user_name(&u.name) {
                return Err(self.err(&at, format!(
                    "{:?} is not a valid IAM user name (1-64 characters of letters, digits and +=,.@_-)",
                    u.name
                )));
            }
            if let Some(line) = seen_users.insert(u.name.clone(), at.line()) {
                return Err(self.err(
                    &at,
                    format!(
                        "user {:?} is listed twice (first at line {line}): merge the two entries",
                        u.name
                    ),
                ));
            }
            let max_age_days = bounded(
                Some(&at),
                "",
                bounds::MAX_AGE_DAYS,
                u.max_age_days,
                default_age,
            )?;
            let deactivate_after_hours = bounded(
                Some(&at),
                "",
                bounds::DEACTIVATE_AFTER_HOURS,
                u.deactivate_after_hours,
                default_deactivate,
            )?;
            let delete_after_days = bounded(
                Some(&at),
                "",
                bounds::DELETE_AFTER_DAYS,
                u.delete_after_days,
                default_delete,
            )?;
            if u.consumers.is_empty() {
                return Err(self.err(&at, format!(
                    "user {:?} has no consumers: list every repository or environment that holds its key",
                    u.name
                )));
            }
            let mut consumers = Vec::new();
            for c in u.consumers {
                let consumer = self.consumer(&c.referenced, c.value, &default_secrets)?;
                for name in [
                    &consumer.secrets.access_key_id,
                    &consumer.secrets.secret_access_key,
                ] {
                    let key = (consumer.scope.clone(), name.clone());
                    if let Some((other, line)) = seen_secrets.get(&key) {
                        return Err(self.err(&c.referenced, format!(
                            "duplicate consumer: secret {name} of {} is already written for user {other:?} (line {line}); each secret may have one source",
                            consumer.scope
                        )));
                    }
                    seen_secrets.insert(key, (u.name.clone(), c.referenced.line()));
                }
                consumers.push(consumer);
            }
            let mut verify = Vec::new();
            for v in u.verify {
                let raw::RawVerify {
                    repository,
                    workflow,
                    git_ref,
                } = v.value;
                if !valid_repository(&repository) {
                    return Err(self.err(
                        &v.referenced,
                        format!("verify repository {repository:?} is not of the form owner/name"),
                    ));
                }
                if dot_segment(workflow.trim()) || workflow.contains('/') {
                    return Err(self.err(
                        &v.referenced,
                        format!("verify workflow {workflow:?} is not a workflow file name: name the file in .github/workflows, e.g. verify-aws-credentials.yml"),
                    ));
                }
                if workflow.trim().is_empty() {
                    return Err(self.err(&v.referenced, "verify workflow is empty: name the workflow file, e.g. verify-aws-credentials.yml"));
                }
                let entry = VerifyWorkflow {
                    repository,
                    workflow,
                    git_ref,
                };
                if verify.contains(&entry) {
                    return Err(self.err(
                        &v.referenced,
                        format!(
                            "duplicate verify entry: {} in {} is already listed for this user",
                            entry.workflow, entry.repository
                        ),
                    ));
                }
                verify.push(entry);
            }
            users.push(UserSpec {
                origin: format!("{}:{}:{}", self.file, at.line(), at.column()),
                name: u.name,
                max_age_days,
                deactivate_after_hours,
                delete_after_days,
                consumers,
                verify,
                external: u.external,
            });
        }
        Ok(Manifest {
            source: self.file.to_owned(),
            users,
        })
    }

    fn consumer(
        &self,
        at: &serde_saphyr::Location,
        c: raw::RawConsumer,
        default_secrets: &SecretNames,
    ) -> Result<Consumer, ManifestError> {
        if c.aws_secrets_manager.is_some() || c.ssm_parameters.is_some() {
            return self.aws_consumer(at, c, default_secrets);
        }
        if c.region.is_some() {
            return Err(self.err(
                at,
                "`region` belongs to AWS stores (`aws-secrets-manager`, `ssm-parameters`): drop it",
            ));
        }
        let dependabot = match c.app.as_deref() {
            None => false,
            Some("dependabot") => true,
            Some(other) => {
                return Err(self.err(
                    at,
                    format!("`app: {other}` is not a secret store: the only app is `dependabot`"),
                ));
            }
        };
        if c.selected_repositories.is_some() && c.visibility != Some(Visibility::Selected) {
            return Err(self.err(
                at,
                "`selected-repositories` goes with `visibility: selected`: add it, or drop the list",
            ));
        }
        if c.visibility.is_some() && c.organization.is_none() {
            return Err(self.err(
                at,
                "`visibility` belongs to organization secrets: drop it, or name the `organization`",
            ));
        }
        let scope = match (c.organization, c.repository) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    at,
                    "a consumer is either a `repository` or an `organization`, not both: make them two entries",
                ));
            }
            (Some(organization), None) => {
                if c.environment.is_some() {
                    return Err(self.err(
                        at,
                        "environments belong to repositories: an organization has no `environment`",
                    ));
                }
                if !valid_owner(&organization) {
                    return Err(self.err(
                        at,
                        format!(
                            "organization {organization:?} is not a valid GitHub organization name"
                        ),
                    ));
                }
                let selected = c.selected_repositories.unwrap_or_default();
                if c.visibility == Some(Visibility::Selected) && selected.is_empty() {
                    return Err(self.err(
                        at,
                        "`visibility: selected` needs `selected-repositories`: the repositories that may read a secret created new, for example `selected-repositories: [acme/web]`",
                    ));
                }
                for r in &selected {
                    let in_org = r
                        .split_once('/')
                        .is_some_and(|(o, _)| o.eq_ignore_ascii_case(&organization));
                    if !valid_repository(r) || !in_org {
                        return Err(self.err(
                            at,
                            format!(
                                "selected repository {r:?} is not a repository of {organization} (owner/name)"
                            ),
                        ));
                    }
                }
                Scope::Organization {
                    organization,
                    dependabot,
                    visibility: c.visibility,
                    selected,
                }
            }
            (None, None) => {
                return Err(self.err(
                    at,
                    "a consumer needs `repository: owner/name` or `organization: name`",
                ));
            }
            (None, Some(repository)) => {
                if !valid_repository(&repository) {
                    return Err(self.err(
                        at,
                        format!("repository {repository:?} is not of the form owner/name"),
                    ));
                }
                match (c.environment, dependabot) {
                    (None, false) => Scope::Repository(repository),
                    (None, true) => Scope::RepositoryDependabot(repository),
                    (Some(_), true) => {
                        return Err(self.err(
                            at,
                            "Dependabot secrets have no environments: drop `environment` or `app`",
                        ));
                    }
                    (Some(e), false) if e.trim().is_empty() => {
                        return Err(self.err(
                            at,
                            "environment is empty: name the environment or drop the key",
                        ));
                    }
                    (Some(e), false) if dot_segment(e.trim()) => {
                        return Err(self.err(
                            at,
                            format!("environment {e:?} is not an environment name: `.` and `..` would walk up the API's paths"),
                        ));
                    }
                    (Some(environment), false) => Scope::Environment {
                        repository,
                        environment,
                    },
                }
            }
        };
        let secrets = c.secrets.unwrap_or_else(|| default_secrets.clone());
        for name in [&secrets.access_key_id, &secrets.secret_access_key] {
            if let Err(why) = check_secret_name(name) {
                return Err(self.err(at, format!("secret name {name:?} {why}")));
            }
        }
        if secrets
            .access_key_id
            .eq_ignore_ascii_case(&secrets.secret_access_key)
        {
            return Err(self.err(
                at,
                "the access-key-id and secret-access-key secrets have the same name",
            ));
        }
        Ok(Consumer { scope, secrets })
    }
}

impl Validator<'_> {
    /// `aws-secrets-manager:` or `ssm-parameters:`.
    fn aws_consumer(
        &self,
        at: &serde_saphyr::Location,
        c: raw::RawConsumer,
        default_secrets: &SecretNames,
    ) -> Result<Consumer, ManifestError> {
        let github = [
            ("repository", c.repository.is_some()),
            ("organization", c.organization.is_some()),
            ("environment", c.environment.is_some()),
            ("app", c.app.is_some()),
            ("visibility", c.visibility.is_some()),
            ("selected-repositories", c.selected_repositories.is_some()),
        ];
        if let Some((key, _)) = github.iter().find(|(_, set)| *set) {
            return Err(self.err(
                at,
                format!(
                    "`{key}` belongs to GitHub stores, not to an AWS store: make it its own entry"
                ),
            ));
        }
        if let Some(r) = &c.region
            && !valid_region(r)
        {
            return Err(self.err(
                at,
                format!("region {r:?} is not an AWS region name (like eu-west-1)"),
            ));
        }
        match (c.aws_secrets_manager, c.ssm_parameters) {
            (Some(_), Some(_)) => Err(self.err(
                at,
                "a consumer is one store: put `aws-secrets-manager` and `ssm-parameters` in two entries",
            )),
            (Some(secret), None) => {
                if secret.trim().is_empty() {
                    return Err(self.err(at, "aws-secrets-manager is empty: name the secret or give its ARN"));
                }
                let secrets = c.secrets.unwrap_or_else(|| default_secrets.clone());
                if secrets.access_key_id == secrets.secret_access_key {
                    return Err(self.err(at, "the two JSON fields have the same name"));
                }
                Ok(Consumer {
                    scope: Scope::SecretsManager {
                        secret,
                        region: c.region,
                    },
                    secrets,
                })
            }
            (None, Some(paths)) => {
                if c.secrets.is_some() {
                    return Err(self.err(
                        at,
                        "`secrets` does not apply to ssm-parameters: the parameters' names are the pair",
                    ));
                }
                for p in [&paths.access_key_id, &paths.secret_access_key] {
                    if !valid_parameter_name(p) {
                        return Err(self.err(at, format!(
                            "{p:?} is not an SSM parameter name (letters, digits and _.-/, at most 2048 characters)"
                        )));
                    }
                }
                if paths.access_key_id == paths.secret_access_key {
                    return Err(self.err(at, "the two parameters have the same name"));
                }
                Ok(Consumer {
                    scope: Scope::ParameterStore { region: c.region },
                    secrets: paths,
                })
            }
            (None, None) => unreachable!("called for AWS stores"),
        }
    }
}

fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn valid_parameter_name(p: &str) -> bool {
    (1..=2048).contains(&p.len())
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
}

/// The single-user shorthand: inputs `iam-user` and `environments`, consumers in `repository`.
pub fn shorthand(iam_user: &str, repository: &str, environments: &str) -> Result<Manifest, String> {
    if !valid_iam_user_name(iam_user) {
        return Err(format!(
            "iam-user {iam_user:?} is not a valid IAM user name (1-64 characters of letters, digits and +=,.@_-)"
        ));
    }
    if !valid_repository(repository) {
        return Err(format!(
            "GITHUB_REPOSITORY {repository:?} is not of the form owner/name: the single-user shorthand writes to the current repository"
        ));
    }
    let mut consumers = vec![Consumer {
        scope: Scope::Repository(repository.to_owned()),
        secrets: SecretNames::default(),
    }];
    for env in environments
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if dot_segment(env) {
            return Err(format!(
                "environments names {env:?}, which is not an environment name: `.` and `..` would walk up the API's paths"
            ));
        }
        let scope = Scope::Environment {
            repository: repository.to_owned(),
            environment: env.to_owned(),
        };
        if consumers.iter().any(|c| c.scope == scope) {
            return Err(format!("environments names {env:?} twice"));
        }
        consumers.push(Consumer {
            scope,
            secrets: SecretNames::default(),
        });
    }
    Ok(Manifest {
        source: "inputs iam-user/environments".into(),
        users: vec![UserSpec {
            name: iam_user.to_owned(),
            max_age_days: DEFAULT_MAX_AGE_DAYS,
            deactivate_after_hours: DEFAULT_DEACTIVATE_AFTER_HOURS,
            delete_after_days: DEFAULT_DELETE_AFTER_DAYS,
            consumers,
            verify: Vec::new(),
            external: Vec::new(),
            origin: "input iam-user".into(),
        }],
    })
}

fn valid_iam_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

fn valid_owner(name: &str) -> bool {
    (1..=39).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
}

/// `.` and `..` would walk up a URL path (`/repos/acme/../actions/secrets`): never a name.
fn dot_segment(s: &str) -> bool {
    s == "." || s == ".."
}

fn valid_repository(repo: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && !dot_segment(s)
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!(repo.split_once('/'), Some((owner, name)) if ok(owner) && ok(name))
}

fn check_secret_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("is empty"),
        Some(c) if c.is_ascii_digit() => {
            return Err("starts with a digit, which GitHub does not allow");
        }
        _ => {}
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("may contain only letters, digits and underscores (GitHub's rule)");
    }
    if name.to_ascii_uppercase().starts_with("GITHUB_") {
        return Err("starts with GITHUB_, which GitHub reserves");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "\
version: 1
defaults:
  max-age-days: 90
  secrets:
    access-key-id: AWS_ACCESS_KEY_ID
    secret-access-key: AWS_SECRET_ACCESS_KEY
users:
  - name: ci-deployer
    max-age-days: 60
    consumers:
      - repository: acme/web
      - repository: acme/web
        environment: production
      - repository: acme/api
        secrets: { access-key-id: DEPLOY_KEY_ID, secret-access-key: DEPLOY_KEY_SECRET }
    verify:
      - repository: acme/web
        workflow: verify-aws-credentials.yml
        ref: main
    external:
      - on-prem backup script
";

    fn err(text: &str) -> String {
        parse("m.yml", text).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_contract_example() {
        let m = parse("m.yml", FULL).unwrap();
        let u = &m.users[0];
        assert_eq!(u.name, "ci-deployer");
        assert_eq!(u.max_age_days, 60);
        assert_eq!(u.origin, "m.yml:8:5");
        assert_eq!(
            u.consumers[1].scope,
            Scope::Environment {
                repository: "acme/web".into(),
                environment: "production".into()
            }
        );
        assert_eq!(u.consumers[2].secrets.access_key_id, "DEPLOY_KEY_ID");
        assert_eq!(u.consumers[0].secrets, SecretNames::default());
        assert_eq!(u.verify[0].git_ref.as_deref(), Some("main"));
        assert_eq!(u.external, vec!["on-prem backup script".to_owned()]);
    }

    #[test]
    fn unknown_field_is_located() {
        assert_eq!(
            err("version: 1\nusers:\n  - name: a\n    consumer:\n      - repository: a/b\n"),
            "m.yml:4:5: unknown field `consumer`, expected one of name, max-age-days, deactivate-after-hours, delete-after-days, consumers, verify, external (see the manifest reference in the README)"
        );
    }

    #[test]
    fn missing_version_is_located() {
        assert_eq!(
            err("users:\n  - name: a\n    consumers: [{repository: a/b}]\n"),
            "m.yml:1:1: missing field `version` (add `version: 1` at the top)"
        );
    }

    #[test]
    fn wrong_type_is_located() {
        assert_eq!(
            err(
                "version: 1\nusers:\n  - name: a\n    max-age-days: soon\n    consumers: [{repository: a/b}]\n"
            ),
            "m.yml:4:19: `max-age-days` must be a whole number of days from 1 to 3650, not `soon`; for example `max-age-days: 90`"
        );
    }

    #[test]
    fn malformed_yaml_is_located() {
        assert_eq!(
            err("version: 1\nusers: [\n"),
            "m.yml:2:8: unclosed bracket '['"
        );
    }

    #[test]
    fn duplicate_consumer_is_located() {
        assert_eq!(
            err(
                "version: 1\nusers:\n  - name: a\n    consumers:\n      - repository: a/b\n      - repository: a/b\n"
            ),
            "m.yml:6:9: duplicate consumer: secret AWS_ACCESS_KEY_ID of a/b (repository secrets) is already written for user \"a\" (line 5); each secret may have one source"
        );
    }

    #[test]
    fn same_secret_for_two_users_is_a_duplicate() {
        let e = err(
            "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n  - name: b\n    consumers: [{repository: a/b}]\n",
        );
        assert!(e.starts_with("m.yml:6:17: duplicate consumer"), "{e}");
    }

    #[test]
    fn duplicate_verify_entry_is_located() {
        let e = err(
            "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n    verify:\n      - {repository: a/b, workflow: v.yml}\n      - {repository: a/b, workflow: v.yml}\n",
        );
        assert_eq!(
            e,
            "m.yml:7:9: duplicate verify entry: v.yml in a/b is already listed for this user"
        );
    }

    #[test]
    fn duplicate_user_is_located() {
        let e = err(
            "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n  - name: a\n    consumers: [{repository: a/c}]\n",
        );
        assert_eq!(
            e,
            "m.yml:5:5: user \"a\" is listed twice (first at line 3): merge the two entries"
        );
    }

    #[test]
    fn every_github_store_is_a_scope() {
        let m = parse(
            "m.yml",
            "version: 1\nusers:\n  - name: a\n    consumers:\n      - repository: a/b\n      - repository: a/b\n        app: dependabot\n      - organization: acme\n      - organization: acme\n        app: dependabot\n        visibility: selected\n        selected-repositories: [acme/web]\n",
        )
        .unwrap();
        let scopes: Vec<Scope> = m.users[0]
            .consumers
            .iter()
            .map(|c| c.scope.clone())
            .collect();
        assert_eq!(
            scopes,
            [
                Scope::Repository("a/b".into()),
                Scope::RepositoryDependabot("a/b".into()),
                Scope::Organization {
                    organization: "acme".into(),
                    dependabot: false,
                    visibility: None,
                    selected: vec![],
                },
                Scope::Organization {
                    organization: "acme".into(),
                    dependabot: true,
                    visibility: Some(Visibility::Selected),
                    selected: vec!["acme/web".into()],
                },
            ]
        );
        assert_eq!(
            scopes[3].to_string(),
            "organization acme (Dependabot secrets)"
        );
    }

    #[test]
    fn store_combinations_that_make_no_sense_are_refused() {
        let consumer = |c: &str| {
            err(&format!(
                "version: 1\nusers:\n  - name: a\n    consumers:\n      - {c}\n"
            ))
        };
        for (c, want) in [
            (
                "organization: acme\n        repository: a/b",
                "either a `repository` or an `organization`",
            ),
            (
                "organization: acme\n        environment: prod",
                "an organization has no `environment`",
            ),
            (
                "repository: a/b\n        app: dependabot\n        environment: prod",
                "Dependabot secrets have no environments",
            ),
            (
                "repository: a/b\n        app: codespaces",
                "the only app is `dependabot`",
            ),
            (
                "repository: a/b\n        visibility: all",
                "`visibility` belongs to organization secrets",
            ),
            (
                "organization: acme\n        visibility: public",
                "m.yml:6:21",
            ),
            (
                "organization: -acme",
                "not a valid GitHub organization name",
            ),
            (
                "app: dependabot",
                "needs `repository: owner/name` or `organization: name`",
            ),
        ] {
            let e = consumer(c);
            assert!(e.contains(want), "{c}: {e}");
            assert!(e.starts_with("m.yml:"), "located: {e}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for (yaml, want) in [
            (
                "version: 2\nusers: []\n",
                "m.yml:1:1: unsupported manifest version 2",
            ),
            ("version: 1\nusers: []\n", "m.yml:1:1: `users` is empty"),
            (
                "version: 1\nusers:\n  - name: a\n    consumers: []\n",
                "m.yml:3:5: user \"a\" has no consumers",
            ),
            (
                "version: 1\nusers:\n  - name: a b\n    consumers: [{repository: a/b}]\n",
                "m.yml:3:5: \"a b\" is not a valid IAM user name",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    consumers: [{repository: ab}]\n",
                "m.yml:4:17: repository \"ab\" is not of the form owner/name",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b, secrets: {access-key-id: GITHUB_X, secret-access-key: Y}}]\n",
                "m.yml:4:17: secret name \"GITHUB_X\" starts with GITHUB_",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    consumers: [{repository: acme/..}]\n",
                "m.yml:4:17: repository \"acme/..\" is not of the form owner/name",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    consumers: [{repository: ./web}]\n",
                "m.yml:4:17: repository \"./web\" is not of the form owner/name",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b, environment: ..}]\n",
                "m.yml:4:17: environment \"..\" is not an environment name",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n    verify: [{repository: a/b, workflow: ../x.yml}]\n",
                "m.yml:5:14: verify workflow \"../x.yml\" is not a workflow file name",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    consumers: [{organization: acme, visibility: selected}]\n",
                "m.yml:4:17: `visibility: selected` needs `selected-repositories`",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    consumers: [{organization: acme, visibility: selected, selected-repositories: [other/web]}]\n",
                "m.yml:4:17: selected repository \"other/web\" is not a repository of acme",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    consumers: [{organization: acme, visibility: all, selected-repositories: [acme/web]}]\n",
                "m.yml:4:17: `selected-repositories` goes with `visibility: selected`",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    max-age-days: 0\n    consumers: [{repository: a/b}]\n",
                "m.yml:3:5: max-age-days must be a whole number of days from 1 to 3650, not 0",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    deactivate-after-hours: 18446744073709551615\n    consumers: [{repository: a/b}]\n",
                "m.yml:3:5: deactivate-after-hours must be a whole number of hours from 0 to 8760, not 18446744073709551615",
            ),
            (
                "version: 1\nusers:\n  - name: a\n    delete-after-days: 366\n    consumers: [{repository: a/b}]\n",
                "m.yml:3:5: delete-after-days must be a whole number of days from 0 to 365, not 366",
            ),
            (
                "version: 1\ndefaults:\n  max-age-days: 3651\nusers:\n  - name: a\n    consumers: [{repository: a/b}]\n",
                "m.yml:3:3: defaults.max-age-days must be a whole number of days from 1 to 3650, not 3651",
            ),
        ] {
            let e = err(yaml);
            assert!(e.starts_with(want), "{e}\n  wanted: {want}");
        }
    }

    #[test]
    fn shorthand_builds_repository_and_environments() {
        let m = shorthand("ci", "acme/web", "staging, production\n").unwrap();
        let scopes: Vec<_> = m.users[0]
            .consumers
            .iter()
            .map(|c| c.scope.to_string())
            .collect();
        assert_eq!(
            scopes,
            [
                "acme/web (repository secrets)",
                "acme/web environment \"staging\"",
                "acme/web environment \"production\""
            ]
        );
        assert!(shorthand("ci", "nope", "").is_err());
        assert!(shorthand("ci", "a/b", "x,x").is_err());
        assert!(
            shorthand("ci", "a/b", "staging,..")
                .unwrap_err()
                .contains("\"..\"")
        );
        assert!(shorthand("ci", "acme/..", "").is_err());
    }
}
