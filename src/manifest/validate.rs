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

    /// An error at `at`, or at the top of the file when there is no place to point at.
    fn err_at(&self, at: Option<&serde_saphyr::Location>, message: String) -> ManifestError {
        match at {
            Some(at) => self.err(at, message),
            None => ManifestError {
                file: self.file.to_owned(),
                line: 1,
                column: 1,
                message,
            },
        }
    }

    /// A bounded number (`value`, else `default`), its error named with `prefix`.
    fn bounded(
        &self,
        at: Option<&serde_saphyr::Location>,
        prefix: &str,
        bound: bounds::Bound,
        value: Option<u64>,
        default: u32,
    ) -> Result<u32, ManifestError> {
        match value {
            None => Ok(default),
            Some(n) => bound
                .check(n)
                .map_err(|why| self.err_at(at, format!("{prefix}{} {why}", bound.name))),
        }
    }

    pub(super) fn manifest(&self, raw: raw::RawManifest) -> Result<Manifest, ManifestError> {
        if raw.version != VERSION {
            return Err(self.err_at(
                None,
                format!(
                    "unsupported manifest version {}: this release reads `version: {VERSION}`",
                    raw.version
                ),
            ));
        }
        if raw.users.is_empty() {
            return Err(self.err_at(None, "`users` is empty: list at least one IAM user".into()));
        }
        let defaults = self.defaults(raw.defaults)?;
        let mut seen = Seen::default();
        let mut users = Vec::new();
        for user in raw.users {
            users.push(self.user(user.referenced, user.value, &defaults, &mut seen)?);
        }
        Ok(Manifest {
            source: self.file.to_owned(),
            users,
        })
    }

    /// `defaults:`, checked; the built-in ones where it is silent.
    fn defaults(
        &self,
        raw: Option<serde_saphyr::Spanned<raw::RawDefaults>>,
    ) -> Result<Defaults, ManifestError> {
        let (at, d) = match raw {
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
        let at = at.as_ref();
        Ok(Defaults {
            deactivate_after_hours: self.bounded(
                at,
                "defaults.",
                bounds::DEACTIVATE_AFTER_HOURS,
                d.deactivate_after_hours,
                DEFAULT_DEACTIVATE_AFTER_HOURS,
            )?,
            delete_after_days: self.bounded(
                at,
                "defaults.",
                bounds::DELETE_AFTER_DAYS,
                d.delete_after_days,
                DEFAULT_DELETE_AFTER_DAYS,
            )?,
            max_age_days: self.bounded(
                at,
                "defaults.",
                bounds::MAX_AGE_DAYS,
                d.max_age_days,
                DEFAULT_MAX_AGE_DAYS,
            )?,
            secrets: d.secrets.unwrap_or_default(),
            on_exposure: d.on_exposure,
        })
    }

    /// One user's entry, checked against the entries before it (`seen`).
    fn user(
        &self,
        at: serde_saphyr::Location,
        u: raw::RawUser,
        defaults: &Defaults,
        seen: &mut Seen,
    ) -> Result<UserSpec, ManifestError> {
        if !valid_iam_user_name(&u.name) {
            return Err(self.err(&at, format!(
                "{:?} is not a valid IAM user name (1-64 characters of letters, digits and +=,.@_-)",
                u.name
            )));
        }
        if let Some(line) = seen.users.insert(u.name.clone(), at.line()) {
            return Err(self.err(
                &at,
                format!(
                    "user {:?} is listed twice (first at line {line}): merge the two entries",
                    u.name
                ),
            ));
        }
        let (max_age_days, deactivate_after_hours, delete_after_days) =
            self.periods(&at, &u, defaults)?;
        if u.consumers.is_empty() {
            return Err(self.err(&at, format!(
                "user {:?} has no consumers: list every repository or environment that holds its key",
                u.name
            )));
        }
        let account_role = self.account_role(&at, u.account_role, u.external_id)?;
        let account = account_role.as_ref().map(|r| r.account.clone());
        let (consumers, on_role) =
            self.consumers(&u.name, u.consumers, &defaults.secrets, account, seen)?;
        let migrate = self.migration(&u.name, u.migrate)?;
        if migrate.requested || !on_role.is_empty() {
            seen.role_and_variables(
                self,
                &at,
                &u.name,
                &migrate,
                consumers.iter().chain(&on_role),
            )?;
        }
        let verify = self.verify(u.verify)?;
        Ok(UserSpec {
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
        })
    }

    /// A user's max age and grace periods: its own, else the defaults'.
    fn periods(
        &self,
        at: &serde_saphyr::Location,
        u: &raw::RawUser,
        defaults: &Defaults,
    ) -> Result<(u32, u32, u32), ManifestError> {
        let here = Some(at);
        Ok((
            self.bounded(
                here,
                "",
                bounds::MAX_AGE_DAYS,
                u.max_age_days,
                defaults.max_age_days,
            )?,
            self.bounded(
                here,
                "",
                bounds::DEACTIVATE_AFTER_HOURS,
                u.deactivate_after_hours,
                defaults.deactivate_after_hours,
            )?,
            self.bounded(
                here,
                "",
                bounds::DELETE_AFTER_DAYS,
                u.delete_after_days,
                defaults.delete_after_days,
            )?,
        ))
    }

    /// A user's consumers: those that read the key, and those moved to the role (`oidc: true`).
    /// Each secret may have one source across the manifest (`seen`). `account`: the user's
    /// account when it is not the run's (AWS stores are per account).
    fn consumers(
        &self,
        user: &str,
        raw: Vec<serde_saphyr::Spanned<raw::RawConsumer>>,
        default_secrets: &SecretNames,
        account: Option<String>,
        seen: &mut Seen,
    ) -> Result<(Vec<Consumer>, Vec<Consumer>), ManifestError> {
        let mut consumers = Vec::new();
        let mut on_role = Vec::new();
        for c in raw {
            let oidc = c.value.oidc.unwrap_or(false);
            let consumer = self.consumer(&c.referenced, c.value, default_secrets)?;
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
                .then(|| account.clone())
                .flatten();
                let key = (account, consumer.scope.clone(), name.clone());
                if let Some((other, line)) = seen.secrets.get(&key) {
                    return Err(self.err(&c.referenced, format!(
                        "duplicate consumer: secret {name} of {} is already written for user {other:?} (line {line}); each secret may have one source",
                        consumer.scope
                    )));
                }
                seen.secrets
                    .insert(key, (user.to_owned(), c.referenced.line()));
            }
            if oidc {
                on_role.push(consumer);
            } else {
                consumers.push(consumer);
            }
        }
        Ok((consumers, on_role))
    }

    /// A user's `verify:` entries.
    fn verify(
        &self,
        raw: Vec<serde_saphyr::Spanned<raw::RawVerify>>,
    ) -> Result<Vec<VerifyWorkflow>, ManifestError> {
        let mut verify = Vec::new();
        for v in raw {
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
        Ok(verify)
    }
}

