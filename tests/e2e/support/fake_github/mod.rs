//! A stateful fake of the GitHub REST endpoints aws-key-rotator uses.
//!
//! Shapes follow GitHub's REST description (API 2022-11-28). Each secret scope (a repository,
//! each environment) has its own Curve25519 key pair; a PUT must carry that scope's `key_id`
//! and a sealed box the fake can open, or it is refused with 422 as GitHub does. The plaintext
//! and `updated_at` are kept for assertions. Faults are injected by rule.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SubsecRound, Utc};
use crypto_box::aead::OsRng;
use serde_json::{Value, json};

use super::runtime;

mod alerts;
mod apps;
mod code_search;
mod contents;
mod gate;
mod inventory;
mod issues;
pub mod oidc;
mod secrets;
mod variables;
mod workflows;

/// The fake's state, shared by every route.
type Shared = Arc<Mutex<State>>;

/// The API: one router per concern, behind the gate (log, limits, faults, authentication);
/// GitHub Enterprise Server's under its prefix only.
fn router(state: Shared, prefix: Option<&'static str>) -> Router {
    let api = Router::new()
        .merge(secrets::routes())
        .merge(workflows::routes())
        .merge(apps::routes())
        .merge(inventory::routes())
        .merge(variables::routes())
        .merge(contents::routes())
        .merge(code_search::routes())
        .merge(issues::routes())
        .merge(alerts::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::gate,
        ))
        // The OIDC issuer takes no GitHub token: outside the gate.
        .merge(oidc::routes())
        .with_state(state.clone());
    match prefix {
        None => api,
        Some(p) => Router::new()
            .nest(p, api)
            .fallback(move |method: Method, uri: Uri| {
                let state = state.clone();
                async move {
                    let mut s = state.lock().unwrap();
                    s.log.push(format!("{method} {} 404", uri.path()));
                    s.answered.push(std::time::Instant::now());
                    error(
                        StatusCode::NOT_FOUND,
                        "Not Found (GHES serves the API under /api/v3)",
                    )
                }
            }),
    }
}

async fn no_route() -> Response {
    not_found()
}

/// GitHub's answer for what does not exist, or what the caller may not see.
fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

/// The JSON body of a write to `scope`, once the scope exists and the caller may write.
#[allow(clippy::result_large_err)] // an axum handler's early answer, not an error type
fn writable(
    state: &Shared,
    scope: &ScopeId,
    caller: &gate::Caller,
    body: &[u8],
) -> Result<Value, Response> {
    if !state.lock().unwrap().scopes.contains_key(scope) {
        return Err(not_found());
    }
    if !caller.can_write() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        ));
    }
    serde_json::from_slice::<Value>(body)
        .map_err(|_| error(StatusCode::BAD_REQUEST, "Problems parsing JSON"))
}

pub const TOKEN: &str = "ghp_fakeTokenThatCanWriteSecrets0001";
pub const READ_ONLY_TOKEN: &str = "ghp_fakeTokenThatCanOnlyRead000002";
/// The user account both tokens belong to (`GET /user`).
pub const TOKEN_LOGIN: &str = "octo";

/// Which secrets of a repository or organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum App {
    Actions,
    Dependabot,
}

/// Identifies a scope the way the manifest does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId {
    /// `owner/name`, or an organization's name when `organization`.
    pub repository: String,
    pub environment: Option<String>,
    pub organization: bool,
    pub app: App,
}

pub fn repo(r: &str) -> ScopeId {
    ScopeId {
        repository: r.into(),
        environment: None,
        organization: false,
        app: App::Actions,
    }
}
pub fn environment(r: &str, e: &str) -> ScopeId {
    ScopeId {
        environment: Some(e.into()),
        ..repo(r)
    }
}
pub fn dependabot(r: &str) -> ScopeId {
    ScopeId {
        app: App::Dependabot,
        ..repo(r)
    }
}
pub fn org(o: &str) -> ScopeId {
    ScopeId {
        organization: true,
        ..repo(o)
    }
}
pub fn org_dependabot(o: &str) -> ScopeId {
    ScopeId {
        app: App::Dependabot,
        ..org(o)
    }
}

