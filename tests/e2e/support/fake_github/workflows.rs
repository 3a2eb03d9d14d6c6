//! Workflows: a repository's default branch, `workflow_dispatch` (with or without the run's
//! details, as github.com or GitHub Enterprise Server answer), a workflow's runs, one run
//! (with ETags), and a run attempt's jobs.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::gate::Caller;
use super::{
    Eval, FakeRun, RunMode, ScopeId, Shared, State, WorkflowSpec, environment, error, ok, org, repo,
};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/repos/{o}/{r}",
            get(|Extract(s): Extract<Shared>, Path((o, r)): Path<(String, String)>| async move {
                repository(&s.lock().unwrap(), &o, &r)
            }),
        )
        .route(
            "/repos/{o}/{r}/actions/workflows/{wf}/dispatches",
            post(
                |Extract(s): Extract<Shared>,
                 Path((o, r, wf)): Path<(String, String, String)>,
                 Extension(c): Extension<Caller>,
                 body: Bytes| async move {
                    dispatch(&mut s.lock().unwrap(), &o, &r, &wf, c.can_write(), &body)
                },
            ),
        )
        .route(
            "/repos/{o}/{r}/actions/workflows/{wf}/runs",
            get(|Extract(s): Extract<Shared>, Path((o, r, wf)): Path<(String, String, String)>| async move {
                runs(&s.lock().unwrap(), &o, &r, &wf)
            }),
        )
        .route(
            "/repos/{o}/{r}/actions/runs/{id}",
            get(
                |Extract(s): Extract<Shared>,
                 Path((o, r, id)): Path<(String, String, String)>,
                 headers: HeaderMap| async move {
                    run(&mut s.lock().unwrap(), &o, &r, &id, &headers)
                },
            ),
        )
        .route(
            "/repos/{o}/{r}/actions/runs/{id}/attempts/{attempt}/jobs",
            get(
                |Extract(s): Extract<Shared>,
                 Path((_, _, id, attempt)): Path<(String, String, String, String)>| async move {
                    jobs(&s.lock().unwrap(), &id, &attempt)
                },
            ),
        )
}

/// A repository, found as GitHub finds it (names compare case-insensitively), with its name
/// as it was created.
fn repository(s: &State, o: &str, r: &str) -> Response {
    let asked = format!("{o}/{r}");
    let Some(name) = s
        .repo_ids
        .keys()
        .find(|n| n.eq_ignore_ascii_case(&asked))
        .cloned()
        .filter(|n| s.scopes.contains_key(&repo(n)))
    else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let id = s.repo_ids.get(&name).copied().unwrap_or_default();
    ok(
        StatusCode::OK,
        json!({"id": id, "full_name": name, "default_branch": "main"}),
    )
}

fn dispatch(s: &mut State, o: &str, r: &str, wf: &str, can_write: bool, body: &Bytes) -> Response {
    let name = format!("{o}/{r}");
    let Some(spec) = s.workflows.get(&(name.clone(), (*wf).to_owned())).cloned() else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    if !can_write {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let Some(git_ref) = v["ref"].as_str() else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"ref\" wasn't supplied.",
        );
    };
    let details = v.get("return_run_details").is_some();
    if (spec.mode == RunMode::OldGhes || s.prefix.is_some()) && details {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid request.\n\n\"return_run_details\" is not a permitted key.",
        );
    }
    if v["inputs"]
        .as_object()
        .is_some_and(|m| m.values().any(|x| !x.is_string()))
    {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "inputs must be strings");
    }
    if spec.mode == RunMode::NeverAppear {
        return StatusCode::NO_CONTENT.into_response();
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
        return error(StatusCode::BAD_GATEWAY, "Server Error");
    }
    if details && spec.mode != RunMode::NoRunDetails {
        ok(StatusCode::OK, details_body)
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

fn runs(s: &State, o: &str, r: &str, wf: &str) -> Response {
    let name = format!("{o}/{r}");
    if !s.workflows.contains_key(&(name.clone(), (*wf).to_owned())) {
        return error(StatusCode::NOT_FOUND, "Not Found");
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

fn run(s: &mut State, o: &str, r: &str, id: &str, headers: &HeaderMap) -> Response {
    let name = format!("{o}/{r}");
    let Some(run) = s
        .runs
        .iter_mut()
        .find(|x| x.repository == name && x.id.to_string() == *id)
    else {
        return error(StatusCode::NOT_FOUND, "Not Found");
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

fn jobs(s: &State, id: &str, attempt: &str) -> Response {
    let key = (id.parse().unwrap_or(0), attempt.parse().unwrap_or(0));
    let Some(jobs) = s.jobs.get(&key) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
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
