//! Code search (REST 2022-11-28, `GET /search/code`): the repositories' files (the contents
//! the test added) searched for quoted terms joined by `OR`, within `user:OWNER` or
//! `org:OWNER`; paginated by `per_page`/`page` with a `Link` header; code search's own limit of
//! 10 requests a minute answered as GitHub does (403, `x-ratelimit-remaining: 0`); an owner
//! nobody can search is 422; a test may deny the token code search (403).

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{Shared, decode, error, ok};

/// GitHub's code search limit for a token.
const PER_MINUTE: usize = 10;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route(
        "/search/code",
        get(
            |State(s): State<Shared>, RawQuery(q): RawQuery| async move {
                search(&s, &q.unwrap_or_default())
            },
        ),
    )
}

fn param(query: &str, k: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(n, _)| *n == k)
        .map(|(_, v)| decode(&v.replace('+', " ")))
}

/// The quoted terms and the owner of `q`.
fn parse(q: &str) -> (Vec<String>, Option<String>) {
    let mut terms = Vec::new();
    let mut owner = None;
    let mut rest = q.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            terms.push(quoted[..end].to_owned());
            rest = quoted.get(end + 1..).unwrap_or("").trim_start();
            continue;
        }
        let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        if let Some(o) = word
            .strip_prefix("user:")
            .or_else(|| word.strip_prefix("org:"))
        {
            owner = Some(o.to_owned());
        } else if word != "OR" {
            terms.push(word.to_owned());
        }
        rest = tail.trim_start();
    }
    (terms, owner)
}

fn search(s: &Shared, query: &str) -> Response {
    let mut st = s.lock().unwrap();
    if st.code_search_denied {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        );
    }
    let now = Instant::now();
    st.code_searches
        .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
    if st.code_searches.len() >= PER_MINUTE {
        let reset = chrono::Utc::now().timestamp() + 60;
        return (
            StatusCode::FORBIDDEN,
            [
                ("content-type", "application/json".to_owned()),
                ("x-ratelimit-limit", PER_MINUTE.to_string()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", reset.to_string()),
                ("x-ratelimit-resource", "code_search".to_owned()),
            ],
            json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}).to_string(),
        )
            .into_response();
    }
    st.code_searches.push(now);
    st.code_search_log.push(now);
    let q = param(query, "q").unwrap_or_default();
    let (terms, owner) = parse(&q);
    let Some(owner) = owner else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    };
    let of_owner = |r: &str| {
        r.split('/')
            .next()
            .is_some_and(|o| o.eq_ignore_ascii_case(&owner))
    };
    if !st.repo_ids.keys().any(|r| of_owner(r)) {
        return ok(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Validation Failed", "errors": [{"message": "The listed users and repositories cannot be searched either because the resources do not exist or you do not have permission to view them.", "resource": "Search", "field": "q", "code": "invalid"}], "documentation_url": "https://docs.github.com/v3/search/"}),
        );
    }
    let mut items: Vec<Value> = Vec::new();
    for (repository, files) in st.contents.iter().filter(|(r, _)| of_owner(r)) {
        for (path, text) in files {
            let lower = text.to_lowercase();
            if !terms.iter().any(|t| lower.contains(&t.to_lowercase())) {
                continue;
            }
            let name = path.rsplit('/').next().unwrap_or(path);
            items.push(json!({
                "name": name,
                "path": path,
                "sha": "0000000000000000000000000000000000000000",
                "url": format!("https://api.github.example/repos/{repository}/contents/{path}"),
                "git_url": format!("https://api.github.example/repos/{repository}/git/blobs/0"),
                "html_url": format!("https://github.example/{repository}/blob/main/{path}"),
                "repository": { "full_name": repository, "name": repository.split('/').nth(1) },
                "score": 1.0,
            }));
        }
    }
    let per_page: usize = param(query, "per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page: usize = param(query, "page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let shown: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("x-ratelimit-limit", PER_MINUTE.to_string()),
        (
            "x-ratelimit-remaining",
            (PER_MINUTE - st.code_searches.len()).to_string(),
        ),
        ("x-ratelimit-resource", "code_search".to_owned()),
    ];
    if page * per_page < total {
        headers.push((
            "link",
            format!("<https://api.github.example/search/code?q=x&per_page={per_page}&page={}>; rel=\"next\"", page + 1),
        ));
    }
    let body = json!({"total_count": total, "incomplete_results": false, "items": shown});
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    for (k, v) in headers {
        response
            .headers_mut()
            .insert(k, axum::http::HeaderValue::from_str(&v).unwrap());
    }
    response
}