#[derive(Clone, Debug)]
pub struct StoredSecret {
    pub value: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Organization secrets: `all`, `private` or `selected`, and the selected repositories' ids.
    pub visibility: Option<String>,
    pub selected: Vec<u64>,
}

/// An Actions variable (its name is kept upper-case, as GitHub compares names).
#[derive(Clone, Debug)]
pub struct StoredVariable {
    pub value: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Organization variables: `all`, `private` or `selected`, and the selected repositories' ids.
    pub visibility: Option<String>,
    pub selected: Vec<u64>,
}

struct ScopeState {
    secret_key: crypto_box::SecretKey,
    /// The public key, base64, as GitHub serves it (computed once).
    public_key: String,
    key_id: String,
    secrets: BTreeMap<String, StoredSecret>,
}

impl ScopeState {
    fn new(n: usize) -> Self {
        let secret_key = crypto_box::SecretKey::generate(&mut OsRng);
        Self {
            public_key: STANDARD.encode(secret_key.public_key().as_bytes()),
            secret_key,
            key_id: format!("568250167242549{n:03}"),
            secrets: BTreeMap::new(),
        }
    }
}

/// A fault rule: requests whose method and path match get `status` instead of an answer.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: Method,
    /// Substring of the (decoded) path.
    pub path_contains: String,
    /// How many matching requests pass before the fault fires (0: the first one fails).
    pub after: usize,
    /// How many times it fires (None: every time from then on).
    pub times: Option<usize>,
    pub status: u16,
    pub retry_after: Option<u64>,
    /// The request takes effect, and then the answer is lost (`status` instead).
    pub lands: bool,
    /// No answer at all: the connection stays open and silent (a stalled call).
    pub stalls: bool,
    seen: usize,
    fired: usize,
}

impl Fault {
    pub fn new(method: Method, path_contains: &str, status: u16) -> Self {
        Self {
            method,
            path_contains: path_contains.into(),
            after: 0,
            times: None,
            status,
            retry_after: None,
            lands: false,
            stalls: false,
            seen: 0,
            fired: 0,
        }
    }
    /// The request takes effect before the fault answers: a lost answer.
    pub fn lands(mut self) -> Self {
        self.lands = true;
        self
    }
    /// The request never answers (after taking effect, with [`Fault::lands`]).
    pub fn stalls(mut self) -> Self {
        self.stalls = true;
        self
    }
    pub fn after(mut self, n: usize) -> Self {
        self.after = n;
        self
    }
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

/// How a registered workflow behaves when dispatched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// Runs and succeeds when the secrets it sees are a working key equal to
    /// `expected-access-key-id` (checked with STS on moto), fails otherwise.
    Normal,
    /// Runs and fails.
    Fail,
    /// Runs and is cancelled.
    Cancel,
    /// Runs and never completes.
    NeverComplete,
    /// Answers 204 and no run ever appears.
    NeverAppear,
    /// Answers 204 without run details, as github.com did before February 2026.
    NoRunDetails,
    /// Rejects `return_run_details` with 400, as GitHub Enterprise Server 3.20 and older do.
    OldGhes,
    /// Creates the run, then answers 502 (once): the answer was lost, not the dispatch.
    LostAnswer,
}

#[derive(Clone, Debug)]
pub struct WorkflowSpec {
    /// The environment whose secrets the job sees (overriding repository secrets).
    pub environment: Option<String>,
    pub mode: RunMode,
}

#[derive(Clone, Debug)]
pub struct FakeRun {
    pub id: u64,
    pub repository: String,
    pub workflow: String,
    pub display_title: String,
    pub inputs: Value,
    pub git_ref: String,
    polls: u32,
    mode: RunMode,
    /// Decided when the job "starts" (at dispatch), reported once completed.
    conclusion: Option<String>,
    fixed_status: Option<(String, Option<String>)>,
    /// With [`FakeGitHub::set_run_time`]: when it was dispatched and how long it runs.
    timed: Option<(std::time::Instant, std::time::Duration)>,
}

