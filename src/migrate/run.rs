//! `migrate` carried out (CONTRACT §13): for each user, read what is there (the provider, the
//! role, the user's permissions, who reads each consumer's secrets, each scope's variable, each
//! repository's workflows) once, decide, and then (unless a dry run) change only what differs,
//! reading every variable back.

use std::collections::{BTreeMap, BTreeSet};

use super::permissions;
use super::ports::{Provider, Readers, Roles, Variables};
use super::report::{ConsumerMove, MigrationView, ProviderView, UserMigration, WorkflowView};
use super::role::{self, RoleSpec};
use super::trust::{self, AUDIENCE, Reach};
use super::workflows;
use crate::exit::Exit;
use crate::manifest::{Consumer, Scope, UserSpec};
use crate::ports::{Events, GhError};

/// What the run was told.
pub struct Settings<'a> {
    /// `GITHUB_SERVER_URL`: which GitHub's OIDC issuer the role trusts.
    pub server_url: &'a str,
    /// The region the snippet configures.
    pub region: &'a str,
    pub dry_run: bool,
}

/// Why the run stopped before any user: the exit code and the message.
pub type Stopped = (Exit, String);

/// `migrate` for `users`.
pub async fn migrate<R: Roles, V: Variables>(
    iam: &R,
    github: &V,
    users: &[UserSpec],
    settings: &Settings<'_>,
    events: &dyn Events,
) -> Result<MigrationView, Stopped> {
    let account = iam
        .account()
        .await
        .map_err(|e| (Exit::Invalid, format!("sts:GetCallerIdentity: {e}")))?;
    let issuer = trust::issuer(settings.server_url);
    let provider_arn = format!("arn:aws:iam::{account}:oidc-provider/{issuer}");
    let found = iam
        .provider(&provider_arn)
        .await
        .map_err(|e| (Exit::Invalid, format!("iam:GetOpenIDConnectProvider: {e}")))?;
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
        return Err((
            Exit::Refused,
            format!(
                "the OIDC provider {provider_arn} exists, was not made by aws-key-rotator and does not accept the audience {AUDIENCE}: it is never changed. Add the audience yourself (aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn {provider_arn} --client-id {AUDIENCE}) and run migrate again"
            ),
        ));
    }
    let mut reading = Reading::default();
    let mut planned = Vec::new();
    for user in users {
        planned.push(
            plan_user(
                iam,
                github,
                user,
                &account,
                &provider_arn,
                &issuer,
                settings,
                &mut reading,
            )
            .await,
        );
    }
    let acting = planned.iter().any(|p| p.acts());
    if !settings.dry_run && acting && view.provider.change.is_some() {
        let result = match &found {
            None => iam
                .create_provider(&format!("https://{issuer}"), AUDIENCE)
                .await
                .map(|_| ()),
            Some(_) => iam.add_audience(&provider_arn, AUDIENCE).await,
        };
        if let Err(e) = result {
            return Err((
                Exit::Failed,
                format!(
                    "could not set up the OIDC provider {provider_arn}: {e}. Nothing else was changed; run migrate again"
                ),
            ));
        }
        events.info(&format!("OIDC provider {provider_arn}: done"));
        view.provider.change = Some(
            match &found {
                None => "created",
                Some(_) => "audience added",
            }
            .into(),
        );
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

fn provider_change(found: Option<&Provider>) -> Option<&'static str> {
    match found {
        None => Some("create it (no thumbprint: IAM trusts GitHub's certificate authority)"),
        Some(p) if !p.audiences.iter().any(|a| a == AUDIENCE) => Some("add the audience"),
        Some(_) => None,
    }
}

/// What was read once and is shared between users: who reads each organization secret, and
/// each repository's workflow files.
#[derive(Default)]
struct Reading {
    readers: BTreeMap<(String, String), Option<Readers>>,
    workflows: BTreeMap<String, Vec<(String, String)>>,
}

/// One user's view, and what to change (`None`: nothing to change, refused, or unreadable:
/// the view is final).
struct Planned {
    view: UserMigration,
    act: Option<Acting>,
}

impl Planned {
    fn acts(&self) -> bool {
        self.act.is_some()
    }
    fn done(view: UserMigration) -> Self {
        Self { view, act: None }
    }
}

struct Acting {
    role: RoleSpec,
    changes: Vec<role::RoleChange>,
    /// (consumer index in the view, scope, readers for an organization variable created new,
    /// whether it exists).
    writes: Vec<(usize, Scope, Option<Readers>, bool)>,
}

fn movable_consumers(user: &UserSpec) -> impl Iterator<Item = (&Consumer, bool)> {
    user.consumers
        .iter()
        .map(|c| (c, false))
        .chain(user.on_role.iter().map(|c| (c, true)))
}

