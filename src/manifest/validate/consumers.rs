//! A consumer as written, checked: its store (GitHub's scopes, Secrets Manager, Parameter
//! Store, Vault), its secret names, and the fields a store needs; an account role and a
//! migration block too. Every error located.

use super::*;

/// The keys of a GitHub store's entry.
const GITHUB_KEYS: &[&str] = &[
    "repository",
    "organization",
    "environment",
    "app",
    "visibility",
    "selected-repositories",
];

/// The keys of an AWS store's entry.
const AWS_KEYS: &[&str] = &["aws-secrets-manager", "ssm-parameters", "region"];

impl Validator<'_> {
    pub(super) fn consumer(
        &self,
        at: &serde_saphyr::Location,
        c: raw::RawConsumer,
        default_secrets: &SecretNames,
    ) -> Result<Consumer, ManifestError> {
        if c.s3.is_some()
            || c.vault.is_some()
            || c.aws_secrets_manager.is_some()
            || c.ssm_parameters.is_some()
        {
            return self.store_consumer(at, c, default_secrets);
        }
        self.misplaced(at, &c)?;
        let pull_requests = c.pull_requests;
        let secrets = c.secrets.clone();
        let scope = self.github_scope(at, c)?;
        let secrets = secrets.unwrap_or_else(|| default_secrets.clone());
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
        let pull_requests = match (pull_requests, &scope) {
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

    /// An entry of a store outside GitHub: S3, Vault, Secrets Manager or Parameter Store.
    fn store_consumer(
        &self,
        at: &serde_saphyr::Location,
        c: raw::RawConsumer,
        default_secrets: &SecretNames,
    ) -> Result<Consumer, ManifestError> {
        if c.s3.is_some() {
            return self.s3_consumer(at, c);
        }
        self.not_s3(at, &c)?;
        if c.vault.is_some() {
            return self.vault_consumer(at, c, default_secrets);
        }
        self.misplaced(at, &c)?;
        self.aws_consumer(at, c, default_secrets)
    }

    /// An S3 key on an entry that is not an S3 object.
    fn not_s3(
        &self,
        at: &serde_saphyr::Location,
        c: &raw::RawConsumer,
    ) -> Result<(), ManifestError> {
        match ["format", "fields", "profile"]
            .into_iter()
            .find(|k| c.set_keys().contains(k))
        {
            Some(key) => Err(self.err(
                at,
                format!(
                    "`{key}` belongs to `s3` consumers: drop it, or add `s3: {{ bucket, key }}`"
                ),
            )),
            None => Ok(()),
        }
    }

    /// A key of a store this entry is not: S3's, Vault's, or an AWS store's `region`.
    fn misplaced(
        &self,
        at: &serde_saphyr::Location,
        c: &raw::RawConsumer,
    ) -> Result<(), ManifestError> {
        self.not_s3(at, c)?;
        let keys = c.set_keys();
        if let Some(key) = ["address", "namespace"]
            .into_iter()
            .find(|k| keys.contains(k))
        {
            return Err(self.err(
                at,
                format!("`{key}` belongs to `vault` consumers: drop it, or add `vault: {{ mount, path }}`"),
            ));
        }
        if keys.contains(&"region") && c.aws_secrets_manager.is_none() && c.ssm_parameters.is_none()
        {
            return Err(self.err(
                at,
                "`region` belongs to AWS stores (`aws-secrets-manager`, `ssm-parameters`): drop it",
            ));
        }
        Ok(())
    }

    /// The GitHub scope of a `repository` or `organization` entry (with its `environment`,
    /// `app: dependabot`, `visibility` and `selected-repositories`).
    fn github_scope(
        &self,
        at: &serde_saphyr::Location,
        c: raw::RawConsumer,
    ) -> Result<Scope, ManifestError> {
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
        let scope = match (c.organization.clone(), c.repository.clone()) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    at,
                    "a consumer is either a `repository` or an `organization`, not both: make them two entries",
                ));
            }
            (Some(organization), None) => {
                self.organization_scope(at, organization, dependabot, c)?
            }
            (None, None) => {
                return Err(self.err(
                    at,
                    "a consumer needs `repository: owner/name` or `organization: name`",
                ));
            }
            (None, Some(repository)) => {
                self.repository_scope(at, repository, c.environment, dependabot)?
            }
        };
        Ok(scope)
    }

    /// An `organization` entry's scope.
    fn organization_scope(
        &self,
        at: &serde_saphyr::Location,
        organization: String,
        dependabot: bool,
        c: raw::RawConsumer,
    ) -> Result<Scope, ManifestError> {
        if c.environment.is_some() {
            return Err(self.err(
                at,
                "environments belong to repositories: an organization has no `environment`",
            ));
        }
        if !valid_owner(&organization) {
            return Err(self.err(
                at,
                format!("organization {organization:?} is not a valid GitHub organization name"),
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
        Ok(Scope::Organization {
            organization,
            dependabot,
            visibility: c.visibility,
            selected,
        })
    }

    /// A `repository` entry's scope: its secrets, an environment's, or its Dependabot secrets.
    fn repository_scope(
        &self,
        at: &serde_saphyr::Location,
        repository: String,
        environment: Option<String>,
        dependabot: bool,
    ) -> Result<Scope, ManifestError> {
        if !valid_repository(&repository) {
            return Err(self.err(
                at,
                format!("repository {repository:?} is not of the form owner/name"),
            ));
        }
        Ok(match (environment, dependabot) {
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
        })
    }

    /// `vault: { mount, path }`, with an optional `address` and `namespace`.
    pub(super) fn vault_consumer(
        &self,
        at: &serde_saphyr::Location,
        c: raw::RawConsumer,
        default_secrets: &SecretNames,
    ) -> Result<Consumer, ManifestError> {
        if let Some(key) = c
            .set_keys()
            .into_iter()
            .find(|k| GITHUB_KEYS.contains(k) || AWS_KEYS.contains(k))
        {
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
    pub(super) fn account_role(
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
        let Some((_, account, name)) = crate::model::arn::parse_arn(&arn) else {
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

    pub(super) fn migration(
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
    pub(super) fn aws_consumer(
        &self,
        at: &serde_saphyr::Location,
        c: raw::RawConsumer,
        default_secrets: &SecretNames,
    ) -> Result<Consumer, ManifestError> {
        if let Some(key) = c.set_keys().into_iter().find(|k| GITHUB_KEYS.contains(k)) {
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
