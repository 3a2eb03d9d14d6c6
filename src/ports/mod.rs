//! What the core needs from the world. Adapters implement these; tests drive real servers.
// The ports are used on a current-thread runtime inside this crate: no `Send` bounds needed.
#![allow(async_fn_in_trait)]

pub mod discover;
pub mod issues;
pub mod migrate;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::manifest::Scope;
use crate::model::{KeyInfo, LastUse};
use crate::seal::ScopeKey;

/// Masks a secret in the log the moment it exists (the console's, handed in by the app):
/// a session's keys, a Vault token.
pub type Mask = std::sync::Arc<dyn Fn(&SecretString) + Send + Sync>;

/// A key fresh from CreateAccessKey. Its `Debug` shows the id only.
#[derive(Debug)]
pub struct NewKey {
    pub id: String,
    pub secret: SecretString,
    pub created: DateTime<Utc>,
}

/// The long-term key this process is authenticated with (absent for session credentials).
#[derive(Debug, Clone)]
pub struct StepKey {
    pub id: String,
    pub secret: SecretString,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IamErrorKind {
    NoSuchUser,
    /// The access key does not exist (already deleted: a resent delete is done).
    NoSuchKey,
    /// Two keys already (AccessKeysPerUser quota).
    LimitExceeded,
    /// Credentials missing, unknown, wrong, or not allowed: fixable by the user.
    Credentials,
    /// AWS could not be reached (a name that does not resolve, a refused connection, a
    /// timeout): not worth waiting for as if a new key were still propagating.
    Unreachable,
    Other,
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct IamError {
    pub kind: IamErrorKind,
    pub message: String,
}

/// Who STS says the credentials are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub account: String,
    pub arn: String,
}

/// IAM as the core uses it. CreateAccessKey and DeleteAccessKey are sent once: the adapter
/// never resends them (the core lists the keys after an error instead).
pub trait Iam {
    async fn list_keys(&self, user: &str) -> Result<Vec<KeyInfo>, IamError>;
    async fn create_key(&self, user: &str) -> Result<NewKey, IamError>;
    async fn set_inactive(&self, user: &str, key_id: &str) -> Result<(), IamError>;
    async fn delete_key(&self, user: &str, key_id: &str) -> Result<(), IamError>;
    async fn last_used(&self, key_id: &str) -> Result<LastUse, IamError>;
    /// ListAttachedUserPolicies: the names of the managed policies attached to the user (AWS
    /// attaches `AWSCompromisedKeyQuarantine*` when it finds the user's key exposed).
    async fn attached_policies(&self, user: &str) -> Result<Vec<String>, IamError>;
    /// ListUserTags: every tag of the user (the core reads its own two).
    async fn tags(&self, user: &str) -> Result<Vec<(String, String)>, IamError>;
    /// TagUser with one tag (overwrites its value).
    async fn set_tag(&self, user: &str, key: &str, value: &str) -> Result<(), IamError>;
    /// UntagUser of one tag key.
    async fn remove_tag(&self, user: &str, key: &str) -> Result<(), IamError>;
    /// STS GetCallerIdentity with `key`, retrying through IAM propagation.
    async fn prove_key(&self, key: &NewKey) -> Result<Caller, IamError>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GhErrorKind {
    /// 404: the repository or environment does not exist, or the token cannot see it.
    NotFound,
    /// 401: the token is missing, expired or wrong.
    Unauthorized,
    /// 403 that is not a rate limit: the token lacks a permission.
    Forbidden,
    /// 422: GitHub rejected the request body.
    Rejected,
    /// Server errors, rate limits and transport failures that outlasted the retries.
    Unavailable,
}

/// An error of a remote API, of kind `K`.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError<K: std::fmt::Debug> {
    pub kind: K,
    pub message: String,
    /// True when the request may have taken effect (a transport failure after sending).
    pub uncertain: bool,
    /// The HTTP status the service answered, if it answered.
    pub status: Option<u16>,
}

/// GitHub's errors (workflows, discovery, the App).
pub type GhError = ApiError<GhErrorKind>;

/// How a secret store (GitHub's or AWS's) refused or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The store (repository, environment, secret, parameter) does not exist, or these
    /// credentials cannot see it.
    NotFound,
    /// The credentials are missing, expired or wrong.
    Unauthorized,
    /// The credentials lack a permission.
    Forbidden,
    /// The store refused the request (a value it cannot hold, a body it rejects).
    Rejected,
    /// Server errors, rate limits and transport failures that outlasted the retries.
    Unavailable,
}

/// A secret store's error, its own type whichever side the store is on: the core treats every
/// store alike.
pub type StoreError = ApiError<StoreErrorKind>;

