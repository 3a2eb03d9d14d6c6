//! What every request meets before its route, as one axum middleware: the log, GitHub's
//! secondary limits, the injected faults (a fault that "lands" lets the request take effect
//! first), and authentication (a token, an App's JWT, an installation token and the account it
//! reaches). After the route: a stalled answer never comes, and a dispatched run "starts".

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as Extract};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::{READ_ONLY_TOKEN, RunMode, Shared, TOKEN, decode, error};

/// Who sent a request that passed the gate.
#[derive(Clone, Debug)]
pub(super) enum Caller {
    /// A token: whether it may write, and the account an installation token reaches.
    Token {
        can_write: bool,
        installation: Option<String>,
    },
    /// A GitHub App's JWT (the App routes check it).
    App(String),
}

impl Caller {
    pub(super) fn can_write(&self) -> bool {
        matches!(
            self,
            Caller::Token {
                can_write: true,
                ..
            }
        )
    }
    pub(super) fn installation(&self) -> Option<&str> {
        match self {
            Caller::Token { installation, .. } => installation.as_deref(),
            Caller::App(_) => None,
        }
    }
}

/// Marks a fault's answer as one never to be sent.
const STALL_HEADER: &str = "x-fake-stall";

pub(super) async fn gate(Extract(state): Extract<Shared>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let segments: Vec<String> = parts
        .uri
        .path()
        .trim_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let path = format!("/{}", segments.join("/"));
    let method = parts.method.clone();
    let response = admit(&state, parts, body, &segments, &path, next).await;
    if response.headers().contains_key(STALL_HEADER) {
        // A call that never answers: the client's own timeout has to end it.
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    start_dispatched_runs(&state).await;
    let mut s = state.lock().unwrap();
    s.log
        .push(format!("{method} {path} {}", response.status().as_u16()));
    s.answered.push(std::time::Instant::now());
    response
}

/// What the limits and the faults say of a request, before it reaches its route.
enum Admission {
    Pass,
    /// Answered at once (a secondary limit).
    Refused(Response),
    /// A fault fires: its answer, and whether the request takes effect first.
    Fault(Response, bool),
}

/// The limits and the faults: they stand for GitHub being unwell, whatever the request.
fn admission(state: &Shared, parts: &axum::http::request::Parts, path: &str) -> Admission {
    let mut s = state.lock().unwrap();
    let method = &parts.method;
    s.started.push(format!("{method} {path}"));
    let creates = matches!(
        *method,
        axum::http::Method::POST
            | axum::http::Method::PUT
            | axum::http::Method::PATCH
            | axum::http::Method::DELETE
    );
    let token = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if creates
        && let (Some(limits), Some(token)) = (s.limits.as_mut(), token)
        && let Some(refused) = limits.admit(&token)
    {
        return Admission::Refused(refused);
    }
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
                if f.stalls {
                    r.headers_mut().insert(STALL_HEADER, "1".parse().unwrap());
                }
                return Admission::Fault(r, f.lands);
            }
        }
    }
    Admission::Pass
}

async fn admit(
    state: &Shared,
    parts: axum::http::request::Parts,
    body: Bytes,
    segments: &[String],
    path: &str,
    next: Next,
) -> Response {
    match admission(state, &parts, path) {
        Admission::Pass => authenticate(state, parts, body, segments, next).await,
        Admission::Refused(r) => r,
        Admission::Fault(r, lands) => {
            if lands {
                let _landed = authenticate(state, parts, body, segments, next).await;
            }
            r
        }
    }
}

/// The caller, from the `authorization` header; the route then answers.
async fn authenticate(
    state: &Shared,
    parts: axum::http::request::Parts,
    body: Bytes,
    segments: &[String],
    next: Next,
) -> Response {
    let token = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .map(str::to_owned);
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let caller = match token.as_deref() {
        None => return error(StatusCode::UNAUTHORIZED, "Requires authentication"),
        Some(TOKEN) => Caller::Token {
            can_write: true,
            installation: None,
        },
        Some(READ_ONLY_TOKEN) => Caller::Token {
            can_write: false,
            installation: None,
        },
        // A JWT: only the App's own endpoints take it.
        Some(jwt) if jwt.split('.').count() == 3 => {
            let app_route = matches!(
                seg.as_slice(),
                ["orgs" | "users", _, "installation"]
                    | ["app", "installations", _, "access_tokens"]
            );
            if !app_route {
                return error(
                    StatusCode::FORBIDDEN,
                    "Resource not accessible by integration: use an installation token",
                );
            }
            Caller::App(jwt.to_owned())
        }
        Some(t) => match installation_of(state, t) {
            // An installation token reaches its own account only.
            Some(owner) => {
                let about = match seg.as_slice() {
                    ["repos" | "orgs" | "users", o, ..] => Some(o.to_ascii_lowercase()),
                    _ => None,
                };
                if about.is_some_and(|o| o != owner) {
                    return error(StatusCode::NOT_FOUND, "Not Found");
                }
                Caller::Token {
                    can_write: true,
                    installation: Some(owner),
                }
            }
            None => return error(StatusCode::UNAUTHORIZED, "Bad credentials"),
        },
    };
    let mut req = Request::from_parts(parts, Body::from(body));
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// A dispatched job "starts" once its dispatch is answered: it reads its secrets and checks
/// them with STS.
async fn start_dispatched_runs(state: &Shared) {
    let (evals, moto) = {
        let mut s = state.lock().unwrap();
        (std::mem::take(&mut s.pending), s.moto_url.clone())
    };
    for eval in evals {
        let works = match (&eval.key, &moto) {
            (Some((id, secret)), Some(url)) => {
                let sts = super::super::sts_client(url, id, secret);
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
}

/// The account an installation token reaches, if it is one.
fn installation_of(state: &Shared, token: &str) -> Option<String> {
    state
        .lock()
        .unwrap()
        .installation_tokens
        .get(token)
        .cloned()
}