/// `defaults:` as checked.
struct Defaults {
    max_age_days: u32,
    deactivate_after_hours: u32,
    delete_after_days: u32,
    secrets: SecretNames,
    on_exposure: Option<OnExposure>,
}

/// What the entries before this one claimed: users, secrets, roles and role variables.
#[derive(Default)]
struct Seen {
    users: HashMap<String, u64>,
    /// A secret written by two entries (one user twice, or two users) would be overwritten.
    /// AWS stores are per account: the same name in two accounts is two secrets.
    secrets: HashMap<(Option<String>, Scope, String), (String, u64)>,
    /// `migrate`: one role per user.
    roles: HashMap<String, String>,
    /// Every Actions scope of a moving user with its variable's name, and the user.
    variables: Vec<(Scope, String, String)>,
}

impl Seen {
    /// A moving user's role, and its role variable in each GitHub scope: neither shared with
    /// another user (one user's role ARN per variable a job reads).
    fn role_and_variables<'c>(
        &mut self,
        v: &Validator<'_>,
        at: &serde_saphyr::Location,
        user: &str,
        migrate: &Migration,
        consumers: impl Iterator<Item = &'c Consumer>,
    ) -> Result<(), ManifestError> {
        let role = migrate.role_name.to_ascii_lowercase();
        if let Some(other) = self.roles.insert(role, user.to_owned()) {
            return Err(v.err(at, format!(
                "user {user:?} would share the role {} with user {other:?}: give one of them its own migrate.role-name",
                migrate.role_name
            )));
        }
        for c in consumers.filter(|c| c.scope.is_github()) {
            let name = migrate.variable.to_ascii_uppercase();
            if let Some((scope, _, other)) = self
                .variables
                .iter()
                .find(|(s, n, o)| *n == name && o != user && s.shares_jobs_with(&c.scope))
            {
                return Err(v.err(at, format!(
                    "users {other:?} and {user:?} would both have the variable {} read by one job: {} of {other:?} and {} of {user:?} (GitHub resolves variables environment, then repository, then organization, so one user's role would be assumed with the other's secrets). Give one of them its own migrate.variable",
                    migrate.variable, scope, c.scope
                )));
            }
            self.variables
                .push((c.scope.clone(), name, user.to_owned()));
        }
        Ok(())
    }
}
