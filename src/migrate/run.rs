//! `migrate` carried out (CONTRACT §13): for each user, read what is there (the provider, the
//! role, the user's permissions, who reads each consumer's secrets, each scope's variable, each
//! repository's workflows) once, decide, and then (unless a dry run) change only what differs,
//! reading every variable back.

use std::collections::{BTreeMap, BTreeSet};

use super::permissions;
use super::report::{ConsumerMove, MigrationView, ProviderView, UserMigration, WorkflowView};
use super::role::{self, RoleSpec};
use super::trust::{self, AUDIENCE, Reach};
use super::workflows;
use crate::exit::Exit;
use crate::manifest::{Consumer, Scope, UserSpec};
use crate::ports::migrate::{Readers, Roles, Variables};
use crate::ports::{Events, GhError};

/// What the run was told.
pub struct Settings<'a> {
    /// The OIDC issuer the role trusts, placed from `GITHUB_SERVER_URL` (CONTRACT §12a).
    pub issuer: &'a str,
    /// The region the snippet configures.
    pub region: &'a str,
    pub dry_run: bool,
}

/// Why the run stopped before any user: the exit code and the message.
pub type Stopped = crate::exit::Refusal;

/// `migrate` for `users`.
pub async fn migrate<R: Roles, V: Variables>(
    iam: &R,
    github: &V,
    users: &[UserSpec],
    settings: &Settings<'_>,
    events: &dyn Events,
) -> Result<MigrationView, Stopped> {
    let (partition, account) = iam
        .account()
        .await
        .map_err(|e| iam_stop("sts:GetCallerIdentity".into(), &e))?;
    let issuer = settings.issuer.to_owned();
    let provider_arn = format!("arn:{partition}:iam::{account}:oidc-provider/{issuer}");
    let found = iam
        .provider(&provider_arn)
        .await
        .map_err(|e| iam_stop("iam:GetOpenIDConnectProvider".into(), &e))?;
    let mut view = MigrationView {
        provider: ProviderView {
            arn: provider_arn.clone(),
            issuer: issuer.clone(),
            audience: AUDIENCE.into(),
            change: provider_change(found.as_ref()).map(str::to_owned),
        },
        users: Vec::new(),
    };
    if let Some(p) = &found
        && !p.made_here
        && !p.audiences.iter().any(|a| a == AUDIENCE)
    {
        return Err(Stop::new(
            Exit::Refused,
            format!(
                "the OIDC provider {provider_arn} exists, was not made by aws-key-rotator and does not accept the audience {AUDIENCE}: it is never changed. Add the audience yourself (aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn {provider_arn} --client-id {AUDIENCE}) and run migrate again"
            ),
        ));
    }
    let mut reading = Reading::default();
    let target = Target {
        partition: &partition,
        account: &account,
        provider_arn: &provider_arn,
        issuer: &issuer,
        settings,
    };
    let mut planned = Vec::new();
    for user in users {
        planned.push(plan_user(iam, github, user, &target, &mut reading).await);
    }
    // Whenever a user keeps a role (a deleted provider is made again, even when nothing else
    // changed).
    let acting = planned.iter().any(Planned::keeps_a_role);
    if !settings.dry_run && acting && view.provider.change.is_some() {
        view.provider.change =
            Some(set_up_provider(iam, found.as_ref(), &provider_arn, &issuer, events).await?);
    }
    for p in planned {
        view.users.push(match p {
            Planned { view, act: None } => view,
            Planned { view, .. } if settings.dry_run => view,
            Planned {
                view,
                act: Some(act),
            } => apply(iam, github, view, act, events).await,
        });
    }
    Ok(view)
}

/// What was read once and is shared between users: who reads each organization secret, and
/// each repository's workflow files.
#[derive(Default)]
struct Reading {
    readers: BTreeMap<(String, String), Option<Readers>>,
    /// Per repository: whether fork pull requests get write tokens (`None`: not known).
    fork_writes: BTreeMap<String, Option<bool>>,
    workflows: BTreeMap<String, Vec<(String, String)>>,
}

/// One user's view, and what to change (`None`: nothing to change, refused, or unreadable:
/// the view is final).
struct Planned {
    view: UserMigration,
    act: Option<Acting>,
}

impl Planned {
    fn keeps_a_role(&self) -> bool {
        self.view.exit == Exit::Ok && self.view.outcome != "nothing-to-move"
    }
    fn done(view: UserMigration) -> Self {
        Self { view, act: None }
    }
}

struct Acting {
    role: RoleSpec,
    changes: Vec<role::RoleChange>,
    writes: Vec<Write>,
}

/// A variable to write: the consumer's index in the view, its scope, who reads an
/// organization variable created new, and whether it exists.
type Write = (usize, Scope, Option<Readers>, bool);

