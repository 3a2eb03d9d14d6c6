//! One run of `status`, `rotate`, `deactivate` or `delete`, as named phases: connect (masking,
//! the adapters, one session per account role), read and plan every user, admit (the hour's
//! write budget, exposed users first), read what the writes need, act (users side by side,
//! signals), report, tell.

use futures_util::stream::{self, StreamExt as _};
use secrecy::ExposeSecret;

use super::outputs::{exit_code, outputs};
use super::signals::{GIVE_BACK_WITHIN, Signal, Signals, before_changes, interruptible};
use super::{
    Live, Stop, account_roles, command_name, commands, exposure, github_client, holder_run,
    lease_ttl, load_manifest, read_all, run_url, summarize, tell_a_person, vault_client,
};
use crate::action::{self, Console, Runtime, UserLog};
use crate::adapters::aws::{self, AccountSession};
use crate::adapters::aws_stores::AwsStores;
use crate::adapters::github::GitHub;
use crate::adapters::stores::Stores;
use crate::adapters::vault::Vault;
use crate::alerts::Sightings;
use crate::config::Tuning;
use crate::config::{CommandName, Settings};
use crate::exit::Exit;
use crate::manifest::{self, Manifest, UserSpec};
use crate::ports::{Clock, Events, SystemClock};
use crate::report;
use crate::rotation::journal;
use crate::rotation::plan::Options;
use crate::rotation::run::{self, Command, Ctx, LeaseSettings, Outcome, Prepared, UserReport};
use crate::rotation::verify::VerifySettings;

/// Where a user is worked on: its account's context, or why it cannot be.
type Place<'a> = Result<&'a Ctx<'a, Live<'a>>, (Exit, String)>;

/// A user admitted to act: its place in the manifest, its plan, its context.
type Starting<'a> = (usize, &'a UserSpec, Prepared, &'a Ctx<'a, Live<'a>>);

pub(super) async fn run_inner(
    settings: Settings,
    rt: &Runtime,
    console: &Console,
    tuning: Tuning,
) -> Result<Exit, Stop> {
    mask_credentials(&settings, rt, console);
    let command = match settings.command {
        CommandName::Verify => return commands::verify(&settings, console, &tuning).await,
        CommandName::Discover => {
            return super::discover::discover(&settings, rt, console, &tuning).await;
        }
        CommandName::Policy => return commands::policy(&settings, rt, &tuning).await,
        CommandName::Migrate => return commands::migrate(&settings, rt, console, &tuning).await,
        CommandName::Status => Command::Status,
        CommandName::Rotate => Command::Rotate,
        CommandName::Deactivate => Command::Deactivate,
        CommandName::Delete => Command::Delete,
    };
    // Commands that change something listen for SIGINT/SIGTERM from here on; the others end
    // at once, as any program does (they change nothing).
    let mut signals = if command == Command::Status || settings.dry_run {
        Signals::none()
    } else {
        Signals::listen()
    };
    let manifest = load_manifest(&settings, rt)?;
    one_key_names_one_user(&settings, &manifest)?;
    let run = Run {
        settings: &settings,
        rt,
        console,
        tuning: &tuning,
        manifest: &manifest,
        command,
    };
    let conn = run.connect().await?;
    let (reports, signal) = run.work(&conn, &mut signals).await?;
    Ok(run.finish(&conn, reports, signal).await)
}

/// Every credential the process was given, masked before anything else is printed.
fn mask_credentials(settings: &Settings, rt: &Runtime, console: &Console) {
    let tokens = [&settings.github_token, &settings.issue_token];
    // Vault's token and the job's OIDC request token too.
    let others = [
        rt.vault_token.as_ref(),
        rt.id_token_request.as_ref().map(|(_, t)| t),
    ];
    for t in tokens
        .into_iter()
        .flatten()
        .chain(others.into_iter().flatten())
    {
        console.mask(t);
    }
    if let Some((_, key)) = &settings.app {
        // The runner masks line by line: every line of the PEM.
        for line in key.expose_secret().lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with("-----") {
                console.mask(&secrecy::SecretString::from(line.to_owned()));
            }
        }
    }
}

