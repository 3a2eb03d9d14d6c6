//! Raw inputs from either face (command line or `INPUT_*`), and the typed settings derived once.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::time::Duration;

use clap::{Arg, ArgAction, ValueEnum};
use secrecy::SecretString;

use crate::bounds::{self, Bound};

use CommandName::{Deactivate, Delete, Discover, Migrate, Policy, Rotate, Status, Verify};
use inputs::EVERY;
pub use inputs::{CommandName, INPUTS, Input, Kind};
mod inputs;

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

fn spec(name: &str) -> &'static Input {
    INPUTS
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} is not in INPUTS"))
}

fn token(value: &str) -> Option<SecretString> {
    let t = value.trim();
    (!t.is_empty()).then(|| SecretString::from(t.to_owned()))
}

/// What each command does, and an example, for its own `--help`.
fn about(c: CommandName) -> (&'static str, &'static str) {
    match c {
        Status => (
            "For each IAM user: keys, age, state, last use, and what each consumer holds. Changes nothing",
            "aws-key-rotator status --config .github/aws-key-rotation.yml --json",
        ),
        Rotate => (
            "Create a new key, prove it with STS, write it to every consumer, verify it",
            "aws-key-rotator rotate --user ci-deployer --dry-run",
        ),
        Deactivate => (
            "Set the older key Inactive once its grace period has passed, after the safety checks",
            "aws-key-rotator deactivate --user ci-deployer --old-access-key-id AKIA...",
        ),
        Delete => (
            "Delete the older key once it has been Inactive for its grace period",
            "aws-key-rotator delete --user ci-deployer",
        ),
        Discover => (
            "List places that may hold a user's key but are not in the manifest, and its key ids found in code. Changes nothing",
            "aws-key-rotator discover --json",
        ),
        Verify => (
            "Check that the credentials this process has work (STS) and are the expected key",
            "aws-key-rotator verify --expected-access-key-id AKIA...",
        ),
        Migrate => (
            "Move each user's GitHub Actions consumers to an IAM role they assume through GitHub's OIDC: the provider, the role (trust, permissions), the role's ARN as an Actions variable in each consumer's scope, and the workflow lines to replace",
            "aws-key-rotator migrate --user ci-deployer --dry-run",
        ),
        Policy => (
            "Print the least-privilege IAM policy the rotator needs for this manifest: its users, secrets and parameters, nothing wider (--for migrate: the policy of the identity that runs migrate). Changes nothing",
            "aws-key-rotator policy --config .github/aws-key-rotation.yml > rotator-policy.json",
        ),
    }
}

pub fn command_name(c: CommandName) -> &'static str {
    match c {
        Status => "status",
        Rotate => "rotate",
        Deactivate => "deactivate",
        Delete => "delete",
        Discover => "discover",
        Verify => "verify",
        Policy => "policy",
        Migrate => "migrate",
    }
}

/// The CLI: one subcommand per command, each with the flags of the inputs that apply to it
/// (secrets come from the environment, never from flags). Without a command it prints the
/// usage and exits 2.
pub fn command_line() -> clap::Command {
    let mut cli = clap::Command::new("aws-key-rotator")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Rotates AWS IAM access keys and writes them into every consumer's GitHub secrets")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .after_help(
            "Run `aws-key-rotator help COMMAND` for a command's flags. As a GitHub Action (GITHUB_ACTIONS=true, no arguments) the same inputs come from INPUT_* and the command defaults to rotate.",
        );
    for c in EVERY.iter().copied() {
        let (what, example) = about(c);
        let secrets: Vec<String> = INPUTS
            .iter()
            .filter(|i| i.on.contains(&c))
            .filter_map(|i| match i.kind {
                Kind::Secret(var) => Some(format!(
                    "  {var:<28} {}",
                    i.help.split(" (CLI:").next().unwrap_or(i.help)
                )),
                _ => None,
            })
            .collect();
        let mut env = String::from("Environment:\n");
        for line in &secrets {
            env.push_str(line);
            env.push('\n');
        }
        env.push_str(
            "  AWS_* / AWS_PROFILE          AWS credentials and region (the SDK's default chain)\n",
        );
        env.push_str("  AWS_ENDPOINT_URL             another AWS endpoint (an emulator)\n");
        if c != Verify {
            env.push_str(
                "  GITHUB_API_URL               GitHub Enterprise Server: https://HOST/api/v3\n",
            );
            env.push_str("  GITHUB_WORKSPACE             what --config is relative to (else the current directory)\n");
            env.push_str(
                "  GITHUB_REPOSITORY            owner/name: the repository --iam-user writes to\n",
            );
        }
        let mut sub = clap::Command::new(command_name(c))
            .about(what)
            .after_help(format!("{env}\nExample:\n  {example}"));
        for i in INPUTS.iter().filter(|i| i.on.contains(&c)) {
            let arg = Arg::new(i.name).help(i.help);
            let arg = match i.kind {
                Kind::Bool => arg.long(i.name).action(ArgAction::SetTrue),
                Kind::Value(v) => arg.long(i.name).value_name(v),
                Kind::Command | Kind::Secret(_) => continue,
            };
            sub = sub.arg(arg);
        }
        cli = cli.subcommand(sub);
    }
    cli
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

    /// The CLI's arguments (the first is the program) and, for secrets, its environment;
    /// `--help`, `--version` and mistakes come back as clap's error, which prints itself.
    pub fn from_args<I, T>(args: I, env: &HashMap<String, String>) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let top = command_line().try_get_matches_from(args)?;
        let (command, m) = top.subcommand().expect("clap requires a subcommand");
        let command = CommandName::from_str(command, false).expect("subcommands are commands");
        let mut raw = RawInputs {
            face: Face::Cli,
            ..RawInputs::default()
        };
        for i in INPUTS {
            let applies = i.on.contains(&command);
            let value = match i.kind {
                Kind::Command => Some(command_name(command).to_owned()),
                _ if !applies => None,
                Kind::Bool => m.get_flag(i.name).then(|| "true".to_owned()),
                Kind::Value(_) => m.get_one::<String>(i.name).cloned(),
                Kind::Secret(var) => {
                    if let Some(v) = env.get(var).and_then(|v| token(v)) {
                        raw.secrets.insert(i.name, v);
                    }
                    continue;
                }
            };
            raw.values.insert(i.name, value.unwrap_or_default());
        }
        Ok(raw)
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
