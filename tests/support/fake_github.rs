//! A stateful fake of the GitHub REST endpoints aws-key-rotator uses.
//!
//! Shapes follow GitHub's REST description (API 2022-11-28). Each secret scope (a repository,
//! each environment) has its own Curve25519 key pair; a PUT must carry that scope's `key_id`
//! and a sealed box the fake can open, or it is refused with 422 as GitHub does. The plaintext
//! and `updated_at` are kept for assertions. Faults are injected by rule.

use std::collections::{BTreeMap, HashMap};
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

/// Identifies a scope the way the manifest does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId {
    pub repository: String,
    pub environment: Option<String>,
}

pub fn repo(r: &str) -> ScopeId {
    ScopeId {
        repository: r.into(),
        environment: None,
    }
}
pub fn environment(r: &str, e: &str) -> ScopeId {
    ScopeId {
        repository: r.into(),
        environment: Some(e.into()),
    }
}

#[derive(Clone, Debug)]
pub struct StoredSecret {
    pub value: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

struct ScopeState {
    secret_key: crypto_box::SecretKey,
    key_id: String,
    secrets: BTreeMap<String, StoredSecret>,
}

impl ScopeState {
    fn new(n: usize) -> Self {
        Self {
            secret_key: crypto_box::SecretKey::generate(&mut OsRng),
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
            seen: 0,
            fired: 0,
        }
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

#[derive(Default)]
struct State {
    scopes: HashMap<ScopeId, ScopeState>,
    faults: Vec<Fault>,
    /// "METHOD path status" for every request, in order.
    log: Vec<String>,
    /// Every plaintext ever written, for the leak scan.
    written: Vec<String>,
}

#[derive(Clone)]
pub struct FakeGitHub {
    state: Arc<Mutex<State>>,
    pub url: String,
}

impl FakeGitHub {
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let app_state = state.clone();
        let listener = runtime()
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the fake GitHub");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = app_state.clone();
                async move { handle(&state, method, uri, headers, body) }
            },
        );
        runtime().spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("serve the fake GitHub");
        });
        Self {
            state,
            url: format!("http://{addr}"),
        }
    }

    pub fn add_repo(&self, name: &str) {
        let mut s = self.state.lock().unwrap();
        let n = s.scopes.len();
        s.scopes
            .entry(repo(name))
            .or_insert_with(|| ScopeState::new(n));
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

    pub fn add_fault(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push(fault);
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

fn handle(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segments: Vec<String> = uri
        .path()
        .trim_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let path = format!("/{}", segments.join("/"));
    let response = respond(state, &method, &segments, &path, &headers, &body);
    state
        .lock()
        .unwrap()
        .log
        .push(format!("{method} {path} {}", response.status().as_u16()));
    response
}

fn respond(
    state: &Mutex<State>,
    method: &Method,
    segments: &[String],
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
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
                return r;
            }
        }
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .map(str::to_owned);
    let can_write = match token.as_deref() {
        None => return error(StatusCode::UNAUTHORIZED, "Requires authentication"),
        Some(TOKEN) => true,
        Some(READ_ONLY_TOKEN) => false,
        Some(_) => return error(StatusCode::UNAUTHORIZED, "Bad credentials"),
    };
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (scope, rest) = match seg.as_slice() {
        ["repos", o, r, "actions", "secrets", rest @ ..] => (repo(&format!("{o}/{r}")), rest),
        ["repos", o, r, "environments", e, "secrets", rest @ ..] => {
            (environment(&format!("{o}/{r}"), e), rest)
        }
        _ => return error(StatusCode::NOT_FOUND, "Not Found"),
    };
    let Some(sc) = s.scopes.get_mut(&scope) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    match (method.clone(), rest) {
        (Method::GET, ["public-key"]) => ok(
            StatusCode::OK,
            json!({"key_id": sc.key_id, "key": STANDARD.encode(sc.secret_key.public_key().as_bytes())}),
        ),
        (Method::GET, [name]) => match sc.secrets.get(*name) {
            Some(v) => ok(
                StatusCode::OK,
                json!({"name": name, "created_at": time(v.created_at), "updated_at": time(v.updated_at)}),
            ),
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        },
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
            let now = Utc::now().trunc_subsecs(0);
            let status = match sc.secrets.get_mut(*name) {
                Some(existing) => {
                    existing.value = plain.clone();
                    existing.updated_at = now;
                    StatusCode::NO_CONTENT
                }
                None => {
                    sc.secrets.insert(
                        (*name).to_owned(),
                        StoredSecret {
                            value: plain.clone(),
                            created_at: now,
                            updated_at: now,
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
