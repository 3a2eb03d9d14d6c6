//! What `migrate` reads and changes, as the adapters offer it: IAM's OIDC providers, roles and
//! a user's policies; GitHub's Actions variables, who reads an organization secret, and the
//! workflow files of a repository.

use std::fmt;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::manifest::Scope;
use crate::ports::{GhError, IamError};

/// A session of at most one hour.
pub const MAX_SESSION_SECONDS: i32 = 3600;

/// The tag that marks a role (value: the IAM user it was made for) or provider this tool made.
pub const MADE_TAG: &str = "aws-key-rotator/made-for";

/// An OIDC provider as IAM has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider {
    pub arn: String,
    pub audiences: Vec<String>,
    /// Tagged by this tool when it created it.
    pub made_here: bool,
}

/// A set of permissions: attached managed policies, inline documents by name, and the
/// permissions boundary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    pub attached: BTreeSet<String>,
    pub inline: BTreeMap<String, Value>,
    pub boundary: Option<String>,
}

/// What a user may do: its own policies and each of its groups'.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPermissions {
    pub own: Permissions,
    /// Group name → the group's attached and inline policies (a group has no boundary).
    pub groups: BTreeMap<String, Permissions>,
}

/// A role as IAM has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleState {
    pub arn: String,
    /// The user whose role this tool made it (its tag), or `None`: not made by this tool.
    pub made_for: Option<String>,
    pub trust: Value,
    pub max_session_seconds: i32,
    pub permissions: Permissions,
}

/// Who may read an organization secret (or a variable created beside it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readers {
    /// `all`, `private` or `selected`.
    pub visibility: String,
    /// `owner/name` of every repository that may read it.
    pub repositories: Vec<String>,
    /// With `selected`: the selected repositories' ids.
    pub selected_ids: Vec<u64>,
}

/// IAM as `migrate` uses it.
#[allow(async_fn_in_trait)]
pub trait Roles {
    /// The partition (`aws`, `aws-cn`, `aws-us-gov`) and account these credentials belong to.
    async fn account(&self) -> Result<(String, String), IamError>;
    async fn provider(&self, arn: &str) -> Result<Option<Provider>, IamError>;
    /// Creates the provider of `url` (`https://…`) for `audience`, tagged as made here.
    async fn create_provider(&self, url: &str, audience: &str) -> Result<String, IamError>;
    /// Adds `audience` to a provider this tool made.
    async fn add_audience(&self, arn: &str, audience: &str) -> Result<(), IamError>;
    async fn user_permissions(&self, user: &str) -> Result<UserPermissions, IamError>;
    async fn role(&self, name: &str) -> Result<Option<RoleState>, IamError>;
    /// One change to role `name` (made for `user`).
    async fn change_role(
        &self,
        name: &str,
        user: &str,
        change: &RoleChange,
    ) -> Result<(), IamError>;
}

/// GitHub as `migrate` uses it.
#[allow(async_fn_in_trait)]
pub trait Variables {
    /// `scope` with its repository and environment named as GitHub names them: an OIDC token's
    /// `sub` carries those names, and IAM compares them case-sensitively. A repository or
    /// environment that does not exist answers `NotFound`.
    async fn canonical(&self, scope: &Scope) -> Result<Scope, GhError>;
    /// Who reads organization secret `secret` of `org`; `None` when there is no such secret.
    async fn org_readers(&self, org: &str, secret: &str) -> Result<Option<Readers>, GhError>;
    /// The value of Actions variable `name` in `scope`, `None` when it does not exist.
    async fn variable(&self, scope: &Scope, name: &str) -> Result<Option<String>, GhError>;
    /// Writes variable `name`: updated in place when `exists` (an organization variable keeps
    /// its own visibility), else created (an organization variable readable by `readers`).
    async fn write_variable(
        &self,
        scope: &Scope,
        name: &str,
        value: &str,
        exists: bool,
        readers: Option<&Readers>,
    ) -> Result<(), GhError>;
    /// Every file of `.github/workflows` in `repository` (default branch): `(path, text)`.
    async fn workflow_files(&self, repository: &str) -> Result<Vec<(String, String)>, GhError>;
    /// Whether workflows of fork pull requests get write tokens in `repository` (a private or
    /// internal repository's setting); `None` where it does not apply or cannot be read.
    async fn fork_pull_requests_write(&self, repository: &str) -> Result<Option<bool>, GhError>;
}

/// One call that changes a role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// CreateRole with the trust, a one-hour session, the boundary and the tag.
    Create {
        trust: Value,
        boundary: Option<String>,
    },
    UpdateTrust(Value),
    SessionOneHour,
    SetBoundary(String),
    RemoveBoundary,
    Attach(String),
    Detach(String),
    PutInline(String, Value),
    DeleteInline(String),
}

impl fmt::Display for RoleChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleChange::Create { boundary, .. } => write!(
                f,
                "create the role with its trust policy and a one-hour session{}",
                boundary
                    .as_ref()
                    .map(|b| format!(", permissions boundary {b}"))
                    .unwrap_or_default()
            ),
            RoleChange::UpdateTrust(_) => f.write_str("update the role's trust policy"),
            RoleChange::SessionOneHour => f.write_str("set the role's session to one hour"),
            RoleChange::SetBoundary(b) => write!(f, "set the permissions boundary {b}"),
            RoleChange::RemoveBoundary => f.write_str("remove the permissions boundary"),
            RoleChange::Attach(arn) => write!(f, "attach {arn}"),
            RoleChange::Detach(arn) => write!(f, "detach {arn}"),
            RoleChange::PutInline(name, _) => write!(f, "put inline policy {name}"),
            RoleChange::DeleteInline(name) => write!(f, "delete inline policy {name}"),
        }
    }
}