fn movable_consumers(user: &UserSpec) -> impl Iterator<Item = (&Consumer, bool)> {
    user.consumers
        .iter()
        .map(|c| (c, false))
        .chain(user.on_role.iter().map(|c| (c, true)))
}

/// IAM's default quota for a role's trust policy, in characters.
const TRUST_POLICY_LIMIT: usize = 2048;

/// Where the roles live and whom they trust, the same for every user of a run.
struct Target<'a> {
    partition: &'a str,
    account: &'a str,
    provider_arn: &'a str,
    issuer: &'a str,
    settings: &'a Settings<'a>,
}

/// A user's movable consumer as read: what its jobs present, who reads an organization
/// secret, and whether it is on the role already.
struct Reached {
    consumer: Consumer,
    reach: Reach,
    readers: Option<Readers>,
}

/// A user stopped before anything changed: the exit and why.
type Stop = crate::exit::Refusal;

fn gh_stop(e: GhError) -> Stop {
    Stop::new(exit_of(&e), e.message)
}

/// Bad credentials and a missing user are the user's to fix (exit 2); the rest failed (1).
fn iam_stop(what: String, e: &crate::ports::IamError) -> Stop {
    use crate::ports::IamErrorKind::{Credentials, NoSuchUser};
    let exit = match e.kind {
        Credentials | NoSuchUser => Exit::Invalid,
        _ => Exit::Failed,
    };
    Stop::new(exit, format!("{what}: {e}"))
}

async fn plan_user<R: Roles, V: Variables>(
    iam: &R,
    github: &V,
    user: &UserSpec,
    target: &Target<'_>,
    reading: &mut Reading,
) -> Planned {
    let m = &user.migrate;
    let mut view = UserMigration::new(
        user,
        format!(
            "arn:{}:iam::{}:role/{}",
            target.partition, target.account, m.role_name
        ),
    );
    if !user.migrating() {
        view.outcome = "nothing-to-move".into();
        view.message = Some(format!(
            "user {} has no `migrate:` block and no `oidc: true` consumer: add `migrate: {{}}` (or its settings) to move it",
            user.name
        ));
        return Planned::done(view);
    }
    match plan_changes(iam, github, user, target, reading, &mut view).await {
        Ok(act) => Planned { view, act },
        Err(stop) => {
            view.fail(stop.exit, stop.to_string());
            Planned::done(view)
        }
    }
}

/// The role a user's consumers would assume: its trust (who may), its permissions (the user's).
async fn role_spec<R: Roles>(
    iam: &R,
    user: &UserSpec,
    target: &Target<'_>,
    reached: &[Reached],
) -> Result<RoleSpec, Stop> {
    let reaches: Vec<Reach> = reached.iter().map(|r| r.reach.clone()).collect();
    let trust = trust::policy(target.provider_arn, target.issuer, &reaches);
    let size = trust.to_string().len();
    if size > TRUST_POLICY_LIMIT {
        return Err(Stop::new(
            Exit::Invalid,
            format!(
                "the role's trust policy would be {size} characters, over IAM's default limit of {TRUST_POLICY_LIMIT}: narrow who reads the organization secrets (visibility selected, or all: one pattern), or list fewer consumers"
            ),
        ));
    }
    Ok(RoleSpec {
        name: user.migrate.role_name.clone(),
        trust,
        permissions: {
            let perms = iam.user_permissions(&user.name).await.map_err(|e| {
                iam_stop(
                    format!("reading the permissions of IAM user {}", user.name),
                    &e,
                )
            })?;
            permissions::for_role(&user.name, &perms, user.migrate.policies.as_deref())
                .map_err(|why| Stop::new(Exit::Invalid, why))?
        },
    })
}

/// Reads what is there and decides; `None` when nothing differs.
async fn plan_changes<R: Roles, V: Variables>(
    iam: &R,
    github: &V,
    user: &UserSpec,
    target: &Target<'_>,
    reading: &mut Reading,
    view: &mut UserMigration,
) -> Result<Option<Acting>, Stop> {
    let reached = read_reaches(github, user, reading, view).await?;
    if !reached
        .iter()
        .any(|r| matches!(r.reach, Reach::Subjects { .. }))
    {
        view.outcome = "nothing-to-move".into();
        view.message = Some(format!(
            "user {} has no consumer in GitHub Actions that could assume a role",
            user.name
        ));
        return Ok(None);
    }
    let spec = role_spec(iam, user, target, &reached).await?;
    view.set_role(&spec);
    let found = iam
        .role(&spec.name)
        .await
        .map_err(|e| iam_stop(format!("iam:GetRole {}", spec.name), &e))?;
    if let Some(r) = &found {
        view.role_arn = r.arn.clone();
    }
    let changes = role::changes(&user.name, &spec, found.as_ref())
        .map_err(|why| Stop::new(Exit::Refused, why))?;
    view.changes = changes.iter().map(ToString::to_string).collect();
    let writes = plan_variables(github, user, &reached, view, target.settings.dry_run).await?;
    scan_workflows(
        github,
        user,
        &reached,
        reading,
        view,
        target.settings.region,
    )
    .await?;
    if changes.is_empty() && writes.is_empty() {
        view.outcome = "unchanged".into();
        return Ok(None);
    }
    view.outcome = if target.settings.dry_run {
        "planned"
    } else {
        "migrated"
    }
    .into();
    Ok(Some(Acting {
        role: spec,
        changes,
        writes,
    }))
}