fn one_key_names_one_user(settings: &Settings, manifest: &Manifest) -> Result<(), Stop> {
    if settings.old_access_key_id.is_some() && manifest.users.len() > 1 {
        return Err(Stop::new(
            Exit::Invalid,
            format!(
                "{} names one key, but the manifest has several users: select one with {}",
                settings.named("old-access-key-id"),
                settings.named("user")
            ),
        ));
    }
    Ok(())
}

/// What one run is given.
struct Run<'r> {
    settings: &'r Settings,
    rt: &'r Runtime,
    console: &'r Console,
    tuning: &'r Tuning,
    manifest: &'r Manifest,
    command: Command,
}

/// The adapters of one run, and what it read before planning.
struct Connection {
    aws: aws::Aws,
    step_key: Option<crate::ports::StepKey>,
    github: GitHub,
    vault: Vault,
    home_account: Option<String>,
    roles: Vec<manifest::AccountRole>,
    sessions: Vec<AccountSession>,
    scanning: Sightings,
    opts: Options,
    lease: LeaseSettings,
    stop: crate::ports::Stop,
}

impl<'r> Run<'r> {
    /// The adapters, the secret scanning alerts, and one session per account role.
    async fn connect(&self) -> Result<Connection, Stop> {
        let (settings, rt, console, tuning) = (self.settings, self.rt, self.console, self.tuning);
        let aws = aws::load(tuning.propagation, tuning.pacing.call_timeout).await;
        let step_key = aws
            .step_key()
            .await
            .map_err(|e| Stop::new(Exit::Invalid, e.to_string()))?;
        if let Some(k) = &step_key {
            console.mask(&k.secret);
        }
        let github = github_client(settings, rt, console, tuning, self.manifest).await?;
        let scanning = exposure::look(&github, &self.manifest.users, console).await;
        let opts = options(settings, rt, &scanning);
        let lease = lease_settings(settings, rt, tuning);
        let vault = vault_client(settings, rt, console, tuning, self.manifest).await?;
        // The accounts: this process's own, and one session per account role (CONTRACT §15).
        let home_account = aws.account_once().await;
        let roles = account_roles(self.manifest);
        let sessions = futures_util::future::join_all(
            roles
                .iter()
                .map(|r| aws.through_role(r, &lease.run_id, super::mask_with(console))),
        )
        .await;
        Ok(Connection {
            aws,
            step_key,
            github,
            vault,
            home_account,
            roles,
            sessions,
            scanning,
            opts,
            lease,
            stop: crate::ports::Stop::default(),
        })
    }

    /// Plans every user, admits those the hour's budget fits, and acts; the reports in manifest
    /// order (a user not reached or deferred has its own), and the signal that stopped the run.
    async fn work(
        &self,
        conn: &Connection,
        signals: &mut Signals,
    ) -> Result<(Vec<Option<UserReport>>, Option<Signal>), Stop> {
        let reached: Vec<(&aws::Aws, AwsStores)> = std::iter::once(Ok(&conn.aws))
            .chain(conn.sessions.iter().map(|s| s.reached.as_ref()))
            .filter_map(Result::ok)
            .map(|a| (a, AwsStores::new(a.config())))
            .collect();
        let lives: Vec<Live> = reached
            .iter()
            .map(|(aws, aws_stores)| Live {
                aws,
                stores: Stores {
                    github: &conn.github,
                    aws: aws_stores,
                    vault: &conn.vault,
                },
                github: &conn.github,
            })
            .collect();
        let ctxs: Vec<Ctx<Live>> = lives.iter().map(|live| self.ctx(conn, live)).collect();
        let place = places(self.manifest, &conn.roles, &conn.sessions, &ctxs);
        let ready = self.plan(&place, signals).await?;
        let mut reports: Vec<Option<UserReport>> = vec![None; self.manifest.users.len()];
        let starting = self.admit(&conn.github, &place, ready, &mut reports).await;
        let width = self.tuning.max_concurrent_users.max(1);
        // What the starting users' writes need (timestamps, public keys), still before
        // anything changes: a store that cannot be read stops the run here, untouched.
        let starting = before_changes(
            read_all(starting, width, |(i, user, mut p, ctx)| async move {
                run::read_for_writes(ctx, user, &mut p)
                    .await
                    .map(|()| (i, user, p, ctx))
            }),
            signals,
        )
        .await??;
        let signal = self.act(starting, &mut reports, signals, &conn.stop).await;
        let accounts: Vec<_> = place
            .iter()
            .map(|p| p.as_ref().ok().map(|c| c.ports.aws.config()))
            .collect();
        exposure::gather_evidence(&mut reports, &accounts).await;
        Ok((reports, signal))
    }

