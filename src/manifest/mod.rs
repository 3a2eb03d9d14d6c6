//! The manifest (`.github/aws-key-rotation.yml`): every IAM user and every place its key lives.
//!
//! Two layers: `raw` types are only parsed (and describe the JSON Schema); [`Manifest`] is the
//! validated, typed form the rest of the program uses. Every error names file, line and column.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;

mod diagnostics;
mod names;
pub mod raw;
mod shorthand;
#[cfg(test)]
mod tests;
mod validate;

pub(crate) use names::valid_repository;
pub use shorthand::shorthand;
use validate::Validator;

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

/// What `rotate` does with an exposed key (CONTRACT §17).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnExposure {
    /// A new key written everywhere and verified, then the exposed key Inactive at once: no
    /// consumer is left without a working key.
    #[default]
    Rotate,
    /// The exposed key Inactive first, then the rotation: consumers fail until they hold the
    /// new key; the holder of the leaked one has no window.
    Revoke,
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

/// How an S3 config object is written (CONTRACT §18).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DocumentFormat {
    /// JSON; `fields` are dotted paths of keys (`aws.key_id`).
    Json,
    /// YAML; `fields` are dotted paths of keys.
    Yaml,
    /// `NAME=value` lines; `fields` are the variables (default `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`).
    Dotenv,
    /// `[SECTION]` and `KEY = value` lines; `fields` are `SECTION.KEY`.
    Ini,
    /// The AWS CLI's credentials file; `profile` names the section (default `default`).
    Credentials,
}

impl DocumentFormat {
    /// The format an object's key tells by its name, if it does.
    pub fn from_name(key: &str) -> Option<DocumentFormat> {
        let name = key.rsplit('/').next().unwrap_or(key);
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        match (name, ext.as_deref()) {
            ("credentials", _) => Some(DocumentFormat::Credentials),
            (".env", _) | (_, Some("env")) => Some(DocumentFormat::Dotenv),
            (_, Some("json")) => Some(DocumentFormat::Json),
            (_, Some("yaml" | "yml")) => Some(DocumentFormat::Yaml),
            (_, Some("ini")) => Some(DocumentFormat::Ini),
            _ => None,
        }
    }
}

