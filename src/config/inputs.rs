//! Every input in one table: its name, the commands that take it, its kind and its help. The
//! action's `INPUT_*`, the CLI's flags, action.yml and the docs' inputs table all follow it.

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CommandName {
    Status,
    Rotate,
    Deactivate,
    Delete,
    Discover,
    Verify,
    Policy,
    Migrate,
}

/// How an input takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The command: `INPUT_COMMAND`, or the CLI's first argument.
    Command,
    /// `true`/`false`; a flag without a value on the CLI.
    Bool,
    /// A value; the CLI flag takes it, named as given here in the help.
    Value(&'static str),
    /// A secret: its `INPUT_*`, or on the CLI the environment variable named here (never a
    /// flag: command lines are visible to other processes).
    Secret(&'static str),
}

/// One input of the action, which is also a flag of the CLI with the same name.
#[derive(Clone, Copy, Debug)]
pub struct Input {
    pub name: &'static str,
    pub kind: Kind,
    /// The commands it applies to (the CLI offers it on those).
    pub on: &'static [CommandName],
    pub help: &'static str,
}

const fn input(
    name: &'static str,
    kind: Kind,
    on: &'static [CommandName],
    help: &'static str,
) -> Input {
    Input {
        name,
        kind,
        on,
        help,
    }
}

use CommandName::{Deactivate, Delete, Discover, Migrate, Policy, Rotate, Status, Verify};
pub(crate) const EVERY: &[CommandName] = &[
    Status, Rotate, Deactivate, Delete, Discover, Verify, Policy, Migrate,
];
/// The commands that read the manifest and talk to GitHub.
const MANIFEST: &[CommandName] = &[Status, Rotate, Deactivate, Delete, Discover, Migrate];
/// The commands that read the manifest.
const READS_MANIFEST: &[CommandName] = &[
    Status, Rotate, Deactivate, Delete, Discover, Policy, Migrate,
];
const CHANGING: &[CommandName] = &[Rotate, Deactivate, Delete, Migrate];
/// The commands that read and write the consumers' stores.
const STORES: &[CommandName] = &[Status, Rotate, Deactivate, Delete];
/// `force` overrides a safety rule of these (`migrate` has none to override).
const FORCEABLE: &[CommandName] = &[Rotate, Deactivate, Delete];
const RETIRING: &[CommandName] = &[Deactivate, Delete];
/// The commands that tell a person through an issue (CONTRACT §16): those of the life cycle
/// that change something (`status` changes nothing, `migrate` reports its own way).
const TELLING: &[CommandName] = &[Rotate, Deactivate, Delete];

/// Every input, in one place: `action.yml` declares exactly these (a test checks), the action
/// reads them as `INPUT_<NAME>` (dashes kept), the CLI takes them as `--name`, and [`Settings`]
/// validates them by name.
pub const INPUTS: &[Input] = &[
    input(
        "command",
        Kind::Command,
        EVERY,
        "What to do: status | rotate | deactivate | delete | discover | verify | policy | migrate",
    ),
    input(
        "config",
        Kind::Value("FILE"),
        READS_MANIFEST,
        "The manifest (default .github/aws-key-rotation.yml, relative to GITHUB_WORKSPACE)",
    ),
    input(
        "user",
        Kind::Value("NAME"),
        READS_MANIFEST,
        "Only this IAM user of the manifest",
    ),
    input(
        "iam-user",
        Kind::Value("NAME"),
        READS_MANIFEST,
        "Without a manifest: the IAM user whose consumers are this repository and --environments",
    ),
    input(
        "environments",
        Kind::Value("LIST"),
        READS_MANIFEST,
        "Without a manifest: environments of this repository (comma separated)",
    ),
    input(
        "github-token",
        Kind::Secret("GITHUB_TOKEN"),
        MANIFEST,
        "Token that can write the consumers' secrets (CLI: env GITHUB_TOKEN)",
    ),
    input(
        "app-id",
        Kind::Value("ID"),
        MANIFEST,
        "Authenticate as this GitHub App (with app-private-key) instead of a token",
    ),
    input(
        "app-private-key",
        Kind::Secret("GITHUB_APP_PRIVATE_KEY"),
        MANIFEST,
        "The GitHub App's private key, PEM (CLI: env GITHUB_APP_PRIVATE_KEY)",
    ),
    input(
        "vault-role",
        Kind::Value("ROLE"),
        STORES,
        "Vault consumers: log in as this JWT role with the job's GitHub OIDC token (else VAULT_TOKEN)",
    ),
    input(
        "vault-auth-mount",
        Kind::Value("MOUNT"),
        STORES,
        "Vault consumers: the JWT auth method's mount (default jwt)",
    ),
    input(
        "vault-audience",
        Kind::Value("AUDIENCE"),
        STORES,
        "Vault consumers: the audience of the OIDC token for the JWT login (default: the Vault address)",
    ),
    input(
        "issue-repository",
        Kind::Value("OWNER/NAME"),
        TELLING,
        "Open an issue here for each user that needs a person (default: GITHUB_REPOSITORY; none: off)",
    ),
    input(
        "issue-token",
        Kind::Secret("GITHUB_ISSUE_TOKEN"),
        TELLING,
        "Token with issues: write on issue-repository (action default: the job's github.token; CLI: env GITHUB_ISSUE_TOKEN, else GITHUB_TOKEN)",
    ),
    input(
        "for",
        Kind::Value("IDENTITY"),
        &[Policy],
        "policy: whose policy, rotator (the daily rotator's: keys, tags, stores; never a role) or migrate (the identity that runs migrate)",
    ),
    input(
        "dry-run",
        Kind::Bool,
        CHANGING,
        "Print the plan of every mutating call and make none",
    ),
    input(
        "force",
        Kind::Bool,
        FORCEABLE,
        "Rotate a young key; repair an incomplete rotation; delete a rolled-back new key at once (else 6 hours later); retire before the grace period, despite a recent use, or with external consumers",
    ),
    input(
        "json",
        Kind::Bool,
        EVERY,
        "Print the report as JSON on stdout (human text goes to stderr)",
    ),
    input(
        "compromised-key-id",
        Kind::Value("ID"),
        &[Status, Rotate],
        "This access key id of a managed user may be compromised: rotate shows it exposed and takes it out of service at once (a new key everywhere, then the exposed one Inactive, no grace period)",
    ),
    input(
        "sarif-file",
        Kind::Value("FILE"),
        &[Discover],
        "discover: also write the findings as SARIF 2.1.0 to FILE (relative to GITHUB_WORKSPACE), for github/codeql-action/upload-sarif",
    ),
    input(
        "exposed-only",
        Kind::Bool,
        &[Rotate],
        "rotate: answer exposed keys only; keys merely due by age wait for the next run without it (an hourly schedule beside the daily one)",
    ),
    input(
        "delete-inactive",
        Kind::Bool,
        &[Rotate],
        "rotate: delete a leftover Inactive key first",
    ),
    input(
        "old-access-key-id",
        Kind::Value("ID"),
        RETIRING,
        "deactivate/delete: the key meant (must be the older key)",
    ),
    input(
        "straggler-window-minutes",
        Kind::Value("MINUTES"),
        &[Deactivate],
        "deactivate: refuse when the old key was used this long after every consumer held the new key",
    ),
    input(
        "deactivate-after-hours",
        Kind::Value("HOURS"),
        &[Status, Deactivate],
        "deactivate: grace period after the new key was verified (default: the manifest's, else 24)",
    ),
    input(
        "delete-after-days",
        Kind::Value("DAYS"),
        &[Status, Delete],
        "delete: grace period after the old key was deactivated (default: the manifest's, else 7)",
    ),
    input(
        "expected-access-key-id",
        Kind::Value("ID"),
        &[Verify],
        "verify: the access key id the credentials must be",
    ),
    input(
        "expected-role-arn",
        Kind::Value("ARN"),
        &[Verify],
        "verify: the IAM role the credentials must be a session of (a consumer moved by migrate)",
    ),
    input(
        "verify-timeout-minutes",
        Kind::Value("MINUTES"),
        &[Rotate],
        "How long to wait for verification workflows",
    ),
    input(
        "poll-interval-seconds",
        Kind::Value("SECONDS"),
        &[Rotate],
        "How often to poll verification workflows",
    ),
];

/// The command's name, as the CLI and `INPUT_COMMAND` spell it.
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