    fn ctx<'a>(&'a self, conn: &'a Connection, live: &'a Live<'a>) -> Ctx<'a, Live<'a>> {
        Ctx {
            ports: live,
            events: self.console,
            verify: VerifySettings {
                timeout: self
                    .tuning
                    .verify_timeout
                    .unwrap_or(self.settings.verify_timeout),
                poll: self
                    .tuning
                    .poll_interval
                    .unwrap_or(self.settings.poll_interval),
            },
            step_key: conn.step_key.as_ref(),
            opts: &conn.opts,
            dry_run: self.settings.dry_run,
            lease: &conn.lease,
            stop: &conn.stop,
        }
    }

    /// Phase 1: read everything and decide, for every user, before changing anything. Reads
    /// only, so users are read side by side; the first user's error (in manifest order) stops.
    /// A user whose account cannot be reached is reported as such, and the others go on.
    async fn plan<'a>(
        &self,
        place: &[Place<'a>],
        signals: &mut Signals,
    ) -> Result<Vec<Prepared>, Stop> {
        let width = self.tuning.max_concurrent_users.max(1);
        let command = self.command;
        let reachable: Vec<(&UserSpec, &Ctx<Live>)> = self
            .manifest
            .users
            .iter()
            .zip(place)
            .filter_map(|(u, p)| Some((u, *p.as_ref().ok()?)))
            .collect();
        let ready = before_changes(
            read_all(reachable, width, |(user, ctx)| {
                run::plan_user(ctx, user, command)
            }),
            signals,
        )
        .await??;
        compromised_is_managed(self.settings, &ready)?;
        Ok(ready
            .into_iter()
            .map(|p| match self.settings.exposed_only {
                true => exposure::exposed_only(p),
                false => p,
            })
            .collect())
    }

    /// The hour's write budget decides who starts: a user is rotated entirely or not at all,
    /// exposed users first (CONTRACT §17: their answer must not wait for the next run's
    /// budget), then in manifest order. The others get their report here.
    async fn admit<'a>(
        &self,
        github: &GitHub,
        place: &[Place<'a>],
        ready: Vec<Prepared>,
        reports: &mut [Option<UserReport>],
    ) -> Vec<Starting<'a>>
    where
        'r: 'a,
    {
        let console = self.console;
        let mut ready = ready.into_iter();
        let mut pending = Vec::new();
        for (i, (user, at)) in self.manifest.users.iter().zip(place).enumerate() {
            let ctx = match at {
                Ok(ctx) => *ctx,
                Err((code, why)) => {
                    console.error(&format!("{}: {why}", user.name));
                    reports[i] = Some(UserReport::new(user, Outcome::unreached(*code, why)));
                    continue;
                }
            };
            let Some(p) = ready.next() else { break };
            pending.push((i, user, p, ctx));
        }
        pending.sort_by_key(|(_, _, p, _)| p.facts.exposed_active().is_empty());
        let mut left = github.writes_left_this_hour().await;
        let mut starting = Vec::new();
        for (i, user, p, ctx) in pending {
            let needed = run::writes_needed(&p);
            if !self.settings.dry_run && needed > left {
                let why = format!(
                    "needs {needed} GitHub writes and this hour's budget has {left} left (AWS_KEY_ROTATOR_GITHUB_WRITES_PER_HOUR): the next run takes it"
                );
                console.warn(&format!("{}: deferred: {why}", user.name));
                reports[i] = Some(run::defer(user, &p, why));
                continue;
            }
            left -= needed.min(left);
            starting.push((i, user, p, ctx));
        }
        starting
    }

    /// Phase 2: act. Users are worked on side by side (at most `width` at once), so one
    /// user's propagation wait and verification overlap another's writes; every GitHub write
    /// still goes one at a time through the process's one governor. Each user's lines are
    /// printed as one block when it is done.
    async fn act<'a>(
        &self,
        starting: Vec<Starting<'a>>,
        reports: &mut [Option<UserReport>],
        signals: &mut Signals,
        stop: &crate::ports::Stop,
    ) -> Option<Signal> {
        let (console, command) = (self.console, self.command);
        let width = self.tuning.max_concurrent_users.max(1);
        let live = width == 1 || starting.len() == 1;
        let started: Vec<(usize, &UserSpec, &Ctx<Live>)> = starting
            .iter()
            .map(|(i, user, _, ctx)| (*i, *user, *ctx))
            .collect();
        let finished = std::cell::RefCell::new(reports);
        let acting = async {
            let mut done = stream::iter(starting)
                .map(|(i, user, p, ctx)| async move {
                    let log = UserLog::new(console, live);
                    let user_ctx = ctx.with_events(&log);
                    log.group(&format!("{} ({})", user.name, command_name(command)));
                    let r = run::execute(&user_ctx, user, command, p).await;
                    log.end_group();
                    (i, r, log)
                })
                .buffer_unordered(width);
            while let Some((i, r, log)) = done.next().await {
                log.flush();
                say_outcome(console, &r);
                finished.borrow_mut()[i] = Some(r);
            }
        };
        let signal = interruptible(acting, signals, stop).await;
        let reports = finished.into_inner();
        if let Some(signal) = signal {
            give_back(started, reports, signal, console).await;
        }
        signal
    }

    /// The report in every form, the outputs, then the alerts closed and a person told.
    async fn finish(
        &self,
        conn: &Connection,
        reports: Vec<Option<UserReport>>,
        signal: Option<Signal>,
    ) -> Exit {
        let (settings, rt, console, command) = (self.settings, self.rt, self.console, self.command);
        let mut reports: Vec<UserReport> = reports.into_iter().flatten().collect();
        for r in &mut reports {
            r.account = match &r.user.account_role {
                Some(role) => Some(role.account.clone()),
                None => conn.home_account.clone(),
            };
        }
        let view = report::views(command_name(command), &reports, SystemClock.now());
        if settings.json {
            print!("{}", console.scrub(&report::json(&view)));
        } else {
            console.info(report::text(&view).trim_end());
        }
        summarize(rt, console, || report::markdown(&view));
        if let Some(path) = &rt.output_file
            && let Err(e) = action::write_outputs(path, &outputs(&reports))
        {
            console.warn(&format!("could not write the outputs {path}: {e}"));
        }
        if signal.is_none() && !settings.dry_run && command != Command::Status {
            let url = run_url(rt);
            exposure::close_alerts(
                &conn.github,
                &conn.scanning,
                &reports,
                url.as_deref(),
                console,
            )
            .await;
            let github = &conn.github;
            tell_a_person(
                settings,
                rt,
                console,
                self.tuning,
                github,
                command,
                &reports,
            )
            .await;
        }
        match signal {
            Some(s) => s.exit(),
            None => exit_code(&reports),
        }
    }
}

