//! What `discover` lists: organizations, an owner's repositories with their visibility (a
//! user's token sees its own private ones, an App installation its account's), a repository's
//! environments.

use axum::Router;
use axum::extract::{Extension, Path, RawQuery, State as Extract};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::gate::Caller;
use super::{Shared, State, TOKEN_LOGIN, error, not_found, ok, org, page, repo};

type Query = RawQuery;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/orgs/{o}",
            get(|Extract(s): Extract<Shared>, Path(o): Path<String>| async move {
                let s = s.lock().unwrap();
                // GitHub finds a login whatever its case and answers its own spelling.
                match s
                    .scopes
                    .keys()
                    .find(|k| k.organization && k.repository.eq_ignore_ascii_case(&o))
                {
                    Some(k) => ok(StatusCode::OK, json!({"login": k.repository})),
                    None => not_found(),
                }
            }),
        )
        .route(
            "/orgs/{o}/repos",
            get(|Extract(s): Extract<Shared>, Path(o): Path<String>, RawQuery(q): Query| async move {
                let s = s.lock().unwrap();
                match s.scopes.contains_key(&org(&o)) {
                    true => ok(StatusCode::OK, Value::Array(page(&repos_of(&s, &o), &q.unwrap_or_default()))),
                    false => not_found(),
                }
            }),
        )
        .route(
            "/users/{o}/repos",
            get(|Extract(s): Extract<Shared>, Path(u): Path<String>, RawQuery(q): Query| async move {
                let s = s.lock().unwrap();
                let public: Vec<Value> = repos_of(&s, &u)
                    .into_iter()
                    .filter(|r| r["private"] == false)
                    .collect();
                ok(StatusCode::OK, Value::Array(page(&public, &q.unwrap_or_default())))
            }),
        )
        .route(
            "/repos/{o}/{r}/actions/permissions/fork-pr-workflows-private-repos",
            get(|Extract(s): Extract<Shared>, Path((o, r)): Path<(String, String)>| async move {
                let s = s.lock().unwrap();
                let name = format!("{o}/{r}");
                if !s.scopes.contains_key(&repo(&name)) {
                    return not_found();
                }
                // GitHub answers only for private and internal repositories.
                if !s.private_repos.contains(&name) && !s.internal_repos.contains(&name) {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "This setting only applies to internal and private repositories",
                    );
                }
                let writes = s.fork_write_tokens.contains(&name);
                ok(
                    StatusCode::OK,
                    json!({
                        "run_workflows_from_fork_pull_requests": writes,
                        "send_write_tokens_to_workflows": writes,
                        "send_secrets_and_variables": false,
                        "require_approval_for_fork_pr_workflows": true,
                    }),
                )
            }),
        )
        .route(
            "/user",
            get(|Extension(c): Extension<Caller>| async move {
                match c.installation() {
                    Some(_) => integration_refused(),
                    None => ok(StatusCode::OK, json!({"login": TOKEN_LOGIN})),
                }
            }),
        )
        .route(
            "/user/repos",
            get(|Extract(s): Extract<Shared>, Extension(c): Extension<Caller>, RawQuery(q): Query| async move {
                let s = s.lock().unwrap();
                match c.installation() {
                    Some(_) => integration_refused(),
                    None => ok(StatusCode::OK, Value::Array(page(&repos_of(&s, TOKEN_LOGIN), &q.unwrap_or_default()))),
                }
            }),
        )
        .route(
            "/installation/repositories",
            get(|Extract(s): Extract<Shared>, Extension(c): Extension<Caller>, RawQuery(q): Query| async move {
                let s = s.lock().unwrap();
                match c.installation() {
                    Some(owner) => {
                        let repos = repos_of(&s, owner);
                        ok(StatusCode::OK, json!({"total_count": repos.len(), "repositories": page(&repos, &q.unwrap_or_default())}))
                    }
                    None => error(
                        StatusCode::FORBIDDEN,
                        "You must authenticate with an installation access token",
                    ),
                }
            }),
        )
        .route(
            "/repos/{o}/{r}/environments",
            get(|Extract(s): Extract<Shared>, Path((o, r)): Path<(String, String)>, RawQuery(q): Query| async move {
                environments(&s.lock().unwrap(), &format!("{o}/{r}"), &q.unwrap_or_default())
            }),
        )
}

fn integration_refused() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "Resource not accessible by integration",
    )
}

/// An owner's repositories, each with its visibility (an internal one is private too).
fn repos_of(s: &State, owner: &str) -> Vec<Value> {
    s.repo_ids
        .iter()
        .filter(|(name, _)| name.split('/').next() == Some(owner))
        .map(|(name, id)| {
            let visibility = match (
                s.internal_repos.contains(name),
                s.private_repos.contains(name),
            ) {
                (true, _) => "internal",
                (_, true) => "private",
                _ => "public",
            };
            json!({"id": id, "full_name": name, "name": name.split('/').nth(1),
                   "private": visibility != "public", "visibility": visibility})
        })
        .collect()
}

fn environments(s: &State, name: &str, query: &str) -> Response {
    if !s.scopes.contains_key(&repo(name)) {
        return not_found();
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
