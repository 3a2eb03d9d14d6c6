//! From the manifest as written ([`raw`]) to the typed [`Manifest`]: every value checked, every
//! error located.

use std::collections::HashMap;

use super::names::*;
use super::raw;
use super::*;
use crate::bounds;
use crate::migrate::trust::{self, Reach};

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
                if oidc && let Reach::NotMovable(why) = trust::reach(&consumer.scope, Some(&[])) {
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

    fn consumer(
        &self,
        at: &serde_saphyr::Location,
        c: raw::RawConsumer,
        default_secrets: &SecretNames,
    ) -> Result<Consumer, ManifestError> {
        if c.vault.is_some() {
            return self.vault_consumer(at, c, default_secrets);
        }
        for (key, set) in [
            ("address", c.address.is_some()),
            ("namespace", c.namespace.is_some()),
        ] {
            if set {
                return Err(self.err(
                    at,
                    format!("`{key}` belongs to `vault` consumers: drop it, or add `vault: {{ mount, path }}`"),
                ));
            }
        }
        if c.aws_secrets_manager.is_some() || c.ssm_parameters.is_some() {
            return self.aws_consumer(at, c, default_secrets);
        }
        if c.region.is_some() {
            return Err(self.err(
                at,
                "`region` belongs to AWS stores (`aws-secrets-manager`, `ssm-parameters`): drop it",
            ));
        }
        let dependabot = match c.app.as_deref() {
            None => false,
            Some("dependabot") => true,
            Some(other) => {
                return Err(self.err(
                    at,
                    format!("`app: {other}` is not a secret store: the only app is `dependabot`"),
                ));
            }
        };
        if c.selected_repositories.is_some() && c.visibility != Some(Visibility::Selected) {
            return Err(self.err(
                at,
                "`selected-repositories` goes with `visibility: selected`: add it, or drop the list",
            ));
        }
        if c.visibility.is_some() && c.organization.is_none() {
            return Err(self.err(
                at,
                "`visibility` belongs to organization secrets: drop it, or name the `organization`",
            ));
        }
        let scope = match (c.organization, c.repository) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    at,
                    "a consumer is either a `repository` or an `organization`, not both: make them two entries",
                ));
            }
            (Some(organization), None) => {
                if c.environment.is_some() {
                    return Err(self.err(
                        at,
                        "environments belong to repositories: an organization has no `environment`",
                    ));
                }
                if !valid_owner(&organization) {
                    return Err(self.err(
                        at,
                        format!(
                            "organization {organization:?} is not a valid GitHub organization name"
                        ),
                    ));
                }
                let selected = c.selected_repositories.unwrap_or_default();
                if c.visibility == Some(Visibility::Selected) && selected.is_empty() {
                    return Err(self.err(
                        at,
                        "`visibility: selected` needs `selected-repositories`: the repositories that may read a secret created new, for example `selected-repositories: [acme/web]`",
                    ));
                }
                for r in &selected {
                    let in_org = r
                        .split_once('/')
                        .is_some_and(|(o, _)| o.eq_ignore_ascii_case(&organization));
                    if !valid_repository(r) || !in_org {
                        return Err(self.err(
                            at,
                            format!(
                                "selected repository {r:?} is not a repository of {organization} (owner/name)"
                            ),
                        ));
                    }
                }
                Scope::Organization {
                    organization,
                    dependabot,
                    visibility: c.visibility,
                    selected,
                }
            }
            (None, None) => {
                return Err(self.err(
                    at,
                    "a consumer needs `repository: owner/name` or `organization: name`",
                ));
            }
            (None, Some(repository)) => {
                if !valid_repository(&repository) {
                    return Err(self.err(
                        at,
                        format!("repository {repository:?} is not of the form owner/name"),
                    ));
                }
                match (c.environment, dependabot) {
                    (None, false) => Scope::Repository(repository),
                    (None, true) => Scope::RepositoryDependabot(repository),
                    (Some(_), true) => {
                        return Err(self.err(
                            at,
                            "Dependabot secrets have no environments: drop `environment` or `app`",
                        ));
                    }
                    (Some(e), false) if e.trim().is_empty() => {
                        return Err(self.err(
                            at,
                            "environment is empty: name the environment or drop the key",
                        ));
                    }
                    (Some(e), false) if dot_segment(e.trim()) => {
                        return Err(self.err(
                            at,
                            format!("environment {e:?} is not an environment name: `.` and `..` would walk up the API's paths"),
                        ));
                    }
                    (Some(environment), false) => Scope::Environment {
                        repository,
                        environment,
                    },
                }
            }
        };
        let secrets = c.secrets.unwrap_or_else(|| default_secrets.clone());
        for name in [&secrets.access_key_id, &secrets.secret_access_key] {
            if let Err(why) = check_secret_name(name) {
                return Err(self.err(at, format!("secret name {name:?} {why}")));
            }
        }
        if secrets
            .access_key_id
            .eq_ignore_ascii_case(&secrets.secret_access_key)
        {
            return Err(self.err(
                at,
                "the access-key-id and secret-access-key secrets have the same name",
            ));
        }
        let pull_requests = match (c.pull_requests, &scope) {
            (None, _) => true,
            (
                Some(p),
                Scope::Repository(_)
                | Scope::Organization {
                    dependabot: false, ..
                },
            ) => p,
            (Some(_), other) => {
                return Err(self.err(
                    at,
                    format!(
                        "pull-requests applies to repository and organization Actions secrets (the jobs of a repository), not to {other}: drop it"
                    ),
                ));
            }
        };
        Ok(Consumer {
            scope,
            secrets,
            pull_requests,
        })
    }
}