/// A user's failure or refusal, and why it needs a person, as the run's errors.
fn say_outcome(console: &Console, r: &UserReport) {
    if let Outcome::Failed(m)
    | Outcome::Refused(m)
    | Outcome::Invalid(m)
    | Outcome::Interrupted(m) = &r.outcome
    {
        console.error(&format!("{}: {m}", r.user.name));
    }
    if let Some(why) = &r.attention {
        console.error(&format!("{} needs a person: {why}", r.user.name));
    }
}

/// The runs that did not stop by themselves in time: their leases are given back here, and
/// each says where it stopped (CONTRACT §12: within 5 seconds of the signal).
async fn give_back(
    started: Vec<(usize, &UserSpec, &Ctx<'_, Live<'_>>)>,
    reports: &mut [Option<UserReport>],
    signal: Signal,
    console: &Console,
) {
    let unfinished: Vec<_> = started
        .into_iter()
        .filter(|(i, _, _)| reports[*i].is_none())
        .collect();
    let give_back = futures_util::future::join_all(
        unfinished
            .iter()
            .map(|(_, user, ctx)| run::give_back_lease(ctx, user)),
    );
    let words = tokio::time::timeout(GIVE_BACK_WITHIN, give_back)
        .await
        .unwrap_or_else(|_| {
            vec![
                "giving the lease back took too long: it expires by itself".to_owned();
                unfinished.len()
            ]
        });
    for ((i, user, _), words) in unfinished.into_iter().zip(words) {
        let why = format!(
            "stopped by {} while it was working ({words})",
            signal.name()
        );
        console.error(&format!("{}: {why}", user.name));
        reports[i] = Some(UserReport::new(user, Outcome::Interrupted(why)));
    }
}