#[allow(clippy::too_many_arguments)]
async fn plan_user<R: Roles, V: Variables>(
    iam: &R,
    github: &V,
    user: &UserSpec,
    account: &str,
    provider_arn: &str,
    issuer: &str,
    settings: &Settings<'_>,
    reading: &mut Reading,
) -> Planned {
    let m = &user.migrate;
    let mut view = UserMigration::new(user, format!("arn:aws:iam::{account}:role/{}", m.role_name));
    let failed = |mut view: UserMigration, exit: Exit, why: String| {
        view.fail(exit, why);
        Planned::done(view)
    };
    // Who can read the key's secrets today, consumer by consumer.
    let mut reaches = Vec::new();
    for (c, oidc) in movable_consumers(user) {
        let readers = match &c.scope {
            Scope::Organization {
                organization,
                dependabot: false,
                ..
            } => match org_readers(github, reading, organization, c).await {
                Ok(r) => r,
                Err(e) => return failed(view, exit_of(&e), e.message),
            },
            _ => None,
        };
        let reach = match (&c.scope, &readers) {
            (
                Scope::Organization {
                    dependabot: false, ..
                },
                None,
            ) => Reach::NotMovable(
                "the organization secret does not exist, so who may read it is not known: run rotate first",
            ),
            _ => trust::reach(
                &c.scope,
                readers.as_ref().map(|r| r.repositories.as_slice()),
            ),
        };
        view.consumers.push(ConsumerMove::new(c, oidc, &reach));
        reaches.push((c.clone(), reach, readers));
    }
    if !reaches
        .iter()
        .any(|(_, r, _)| matches!(r, Reach::Subjects { .. }))
    {
        view.outcome = "nothing-to-move".into();
        view.message = Some(format!(
            "user {} has no consumer in GitHub Actions that could assume a role",
            user.name
        ));
        return Planned::done(view);
    }
    let trust_policy = trust::policy(
        provider_arn,
        issuer,
        &reaches
            .iter()
            .map(|(_, r, _)| r.clone())
            .collect::<Vec<_>>(),
    );
    let user_perms = match iam.user_permissions(&user.name).await {
        Ok(p) => p,
        Err(e) => {
            let exit = if e.kind == crate::ports::IamErrorKind::NoSuchUser {
                Exit::Invalid
            } else {
                Exit::Failed
            };
            return failed(
                view,
                exit,
                format!("reading the permissions of IAM user {}: {e}", user.name),
            );
        }
    };
    let spec = RoleSpec {
        name: m.role_name.clone(),
        trust: trust_policy.clone(),
        permissions: permissions::for_role(&user_perms, m.policies.as_deref()),
    };
    view.set_role(&spec);
    let found = match iam.role(&m.role_name).await {
        Ok(r) => r,
        Err(e) => {
            return failed(
                view,
                Exit::Failed,
                format!("iam:GetRole {}: {e}", m.role_name),
            );
        }
    };
    if let Some(r) = &found {
        view.role_arn = r.arn.clone();
    }
    let changes = match role::changes(&user.name, &spec, found.as_ref()) {
        Ok(c) => c,
        Err(why) => return failed(view, Exit::Refused, why),
    };
    view.changes = changes.iter().map(ToString::to_string).collect();
    // The variable in each movable consumer's scope, and each repository's workflows.
    let mut writes = Vec::new();
    let names: BTreeSet<&str> = movable_consumers(user)
        .flat_map(|(c, _)| {
            [
                c.secrets.access_key_id.as_str(),
                c.secrets.secret_access_key.as_str(),
            ]
        })
        .collect();
    let names: Vec<&str> = names.into_iter().collect();
    let mut repositories = BTreeSet::new();
    for (i, (c, reach, readers)) in reaches.iter().enumerate() {
        if !matches!(reach, Reach::Subjects { .. }) {
            continue;
        }
        match &c.scope {
            Scope::Repository(r) | Scope::Environment { repository: r, .. } => {
                repositories.insert(r.clone());
            }
            _ => repositories.extend(readers.iter().flat_map(|r| r.repositories.clone())),
        }
        let current = match github.variable(&c.scope, &m.variable).await {
            Ok(v) => v,
            Err(e) => return failed(view, exit_of(&e), e.message),
        };
        let consumer = &mut view.consumers[i];
        if current.as_deref() == Some(view.role_arn.as_str()) {
            consumer.variable = Some("holds the role's ARN".into());
        } else {
            consumer.variable = Some(format!(
                "{} {} = role ARN",
                if settings.dry_run {
                    "would write"
                } else {
                    "to write"
                },
                m.variable
            ));
            writes.push((i, c.scope.clone(), readers.clone(), current.is_some()));
        }
    }
    for r in &repositories {
        if !reading.workflows.contains_key(r) {
            match github.workflow_files(r).await {
                Ok(files) => {
                    reading.workflows.insert(r.clone(), files);
                }
                Err(e) => return failed(view, exit_of(&e), e.message),
            }
        }
        for (path, text) in &reading.workflows[r] {
            if let Some(f) = workflows::scan(path, text, &names) {
                view.workflows.push(WorkflowView {
                    repository: r.clone(),
                    path: f.path,
                    uses: f.uses,
                });
            }
        }
    }
    view.snippet = workflows::snippet(&m.variable, settings.region, &names);
    if changes.is_empty() && writes.is_empty() {
        view.outcome = "unchanged".into();
        return Planned::done(view);
    }
    view.outcome = if settings.dry_run {
        "planned"
    } else {
        "migrated"
    }
    .into();
    Planned {
        view,
        act: Some(Acting {
            role: spec,
            changes,
            writes,
        }),
    }
}

/// Who reads organization secret pair `c` (the union of its two secrets' readers, read once).
async fn org_readers<V: Variables>(
    github: &V,
    reading: &mut Reading,
    org: &str,
    c: &Consumer,
) -> Result<Option<Readers>, GhError> {
    let mut union: Option<Readers> = None;
    for name in [&c.secrets.access_key_id, &c.secrets.secret_access_key] {
        let key = (org.to_ascii_lowercase(), name.to_ascii_uppercase());
        if !reading.readers.contains_key(&key) {
            let r = github.org_readers(org, name).await?;
            reading.readers.insert(key.clone(), r);
        }
        match (&mut union, &reading.readers[&key]) {
            (_, None) => return Ok(None),
            (None, Some(r)) => union = Some(r.clone()),
            (Some(u), Some(r)) => {
                for repo in &r.repositories {
                    if !u.repositories.contains(repo) {
                        u.repositories.push(repo.clone());
                    }
                }
            }
        }
    }
    Ok(union)
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

#[cfg(test)]
mod tests;
