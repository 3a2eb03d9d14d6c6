//! Secret scanning alerts (REST 2022-11-28): an organization's and a repository's open or
//! resolved alerts, filtered by `state` and `secret_type` (a comma-separated list), paginated;
//! a PATCH resolves one with a resolution and a comment. A token the test marks as not allowed
//! to read them gets 403, as GitHub answers a token without the permission.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, patch};
use serde_json::{Value, json};

use super::gate::Caller;
use super::{Shared, error, not_found, ok, page, repo};

type Params = Path<HashMap<String, String>>;

/// One alert, as GitHub keeps it.
#[derive(Clone, Debug)]
pub struct FakeAlert {
    pub repository: String,
    pub number: u64,
    pub secret_type: String,
    pub secret: String,
    /// `open` or `resolved`.
    pub state: String,
    pub resolution: Option<String>,
    pub resolution_comment: Option<String>,
    /// `active`, `inactive` or `unknown`: what GitHub's validity check found.
    pub validity: String,
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/orgs/{o}/secret-scanning/alerts",
            get(
                |State(s): State<Shared>, Path(p): Params, RawQuery(q): RawQuery| async move {
                    let st = s.lock().unwrap();
                    let o = &p["o"];
                    if !st
                        .scopes
                        .keys()
                        .any(|k| k.organization && k.repository.eq_ignore_ascii_case(o))
                    {
                        return not_found();
                    }
                    drop(st);
                    list(&s, &q.unwrap_or_default(), |a| {
                        a.repository
                            .split('/')
                            .next()
                            .is_some_and(|x| x.eq_ignore_ascii_case(o))
                    })
                },
            ),
        )
        .route(
            "/repos/{o}/{r}/secret-scanning/alerts",
            get(
                |State(s): State<Shared>, Path(p): Params, RawQuery(q): RawQuery| async move {
                    let full = format!("{}/{}", p["o"], p["r"]);
                    if !s.lock().unwrap().scopes.contains_key(&repo(&full)) {
                        return not_found();
                    }
                    list(&s, &q.unwrap_or_default(), |a| {
                        a.repository.eq_ignore_ascii_case(&full)
                    })
                },
            ),
        )
        .route(
            "/repos/{o}/{r}/secret-scanning/alerts/{n}",
            patch(
                |State(s): State<Shared>,
                 Path(p): Params,
                 Extension(c): Extension<Caller>,
                 body: Bytes| async move {
                    resolve(&s, &format!("{}/{}", p["o"], p["r"]), &p["n"], &c, &body)
                },
            ),
        )
}

fn shown(a: &FakeAlert) -> Value {
    json!({
        "number": a.number,
        "created_at": "2026-12-01T10:00:00Z",
        "url": format!("https://api.github.example/repos/{}/secret-scanning/alerts/{}", a.repository, a.number),
        "html_url": format!("https://github.example/{}/security/secret-scanning/{}", a.repository, a.number),
        "state": a.state,
        "resolution": a.resolution,
        "resolution_comment": a.resolution_comment,
        "secret_type": a.secret_type,
        "secret_type_display_name": "Amazon AWS Access Key ID",
        "secret": a.secret,
        "validity": a.validity,
        "repository": {"full_name": a.repository},
    })
}

fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn list(s: &Shared, query: &str, within: impl Fn(&FakeAlert) -> bool) -> Response {
    let st = s.lock().unwrap();
    if st.alerts_denied {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        );
    }
    let state = param(query, "state");
    let types: Option<Vec<&str>> =
        param(query, "secret_type").map(|t| t.split("%2C").flat_map(|x| x.split(',')).collect());
    let found: Vec<Value> = st
        .alerts
        .iter()
        .filter(|a| within(a))
        .filter(|a| state.is_none_or(|s| a.state == s))
        .filter(|a| {
            types
                .as_ref()
                .is_none_or(|t| t.contains(&a.secret_type.as_str()))
        })
        .map(shown)
        .collect();
    ok(StatusCode::OK, Value::Array(page(&found, query)))
}

fn resolve(s: &Shared, full: &str, number: &str, caller: &Caller, body: &[u8]) -> Response {
    let mut st = s.lock().unwrap();
    if st.alerts_denied || !caller.can_write() {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let Some(alert) = st
        .alerts
        .iter_mut()
        .find(|a| a.repository.eq_ignore_ascii_case(full) && number.parse() == Ok(a.number))
    else {
        return not_found();
    };
    let state = body["state"].as_str().unwrap_or_default();
    let resolution = body["resolution"].as_str();
    if state == "resolved" {
        const RESOLUTIONS: [&str; 4] = ["false_positive", "wont_fix", "revoked", "used_in_tests"];
        if !resolution.is_some_and(|r| RESOLUTIONS.contains(&r)) {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "resolution is required when state is resolved",
            );
        }
    } else if state != "open" {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "state must be open or resolved",
        );
    }
    alert.state = state.to_owned();
    alert.resolution = resolution.map(str::to_owned);
    alert.resolution_comment = body["resolution_comment"].as_str().map(str::to_owned);
    let shown = shown(alert);
    if let Some(c) = &alert.resolution_comment {
        let c = c.clone();
        st.written_text.push(c);
    }
    ok(StatusCode::OK, shown)
}
