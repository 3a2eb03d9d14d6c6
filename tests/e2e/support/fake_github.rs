//! A stateful fake of the GitHub REST endpoints aws-key-rotator uses.
//!
//! Shapes follow GitHub's REST description (API 2022-11-28). Each secret scope (a repository,
//! each environment) has its own Curve25519 key pair; a PUT must carry that scope's `key_id`
//! and a sealed box the fake can open, or it is refused with 422 as GitHub does. The plaintext
//! and `updated_at` are kept for assertions. Faults are injected by rule.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SubsecRound, Utc};
use crypto_box::aead::OsRng;
use serde_json::{Value, json};

use super::runtime;

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
    /// How long a dispatched run takes (else it completes on its third poll).
    run_time: Option<std::time::Duration>,
    /// GitHub's secondary rate limits, when enforced.
    limits: Option<SecondaryLimits>,
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
        let app_state = state.clone();
        let listener = runtime()
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the fake GitHub");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = app_state.clone();
                async move { handle(&state, method, uri, headers, body).await }
            },
        );
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

async fn handle(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let prefix = state.lock().unwrap().prefix;
    let path = match prefix {
        None => uri.path(),
        Some(p) => match uri.path().strip_prefix(p) {
            Some(rest) => rest,
            None => {
                let mut s = state.lock().unwrap();
                s.log.push(format!("{method} {} 404", uri.path()));
                s.answered.push(std::time::Instant::now());
                return error(
                    StatusCode::NOT_FOUND,
                    "Not Found (GHES serves the API under /api/v3)",
                );
            }
        },
    };
    let segments: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
    let path = format!("/{}", segments.join("/"));
    let query = uri.query().unwrap_or_default().to_owned();
    let response = respond(state, &method, &segments, &path, &query, &headers, &body);
    if response.headers().contains_key(STALL_HEADER) {
        // A call that never answers: the client's own timeout has to end it.
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    // A dispatched job "starts" now: it reads its secrets and checks them with STS.
    let (evals, moto) = {
        let mut s = state.lock().unwrap();
        (std::mem::take(&mut s.pending), s.moto_url.clone())
    };
    for eval in evals {
        let works = match (&eval.key, &moto) {
            (Some((id, secret)), Some(url)) => {
                let sts = super::sts_client(url, id, secret);
                sts.get_caller_identity().send().await.is_ok() && *id == eval.expected
            }
            _ => false,
        };
        let mut s = state.lock().unwrap();
        if let Some(run) = s.runs.iter_mut().find(|r| r.id == eval.run_id) {
            run.conclusion = Some(
                match run.mode {
                    RunMode::Fail => "failure",
                    RunMode::Cancel => "cancelled",
                    _ if works => "success",
                    _ => "failure",
                }
                .into(),
            );
        }
    }
    let mut s = state.lock().unwrap();
    s.log
        .push(format!("{method} {path} {}", response.status().as_u16()));
    s.answered.push(std::time::Instant::now());
    response
}

/// Marks a fault's answer as one never to be sent.
const STALL_HEADER: &str = "x-fake-stall";

fn respond(
    state: &Mutex<State>,
    method: &Method,
    segments: &[String],
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    s.started.push(format!("{method} {path}"));
    let creates = matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if creates
        && let (Some(limits), Some(token)) = (s.limits.as_mut(), token)
        && let Some(refused) = limits.admit(&token)
    {
        return refused;
    }
    // Faults first: they stand for GitHub being unwell, whatever the request.
    for f in s.faults.iter_mut() {
        if f.method == method && path.contains(&f.path_contains) {
            f.seen += 1;
            if f.seen > f.after && f.times.is_none_or(|t| f.fired < t) {
                f.fired += 1;
                let mut r = error(StatusCode::from_u16(f.status).unwrap(), "injected fault");
                if let Some(secs) = f.retry_after {
                    r.headers_mut()
                        .insert("retry-after", secs.to_string().parse().unwrap());
                }
                let stalls = f.stalls;
                if stalls {
                    r.headers_mut().insert(STALL_HEADER, "1".parse().unwrap());
                }
                if f.lands {
                    drop(s);
                    let _landed =
                        respond_after_faults(state, method, segments, query, headers, body);
                }
                return r;
            }
        }
    }
    drop(s);
    respond_after_faults(state, method, segments, query, headers, body)
}

fn respond_after_faults(
    state: &Mutex<State>,
    method: &Method,
    segments: &[String],
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .map(str::to_owned);
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let can_write = match token.as_deref() {
        None => return error(StatusCode::UNAUTHORIZED, "Requires authentication"),
        Some(TOKEN) => true,
        Some(READ_ONLY_TOKEN) => false,
        // A JWT: only the App's own endpoints take it.
        Some(jwt) if jwt.split('.').count() == 3 => return app_route(&mut s, method, &seg, jwt),
        Some(t) => match s.installation_tokens.get(t) {
            // An installation token reaches its own account only.
            Some(owner) => {
                let about = match seg.as_slice() {
                    ["repos" | "orgs" | "users", o, ..] => Some(o.to_ascii_lowercase()),
                    _ => None,
                };
                if about.is_some_and(|o| &o != owner) {
                    return error(StatusCode::NOT_FOUND, "Not Found");
                }
                true
            }
            None => return error(StatusCode::UNAUTHORIZED, "Bad credentials"),
        },
    };
    let installation = token
        .as_deref()
        .and_then(|t| s.installation_tokens.get(t).cloned());
    if let Some(r) = inventory_route(&s, method, &seg, query, installation.as_deref()) {
        return r;
    }
    if let Some(r) = workflow_route(&mut s, method, &seg, headers, body, can_write) {
        return r;
    }
    let (scope, rest) = match seg.as_slice() {
        ["repos", o, r, "actions", "secrets", rest @ ..] => (repo(&format!("{o}/{r}")), rest),
        ["repos", o, r, "environments", e, "secrets", rest @ ..] => {
            (environment(&format!("{o}/{r}"), e), rest)
        }
        ["repos", o, r, "dependabot", "secrets", rest @ ..] => {
            (dependabot(&format!("{o}/{r}")), rest)
        }
        ["orgs", o, "actions", "secrets", rest @ ..] => (org(o), rest),
        ["orgs", o, "dependabot", "secrets", rest @ ..] => (org_dependabot(o), rest),
        _ => return error(StatusCode::NOT_FOUND, "Not Found"),
    };
    let skew = s.clock_skew;
    let repo_names: BTreeMap<u64, String> =
        s.repo_ids.iter().map(|(n, id)| (*id, n.clone())).collect();
    let Some(sc) = s.scopes.get_mut(&scope) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    match (method.clone(), rest) {
        (Method::GET, ["public-key"]) => ok(
            StatusCode::OK,
            json!({"key_id": sc.key_id, "key": sc.public_key}),
        ),
        (Method::GET, [name]) => match sc.secrets.get(*name) {
            Some(v) if scope.organization => ok(
                StatusCode::OK,
                json!({"name": name, "created_at": time(v.created_at), "updated_at": time(v.updated_at),
                       "visibility": v.visibility.clone().unwrap_or_else(|| "private".into()),
                       "selected_repositories_url": format!("https://api.github.example/{}/{name}/repositories", seg[..seg.len() - 1].join("/"))}),
            ),
            Some(v) => ok(
                StatusCode::OK,
                json!({"name": name, "created_at": time(v.created_at), "updated_at": time(v.updated_at)}),
            ),
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        },
        (Method::GET, []) => {
            let secrets: Vec<Value> = sc
                .secrets
                .iter()
                .map(|(name, v)| json!({"name": name, "created_at": time(v.created_at), "updated_at": time(v.updated_at)}))
                .collect();
            ok(
                StatusCode::OK,
                json!({"total_count": secrets.len(), "secrets": page(&secrets, query)}),
            )
        }
        (Method::GET, [name, "repositories"]) if scope.organization => {
            let Some(v) = sc.secrets.get(*name) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let param = |k: &str| {
                query
                    .split('&')
                    .filter_map(|p| p.split_once('='))
                    .find(|(n, _)| *n == k)
                    .and_then(|(_, v)| v.parse::<usize>().ok())
            };
            let per_page = param("per_page").unwrap_or(30).min(100);
            let page = param("page").unwrap_or(1).max(1);
            let repositories: Vec<Value> = v
                .selected
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|id| json!({"id": id, "full_name": repo_names.get(id).cloned().unwrap_or_default()}))
                .collect();
            ok(
                StatusCode::OK,
                json!({"total_count": v.selected.len(), "repositories": repositories}),
            )
        }
        (Method::PUT, [name]) => {
            if !can_write {
                return error(
                    StatusCode::FORBIDDEN,
                    "Resource not accessible by personal access token",
                );
            }
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return error(StatusCode::BAD_REQUEST, "Problems parsing JSON");
            };
            let (Some(enc), Some(key_id)) = (v["encrypted_value"].as_str(), v["key_id"].as_str())
            else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid request.\n\n\"encrypted_value\", \"key_id\" are required",
                );
            };
            if key_id != sc.key_id {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Bad request - key_id does not match",
                );
            }
            // Organization secrets: GitHub requires the visibility on every write.
            let access = if scope.organization {
                let Some(visibility) = v["visibility"].as_str() else {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid request.\n\n\"visibility\" is required",
                    );
                };
                if !["all", "private", "selected"].contains(&visibility) {
                    return error(StatusCode::UNPROCESSABLE_ENTITY, "visibility is not valid");
                }
                let selected: Vec<u64> = v["selected_repository_ids"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default();
                Some((visibility.to_owned(), selected))
            } else {
                None
            };
            let Some(plain) = STANDARD
                .decode(enc)
                .ok()
                .and_then(|b| sc.secret_key.unseal(&b).ok())
                .and_then(|p| String::from_utf8(p).ok())
            else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Bad request - could not decrypt the secret",
                );
            };
            let now = (Utc::now() + skew).trunc_subsecs(0);
            let status = match sc.secrets.get_mut(*name) {
                Some(existing) => {
                    existing.value = plain.clone();
                    existing.updated_at = now;
                    if let Some((visibility, selected)) = access {
                        existing.visibility = Some(visibility);
                        existing.selected = selected;
                    }
                    StatusCode::NO_CONTENT
                }
                None => {
                    let (visibility, selected) = access.unzip();
                    sc.secrets.insert(
                        (*name).to_owned(),
                        StoredSecret {
                            value: plain.clone(),
                            created_at: now,
                            updated_at: now,
                            visibility,
                            selected: selected.unwrap_or_default(),
                        },
                    );
                    StatusCode::CREATED
                }
            };
            s.written.push(plain);
            if status == StatusCode::CREATED {
                ok(status, json!({}))
            } else {
                status.into_response()
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// What a job of `spec` in `repository` would read as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
fn secrets_seen(s: &State, repository: &str, spec: &WorkflowSpec) -> Option<(String, String)> {
    let get = |scope: &ScopeId, name: &str| {
        s.scopes
            .get(scope)
            .and_then(|sc| sc.secrets.get(name))
            .map(|v| v.value.clone())
    };
    let from_env = spec
        .environment
        .as_ref()
        .map(|e| environment(repository, e));
    // An organization secret reaches the repository when it is `all`/`private` (every
    // repository here is private) or selects it.
    let owner = repository.split('/').next().unwrap_or_default();
    let repo_id = s.repo_ids.get(repository).copied();
    let from_org = |name: &str| {
        let secret = s.scopes.get(&org(owner))?.secrets.get(name)?;
        let reaches = match secret.visibility.as_deref() {
            Some("selected") => repo_id.is_some_and(|id| secret.selected.contains(&id)),
            _ => true,
        };
        reaches.then(|| secret.value.clone())
    };
    let pick = |name: &str| {
        from_env
            .as_ref()
            .and_then(|e| get(e, name))
            .or_else(|| get(&repo(repository), name))
            .or_else(|| from_org(name))
    };
    Some((pick("AWS_ACCESS_KEY_ID")?, pick("AWS_SECRET_ACCESS_KEY")?))
}

/// What a GitHub App's JWT says.
#[derive(serde::Deserialize)]
struct AppClaims {
    iss: u64,
    iat: i64,
    exp: i64,
}

/// Requests authenticated with an App's JWT: finding an installation, minting its token. The
/// JWT must be signed (RS256) by a registered App's key, issued by it, and live at most ten
/// minutes (a minute of clock slack).
fn app_route(s: &mut State, method: &Method, seg: &[&str], jwt: &str) -> Response {
    let unauthorized = |why: &str| error(StatusCode::UNAUTHORIZED, why);
    let Ok(header) = jsonwebtoken::decode_header(jwt) else {
        return unauthorized("A JSON web token could not be decoded");
    };
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return unauthorized("'Expiration time' claim ('exp') must be a numeric value");
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp"]);
    validation.leeway = 0;
    let mut verified = None;
    for (id, pem) in &s.apps {
        let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()) else {
            continue;
        };
        if let Ok(data) = jsonwebtoken::decode::<AppClaims>(jwt, &key, &validation)
            && data.claims.iss == *id
        {
            verified = Some(data.claims);
        }
    }
    let Some(claims) = verified else {
        return unauthorized("A JSON web token could not be decoded");
    };
    let now = Utc::now().timestamp();
    if claims.iat > now + 60 || claims.exp - claims.iat > 660 || claims.exp > now + 600 {
        return unauthorized("'Expiration time' claim ('exp') is too far in the future");
    }
    match (method.clone(), seg) {
        (Method::GET, [kind @ ("orgs" | "users"), owner, "installation"]) => {
            // An organization is found under /orgs, a user under /users.
            let is_org = s.scopes.contains_key(&org(owner));
            if is_org != (*kind == "orgs") {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            match s
                .installations
                .get(&(claims.iss, owner.to_ascii_lowercase()))
            {
                Some(id) => ok(StatusCode::OK, json!({"id": id, "app_id": claims.iss})),
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        (Method::POST, ["app", "installations", id, "access_tokens"]) => {
            let Some(((_, owner), _)) = s
                .installations
                .iter()
                .find(|((app, _), i)| *app == claims.iss && i.to_string() == *id)
            else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let owner = owner.clone();
            let token = format!(
                "ghs_fakeInstallationToken{:016}",
                s.installation_tokens.len() + 1
            );
            s.installation_tokens.insert(token.clone(), owner);
            s.written.push(token.clone());
            ok(
                StatusCode::CREATED,
                json!({"token": token, "expires_at": time(Utc::now() + chrono::Duration::hours(1))}),
            )
        }
        // Anything else with a JWT: GitHub wants an installation token there.
        _ => error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration: use an installation token",
        ),
    }
}

/// `?per_page=&page=` of a list endpoint (GitHub's defaults: 30, page 1).
fn page<T: Clone>(items: &[T], query: &str) -> Vec<T> {
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

/// What `discover` lists: organizations, an owner's repositories, a repository's environments.
/// `installation`: the owner an App installation's token reaches (else a user's token).
fn inventory_route(
    s: &State,
    method: &Method,
    seg: &[&str],
    query: &str,
    installation: Option<&str>,
) -> Option<Response> {
    if method != Method::GET {
        return None;
    }
    let integration_refused = || {
        error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration",
        )
    };
    let repos_of = |owner: &str| -> Vec<Value> {
        s.repo_ids
            .iter()
            .filter(|(name, _)| name.split('/').next() == Some(owner))
            .map(|(name, id)| json!({"id": id, "full_name": name, "name": name.split('/').nth(1)}))
            .collect()
    };
    Some(match seg {
        ["orgs", o] => {
            if !s.scopes.contains_key(&org(o)) {
                return Some(error(StatusCode::NOT_FOUND, "Not Found"));
            }
            ok(StatusCode::OK, json!({"login": o}))
        }
        ["orgs", o, "repos"] => {
            if !s.scopes.contains_key(&org(o)) {
                return Some(error(StatusCode::NOT_FOUND, "Not Found"));
            }
            ok(StatusCode::OK, Value::Array(page(&repos_of(o), query)))
        }
        ["users", u, "repos"] => {
            let public: Vec<Value> = repos_of(u)
                .into_iter()
                .filter(|r| {
                    !s.private_repos
                        .contains(r["full_name"].as_str().unwrap_or(""))
                })
                .collect();
            ok(StatusCode::OK, Value::Array(page(&public, query)))
        }
        ["user"] => match installation {
            Some(_) => integration_refused(),
            None => ok(StatusCode::OK, json!({"login": TOKEN_LOGIN})),
        },
        ["user", "repos"] => match installation {
            Some(_) => integration_refused(),
            None => ok(
                StatusCode::OK,
                Value::Array(page(&repos_of(TOKEN_LOGIN), query)),
            ),
        },
        ["installation", "repositories"] => match installation {
            Some(owner) => {
                let repos = repos_of(owner);
                ok(
                    StatusCode::OK,
                    json!({"total_count": repos.len(), "repositories": page(&repos, query)}),
                )
            }
            None => error(
                StatusCode::FORBIDDEN,
                "You must authenticate with an installation access token",
            ),
        },
        ["repos", o, r, "environments"] => {
            let name = format!("{o}/{r}");
            if !s.scopes.contains_key(&repo(&name)) {
                return Some(error(StatusCode::NOT_FOUND, "Not Found"));
            }
            let envs: Vec<Value> = s
                .scopes
                .keys()
                .filter(|k| k.repository == name && !k.organization)
                .filter_map(|k| k.environment.clone())
                .map(|e| json!({"name": e}))
                .collect();
            ok(
                StatusCode::OK,
                json!({"total_count": envs.len(), "environments": page(&envs, query)}),
            )
        }
        _ => return None,
    })
}

fn workflow_route(
    s: &mut State,
    method: &Method,
    seg: &[&str],
    headers: &HeaderMap,
    body: &Bytes,
    can_write: bool,
) -> Option<Response> {
    let response = match (method.clone(), seg) {
        (Method::GET, ["repos", o, r]) => {
            let name = format!("{o}/{r}");
            if !s.scopes.contains_key(&repo(&name)) {
                return Some(error(StatusCode::NOT_FOUND, "Not Found"));
            }
            let id = s.repo_ids.get(&name).copied().unwrap_or_default();
            ok(
                StatusCode::OK,
                json!({"id": id, "full_name": name, "default_branch": "main"}),
            )
        }
        (Method::POST, ["repos", o, r, "actions", "workflows", wf, "dispatches"]) => {
            let name = format!("{o}/{r}");
            let Some(spec) = s.workflows.get(&(name.clone(), (*wf).to_owned())).cloned() else {
                return Some(error(StatusCode::NOT_FOUND, "Not Found"));
            };
            if !can_write {
                return Some(error(
                    StatusCode::FORBIDDEN,
                    "Resource not accessible by personal access token",
                ));
            }
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return Some(error(StatusCode::BAD_REQUEST, "Problems parsing JSON"));
            };
            let Some(git_ref) = v["ref"].as_str() else {
                return Some(error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid request.\n\n\"ref\" wasn't supplied.",
                ));
            };
            let details = v.get("return_run_details").is_some();
            if (spec.mode == RunMode::OldGhes || s.prefix.is_some()) && details {
                return Some(error(
                    StatusCode::BAD_REQUEST,
                    "Invalid request.\n\n\"return_run_details\" is not a permitted key.",
                ));
            }
            if v["inputs"]
                .as_object()
                .is_some_and(|m| m.values().any(|x| !x.is_string()))
            {
                return Some(error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "inputs must be strings",
                ));
            }
            if spec.mode == RunMode::NeverAppear {
                return Some(StatusCode::NO_CONTENT.into_response());
            }
            let id = 1_000 + s.runs.len() as u64;
            let rotation_id = v["inputs"]["rotation-id"].as_str().unwrap_or_default();
            let key = secrets_seen(s, &name, &spec);
            s.pending.push(Eval {
                run_id: id,
                key,
                expected: v["inputs"]["expected-access-key-id"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
            });
            let run = FakeRun {
                id,
                repository: name.clone(),
                workflow: (*wf).to_owned(),
                display_title: format!("verify AWS credentials {rotation_id}"),
                inputs: v["inputs"].clone(),
                git_ref: git_ref.into(),
                polls: 0,
                mode: spec.mode,
                conclusion: None,
                fixed_status: None,
                timed: s.run_time.map(|t| (std::time::Instant::now(), t)),
            };
            let details_body = json!({
                "workflow_run_id": id,
                "run_url": run.json()["url"],
                "html_url": run.json()["html_url"],
            });
            s.runs.push(run);
            if spec.mode == RunMode::LostAnswer && !s.lost_answer_used {
                s.lost_answer_used = true;
                return Some(error(StatusCode::BAD_GATEWAY, "Server Error"));
            }
            if details && spec.mode != RunMode::NoRunDetails {
                ok(StatusCode::OK, details_body)
            } else {
                StatusCode::NO_CONTENT.into_response()
            }
        }
        (Method::GET, ["repos", o, r, "actions", "workflows", wf, "runs"]) => {
            let name = format!("{o}/{r}");
            if !s.workflows.contains_key(&(name.clone(), (*wf).to_owned())) {
                return Some(error(StatusCode::NOT_FOUND, "Not Found"));
            }
            let runs: Vec<Value> = s
                .runs
                .iter()
                .rev()
                .filter(|r| r.repository == name && r.workflow == *wf)
                .map(FakeRun::json)
                .collect();
            ok(
                StatusCode::OK,
                json!({"total_count": runs.len(), "workflow_runs": runs}),
            )
        }
        (Method::GET, ["repos", o, r, "actions", "runs", id]) => {
            let name = format!("{o}/{r}");
            let Some(run) = s
                .runs
                .iter_mut()
                .find(|x| x.repository == name && x.id.to_string() == *id)
            else {
                return Some(error(StatusCode::NOT_FOUND, "Not Found"));
            };
            run.polls += 1;
            let (status, conclusion) = run.status();
            let etag = format!(
                "W/\"{}-{status}-{}\"",
                run.id,
                conclusion.unwrap_or_default()
            );
            let fresh = headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == etag);
            let mut r = if fresh {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                ok(StatusCode::OK, run.json())
            };
            r.headers_mut().insert("etag", etag.parse().unwrap());
            r
        }
        (
            Method::GET,
            [
                "repos",
                _,
                _,
                "actions",
                "runs",
                id,
                "attempts",
                attempt,
                "jobs",
            ],
        ) => {
            let key = (id.parse().unwrap_or(0), attempt.parse().unwrap_or(0));
            let Some(jobs) = s.jobs.get(&key) else {
                return Some(error(StatusCode::NOT_FOUND, "Not Found"));
            };
            let jobs: Vec<Value> = jobs
                .iter()
                .map(|(status, runner)| json!({"status": status, "runner_name": runner}))
                .collect();
            ok(
                StatusCode::OK,
                json!({"total_count": jobs.len(), "jobs": jobs}),
            )
        }
        _ => return None,
    };
    Some(response)
}