impl FakeRun {
    fn status(&self) -> (String, Option<String>) {
        if let Some(f) = &self.fixed_status {
            return f.clone();
        }
        if let Some((started, takes)) = self.timed
            && self.mode == RunMode::Normal
        {
            return if started.elapsed() < takes {
                ("in_progress".into(), None)
            } else {
                ("completed".into(), self.conclusion.clone())
            };
        }
        match (self.polls, self.mode) {
            (0 | 1, _) => ("queued".into(), None),
            (_, RunMode::NeverComplete) => ("in_progress".into(), None),
            (2, _) => ("in_progress".into(), None),
            _ => ("completed".into(), self.conclusion.clone()),
        }
    }

    fn json(&self) -> Value {
        let (status, conclusion) = self.status();
        json!({
            "id": self.id,
            "name": "verify AWS credentials",
            "display_title": self.display_title,
            "event": "workflow_dispatch",
            "run_attempt": 1,
            "status": status,
            "conclusion": conclusion,
            "head_branch": self.git_ref,
            "html_url": format!("https://github.example/{}/actions/runs/{}", self.repository, self.id),
            "url": format!("https://api.github.example/repos/{}/actions/runs/{}", self.repository, self.id),
        })
    }
}

/// A dispatched run whose conclusion needs STS.
struct Eval {
    run_id: u64,
    key: Option<(String, String)>,
    expected: String,
}

#[derive(Default)]
struct State {
    workflows: HashMap<(String, String), WorkflowSpec>,
    runs: Vec<FakeRun>,
    pending: Vec<Eval>,
    lost_answer_used: bool,
    moto_url: Option<String>,
    scopes: HashMap<ScopeId, ScopeState>,
    faults: Vec<Fault>,
    /// "METHOD path status" for every request, in order.
    log: Vec<String>,
    /// Every request as it arrives ("METHOD /path"), answered or not.
    started: Vec<String>,
    /// (run id, attempt) → its jobs' (status, runner name).
    jobs: HashMap<(u64, u64), Vec<(String, String)>>,
    /// When each request of `log` was answered.
    answered: Vec<std::time::Instant>,
    /// Every plaintext ever written, for the leak scan.
    written: Vec<String>,
    /// How far GitHub's clock is from the test's (stamps `updated_at`).
    clock_skew: chrono::Duration,
    /// Every repository's numeric id (organization secrets select repositories by id).
    repo_ids: BTreeMap<String, u64>,
    /// GitHub Enterprise Server: the path prefix every request must carry.
    prefix: Option<&'static str>,
    /// GitHub Apps: id → public key (PEM), to check their JWTs.
    apps: HashMap<u64, String>,
    /// Installations: (app id, owner) → installation id.
    installations: BTreeMap<(u64, String), u64>,
    /// Installation tokens → the owner they reach.
    installation_tokens: HashMap<String, String>,
    /// Repositories only their owner's credentials may list (`/users/{u}/repos` hides them).
    private_repos: BTreeSet<String>,
    /// Internal repositories (an enterprise's members may read them): private to the rest.
    internal_repos: BTreeSet<String>,
    /// Private repositories whose fork pull requests get write tokens.
    fork_write_tokens: BTreeSet<String>,
    /// GitHub Actions' OIDC issuer, once a test turns it on.
    oidc: Option<oidc::Issuer>,
    /// Each scope's Actions variables, by upper-case name.
    variables: HashMap<ScopeId, BTreeMap<String, StoredVariable>>,
    /// Each repository's files: path → text.
    contents: BTreeMap<String, BTreeMap<String, String>>,
    /// How long a dispatched run takes (else it completes on its third poll).
    run_time: Option<std::time::Duration>,
    /// GitHub's secondary rate limits, when enforced.
    limits: Option<SecondaryLimits>,
    /// Each repository's issues, by number.
    issues: HashMap<String, Vec<FakeIssue>>,
    /// Every issue and comment text written, for the leak scan.
    written_text: Vec<String>,
    /// Secret scanning alerts, every owner's, in the order they were raised.
    alerts: Vec<alerts::FakeAlert>,
    /// The token may not read (nor resolve) secret scanning alerts.
    alerts_denied: bool,
    /// The token may not search code.
    code_search_denied: bool,
    /// Code search requests of the last minute (its limit), and every one.
    code_searches: Vec<std::time::Instant>,
    code_search_log: Vec<std::time::Instant>,
}