impl From<GhError> for StoreError {
    fn from(e: GhError) -> Self {
        StoreError {
            kind: match e.kind {
                GhErrorKind::NotFound => StoreErrorKind::NotFound,
                GhErrorKind::Unauthorized => StoreErrorKind::Unauthorized,
                GhErrorKind::Forbidden => StoreErrorKind::Forbidden,
                GhErrorKind::Rejected => StoreErrorKind::Rejected,
                GhErrorKind::Unavailable => StoreErrorKind::Unavailable,
            },
            message: e.message,
            uncertain: e.uncertain,
            status: e.status,
        }
    }
}

/// Where consumers keep the key: GitHub's secret stores (write-only, sealed with each scope's
/// public key) and AWS's (readable). Errors of either kind are [`StoreError`]s.
pub trait SecretStore {
    /// A GitHub scope's public key (fetched once per scope per run by the caller; it also
    /// proves the scope exists).
    async fn public_key(&self, scope: &Scope) -> Result<ScopeKey, StoreError>;
    /// When the secret was last written; `None` when it does not exist (callers have checked
    /// the scope exists: a missing scope also answers 404).
    async fn updated_at(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Writes one secret. GitHub stores seal `value` with the scope's public `key`.
    async fn put(
        &self,
        scope: &Scope,
        key: Option<&ScopeKey>,
        name: &str,
        value: &SecretString,
    ) -> Result<(), StoreError>;
    /// Writes a consumer's two secrets as one, in a store that holds the pair together
    /// ([`Scope::whole_pair`]: one KV version for both fields). The others write them one by
    /// one ([`SecretStore::put`]) and refuse this.
    async fn put_pair(
        &self,
        scope: &Scope,
        _names: [&str; 2],
        _values: [&SecretString; 2],
    ) -> Result<(), StoreError> {
        Err(not_whole_pair(scope))
    }
    /// A readable store's current value (`None`: not set). A store that does not exist answers
    /// `NotFound`. GitHub stores are write-only: never called for them.
    async fn read(&self, scope: &Scope, name: &str) -> Result<Option<SecretString>, StoreError>;
    /// Every secret of a store with when it was last written (names upper-cased, as GitHub
    /// keeps them), in one listing; `None` where a store cannot list (then the caller asks
    /// [`SecretStore::updated_at`] per secret). A store that does not exist answers `NotFound`.
    async fn stamps(
        &self,
        _scope: &Scope,
    ) -> Result<Option<std::collections::BTreeMap<String, DateTime<Utc>>>, StoreError> {
        Ok(None)
    }
    /// Who can read the secret, in words, where a store says (an organization secret's
    /// visibility: "selected: 3 repositories"); `None` elsewhere.
    async fn access(&self, _scope: &Scope, _name: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    /// A readable store's refusal to hold a secret value in `name` where it would be kept in
    /// plaintext (an SSM `String` parameter): `Rejected`, naming the fix. Asked of the place the
    /// secret access key goes, before anything is written.
    async fn fit_for_secret(&self, _scope: &Scope, _name: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A store asked to write a pair as one that writes its secrets one by one.
pub fn not_whole_pair(scope: &Scope) -> StoreError {
    StoreError {
        kind: StoreErrorKind::Rejected,
        message: format!("{scope} writes its two secrets one by one, never as one pair"),
        uncertain: false,
        status: None,
    }
}

/// A workflow run as GitHub reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunInfo {
    pub id: u64,
    pub html_url: String,
    /// `queued`, `in_progress`, `completed`, …
    pub status: String,
    /// Set once completed: `success`, `failure`, `cancelled`, `timed_out`, …
    pub conclusion: Option<String>,
    pub display_title: String,
}

/// What a workflow dispatch answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dispatched {
    /// 200 with run details.
    Run { id: u64, html_url: String },
    /// 204: accepted, run unknown; find it by its title.
    Accepted,
}

pub trait Workflows {
    async fn default_branch(&self, repository: &str) -> Result<String, GhError>;
    /// Dispatches the workflow once, asking for the run's details where the server gives them
    /// (GitHub Enterprise Server 3.20 and older refuse to, and then answer [`Dispatched::Accepted`]).
    /// Never resent blindly: an `uncertain` error may have dispatched it.
    async fn dispatch(
        &self,
        repository: &str,
        workflow: &str,
        git_ref: &str,
        inputs: &[(&str, &str)],
    ) -> Result<Dispatched, GhError>;
    /// The workflow's `workflow_dispatch` runs created since about `since`, newest first.
    async fn recent_runs(
        &self,
        repository: &str,
        workflow: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RunInfo>, GhError>;
    /// The run's current state (conditional requests: unchanged runs cost no rate limit).
    async fn run(&self, repository: &str, id: u64) -> Result<RunInfo, GhError>;
    /// Any workflow run's `status` and latest `run_attempt` (a lease's holder, CONTRACT §12).
    /// Where it cannot be asked, an error: the lease is then taken as live.
    async fn run_attempt(&self, _repository: &str, _id: u64) -> Result<(String, u64), GhError> {
        Err(GhError {
            kind: GhErrorKind::Unavailable,
            message: "workflow runs cannot be read here".into(),
            uncertain: false,
            status: None,
        })
    }
    /// The runners of the jobs of a run attempt that have not completed.
    async fn busy_runners(
        &self,
        _repository: &str,
        _id: u64,
        _attempt: u64,
    ) -> Result<Vec<String>, GhError> {
        Err(GhError {
            kind: GhErrorKind::Unavailable,
            message: "workflow jobs cannot be read here".into(),
            uncertain: false,
            status: None,
        })
    }
}

/// A request to stop (SIGINT or SIGTERM, how the runner cancels a job), shared by every user's
/// run: once set, no new mutation starts (CONTRACT §12). A pair of writes is never split by it.
#[derive(Debug, Default)]
pub struct Stop(std::sync::atomic::AtomicBool);

impl Stop {
    pub fn request(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn requested(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
    async fn sleep(&self, duration: std::time::Duration);
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    async fn sleep(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Where the core's messages go. The action face turns these into workflow commands.
pub trait Events {
    /// Hide `secret` from every later line of output (`::add-mask::`); called the moment it exists.
    fn mask(&self, secret: &SecretString);
    fn info(&self, text: &str);
    fn warn(&self, text: &str);
    fn group(&self, title: &str);
    fn end_group(&self);
}

/// Every secret name in one store, as GitHub lists it (names only: values are write-only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Store → the names of the secrets it holds.
    pub stores: BTreeMap<Scope, BTreeSet<String>>,
    /// Owners whose repositories were listed (for the report).
    pub owners: Vec<String>,
    /// How many repositories were looked at.
    pub repositories: usize,
    /// What could not be seen, said as a warning (another user's private repositories).
    pub limits: Vec<String>,
}

/// What `discover` needs from GitHub: the stores an owner has and the secret names in each.
pub trait Lister {
    /// Every store of `owner` the credentials can see, with its secret names: each repository's
    /// Actions and Dependabot secrets and environments, and for an organization its own.
    async fn inventory(&self, owner: &str) -> Result<Inventory, GhError>;
}

/// An open secret scanning alert whose secret is an AWS access key id (CONTRACT §17).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAlert {
    /// `owner/name` of the repository the key was found in.
    pub repository: String,
    pub number: u64,
    pub key_id: String,
    /// GitHub's validity check: `active` (the pair found works), `inactive`, `unknown`.
    pub validity: Option<String>,
    pub url: String,
}

/// GitHub's secret scanning, as an exposure's source and its closing (CONTRACT §17).
pub trait Alerts {
    /// The open `aws_access_key_id` alerts of organization `org`; `None` when `org` is no
    /// organization (a user's repositories are read one by one).
    async fn org_key_alerts(&self, org: &str) -> Result<Option<Vec<KeyAlert>>, GhError>;
    /// The open `aws_access_key_id` alerts of one repository.
    async fn repo_key_alerts(&self, repository: &str) -> Result<Vec<KeyAlert>, GhError>;
    /// Resolves an alert as `revoked`, with `comment`.
    async fn resolve_alert(
        &self,
        repository: &str,
        number: u64,
        comment: &str,
    ) -> Result<(), GhError>;
}

/// One call CloudTrail recorded as made with an access key (CONTRACT §17's evidence). The user
/// agent and the source address are whatever the caller sent: foreign text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailEvent {
    pub time: DateTime<Utc>,
    pub access_key_id: String,
    pub event_name: String,
    pub source_ip: String,
    pub user_agent: String,
}

/// CloudTrail's event history, read for the evidence of an exposure.
pub trait Trail {
    /// The calls made with `key_id` since `since`, newest first, at most `max`.
    async fn key_events(
        &self,
        key_id: &str,
        since: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<TrailEvent>, IamError>;
}

/// The ports one run works through, as one type: the core is generic over this alone
/// (`Ctx<'_, P>`). An adapter set names its four (the live one); a type that is all four at
/// once (an in-memory world) is its own.
pub trait Ports {
    type Iam: Iam;
    type Store: SecretStore;
    type Workflows: Workflows;
    type Clock: Clock;
    fn iam(&self) -> &Self::Iam;
    fn store(&self) -> &Self::Store;
    fn workflows(&self) -> &Self::Workflows;
    fn clock(&self) -> &Self::Clock;
}

impl<T: Iam + SecretStore + Workflows + Clock> Ports for T {
    type Iam = T;
    type Store = T;
    type Workflows = T;
    type Clock = T;
    fn iam(&self) -> &T {
        self
    }
    fn store(&self) -> &T {
        self
    }
    fn workflows(&self) -> &T {
        self
    }
    fn clock(&self) -> &T {
        self
    }
}