impl Validator<'_> {
    /// `vault: { mount, path }`, with an optional `address` and `namespace`.
    fn vault_consumer(
        &self,
        at: &serde_saphyr::Location,
        c: raw::RawConsumer,
        default_secrets: &SecretNames,
    ) -> Result<Consumer, ManifestError> {
        let others = [
            ("repository", c.repository.is_some()),
            ("organization", c.organization.is_some()),
            ("environment", c.environment.is_some()),
            ("app", c.app.is_some()),
            ("visibility", c.visibility.is_some()),
            ("selected-repositories", c.selected_repositories.is_some()),
            ("aws-secrets-manager", c.aws_secrets_manager.is_some()),
            ("ssm-parameters", c.ssm_parameters.is_some()),
            ("region", c.region.is_some()),
        ];
        if let Some((key, _)) = others.iter().find(|(_, set)| *set) {
            return Err(self.err(
                at,
                format!("`{key}` does not belong to a `vault` consumer: make it its own entry"),
            ));
        }
        let v = c.vault.expect("called for vault consumers");
        for (what, value) in [("mount", &v.mount), ("path", &v.path)] {
            let t = value.trim();
            if t.is_empty()
                || t.starts_with('/')
                || t.ends_with('/')
                || t.split('/').any(dot_segment)
            {
                return Err(self.err(at, format!(
                    "vault {what} {value:?} is not a {what}: name it without leading or trailing `/`, `.` or `..`, e.g. `vault: {{ mount: secret, path: ci/deployer }}`"
                )));
            }
        }
        if let Some(a) = &c.address
            && !a
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            && !a
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        {
            return Err(self.err(
                at,
                format!(
                    "vault address {a:?} is not a URL: write it as https://vault.example.com:8200"
                ),
            ));
        }
        let secrets = c.secrets.unwrap_or_else(|| default_secrets.clone());
        if secrets.access_key_id == secrets.secret_access_key {
            return Err(self.err(at, "the two fields have the same name"));
        }
        Ok(Consumer {
            pull_requests: true,
            scope: Scope::Vault {
                mount: v.mount,
                path: v.path,
                address: c.address,
                namespace: c.namespace,
            },
            secrets,
        })
    }

    /// A user's `migrate:`, checked; the defaults when absent.
    /// `account-role` and `external-id` (CONTRACT §15).
    fn account_role(
        &self,
        at: &serde_saphyr::Location,
        role: Option<serde_saphyr::Spanned<String>>,
        external_id: Option<String>,
    ) -> Result<Option<AccountRole>, ManifestError> {
        let Some(role) = role else {
            return match external_id {
                Some(_) => Err(self.err(
                    at,
                    "`external-id` is given without `account-role`: it belongs to the role assumed for the user's account; add `account-role: arn:aws:iam::ACCOUNT:role/NAME` or drop it",
                )),
                None => Ok(None),
            };
        };
        let arn = role.value.trim().to_owned();
        let Some((_, account, name)) = crate::migrate::role::parse_arn(&arn) else {
            return Err(self.err(
                &role.referenced,
                format!("account-role {arn:?} is not an IAM role ARN: write arn:aws:iam::ACCOUNT:role/NAME (ACCOUNT: twelve digits)"),
            ));
        };
        if !valid_iam_user_name(name) {
            return Err(self.err(
                &role.referenced,
                format!("account-role {arn:?}: {name:?} is not a valid IAM role name"),
            ));
        }
        let account = account.to_owned();
        if let Some(id) = &external_id {
            let ok = (2..=1224).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c));
            if !ok {
                return Err(self.err(
                    at,
                    "external-id must be 2 to 1224 letters, digits or `+=,.@:/-_` (STS's rule for sts:ExternalId)",
                ));
            }
        }
        Ok(Some(AccountRole {
            arn,
            account,
            external_id,
        }))
    }

    fn migration(
        &self,
        user: &str,
        raw: Option<serde_saphyr::Spanned<raw::RawMigrate>>,
    ) -> Result<Migration, ManifestError> {
        let mut m = Migration::defaults(user);
        let Some(raw) = raw else { return Ok(m) };
        m.requested = true;
        let at = raw.referenced;
        if let Some(role) = raw.value.role_name {
            if !valid_iam_user_name(&role) {
                return Err(self.err(&at, format!(
                    "migrate.role-name {role:?} is not a valid IAM role name (1-64 characters of letters, digits and +=,.@_-)"
                )));
            }
            m.role_name = role;
        }
        if let Some(variable) = raw.value.variable {
            if let Err(why) = check_secret_name(&variable) {
                return Err(self.err(&at, format!("migrate.variable {variable:?} {why}")));
            }
            m.variable = variable;
        }
        m.policies = match raw.value.permissions {
            None => None,
            Some(raw::RawPermissions::Word(w)) if w == "copy" => None,
            Some(raw::RawPermissions::Word(w)) => {
                return Err(self.err(&at, format!(
                    "migrate.permissions {w:?} is neither `copy` nor a list of policy ARNs: write `permissions: copy` (the user's own policies) or `permissions: [arn:aws:iam::aws:policy/ReadOnlyAccess]`"
                )));
            }
            Some(raw::RawPermissions::Arns(arns)) => {
                if arns.is_empty() {
                    return Err(self.err(&at, "migrate.permissions is an empty list: name at least one managed policy ARN, or write `copy`"));
                }
                if let Some(bad) = arns.iter().find(|a| !valid_policy_arn(a)) {
                    return Err(self.err(&at, format!(
                        "migrate.permissions: {bad:?} is not a managed policy ARN (arn:aws:iam::ACCOUNT:policy/NAME or arn:aws:iam::aws:policy/NAME)"
                    )));
                }
                Some(arns)
            }
        };
        Ok(m)
    }

    /// `aws-secrets-manager:` or `ssm-parameters:`.
    fn aws_consumer(
        &self,
        at: &serde_saphyr::Location,
        c: raw::RawConsumer,
        default_secrets: &SecretNames,
    ) -> Result<Consumer, ManifestError> {
        let github = [
            ("repository", c.repository.is_some()),
            ("organization", c.organization.is_some()),
            ("environment", c.environment.is_some()),
            ("app", c.app.is_some()),
            ("visibility", c.visibility.is_some()),
            ("selected-repositories", c.selected_repositories.is_some()),
        ];
        if let Some((key, _)) = github.iter().find(|(_, set)| *set) {
            return Err(self.err(
                at,
                format!(
                    "`{key}` belongs to GitHub stores, not to an AWS store: make it its own entry"
                ),
            ));
        }
        if let Some(r) = &c.region
            && !valid_region(r)
        {
            return Err(self.err(
                at,
                format!("region {r:?} is not an AWS region name (like eu-west-1)"),
            ));
        }
        match (c.aws_secrets_manager, c.ssm_parameters) {
            (Some(_), Some(_)) => Err(self.err(
                at,
                "a consumer is one store: put `aws-secrets-manager` and `ssm-parameters` in two entries",
            )),
            (Some(secret), None) => {
                if secret.trim().is_empty() {
                    return Err(self.err(at, "aws-secrets-manager is empty: name the secret or give its ARN"));
                }
                let secrets = c.secrets.unwrap_or_else(|| default_secrets.clone());
                if secrets.access_key_id == secrets.secret_access_key {
                    return Err(self.err(at, "the two JSON fields have the same name"));
                }
                Ok(Consumer {
                    pull_requests: true,
                    scope: Scope::SecretsManager {
                        secret,
                        region: c.region,
                    },
                    secrets,
                })
            }
            (None, Some(paths)) => {
                if c.secrets.is_some() {
                    return Err(self.err(
                        at,
                        "`secrets` does not apply to ssm-parameters: the parameters' names are the pair",
                    ));
                }
                for p in [&paths.access_key_id, &paths.secret_access_key] {
                    if !valid_parameter_name(p) {
                        return Err(self.err(at, format!(
                            "{p:?} is not an SSM parameter name (letters, digits and _.-/, at most 2048 characters)"
                        )));
                    }
                }
                if paths.access_key_id == paths.secret_access_key {
                    return Err(self.err(at, "the two parameters have the same name"));
                }
                Ok(Consumer {
                    pull_requests: true,
                    scope: Scope::ParameterStore { region: c.region },
                    secrets: paths,
                })
            }
            (None, None) => unreachable!("called for AWS stores"),
        }
    }
}
