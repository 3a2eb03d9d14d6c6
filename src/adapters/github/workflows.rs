//! Workflow dispatch and run polling (CONTRACT §8).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{GitHub, encode_segment, repo_path, unexpected};
use crate::ports::{Dispatched, GhError, RunInfo, Workflows};

#[derive(Deserialize)]
struct RepoBody {
    default_branch: String,
}

#[derive(Deserialize)]
struct DispatchBody {
    workflow_run_id: u64,
    #[serde(default)]
    html_url: String,
}

#[derive(Deserialize, Clone)]
struct RunBody {
    id: u64,
    #[serde(default)]
    html_url: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    display_title: String,
}

impl From<RunBody> for RunInfo {
    fn from(r: RunBody) -> Self {
        RunInfo {
            id: r.id,
            html_url: r.html_url,
            status: r.status.unwrap_or_default(),
            conclusion: r.conclusion,
            display_title: r.display_title,
        }
    }
}

#[derive(Deserialize)]
struct AttemptBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    run_attempt: Option<u64>,
}

#[derive(Deserialize)]
struct JobsBody {
    jobs: Vec<JobBody>,
}

#[derive(Deserialize)]
struct JobBody {
    status: String,
    #[serde(default)]
    runner_name: Option<String>,
}

#[derive(Deserialize)]
struct RunsBody {
    workflow_runs: Vec<RunBody>,
}

/// The ETag and body of the last answer for each run, for `If-None-Match`.
pub(crate) type RunCache = tokio::sync::Mutex<HashMap<u64, (String, RunInfo)>>;

impl GitHub {
    /// One `POST …/dispatches`, with `return_run_details` or without.
    async fn dispatch_once(
        &self,
        repository: &str,
        workflow: &str,
        git_ref: &str,
        inputs: &[(&str, &str)],
        run_details: bool,
    ) -> Result<Dispatched, GhError> {
        let what = format!("dispatching workflow {workflow} in {repository}");
        let path = format!(
            "/repos/{}/actions/workflows/{}/dispatches",
            repo_path(repository),
            encode_segment(workflow)
        );
        let inputs: serde_json::Map<String, serde_json::Value> = inputs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
            .collect();
        let mut body = serde_json::json!({ "ref": git_ref, "inputs": inputs });
        if run_details {
            body["return_run_details"] = serde_json::Value::Bool(true);
        }
        let reply = self.send_once(&path, &body, &what).await?;
        if reply.status != http::StatusCode::OK {
            return Ok(Dispatched::Accepted);
        }
        // The dispatch happened even when its details do not parse: find the run.
        Ok(match serde_json::from_str::<DispatchBody>(&reply.body) {
            Ok(d) => Dispatched::Run {
                id: d.workflow_run_id,
                html_url: d.html_url,
            },
            Err(_) => Dispatched::Accepted,
        })
    }
}

impl Workflows for GitHub {
    async fn default_branch(&self, repository: &str) -> Result<String, GhError> {
        let what = format!("reading repository {repository}");
        let reply = self
            .send(
                http::Method::GET,
                &format!("/repos/{}", repo_path(repository)),
                None,
                &what,
            )
            .await?;
        let body: RepoBody = serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
        Ok(body.default_branch)
    }

    async fn dispatch(
        &self,
        repository: &str,
        workflow: &str,
        git_ref: &str,
        inputs: &[(&str, &str)],
    ) -> Result<Dispatched, GhError> {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.run_details_refused.load(Relaxed) {
            match self
                .dispatch_once(repository, workflow, git_ref, inputs, true)
                .await
            {
                // GitHub Enterprise Server 3.20 and older refuse `return_run_details` (400/422)
                // and dispatch nothing: send it again without, and never ask this server again.
                Err(e)
                    if matches!(e.status, Some(400 | 422))
                        && e.message.contains("return_run_details") =>
                {
                    tracing::info!("{e}: dispatching without run details from now on");
                    self.run_details_refused.store(true, Relaxed);
                }
                other => return other,
            }
        }
        self.dispatch_once(repository, workflow, git_ref, inputs, false)
            .await
    }

    async fn recent_runs(
        &self,
        repository: &str,
        workflow: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RunInfo>, GhError> {
        let what = format!("listing runs of {workflow} in {repository}");
        // A minute of slack for clock skew between this machine and GitHub.
        let created = (since - chrono::Duration::minutes(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let path = format!(
            "/repos/{}/actions/workflows/{}/runs?event=workflow_dispatch&per_page=100&created=%3E%3D{}",
            repo_path(repository),
            encode_segment(workflow),
            encode_segment(&created)
        );
        let reply = self.send(http::Method::GET, &path, None, &what).await?;
        let body: RunsBody = serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
        Ok(body.workflow_runs.into_iter().map(RunInfo::from).collect())
    }

    async fn run(&self, repository: &str, id: u64) -> Result<RunInfo, GhError> {
        let what = format!("reading workflow run {id} in {repository}");
        let path = format!("/repos/{}/actions/runs/{id}", repo_path(repository));
        let cached = self.runs.lock().await.get(&id).cloned();
        let headers = cached.as_ref().map(|(etag, _)| {
            let mut h = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(etag) {
                h.insert(http::header::IF_NONE_MATCH, v);
            }
            h
        });
        let reply = self
            .send_with(http::Method::GET, &path, None, &what, headers)
            .await?;
        if reply.status == http::StatusCode::NOT_MODIFIED
            && let Some((_, run)) = cached
        {
            return Ok(run);
        }
        let run: RunInfo = serde_json::from_str::<RunBody>(&reply.body)
            .map_err(|e| unexpected(&what, e))?
            .into();
        if let Some(etag) = reply.etag {
            self.runs.lock().await.insert(id, (etag, run.clone()));
        }
        Ok(run)
    }

    async fn run_attempt(&self, repository: &str, id: u64) -> Result<(String, u64), GhError> {
        let what = format!("reading workflow run {id} in {repository} (a lease's holder)");
        let path = format!("/repos/{}/actions/runs/{id}", repo_path(repository));
        let reply = self
            .send_with(http::Method::GET, &path, None, &what, None)
            .await?;
        let body: AttemptBody =
            serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
        Ok((
            body.status.unwrap_or_default(),
            body.run_attempt.unwrap_or(1),
        ))
    }

    async fn busy_runners(
        &self,
        repository: &str,
        id: u64,
        attempt: u64,
    ) -> Result<Vec<String>, GhError> {
        let what = format!("reading the jobs of workflow run {id} in {repository}");
        let path = format!(
            "/repos/{}/actions/runs/{id}/attempts/{attempt}/jobs?per_page=100",
            repo_path(repository)
        );
        let reply = self
            .send_with(http::Method::GET, &path, None, &what, None)
            .await?;
        let body: JobsBody = serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
        Ok(body
            .jobs
            .into_iter()
            .filter(|j| j.status != "completed")
            .filter_map(|j| j.runner_name)
            .collect())
    }
}
