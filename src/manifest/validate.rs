//! From the manifest as written ([`raw`]) to the typed [`Manifest`]: every value checked, every
//! error located.

use std::collections::HashMap;

use super::names::*;
use super::raw;
use super::*;
use crate::bounds;

mod consumers;
mod s3;

pub(super) struct Validator<'a> {
    pub file: &'a str,
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

    pub(super) fn manifest(&self, raw: raw::RawManifest) -> Result<Manifest, ManifestError> {
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
                    on_exposure: None,
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
        // AWS stores are per account: the same name in two accounts is two secrets.
        let mut seen_secrets: HashMap<(Option<String>, Scope, String), (String, u64)> =
            HashMap::new();
        // `migrate`: one role per user, one user's role ARN per variable of a scope.
        let mut seen_roles: HashMap<String, String> = HashMap::new();
        // Every Actions scope of a moving user with its variable's name, the user and where.
        let mut seen_variables: Vec<(Scope, String, String)> = Vec::new();
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
            let account_role = self.account_role(&at, u.account_role, u.external_id)?;
            let mut consumers = Vec::new();
            let mut on_role = Vec::new();
            for c in u.consumers {
                let oidc = c.value.oidc.unwrap_or(false);
                let consumer = self.consumer(&c.referenced, c.value, &default_secrets)?;
                if oidc && let Some(why) = consumer.scope.cannot_assume_role() {
                    return Err(self.err(&c.referenced, format!(
                        "`oidc: true` on {}: {why}. Only repository, environment and organization Actions secrets can move to a role; drop `oidc`",
                        consumer.scope
                    )));
                }
                for name in [
                    &consumer.secrets.access_key_id,
                    &consumer.secrets.secret_access_key,
                ] {
                    let account = matches!(
                        consumer.scope,
                        Scope::SecretsManager { .. } | Scope::ParameterStore { .. }
                    )
                    .then(|| account_role.as_ref().map(|r| r.account.clone()))
                    .flatten();
                    let key = (account, consumer.scope.clone(), name.clone());
                    if let Some((other, line)) = seen_secrets.get(&key) {
                        return Err(self.err(&c.referenced, format!(
                            "duplicate consumer: secret {name} of {} is already written for user {other:?} (line {line}); each secret may have one source",
                            consumer.scope
                        )));
                    }
                    seen_secrets.insert(key, (u.name.clone(), c.referenced.line()));
                }
                if oidc {
                    on_role.push(consumer);
                } else {
                    consumers.push(consumer);
                }
            }
            let migrate = self.migration(&u.name, u.migrate)?;
            if migrate.requested || !on_role.is_empty() {
                let role = migrate.role_name.to_ascii_lowercase();
                if let Some(other) = seen_roles.insert(role, u.name.clone()) {
                    return Err(self.err(&at, format!(
                        "user {:?} would share the role {} with user {other:?}: give one of them its own migrate.role-name",
                        u.name, migrate.role_name
                    )));
                }
                for c in consumers
                    .iter()
                    .chain(&on_role)
                    .filter(|c| c.scope.is_github())
                {
                    let name = migrate.variable.to_ascii_uppercase();
                    if let Some((scope, _, other)) = seen_variables.iter().find(|(s, n, o)| {
                        *n == name && *o != u.name && s.shares_jobs_with(&c.scope)
                    }) {
                        return Err(self.err(&at, format!(
                            "users {other:?} and {:?} would both have the variable {} read by one job: {} of {other:?} and {} of {:?} (GitHub resolves variables environment, then repository, then organization, so one user's role would be assumed with the other's secrets). Give one of them its own migrate.variable",
                            u.name, migrate.variable, scope, c.scope, u.name
                        )));
                    }
                    seen_variables.push((c.scope.clone(), name, u.name.clone()));
                }
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
                on_role,
                migrate,
                account_role,
                on_exposure: u.on_exposure.or(defaults.on_exposure).unwrap_or_default(),
            });
        }
        Ok(Manifest {
            source: self.file.to_owned(),
            users,
        })
    }
}