/// An issue (or a pull request, which the issues API lists too).
#[derive(Clone, Debug)]
pub struct FakeIssue {
    pub number: u64,
    pub title: String,
    pub body: String,
    /// `open` or `closed`.
    pub state: String,
    pub labels: Vec<String>,
    /// The comments' bodies, oldest first.
    pub comments: Vec<String>,
    pub pull_request: bool,
    /// Who opened it, and who wrote each comment (`user.login`).
    pub author: String,
    pub comment_authors: Vec<String>,
}

/// GitHub's secondary limits on content-creating requests (POST, PUT, PATCH, DELETE) of one
/// token: at most 80 in a minute and 500 in an hour, on a clock `speedup` times fast. A
/// request over a cap is refused with 403 and a `retry-after`, as GitHub does.
pub struct SecondaryLimits {
    pub speedup: u32,
    pub per_minute: usize,
    pub per_hour: usize,
    /// Per token: when each accepted write arrived.
    writes: HashMap<String, VecDeque<std::time::Instant>>,
    /// Writes refused for a limit.
    pub hits: usize,
    /// The closest two accepted writes of one token ever came, in GitHub's (sped-up) time.
    pub closest: Option<std::time::Duration>,
}

impl SecondaryLimits {
    pub fn github(speedup: u32) -> Self {
        Self {
            speedup: speedup.max(1),
            per_minute: 80,
            per_hour: 500,
            writes: HashMap::new(),
            hits: 0,
            closest: None,
        }
    }

    /// `None` when the write may go (and it is counted), else the refusal.
    fn admit(&mut self, token: &str) -> Option<Response> {
        let now = std::time::Instant::now();
        let minute = std::time::Duration::from_secs(60) / self.speedup;
        let hour = std::time::Duration::from_secs(3600) / self.speedup;
        let sent = self.writes.entry(token.to_owned()).or_default();
        while sent.front().is_some_and(|t| now - *t >= hour) {
            sent.pop_front();
        }
        let in_minute = sent.iter().filter(|t| now - **t < minute).count();
        if in_minute >= self.per_minute || sent.len() >= self.per_hour {
            self.hits += 1;
            let wait = if sent.len() >= self.per_hour {
                hour
            } else {
                minute
            };
            let mut r = error(
                StatusCode::FORBIDDEN,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            r.headers_mut().insert(
                "retry-after",
                wait.as_secs().max(1).to_string().parse().unwrap(),
            );
            return Some(r);
        }
        if let Some(last) = sent.back() {
            let gap = (now - *last) * self.speedup;
            self.closest = Some(self.closest.map_or(gap, |c| c.min(gap)));
        }
        sent.push_back(now);
        None
    }
}

#[derive(Clone)]
pub struct FakeGitHub {
    state: Arc<Mutex<State>>,
    pub url: String,
}

impl FakeGitHub {
    /// `moto_url`: where simulated verification runs check their credentials.
    pub fn start(moto_url: Option<String>) -> Self {
        Self::serve(moto_url, None)
    }

    /// GitHub Enterprise Server 3.20: the API only under `/api/v3` (anything else is 404), and
    /// `return_run_details` refused.
    pub fn start_ghes(moto_url: Option<String>) -> Self {
        Self::serve(moto_url, Some("/api/v3"))
    }

