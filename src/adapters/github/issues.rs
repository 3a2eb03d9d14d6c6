//! The issues a person is told through (CONTRACT §16): a repository's open issues of a label,
//! an issue's comments, opening, commenting and closing.

use serde::Deserialize;
use serde_json::json;

use super::{GitHub, encode_segment, repo_path, unexpected};
use crate::ports::GhError;
use crate::ports::issues::{Comment, Found, IssueError, Issues};

#[derive(Deserialize)]
struct IssueEntry {
    number: u64,
    title: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    comments: u64,
    #[serde(default)]
    user: Option<Login>,
    /// Present on pull requests, which the issues API lists too.
    #[serde(default)]
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct CommentEntry {
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<Login>,
}

#[derive(Deserialize)]
struct Login {
    login: String,
}

#[derive(Deserialize)]
struct Created {
    number: u64,
}

fn said(e: GhError) -> IssueError {
    IssueError(e.message)
}

impl Issues for GitHub {
    async fn open_issues(&self, repo: &str, label: &str) -> Result<Vec<Found>, IssueError> {
        let what = format!("listing the open issues labelled {label} of {repo}");
        let path = format!(
            "/repos/{}/issues?state=open&labels={}",
            repo_path(repo),
            encode_segment(label)
        );
        let entries = self
            .all_pages(&path, &what, |page: Vec<IssueEntry>| page)
            .await
            .map_err(said)?;
        Ok(entries
            .into_iter()
            .filter(|e| e.pull_request.is_none())
            .map(|e| Found {
                number: e.number,
                title: e.title,
                body: e.body.unwrap_or_default(),
                comments: e.comments,
                author: e.user.map(|u| u.login).unwrap_or_default(),
            })
            .collect())
    }

    async fn identity(&self) -> Result<Option<String>, IssueError> {
        let what = "reading who the issue token acts as (GET /user)";
        match self.send(http::Method::GET, "/user", None, what).await {
            Ok(reply) => serde_json::from_str::<Login>(&reply.body)
                .map(|l| Some(l.login))
                .map_err(|e| said(unexpected(what, e))),
            // An installation token is no user: "Resource not accessible by integration".
            Err(e) if e.kind == crate::ports::GhErrorKind::Forbidden => Ok(None),
            Err(e) => Err(said(e)),
        }
    }

    async fn comments(&self, repo: &str, number: u64) -> Result<Vec<Comment>, IssueError> {
        let what = format!("reading the comments of issue #{number} in {repo}");
        let path = format!("/repos/{}/issues/{number}/comments", repo_path(repo));
        let entries = self
            .all_pages(&path, &what, |page: Vec<CommentEntry>| page)
            .await
            .map_err(said)?;
        Ok(entries
            .into_iter()
            .map(|c| Comment {
                author: c.user.map(|u| u.login).unwrap_or_default(),
                body: c.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn open(
        &self,
        repo: &str,
        title: &str,
        body: &str,
        label: &str,
    ) -> Result<u64, IssueError> {
        let what = format!("opening an issue in {repo}");
        // One attempt: an answer lost after GitHub made the issue must not make a second one
        // (the next run finds the first by its title).
        let reply = self
            .send_once(
                &format!("/repos/{}/issues", repo_path(repo)),
                &json!({"title": title, "body": body, "labels": [label]}),
                &what,
            )
            .await
            .map_err(said)?;
        serde_json::from_str::<Created>(&reply.body)
            .map(|c| c.number)
            .map_err(|e| said(unexpected(&what, e)))
    }

    async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<(), IssueError> {
        let what = format!("commenting on issue #{number} in {repo}");
        self.send_once(
            &format!("/repos/{}/issues/{number}/comments", repo_path(repo)),
            &json!({"body": body}),
            &what,
        )
        .await
        .map(drop)
        .map_err(said)
    }

    async fn close(&self, repo: &str, number: u64) -> Result<(), IssueError> {
        let what = format!("closing issue #{number} in {repo}");
        self.send(
            http::Method::PATCH,
            &format!("/repos/{}/issues/{number}", repo_path(repo)),
            Some(&json!({"state": "closed", "state_reason": "completed"})),
            &what,
        )
        .await
        .map(drop)
        .map_err(said)
    }
}