/// Who can read the key's secrets today, consumer by consumer. A consumer already on the
/// role whose readers are no longer known (its organization secret is gone) stops the user:
/// the trust is never narrowed under a consumer that assumes the role.
async fn read_reaches<V: Variables>(
    github: &V,
    user: &UserSpec,
    reading: &mut Reading,
    view: &mut UserMigration,
) -> Result<Vec<Reached>, Stop> {
    let mut reached = Vec::new();
    for (c, oidc) in movable_consumers(user) {
        let c = &match trust::reach(&c.scope, Some(&[])) {
            // Named as GitHub names it, for the subjects, the variable and the workflows.
            Reach::Subjects { .. } => Consumer {
                scope: github.canonical(&c.scope).await.map_err(gh_stop)?,
                secrets: c.secrets.clone(),
                pull_requests: c.pull_requests,
            },
            Reach::NotMovable(_) => c.clone(),
        };
        let readers = match &c.scope {
            Scope::Organization {
                organization,
                dependabot: false,
                ..
            } => org_readers(github, reading, organization, c)
                .await
                .map_err(gh_stop)?,
            _ => None,
        };
        let reach = match (&c.scope, &readers) {
            (
                Scope::Organization {
                    dependabot: false, ..
                },
                None,
            ) if oidc => {
                return Err(Stop::new(
                    Exit::Refused,
                    format!(
                        "{} assumes the role (oidc: true), but who may read its secrets is no longer known (the organization secret is gone), so its repositories would leave the trust. Nothing was changed: keep the secret until every consumer is on the role, or list the repositories as repository consumers",
                        c.scope
                    ),
                ));
            }
            (
                Scope::Organization {
                    dependabot: false, ..
                },
                None,
            ) => Reach::NotMovable(
                "the organization secret does not exist, so who may read it is not known: run rotate first",
            ),
            _ => trust::reach_of(c, readers.as_ref()),
        };
        forks::warn_fork_writes(github, reading, view, c, &reach).await?;
        view.consumers.push(ConsumerMove::new(c, oidc, &reach));
        reached.push(Reached {
            consumer: c.clone(),
            reach,
            readers,
        });
    }
    Ok(reached)
}

/// The variable in each movable consumer's scope: the writes where it differs.
async fn plan_variables<V: Variables>(
    github: &V,
    user: &UserSpec,
    reached: &[Reached],
    view: &mut UserMigration,
    dry_run: bool,
) -> Result<Vec<Write>, Stop> {
    let variable = &user.migrate.variable;
    let mut writes = Vec::new();
    for (i, r) in reached.iter().enumerate() {
        if !matches!(r.reach, Reach::Subjects { .. }) {
            continue;
        }
        let scope = &r.consumer.scope;
        let current = github.variable(scope, variable).await.map_err(gh_stop)?;
        let consumer = &mut view.consumers[i];
        match current.as_deref() {
            Some(v) if v == view.role_arn => {
                consumer.variable = Some("holds the role's ARN".into());
                continue;
            }
            // A value the tool did not write: another role's ARN a job may rely on (CONTRACT
            // §12a). Never overwritten; nothing of this user is written.
            Some(v) => {
                return Err(Stop::new(
                    Exit::Refused,
                    format!(
                        "{scope}: the variable {variable} exists and holds {}, not the ARN of the role made for user {} ({}): it is never overwritten, since the jobs of that scope may rely on it. Delete it or give this user its own migrate.variable, then run migrate again. Nothing was written",
                        crate::text::quoted(v),
                        user.name,
                        view.role_arn
                    ),
                ));
            }
            None => {}
        }
        let verb = if dry_run { "would write" } else { "to write" };
        consumer.variable = Some(format!("{verb} {variable} = role ARN"));
        writes.push((i, scope.clone(), r.readers.clone(), current.is_some()));
    }
    Ok(writes)
}