    fn serve(moto_url: Option<String>, prefix: Option<&'static str>) -> Self {
        let state = Arc::new(Mutex::new(State {
            moto_url,
            prefix,
            ..State::default()
        }));
        let listener = runtime()
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the fake GitHub");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let app = router(state.clone(), prefix);
        runtime().spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("serve the fake GitHub");
        });
        Self {
            state,
            url: format!("http://{addr}{}", prefix.unwrap_or_default()),
        }
    }

    /// Turns on the OIDC issuer (a new RSA key), for jobs of `repository`; returns the URL a
    /// job asks its token from (`ACTIONS_ID_TOKEN_REQUEST_URL`) and the issuer's URL.
    pub fn enable_oidc(&self, repository: &str) -> (String, String) {
        let pem = std::process::Command::new("openssl")
            .args(["genrsa", "-traditional", "2048"])
            .output()
            .expect("openssl makes the issuer's key")
            .stdout;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
        let mut jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::RS256)
                .unwrap();
        jwk.common.key_id = Some("fake-github-oidc".into());
        let issuer = self.url.trim_end_matches("/api/v3").to_owned();
        self.state.lock().unwrap().oidc = Some(oidc::Issuer {
            url: issuer.clone(),
            key,
            jwk,
            repository: repository.to_owned(),
            issued: Vec::new(),
        });
        (format!("{issuer}/_services/token?api-version=2.0"), issuer)
    }

    /// The job the OIDC issuer speaks for from now on.
    pub fn set_oidc_repository(&self, repository: &str) {
        if let Some(i) = &mut self.state.lock().unwrap().oidc {
            i.repository = repository.to_owned();
        }
    }

    /// Every OIDC token issued (for the leak scan).
    pub fn issued_oidc_tokens(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .oidc
            .as_ref()
            .map(|i| i.issued.clone())
            .unwrap_or_default()
    }

    pub fn add_repo(&self, name: &str) {
        let mut s = self.state.lock().unwrap();
        let n = s.scopes.len();
        s.scopes
            .entry(repo(name))
            .or_insert_with(|| ScopeState::new(n));
        let id = 100_000 + s.repo_ids.len() as u64;
        s.repo_ids.entry(name.to_owned()).or_insert(id);
    }

    /// A private repository: its owner's token or App installation lists it, others do not.
    pub fn add_private_repo(&self, name: &str) {
        self.add_repo(name);
        self.state
            .lock()
            .unwrap()
            .private_repos
            .insert(name.to_owned());
    }

    /// A private repository whose workflows of fork pull requests get write tokens.
    pub fn let_forks_write(&self, name: &str) {
        self.add_private_repo(name);
        self.state
            .lock()
            .unwrap()
            .fork_write_tokens
            .insert(name.to_owned());
    }

    /// An internal repository: private to anyone outside its enterprise.
    pub fn add_internal_repo(&self, name: &str) {
        self.add_repo(name);
        self.state
            .lock()
            .unwrap()
            .internal_repos
            .insert(name.to_owned());
    }

    /// A file of the repository (its default branch), served by the contents API.
    pub fn add_file(&self, repository: &str, path: &str, text: &str) {
        self.add_repo(repository);
        self.state
            .lock()
            .unwrap()
            .contents
            .entry(repository.to_owned())
            .or_default()
            .insert(path.trim_matches('/').to_owned(), text.to_owned());
    }

    /// A repository's numeric id.
    pub fn repo_id(&self, name: &str) -> u64 {
        self.state.lock().unwrap().repo_ids[name]
    }

    /// The repository's Dependabot secrets (their own public key).
    pub fn add_dependabot(&self, repository: &str) {
        self.add_repo(repository);
        self.add_scope(dependabot(repository));
    }

    /// An organization's Actions and Dependabot secrets (each with its own public key).
    pub fn add_org(&self, name: &str) {
        self.add_scope(org(name));
        self.add_scope(org_dependabot(name));
    }

    fn add_scope(&self, scope: ScopeId) {
        let mut s = self.state.lock().unwrap();
        let n = s.scopes.len();
        s.scopes.entry(scope).or_insert_with(|| ScopeState::new(n));
    }

    /// Stores an organization secret with who can read it, as if written at `updated_at`.
    pub fn set_org_secret(
        &self,
        scope: &ScopeId,
        name: &str,
        value: &str,
        visibility: &str,
        selected: &[u64],
        updated_at: DateTime<Utc>,
    ) {
        self.set_secret(scope, name, value, updated_at);
        let mut s = self.state.lock().unwrap();
        let secret = s
            .scopes
            .get_mut(scope)
            .unwrap()
            .secrets
            .get_mut(name)
            .unwrap();
        secret.visibility = Some(visibility.to_owned());
        secret.selected = selected.to_vec();
    }

    pub fn add_environment(&self, repository: &str, environment: &str) {
        self.add_repo(repository);
        let mut s = self.state.lock().unwrap();
        let n = s.scopes.len();
        s.scopes
            .entry(self::environment(repository, environment))
            .or_insert_with(|| ScopeState::new(n));
    }

    pub fn secret(&self, scope: &ScopeId, name: &str) -> Option<StoredSecret> {
        self.state
            .lock()
            .unwrap()
            .scopes
            .get(scope)?
            .secrets
            .get(name)
            .cloned()
    }

    pub fn value(&self, scope: &ScopeId, name: &str) -> Option<String> {
        self.secret(scope, name).map(|s| s.value)
    }

    /// Stores a secret directly, as if written at `updated_at`.
    pub fn set_secret(&self, scope: &ScopeId, name: &str, value: &str, updated_at: DateTime<Utc>) {
        let mut s = self.state.lock().unwrap();
        s.written.push(value.to_owned());
        let sc = s.scopes.get_mut(scope).expect("scope exists");
        sc.secrets.insert(
            name.into(),
            StoredSecret {
                value: value.into(),
                created_at: updated_at,
                updated_at,
                visibility: None,
                selected: Vec::new(),
            },
        );
    }

    /// Every secret of every scope: (scope, name) → value.
    pub fn all_secrets(&self) -> BTreeMap<(ScopeId, String), String> {
        let s = self.state.lock().unwrap();
        let mut out = BTreeMap::new();
        for (id, sc) in &s.scopes {
            for (name, v) in &sc.secrets {
                out.insert((id.clone(), name.clone()), v.value.clone());
            }
        }
        out
    }

    /// A variable of the scope (names are case-insensitive).
    pub fn variable(&self, scope: &ScopeId, name: &str) -> Option<StoredVariable> {
        self.state
            .lock()
            .unwrap()
            .variables
            .get(scope)?
            .get(&name.to_ascii_uppercase())
            .cloned()
    }

    /// Stores a variable directly, as if written now (an organization's: visibility `private`).
    pub fn set_variable(&self, scope: &ScopeId, name: &str, value: &str) {
        let mut s = self.state.lock().unwrap();
        assert!(s.scopes.contains_key(scope), "scope exists");
        let now = (Utc::now() + s.clock_skew).trunc_subsecs(0);
        s.variables.entry(scope.clone()).or_default().insert(
            name.to_ascii_uppercase(),
            StoredVariable {
                value: value.into(),
                created_at: now,
                updated_at: now,
                visibility: scope.organization.then(|| "private".into()),
                selected: Vec::new(),
            },
        );
    }

    /// Every variable of every scope: (scope, upper-case name) → value.
    pub fn variables(&self) -> BTreeMap<(ScopeId, String), String> {
        let s = self.state.lock().unwrap();
        let mut out = BTreeMap::new();
        for (id, vars) in &s.variables {
            for (name, v) in vars {
                out.insert((id.clone(), name.clone()), v.value.clone());
            }
        }
        out
    }

    pub fn written_values(&self) -> Vec<String> {
        self.state.lock().unwrap().written.clone()
    }

    pub fn add_workflow(&self, repository: &str, workflow: &str, spec: WorkflowSpec) {
        self.add_repo(repository);
        self.state
            .lock()
            .unwrap()
            .workflows
            .insert((repository.into(), workflow.into()), spec);
    }

    /// A run that has nothing to do with this rotation (another day's, another person's).
    pub fn add_other_run(&self, repository: &str, workflow: &str, title: &str, conclusion: &str) {
        let mut s = self.state.lock().unwrap();
        let id = 9_000 + s.runs.len() as u64;
        s.runs.push(FakeRun {
            id,
            repository: repository.into(),
            workflow: workflow.into(),
            display_title: title.into(),
            inputs: json!({}),
            git_ref: "main".into(),
            polls: 0,
            mode: RunMode::Normal,
            conclusion: None,
            fixed_status: Some(("completed".into(), Some(conclusion.into()))),
            timed: None,
        });
    }

    /// The jobs of attempt `attempt` of run `id`: (status, runner name) each.
    pub fn set_jobs(&self, id: u64, attempt: u64, jobs: &[(&str, &str)]) {
        self.state.lock().unwrap().jobs.insert(
            (id, attempt),
            jobs.iter()
                .map(|(s, r)| ((*s).to_owned(), (*r).to_owned()))
                .collect(),
        );
    }

    /// Adds a completed run (of another workflow) and returns its id.
    pub fn add_completed_run(&self, repository: &str) -> u64 {
        self.add_other_run(repository, "rotate.yml", "rotate AWS keys", "failure");
        self.state.lock().unwrap().runs.last().unwrap().id
    }

    /// The runs dispatched (not the other ones), in order.
    pub fn dispatched_runs(&self) -> Vec<FakeRun> {
        let s = self.state.lock().unwrap();
        s.runs
            .iter()
            .filter(|r| r.fixed_status.is_none())
            .cloned()
            .collect()
    }

    /// Moves GitHub's clock (the `updated_at` it stamps) by `skew` from the test's.
    pub fn set_clock_skew(&self, skew: chrono::Duration) {
        self.state.lock().unwrap().clock_skew = skew;
    }

    /// Registers a GitHub App: its JWTs are checked against `public_pem`.
    pub fn register_app(&self, app_id: u64, public_pem: &str) {
        self.state
            .lock()
            .unwrap()
            .apps
            .insert(app_id, public_pem.to_owned());
    }

    /// Installs the App on `owner` (an organization or a user).
    pub fn install_app(&self, app_id: u64, owner: &str) {
        let mut s = self.state.lock().unwrap();
        let id = 7_000 + s.installations.len() as u64;
        s.installations
            .insert((app_id, owner.to_ascii_lowercase()), id);
    }

    /// Installation tokens handed out, with the owner each reaches.
    pub fn installation_tokens(&self) -> Vec<(String, String)> {
        let s = self.state.lock().unwrap();
        let mut t: Vec<_> = s
            .installation_tokens
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        t.sort();
        t
    }

    /// A repository's issues, open and closed, by number.
    /// Someone else (`login`) comments on issue `number` of `repository`, as anyone who can
    /// see a repository can.
    pub fn comment_as(&self, repository: &str, number: u64, login: &str, body: &str) {
        let mut s = self.state.lock().unwrap();
        let issue = s
            .issues
            .get_mut(repository)
            .and_then(|list| list.iter_mut().find(|i| i.number == number))
            .expect("the issue exists");
        issue.comments.push(body.to_owned());
        issue.comment_authors.push(login.to_owned());
    }

    pub fn issues(&self, repository: &str) -> Vec<FakeIssue> {
        self.state
            .lock()
            .unwrap()
            .issues
            .get(repository)
            .cloned()
            .unwrap_or_default()
    }

    /// Secret scanning raises an alert of `secret_type` for `secret`, found in `repository`;
    /// its number in that repository.
    pub fn raise_alert(
        &self,
        repository: &str,
        secret_type: &str,
        secret: &str,
        validity: &str,
    ) -> u64 {
        let mut s = self.state.lock().unwrap();
        let number = s
            .alerts
            .iter()
            .filter(|a| a.repository == repository)
            .count() as u64
            + 1;
        s.alerts.push(alerts::FakeAlert {
            repository: repository.to_owned(),
            number,
            secret_type: secret_type.to_owned(),
            secret: secret.to_owned(),
            state: "open".into(),
            resolution: None,
            resolution_comment: None,
            validity: validity.to_owned(),
        });
        number
    }

    /// Every alert, as GitHub keeps it now.
    pub fn alerts(&self) -> Vec<alerts::FakeAlert> {
        self.state.lock().unwrap().alerts.clone()
    }

    /// The token may no longer read secret scanning alerts (403).
    pub fn deny_alerts(&self) {
        self.state.lock().unwrap().alerts_denied = true;
    }

    /// The token may not search code (403).
    pub fn deny_code_search(&self) {
        self.state.lock().unwrap().code_search_denied = true;
    }

    /// When each code search request arrived, in order.
    pub fn code_searches(&self) -> Vec<std::time::Instant> {
        self.state.lock().unwrap().code_search_log.clone()
    }

    /// Every issue and comment text written so far.
    pub fn issue_texts(&self) -> Vec<String> {
        self.state.lock().unwrap().written_text.clone()
    }

    /// GitHub is well again.
    pub fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    pub fn add_fault(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push(fault);
    }

    /// Dispatched runs take `t` (in real time) before they complete.
    pub fn set_run_time(&self, t: std::time::Duration) {
        self.state.lock().unwrap().run_time = Some(t);
    }

    /// Enforce GitHub's secondary limits from now on.
    pub fn enforce_limits(&self, limits: SecondaryLimits) {
        self.state.lock().unwrap().limits = Some(limits);
    }

    /// The enforced limits' counters: writes refused for a limit, and the closest two
    /// accepted writes came (in GitHub's time).
    pub fn limit_counters(&self) -> Option<(usize, Option<std::time::Duration>)> {
        let s = self.state.lock().unwrap();
        s.limits.as_ref().map(|l| (l.hits, l.closest))
    }

    /// Every answered request with when it was answered, in order.
    pub fn timed_log(&self) -> Vec<(std::time::Instant, String)> {
        let s = self.state.lock().unwrap();
        s.answered
            .iter()
            .copied()
            .zip(s.log.iter().cloned())
            .collect()
    }

    /// Every request that arrived ("METHOD /path"), answered or not yet.
    pub fn started(&self) -> Vec<String> {
        self.state.lock().unwrap().started.clone()
    }

    /// Waits (real time, at most a minute) until a request of `method` whose path contains
    /// `needle` has arrived.
    pub fn wait_for(&self, method: &str, needle: &str) {
        self.wait_for_nth(method, needle, 1);
    }

    /// Waits (real time, at most a minute) until `n` requests of `method` whose path contains
    /// `needle` have arrived.
    pub fn wait_for_nth(&self, method: &str, needle: &str, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self
            .started()
            .iter()
            .filter(|l| l.starts_with(&format!("{method} ")) && l.contains(needle))
            .count()
            < n
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no {method} {needle} arrived: {:?}",
                self.started()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// How many requests of `method` had a path containing `needle`.
    pub fn count(&self, method: &str, needle: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| l.starts_with(&format!("{method} ")) && l.contains(needle))
            .count()
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.as_u16().to_string()}).to_string(),
    )
        .into_response()
}

fn ok(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

/// `?per_page=&page=` of a list endpoint (GitHub's defaults: 30, page 1).
pub(super) fn page<T: Clone>(items: &[T], query: &str) -> Vec<T> {
    let param = |k: &str| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(n, _)| *n == k)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let per_page = param("per_page").unwrap_or(30).clamp(1, 100);
    let page = param("page").unwrap_or(1).max(1);
    items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect()
}