impl fmt::Display for DocumentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DocumentFormat::Json => "json",
            DocumentFormat::Yaml => "yaml",
            DocumentFormat::Dotenv => "dotenv",
            DocumentFormat::Ini => "ini",
            DocumentFormat::Credentials => "credentials",
        })
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
    /// A HashiCorp Vault or OpenBao KV v2 secret (`MOUNT/data/PATH`) whose fields named by the
    /// consumer's secret names hold the pair; its other fields are kept. `address`: default
    /// `VAULT_ADDR`.
    Vault {
        mount: String,
        path: String,
        address: Option<String>,
        namespace: Option<String>,
    },
    /// An S3 object holding app config (CONTRACT §18): the consumer's secret names are the two
    /// fields of the document ([`DocumentFormat`]) that hold the pair; every other byte is kept.
    S3 {
        bucket: String,
        key: String,
        format: DocumentFormat,
        region: Option<String>,
    },
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
            Scope::SecretsManager { .. }
                | Scope::ParameterStore { .. }
                | Scope::Vault { .. }
                | Scope::S3 { .. }
        )
    }

    /// Whether one GitHub Actions job can read an Actions variable of both scopes: GitHub
    /// resolves `vars.X` environment, then repository, then organization, so a variable of
    /// one scope of a chain (an organization, a repository of it, an environment of that
    /// repository) shadows or is shadowed by one of the same name in another of the chain.
    /// Names compare as GitHub compares them (case-insensitively); Dependabot and the stores
    /// have no Actions variables.
    pub fn shares_jobs_with(&self, other: &Scope) -> bool {
        fn chain(s: &Scope) -> Option<(String, Option<String>, Option<String>)> {
            let owner = |r: &str| r.split('/').next().unwrap_or_default().to_ascii_lowercase();
            match s {
                Scope::Repository(r) => Some((owner(r), Some(r.to_ascii_lowercase()), None)),
                Scope::Environment {
                    repository,
                    environment,
                } => Some((
                    owner(repository),
                    Some(repository.to_ascii_lowercase()),
                    Some(environment.to_ascii_lowercase()),
                )),
                Scope::Organization {
                    organization,
                    dependabot: false,
                    ..
                } => Some((organization.to_ascii_lowercase(), None, None)),
                _ => None,
            }
        }
        let (Some((o1, r1, e1)), Some((o2, r2, e2))) = (chain(self), chain(other)) else {
            return false;
        };
        let nested = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        o1 == o2 && nested(&r1, &r2) && (r1.is_none() || r2.is_none() || nested(&e1, &e2))
    }

    /// Why a consumer of this scope cannot assume a role through GitHub's OIDC, if it cannot
    /// (an organization secret can, once the repositories that read it are known).
    pub fn cannot_assume_role(&self) -> Option<&'static str> {
        match self {
            Scope::RepositoryDependabot(_)
            | Scope::Organization {
                dependabot: true, ..
            } => Some(
                "Dependabot reads its own secrets and cannot assume a role through GitHub's OIDC",
            ),
            Scope::SecretsManager { .. }
            | Scope::ParameterStore { .. }
            | Scope::Vault { .. }
            | Scope::S3 { .. } => Some("an application outside GitHub Actions reads this store"),
            Scope::Repository(_) | Scope::Environment { .. } | Scope::Organization { .. } => None,
        }
    }

    /// The store writes the pair as one (a KV v2 secret: one version for both fields; an S3
    /// object: one put of the whole document).
    pub fn whole_pair(&self) -> bool {
        matches!(self, Scope::Vault { .. } | Scope::S3 { .. })
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
            Scope::Vault {
                mount,
                path,
                address,
                namespace,
            } => {
                write!(f, "Vault secret {mount}/{path}")?;
                namespace
                    .iter()
                    .try_for_each(|n| write!(f, " in namespace {n}"))?;
                address.iter().try_for_each(|a| write!(f, " at {a}"))
            }
            Scope::S3 {
                bucket,
                key,
                format,
                region,
            } => {
                write!(f, "S3 object s3://{bucket}/{key} ({format})")?;
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
    /// `pull-requests: false`: the role `migrate` makes leaves this consumer's `pull_request`
    /// subjects out (CONTRACT §12a). Default `true`: a repository's pull requests from its
    /// own branches read its secrets today.
    pub pull_requests: bool,
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
    /// Consumers that assume the user's role (`oidc: true`) instead of holding the key: never
    /// written. With no consumer left on the key, the user's keys are retired (CONTRACT §13).
    pub on_role: Vec<Consumer>,
    /// How `migrate` moves the user's consumers to a role.
    pub migrate: Migration,
    /// `file:line:col` of the user's entry, for errors about it (e.g. no such IAM user).
    pub origin: String,
    /// The role of the user's account, when it is not the account of the run's credentials.
    pub account_role: Option<AccountRole>,
    /// `on-exposure`: how an exposed key is answered (CONTRACT §17).
    pub on_exposure: OnExposure,
}

/// A user of another AWS account, reached through a session of a role there (CONTRACT §15).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccountRole {
    /// `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`.
    pub arn: String,
    /// The twelve digits of the role's account.
    pub account: String,
    pub external_id: Option<String>,
}

impl UserSpec {
    /// Every consumer assumes the role: the keys are only retired, never rotated.
    pub fn moved(&self) -> bool {
        self.consumers.is_empty() && !self.on_role.is_empty()
    }
    /// `migrate` moves this user: it has a `migrate:` block or a consumer on the role.
    pub fn migrating(&self) -> bool {
        self.migrate.requested || !self.on_role.is_empty()
    }
}

/// The user's `migrate:` settings (defaults when absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    pub role_name: String,
    pub variable: String,
    /// `None`: copy the user's own policies; else attach these managed policies.
    pub policies: Option<Vec<String>>,
    /// The manifest has a `migrate:` block for the user (the defaults apply otherwise).
    pub requested: bool,
}

impl Migration {
    pub const DEFAULT_VARIABLE: &'static str = "AWS_ROLE_ARN";
    /// The defaults for user `user`: role `gha-<user>` (cut to IAM's 64 characters).
    pub fn defaults(user: &str) -> Self {
        let role: String = format!("gha-{user}").chars().take(64).collect();
        Self {
            role_name: role,
            variable: Self::DEFAULT_VARIABLE.to_owned(),
            policies: None,
            requested: false,
        }
    }
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
        serde_saphyr::from_str(text).map_err(|e| diagnostics::yaml_error(file, text, &e))?;
    Validator { file }.manifest(raw)
}
