//! The CLI face: one subcommand per command, each with the flags of the inputs that apply to
//! it, read into the same [`RawInputs`] the action's `INPUT_*` fill (see [`crate::config`]).

use std::collections::HashMap;

use clap::{Arg, ArgAction, ValueEnum};

use crate::config::inputs::EVERY;
use crate::config::{CommandName, Face, INPUTS, Kind, RawInputs, command_name};
use CommandName::{Deactivate, Delete, Discover, Migrate, Policy, Rotate, Status, Verify};

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
        let mut raw = RawInputs::default();
        raw.face = Face::Cli;
        for i in INPUTS {
            let applies = i.on.contains(&command);
            let value = match i.kind {
                Kind::Command => Some(command_name(command).to_owned()),
                _ if !applies => None,
                Kind::Bool => m.get_flag(i.name).then(|| "true".to_owned()),
                Kind::Value(_) => m.get_one::<String>(i.name).cloned(),
                Kind::Secret(var) => {
                    if let Some(v) = env.get(var) {
                        raw.set_secret(i.name, v);
                    }
                    continue;
                }
            };
            raw.set(i.name, value.unwrap_or_default());
        }
        Ok(raw)
    }
}
