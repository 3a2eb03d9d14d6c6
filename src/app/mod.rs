//! Wiring: settings → manifest → adapters → prepare every user → execute → reports and exit code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::action::{self, Console, Runtime};
use futures_util::stream::{self, StreamExt as _};

use crate::adapters::aws;
use crate::adapters::github::GitHub;
use crate::adapters::stores::Stores;
use crate::adapters::vault::{Vault, VaultSettings};
use crate::config::{ManifestSource, Settings, Tuning};
use crate::exit::Exit;
use crate::manifest::{self, Manifest};
use crate::ports::{Events, SystemClock};
use crate::report;
use crate::rotation::journal;
use crate::rotation::run::{Command, Fault, UserReport};

mod commands;
mod discover;
mod exposure;
mod outputs;
mod phases;
mod signals;

pub use outputs::{exit_code, exit_output};
pub use signals::Signals;

/// An error that ends the run before any user was touched.
type Stop = crate::exit::Refusal;

/// Reads for every item, `width` at a time, keeping their order; the first error in that order
/// stops the run, before anything changed.
async fn read_all<T, U, F: Future<Output = Result<U, Fault>>>(
    items: impl IntoIterator<Item = T>,
    width: usize,
    read: impl FnMut(T) -> F,
) -> Result<Vec<U>, Stop> {
    let results: Vec<_> = stream::iter(items)
        .map(read)
        .buffered(width)
        .collect()
        .await;
    results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(unchanged)
}

/// The live ports: IAM and STS, GitHub with the AWS stores beside it, and the system clock.
struct Live<'a> {
    aws: &'a aws::Aws,
    stores: Stores<'a>,
    github: &'a crate::adapters::github::GitHub,
}

impl<'a> crate::ports::Ports for Live<'a> {
    type Iam = aws::Aws;
    type Store = Stores<'a>;
    type Workflows = crate::adapters::github::GitHub;
    type Clock = SystemClock;
    fn iam(&self) -> &aws::Aws {
        self.aws
    }
    fn store(&self) -> &Stores<'a> {
        &self.stores
    }
    fn workflows(&self) -> &crate::adapters::github::GitHub {
        self.github
    }
    fn clock(&self) -> &SystemClock {
        &SystemClock
    }
}

/// A user could not be read or planned: the run stops before anything changed.
fn unchanged(fault: Fault) -> Stop {
    match fault {
        Fault::Invalid(m) => Stop::new(Exit::Invalid, m),
        Fault::Failed(m) => Stop::run_again(Exit::Failed, m),
    }
}

fn load_manifest(settings: &Settings, rt: &Runtime) -> Result<Manifest, Stop> {
    select_user(load_all(settings, rt)?, settings.user.as_deref())
}

