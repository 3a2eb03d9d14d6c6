//! The manifest exactly as written; also the source of the JSON Schema.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{OnExposure, SecretNames, Visibility};

/// aws-key-rotator manifest: the IAM users whose keys are rotated and every consumer of each key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "aws-key-rotator manifest")]
pub struct RawManifest {
    /// Manifest format version; must be 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    #[serde(default)]
    #[schemars(with = "Option<RawDefaults>")]
    pub defaults: Option<Spanned<RawDefaults>>,
    /// The IAM users whose access keys are rotated.
    #[schemars(with = "Vec<RawUser>", length(min = 1))]
    pub users: Vec<Spanned<RawUser>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawDefaults {
    /// Rotate when the active key is at least this many days old (default 90).
    #[schemars(range(min = 1, max = 3650))]
    pub max_age_days: Option<u64>,
    /// Grace period: the old key stays Active this many hours after the new one is verified (default 24).
    #[schemars(range(min = 0, max = 8760))]
    pub deactivate_after_hours: Option<u64>,
    /// Grace period: the old key stays Inactive this many days before it is deleted (default 7).
    #[schemars(range(min = 0, max = 365))]
    pub delete_after_days: Option<u64>,
    /// Secret names written in every consumer (default AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    pub secrets: Option<SecretNames>,
    /// An exposed key: `rotate` (default: a new key everywhere, verified, then the exposed one
    /// Inactive at once) or `revoke` (the exposed key Inactive first, then the rotation).
    pub on_exposure: Option<OnExposure>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawUser {
    /// IAM user name.
    pub name: String,
    /// Overrides defaults.max-age-days for this user.
    #[schemars(range(min = 1, max = 3650))]
    pub max_age_days: Option<u64>,
    /// Overrides defaults.deactivate-after-hours for this user.
    #[schemars(range(min = 0, max = 8760))]
    pub deactivate_after_hours: Option<u64>,
    /// Overrides defaults.delete-after-days for this user.
    #[schemars(range(min = 0, max = 365))]
    pub delete_after_days: Option<u64>,
    /// Overrides defaults.on-exposure for this user.
    pub on_exposure: Option<OnExposure>,
    /// Every GitHub place the key is stored.
    #[schemars(with = "Vec<RawConsumer>", length(min = 1))]
    pub consumers: Vec<Spanned<RawConsumer>>,
    /// Workflows dispatched after the push; all must succeed.
    #[serde(default)]
    #[schemars(with = "Vec<RawVerify>")]
    pub verify: Vec<Spanned<RawVerify>>,
    /// Consumers outside GitHub, updated by people: listed in status and the summary, and
    /// `deactivate` then needs `force` (a person confirms they hold the new key).
    #[serde(default)]
    pub external: Vec<String>,
    /// Moving this user's GitHub Actions consumers to an IAM role they assume through GitHub's
    /// OIDC (the `migrate` command).
    #[schemars(with = "Option<RawMigrate>")]
    pub migrate: Option<Spanned<RawMigrate>>,
    /// The user lives in another AWS account: every IAM call and AWS store of this user goes
    /// through a session of this role (STS AssumeRole), `arn:aws:iam::ACCOUNT:role/NAME`.
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"))]
    #[schemars(with = "Option<String>")]
    pub account_role: Option<Spanned<String>>,
    /// The `sts:ExternalId` the role's trust asks for (with `account-role` only).
    #[schemars(length(min = 2, max = 1224))]
    pub external_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawMigrate {
    /// The IAM role the consumers assume (default `gha-<user name>`).
    pub role_name: Option<String>,
    /// The Actions variable written with the role's ARN in each moved consumer's scope
    /// (default AWS_ROLE_ARN).
    pub variable: Option<String>,
    /// `copy` (the user's attached, inline and group policies; the default) or a list of
    /// managed policy ARNs to attach instead.
    pub permissions: Option<RawPermissions>,
}

/// `copy`, or managed policy ARNs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawPermissions {
    Word(String),
    Arns(Vec<String>),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConsumer {
    /// `owner/name`: the repository's Actions secrets (or, with `environment`, that environment's).
    pub repository: Option<String>,
    /// An environment of `repository`.
    pub environment: Option<String>,
    /// An organization: its Actions secrets (or, with `app: dependabot`, its Dependabot
    /// secrets). Who can read them is kept as it is.
    pub organization: Option<String>,
    /// `dependabot`: the Dependabot secrets of `repository` or `organization`.
    pub app: Option<String>,
    /// With `organization`: who reads a secret that does not exist yet. Required to create
    /// one: `private`, `selected` (with `selected-repositories`) or `all`.
    pub visibility: Option<Visibility>,
    /// With `visibility: selected`: the organization's repositories (`owner/name`) that may
    /// read a secret created new.
    pub selected_repositories: Option<Vec<String>>,
    /// An AWS Secrets Manager secret (name or ARN) whose JSON holds the pair under the
    /// secret names; its other fields are kept.
    pub aws_secrets_manager: Option<String>,
    /// Two SSM Parameter Store parameters (SecureString): the pair's names.
    pub ssm_parameters: Option<SecretNames>,
    /// With an AWS store: its region (default: the run's region).
    pub region: Option<String>,
    /// A HashiCorp Vault / OpenBao KV v2 secret: `{ mount, path }`; its fields named by the
    /// secret names hold the pair, its other fields are kept.
    pub vault: Option<RawVault>,
    /// With `vault`: the server (default: VAULT_ADDR).
    pub address: Option<String>,
    /// With `vault`: the Vault Enterprise namespace.
    pub namespace: Option<String>,
    /// An S3 object holding app config: `{ bucket, key }`; the two values named by `fields`
    /// are replaced, every other byte kept (CONTRACT §18).
    pub s3: Option<RawS3>,
    /// With `s3`: `json`, `yaml`, `dotenv`, `ini` or `credentials` (default: from the key's
    /// extension).
    pub format: Option<crate::manifest::DocumentFormat>,
    /// With `s3`: where the pair is in the document: dotted paths (json, yaml), `SECTION.KEY`
    /// (ini), variable names (dotenv; default `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`).
    pub fields: Option<SecretNames>,
    /// With `s3` and `format: credentials`: the profile (default `default`).
    pub profile: Option<String>,
    /// Secret names for this consumer (default: defaults.secrets).
    pub secrets: Option<SecretNames>,
    /// `true` once this consumer's workflows assume the user's role (see `migrate`) instead of
    /// reading the key: `rotate` no longer writes it.
    pub oidc: Option<bool>,
    /// `false`: once moved to a role, this consumer's pull request jobs may not assume it
    /// (their `pull_request` subject cannot tell a fork from a branch). Default `true`.
    pub pull_requests: Option<bool>,
}

impl RawConsumer {
    /// The manifest keys this entry sets, by their names in the manifest.
    pub fn set_keys(&self) -> Vec<&'static str> {
        [
            ("repository", self.repository.is_some()),
            ("environment", self.environment.is_some()),
            ("organization", self.organization.is_some()),
            ("app", self.app.is_some()),
            ("visibility", self.visibility.is_some()),
            (
                "selected-repositories",
                self.selected_repositories.is_some(),
            ),
            ("aws-secrets-manager", self.aws_secrets_manager.is_some()),
            ("ssm-parameters", self.ssm_parameters.is_some()),
            ("region", self.region.is_some()),
            ("vault", self.vault.is_some()),
            ("address", self.address.is_some()),
            ("namespace", self.namespace.is_some()),
            ("s3", self.s3.is_some()),
            ("format", self.format.is_some()),
            ("fields", self.fields.is_some()),
            ("profile", self.profile.is_some()),
            ("secrets", self.secrets.is_some()),
            ("oidc", self.oidc.is_some()),
            ("pull-requests", self.pull_requests.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawVault {
    /// The KV v2 secrets engine's mount (e.g. `secret`).
    pub mount: String,
    /// The secret's path under the mount (e.g. `ci/deployer`).
    pub path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawS3 {
    /// The bucket's name (e.g. `acme-config`).
    pub bucket: String,
    /// The object's key (e.g. `web/prod.json`).
    pub key: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawVerify {
    /// `owner/name` of the repository holding the workflow.
    pub repository: String,
    /// Workflow file name (e.g. verify-aws-credentials.yml) or id.
    pub workflow: String,
    /// Branch or tag to run on (default: the repository's default branch).
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
}