/// The run's options, from the settings and what secret scanning showed.
fn options(settings: &Settings, rt: &Runtime, scanning: &Sightings) -> Options {
    Options {
        force: settings.force,
        delete_inactive: settings.delete_inactive,
        straggler_window: settings.straggler_window,
        old_access_key_id: settings.old_access_key_id.clone(),
        deactivate_after: settings.deactivate_after,
        delete_after: settings.delete_after,
        own_repository: rt.repository.clone(),
        compromised: settings.compromised_key_id.clone(),
        alerts: scanning.alerts.clone(),
    }
}

/// This run's lease: its id, how long it lives, and the job that holds it.
fn lease_settings(settings: &Settings, rt: &Runtime, tuning: &Tuning) -> LeaseSettings {
    let ttl = chrono::Duration::from_std(lease_ttl(settings, tuning))
        .unwrap_or(chrono::Duration::hours(1));
    LeaseSettings {
        run_id: journal::run_id(
            rt.github_run
                .as_ref()
                .map(|(id, attempt)| (id.as_str(), attempt.as_str())),
            std::process::id(),
            SystemClock.now(),
        ),
        settle: tuning.lease_settle,
        ttl,
        github: holder_run(rt),
        call_timeout: chrono::Duration::from_std(tuning.pacing.call_timeout)
            .unwrap_or(chrono::Duration::seconds(30)),
    }
}

/// Where each user is worked on: the home account's context (the first of `ctxs`), or its
/// account role's (`ctxs` holds one per role reached, in order), or why it cannot be.
fn places<'a>(
    manifest: &Manifest,
    roles: &[manifest::AccountRole],
    sessions: &[AccountSession],
    ctxs: &'a [Ctx<'a, Live<'a>>],
) -> Vec<Place<'a>> {
    let unreached = |role: &manifest::AccountRole| {
        (
            Exit::Failed,
            format!("no session for account-role {}", role.arn),
        )
    };
    let mut reached_roles = ctxs.iter().skip(1);
    let ctx_of_role: Vec<Place<'a>> = roles
        .iter()
        .zip(sessions)
        .map(|(role, session)| match &session.reached {
            Ok(_) => reached_roles.next().ok_or_else(|| unreached(role)),
            Err(e) => Err(super::not_reached(e)),
        })
        .collect();
    manifest
        .users
        .iter()
        .map(|u| match &u.account_role {
            None => Ok(&ctxs[0]),
            Some(role) => roles
                .iter()
                .position(|r| r == role)
                .and_then(|at| ctx_of_role.get(at).cloned())
                .unwrap_or_else(|| Err(unreached(role))),
        })
        .collect()
}

/// `compromised-key-id` names a managed user's key, or nothing is done (CONTRACT §17).
fn compromised_is_managed(settings: &Settings, ready: &[Prepared]) -> Result<(), Stop> {
    let Some(id) = &settings.compromised_key_id else {
        return Ok(());
    };
    if ready
        .iter()
        .any(|p| p.facts.keys.iter().any(|k| k.id == *id))
    {
        return Ok(());
    }
    Err(Stop::new(
        Exit::Invalid,
        format!(
            "{} {id} is not a key of any user of the manifest{}: nothing was changed. Name a key `status` lists, or add its user to the manifest",
            settings.named("compromised-key-id"),
            settings
                .user
                .as_ref()
                .map(|u| format!(" selected with user {u}"))
                .unwrap_or_default()
        ),
    ))
}