/// The manifest with every user, whatever `--user` selects.
fn load_all(settings: &Settings, rt: &Runtime) -> Result<Manifest, Stop> {
    let ManifestSource::File { path, explicit } = &settings.config;
    let full: PathBuf = match &rt.workspace {
        Some(ws) if Path::new(path).is_relative() => Path::new(ws).join(path),
        _ => PathBuf::from(path),
    };
    let manifest = match std::fs::read_to_string(&full) {
        Ok(text) => {
            if settings.iam_user.is_some() {
                return Err(Stop::new(
                    Exit::Invalid,
                    format!(
                        "both a manifest ({path}) and {} are given: list the user in the manifest (and select it with {}), or remove the manifest",
                        settings.named("iam-user"),
                        settings.named("user")
                    ),
                ));
            }
            manifest::parse(path, &text).map_err(|e| Stop::new(Exit::Invalid, e.to_string()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            let Some(iam_user) = &settings.iam_user else {
                return Err(Stop::new(
                    Exit::Invalid,
                    format!(
                        "no manifest at {path}: add one (see the manifest reference in the README), point {} at it, or give {} for a single user whose consumers are this repository",
                        settings.named("config"),
                        settings.named("iam-user")
                    ),
                ));
            };
            let Some(repo) = rt.repository.clone() else {
                return Err(Stop::new(
                    Exit::Invalid,
                    format!(
                        "{} writes to the current repository, but GITHUB_REPOSITORY is not set: export GITHUB_REPOSITORY=owner/name (the repository whose secrets hold the key), or write a manifest",
                        settings.named("iam-user")
                    ),
                ));
            };
            manifest::shorthand(iam_user, &repo, &settings.environments)
                .map_err(|e| Stop::new(Exit::Invalid, e))?
        }
        Err(e) => {
            return Err(Stop::new(
                Exit::Invalid,
                format!(
                    "cannot read the manifest {path}: {e}; {} is relative to {}",
                    settings.named("config"),
                    if rt.workspace.is_some() {
                        "GITHUB_WORKSPACE"
                    } else {
                        "the current directory"
                    }
                ),
            ));
        }
    };
    Ok(manifest)
}

fn select_user(mut manifest: Manifest, user: Option<&str>) -> Result<Manifest, Stop> {
    if let Some(name) = user {
        if !manifest.users.iter().any(|u| u.name == name) {
            let known: Vec<_> = manifest.users.iter().map(|u| u.name.as_str()).collect();
            return Err(Stop::new(
                Exit::Invalid,
                format!(
                    "user {name:?} is not in {} (its users: {})",
                    manifest.source,
                    known.join(", ")
                ),
            ));
        }
        manifest.users.retain(|u| u.name == name);
    }
    Ok(manifest)
}

/// Runs one invocation and returns the exit code. Prints through `console` only.
pub async fn run(settings: Settings, rt: &Runtime, console: &Console, tuning: Tuning) -> Exit {
    let json = settings.json;
    let command = crate::config::command_name(settings.command);
    let code = run_or_stop(settings, rt, console, tuning, json, command).await;
    if let Some(path) = &rt.output_file
        && let Err(e) = action::write_outputs(path, &exit_output(code))
    {
        console.warn(&format!("could not write the outputs {path}: {e}"));
    }
    code
}

/// [`phases::run_inner`], with a run that stopped early said as the contract wants (stderr, `--json`,
/// the step summary).
async fn run_or_stop(
    settings: Settings,
    rt: &Runtime,
    console: &Console,
    tuning: Tuning,
    json: bool,
    command: &str,
) -> Exit {
    match phases::run_inner(settings, rt, console, tuning).await {
        Ok(code) => code,
        Err(stop) => {
            let (code, message) = (stop.exit, stop.to_string());
            console.error(&message);
            if json {
                print!(
                    "{}",
                    console.scrub(&report::error_json(command, code.code(), &message))
                );
            }
            if let Some(path) = &rt.summary_file {
                let md = format!(
                    "## aws-key-rotator\n\n**Error:** {}\n\nNothing was changed.\n",
                    report::escape_markdown(&message)
                );
                let _ = action::append_summary(path, &console.scrub(&md));
            }
            code
        }
    }
}

/// CONTRACT §16: an issue for each user that needs a person, in `issue-repository`, with the
/// token of `issue-token` (else the consumers' client). Never changes the run's result.
async fn tell_a_person(
    settings: &Settings,
    rt: &Runtime,
    console: &Console,
    tuning: &Tuning,
    github: &GitHub,
    command: Command,
    reports: &[UserReport],
) {
    let Some(repo) = settings.issue_repository.resolve(rt.repository.as_deref()) else {
        return;
    };
    let own;
    let issues = match &settings.issue_token {
        Some(token) => match GitHub::new(&rt.api_url, Some(token.clone()), tuning.pacing.clone()) {
            Ok(g) => {
                own = g;
                &own
            }
            Err(e) => {
                console.warn(&format!("could not tell a person in {repo}: {e}"));
                return;
            }
        },
        None => github,
    };
    let ManifestSource::File { path, .. } = &settings.config;
    let ctx = crate::notify::Context {
        command: command_name(command).to_owned(),
        config: path.clone(),
        run_url: run_url(rt),
    };
    let told = crate::notify::tell(issues, &repo, reports, &ctx).await;
    for line in &told.done {
        console.info(line);
    }
    for w in &told.warnings {
        console.warn(w);
    }
}

/// This workflow run's page, when the process runs in one.
fn run_url(rt: &Runtime) -> Option<String> {
    match (&rt.repository, &rt.github_run) {
        (Some(own), Some((id, _))) => Some(format!(
            "{}/{own}/actions/runs/{}",
            rt.server_url.trim_end_matches('/'),
            id.trim()
        )),
        _ => None,
    }
}

/// The manifest's account roles, each once, in manifest order.
fn account_roles(manifest: &Manifest) -> Vec<manifest::AccountRole> {
    let mut roles: Vec<manifest::AccountRole> = Vec::new();
    for role in manifest
        .users
        .iter()
        .filter_map(|u| u.account_role.as_ref())
    {
        if !roles.contains(role) {
            roles.push(role.clone());
        }
    }
    roles
}

/// This job as a lease names it: its workflow run attempt and runner (in Actions only).
fn holder_run(rt: &Runtime) -> Option<journal::HolderRun> {
    let (id, attempt) = rt.github_run.as_ref()?;
    Some(journal::HolderRun::new(
        rt.repository.as_deref()?,
        id.trim().parse().ok()?,
        attempt.trim().parse().unwrap_or(1),
        rt.runner.as_deref().unwrap_or("unknown"),
    ))
}

fn command_name(c: Command) -> &'static str {
    match c {
        Command::Status => "status",
        Command::Rotate => "rotate",
        Command::Deactivate => "deactivate",
        Command::Delete => "delete",
    }
}

/// The GitHub client: the token, or the App with an installation token per owner of the
/// manifest's consumers and verify entries (each masked the moment it exists).
async fn github_client(
    settings: &Settings,
    rt: &Runtime,
    console: &Console,
    tuning: &Tuning,
    manifest: &Manifest,
) -> Result<GitHub, Stop> {
    crate::adapters::github::check_api_url(&rt.api_url, rt.allow_http)
        .map_err(|e| Stop::new(Exit::Invalid, e))?;
    let Some((app_id, key)) = &settings.app else {
        return GitHub::new(
            &rt.api_url,
            settings.github_token.clone(),
            tuning.pacing.clone(),
        )
        .map_err(|e| Stop::new(Exit::Invalid, e));
    };
    let owners = crate::discover::owners(&manifest.users);
    let (github, tokens) =
        GitHub::with_app(&rt.api_url, *app_id, key, &owners, tuning.pacing.clone())
            .await
            .map_err(|e| Stop::new(Exit::Invalid, e))?;
    for t in &tokens {
        console.mask(t);
    }
    Ok(github)
}

/// How long a run's lease lasts: past every wait of a run (propagation, verification, and a
/// margin). A Vault token must last as long.
fn lease_ttl(settings: &Settings, tuning: &Tuning) -> Duration {
    tuning.propagation
        + tuning.verify_timeout.unwrap_or(settings.verify_timeout)
        + Duration::from_secs(15 * 60)
}

/// The Vault client, logged in to every server the manifest's Vault consumers name (so every
/// token is masked before anything else is printed).
async fn vault_client(
    settings: &Settings,
    rt: &Runtime,
    console: &Console,
    tuning: &Tuning,
    manifest: &Manifest,
) -> Result<Vault, Stop> {
    let vault = Vault::new(VaultSettings {
        address: rt.vault_address.clone(),
        token: rt.vault_token.clone(),
        role: settings.vault_role.clone(),
        auth_mount: settings.vault_auth_mount.clone(),
        audience: settings.vault_audience.clone(),
        id_token_request: rt.id_token_request.clone(),
        call_timeout: tuning.pacing.call_timeout,
        min_token_ttl: lease_ttl(settings, tuning),
        allow_http: rt.allow_http,
    })
    .map_err(|e| Stop::new(Exit::Invalid, e))?
    .masking_with(mask_with(console));
    let scopes: Vec<&crate::manifest::Scope> = manifest
        .users
        .iter()
        .flat_map(|u| &u.consumers)
        .map(|c| &c.scope)
        .filter(|s| matches!(s, crate::manifest::Scope::Vault { .. }))
        .collect();
    if !scopes.is_empty() {
        let tokens = vault
            .log_in(&scopes)
            .await
            .map_err(|e| Stop::new(Exit::Invalid, e))?;
        for t in &tokens {
            console.mask(t);
        }
    }
    Ok(vault)
}

/// Appends the Markdown `md` makes to the step summary, when there is one (in Actions); a
/// summary that cannot be written is a warning.
fn summarize(rt: &Runtime, console: &Console, md: impl FnOnce() -> String) {
    if let Some(path) = &rt.summary_file
        && let Err(e) = action::append_summary(path, &console.scrub(&md()))
    {
        console.warn(&format!("could not write the step summary {path}: {e}"));
    }
}

/// Collects the process environment once.
pub fn environment() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The exit an account role's session that cannot be used calls for (CONTRACT §15).
fn not_reached(e: &crate::adapters::aws::NotReached) -> (Exit, String) {
    use crate::adapters::aws::NotReached;
    let code = match e {
        NotReached::Refused(_) => Exit::Invalid,
        NotReached::Failed(_) => Exit::Failed,
        NotReached::WrongSession(_) => Exit::Refused,
    };
    (code, e.to_string())
}

/// The console's masker as a function the adapters call.
fn mask_with(console: &Console) -> crate::ports::Mask {
    let masker = console.masker();
    std::sync::Arc::new(move |s: &secrecy::SecretString| masker.mask(s))
}
