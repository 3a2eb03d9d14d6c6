//! A repository's issues: listing (open or all, by labels; pull requests among them, as
//! GitHub lists them), creating (labels made as needed), comments, and closing. Writes need a
//! token that may write; a repository the fake does not know is 404.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, patch};
use serde_json::{Value, json};

use super::gate::Caller;
use super::{FakeIssue, Shared, error, not_found, ok, page, repo, writable};

type Params = Path<HashMap<String, String>>;

fn full(p: &HashMap<String, String>) -> String {
    format!("{}/{}", p["o"], p["r"])
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/repos/{o}/{r}/issues",
            get(
                |State(s): State<Shared>, Path(p): Params, RawQuery(q): RawQuery| async move {
                    list(&s, &full(&p), &q.unwrap_or_default())
                },
            )
            .post(
                |State(s): State<Shared>,
                 Path(p): Params,
                 Extension(c): Extension<Caller>,
                 body: Bytes| async move { create(&s, &full(&p), &c, &body) },
            ),
        )
        .route(
            "/repos/{o}/{r}/issues/{n}",
            patch(
                |State(s): State<Shared>,
                 Path(p): Params,
                 Extension(c): Extension<Caller>,
                 body: Bytes| async move { update(&s, &full(&p), &p["n"], &c, &body) },
            ),
        )
        .route(
            "/repos/{o}/{r}/issues/{n}/comments",
            get(
                |State(s): State<Shared>, Path(p): Params, RawQuery(q): RawQuery| async move {
                    comments(&s, &full(&p), &p["n"], &q.unwrap_or_default())
                },
            )
            .post(
                |State(s): State<Shared>,
                 Path(p): Params,
                 Extension(c): Extension<Caller>,
                 body: Bytes| async move { comment(&s, &full(&p), &p["n"], &c, &body) },
            ),
        )
}

fn shown(r: &str, i: &FakeIssue) -> Value {
    let mut v = json!({
        "number": i.number,
        "title": i.title,
        "body": i.body,
        "state": i.state,
        "labels": i.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        "comments": i.comments.len(),
        "user": {"login": i.author},
        "html_url": format!("https://github.example/{r}/issues/{}", i.number),
    });
    if i.pull_request {
        v["pull_request"] = json!({"url": "https://api.github.example/pulls/1"});
    }
    v
}

/// Who a caller acts as: the token's user, or an installation token's App bot.
fn login_of(caller: &Caller) -> String {
    match caller.installation() {
        Some(_) => "aws-key-rotator[bot]".to_owned(),
        None => super::TOKEN_LOGIN.to_owned(),
    }
}

fn param<'a>(query: &'a str, k: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(n, _)| *n == k)
        .map(|(_, v)| v)
}

fn list(state: &Shared, r: &str, query: &str) -> Response {
    let s = state.lock().unwrap();
    if !s.scopes.contains_key(&repo(r)) {
        return not_found();
    }
    let want_state = param(query, "state").unwrap_or("open");
    let labels: Vec<String> = param(query, "labels")
        .map(|l| super::decode(l).split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let items: Vec<Value> = s
        .issues
        .get(r)
        .into_iter()
        .flatten()
        .filter(|i| want_state == "all" || i.state == want_state)
        .filter(|i| labels.iter().all(|l| i.labels.contains(l)))
        .map(|i| shown(r, i))
        .collect();
    ok(StatusCode::OK, Value::Array(page(&items, query)))
}

fn create(state: &Shared, r: &str, caller: &Caller, body: &Bytes) -> Response {
    let v = match writable(state, &repo(r), caller, body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let Some(title) = v["title"].as_str().filter(|t| !t.is_empty()) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed: title is required",
        );
    };
    let mut s = state.lock().unwrap();
    s.written_text.push(v.to_string());
    let issues = s.issues.entry(r.to_owned()).or_default();
    let number = issues.len() as u64 + 1;
    let issue = FakeIssue {
        number,
        title: title.to_owned(),
        body: v["body"].as_str().unwrap_or_default().to_owned(),
        state: "open".into(),
        labels: v["labels"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        comments: Vec::new(),
        pull_request: false,
        author: login_of(caller),
        comment_authors: Vec::new(),
    };
    let shown = shown(r, &issue);
    issues.push(issue);
    ok(StatusCode::CREATED, shown)
}

fn find<'a>(s: &'a mut super::State, r: &str, n: &str) -> Option<&'a mut FakeIssue> {
    let n: u64 = n.parse().ok()?;
    s.issues.get_mut(r)?.iter_mut().find(|i| i.number == n)
}

fn update(state: &Shared, r: &str, n: &str, caller: &Caller, body: &Bytes) -> Response {
    let v = match writable(state, &repo(r), caller, body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut s = state.lock().unwrap();
    let Some(issue) = find(&mut s, r, n) else {
        return not_found();
    };
    match v["state"].as_str() {
        Some(st @ ("open" | "closed")) => issue.state = st.to_owned(),
        Some(_) => return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed: state"),
        None => {}
    }
    let shown = shown(r, issue);
    ok(StatusCode::OK, shown)
}

fn comments(state: &Shared, r: &str, n: &str, query: &str) -> Response {
    let mut s = state.lock().unwrap();
    if !s.scopes.contains_key(&repo(r)) {
        return not_found();
    }
    let Some(issue) = find(&mut s, r, n) else {
        return not_found();
    };
    let items: Vec<Value> = issue
        .comments
        .iter()
        .enumerate()
        .map(|(i, b)| json!({"id": i + 1, "body": b, "user": {"login": issue.comment_authors[i]}}))
        .collect();
    ok(StatusCode::OK, Value::Array(page(&items, query)))
}

fn comment(state: &Shared, r: &str, n: &str, caller: &Caller, body: &Bytes) -> Response {
    let v = match writable(state, &repo(r), caller, body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let Some(text) = v["body"].as_str() else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed: body is required",
        );
    };
    let mut s = state.lock().unwrap();
    s.written_text.push(text.to_owned());
    let Some(issue) = find(&mut s, r, n) else {
        return not_found();
    };
    issue.comments.push(text.to_owned());
    issue.comment_authors.push(login_of(caller));
    let id = issue.comments.len();
    ok(StatusCode::CREATED, json!({"id": id, "body": text}))
}