/// Each repository's workflow files (read once per run) and the lines that read the key's
/// secrets, with the snippet that replaces them.
async fn scan_workflows<V: Variables>(
    github: &V,
    user: &UserSpec,
    reached: &[Reached],
    reading: &mut Reading,
    view: &mut UserMigration,
    region: &str,
) -> Result<(), Stop> {
    let movable = reached
        .iter()
        .filter(|r| matches!(r.reach, Reach::Subjects { .. }));
    let mut names = BTreeSet::new();
    let mut repositories = BTreeSet::new();
    for r in movable {
        let s = &r.consumer.secrets;
        names.extend([s.access_key_id.as_str(), s.secret_access_key.as_str()]);
        match &r.consumer.scope {
            Scope::Repository(repo)
            | Scope::Environment {
                repository: repo, ..
            } => {
                repositories.insert(repo.clone());
            }
            _ => repositories.extend(r.readers.iter().flat_map(|x| x.repositories.clone())),
        }
    }
    let names: Vec<&str> = names.into_iter().collect();
    for repo in &repositories {
        if !reading.workflows.contains_key(repo) {
            let files = github.workflow_files(repo).await.map_err(gh_stop)?;
            reading.workflows.insert(repo.clone(), files);
        }
        for (path, text) in &reading.workflows[repo] {
            if let Some(f) = workflows::scan(path, text, &names) {
                view.workflows.push(WorkflowView {
                    repository: repo.clone(),
                    path: f.path,
                    uses: f.uses,
                });
            }
        }
    }
    view.snippet = workflows::snippet(&user.migrate.variable, region, &names);
    Ok(())
}

/// Who reads organization secret pair `c`: only a repository that can read both secrets can
/// use the key, so the intersection of the two secrets' readers (each read once per run). A
/// variable created new is made as readable as the narrower of the two.
async fn org_readers<V: Variables>(
    github: &V,
    reading: &mut Reading,
    org: &str,
    c: &Consumer,
) -> Result<Option<Readers>, GhError> {
    let mut both = Vec::new();
    for name in [&c.secrets.access_key_id, &c.secrets.secret_access_key] {
        let key = (org.to_ascii_lowercase(), name.to_ascii_uppercase());
        if !reading.readers.contains_key(&key) {
            let r = github.org_readers(org, name).await?;
            reading.readers.insert(key.clone(), r);
        }
        match &reading.readers[&key] {
            None => return Ok(None),
            Some(r) => both.push(r.clone()),
        }
    }
    let narrowness = |r: &Readers| match r.visibility.as_str() {
        "selected" => 0,
        "private" => 1,
        _ => 2,
    };
    both.sort_by_key(narrowness);
    let mut readers = both[0].clone();
    readers
        .repositories
        .retain(|repo| both.iter().all(|r| r.repositories.contains(repo)));
    Ok(Some(readers))
}

fn exit_of(e: &GhError) -> Exit {
    match e.kind {
        crate::ports::GhErrorKind::Unavailable => Exit::Failed,
        _ => Exit::Invalid,
    }
}

/// The role's changes in order, then each variable written and read back.
async fn apply<R: Roles, V: Variables>(
    iam: &R,
    github: &V,
    mut view: UserMigration,
    act: Acting,
    events: &dyn Events,
) -> UserMigration {
    let Acting {
        role,
        changes,
        writes,
    } = act;
    let user = view.name.clone();
    for change in &changes {
        if let Err(e) = iam.change_role(&role.name, &user, change).await {
            view.fail(
                Exit::Failed,
                format!(
                    "role {}: could not {change}: {e}. No variable was written; run migrate again",
                    role.name
                ),
            );
            return view;
        }
        events.info(&format!("role {}: {change}", role.name));
    }
    let variable = view.variable.clone();
    for (i, scope, readers, exists) in writes {
        let arn = view.role_arn.clone();
        let written = github
            .write_variable(&scope, &variable, &arn, exists, readers.as_ref())
            .await;
        let back = match written {
            Ok(()) => github.variable(&scope, &variable).await,
            Err(e) => Err(e),
        };
        let consumer = &mut view.consumers[i];
        match back {
            Ok(Some(v)) if v == arn => {
                consumer.variable = Some(format!("{variable} written and read back"));
                events.info(&format!("{scope}: variable {variable} = {arn}"));
            }
            Ok(other) => {
                consumer.variable = Some("read back wrong".into());
                view.fail(
                    Exit::Failed,
                    format!(
                        "{scope}: variable {variable} reads back as {} after the write: run migrate again",
                        other.as_deref().unwrap_or("missing")
                    ),
                );
            }
            // The role may have changed already: a failed operation, whatever GitHub said.
            Err(e) => {
                consumer.variable = Some("not written".into());
                view.fail(Exit::Failed, e.message);
            }
        }
    }
    view
}

mod forks;
mod provider;
use provider::{provider_change, set_up_provider};
#[cfg(test)]
mod tests;
