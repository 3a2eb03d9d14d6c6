//! What `migrate` reads and writes in GitHub: Actions variables (repository, environment,
//! organization), who reads an organization secret, and a repository's workflow files.

use serde::Deserialize;
use serde_json::json;

use super::{GitHub, encode_segment, repo_path, unexpected};
use crate::manifest::Scope;
use crate::ports::migrate::{Readers, Variables};
use crate::ports::{GhError, GhErrorKind};

/// Where a scope's Actions variables live.
fn variables_path(scope: &Scope) -> Option<String> {
    Some(match scope {
        Scope::Repository(r) => format!("/repos/{}/actions/variables", repo_path(r)),
        Scope::Environment {
            repository,
            environment,
        } => format!(
            "/repos/{}/environments/{}/variables",
            repo_path(repository),
            encode_segment(environment)
        ),
        Scope::Organization {
            organization,
            dependabot: false,
            ..
        } => format!("/orgs/{}/actions/variables", encode_segment(organization)),
        _ => return None,
    })
}

#[derive(Deserialize)]
struct OrgLogin {
    login: String,
}

#[derive(Deserialize)]
struct VariableBody {
    value: String,
}

#[derive(Deserialize)]
struct Visibility {
    visibility: String,
}

#[derive(Deserialize)]
struct RepoEntry {
    id: u64,
    full_name: String,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    visibility: Option<String>,
}

#[derive(Deserialize)]
struct RepoPage {
    repositories: Vec<RepoEntry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    path: String,
}

#[derive(Deserialize)]
struct FullName {
    full_name: String,
}

#[derive(Deserialize)]
struct Environments {
    environments: Vec<EnvironmentName>,
}

#[derive(Deserialize)]
struct EnvironmentName {
    name: String,
}

impl GitHub {
    /// `owner/name` as GitHub spells it.
    async fn full_name(&self, r: &str) -> Result<String, GhError> {
        let what = format!("reading repository {r}");
        let reply = self
            .send(
                http::Method::GET,
                &format!("/repos/{}", repo_path(r)),
                None,
                &what,
            )
            .await?;
        Ok(serde_json::from_str::<FullName>(&reply.body)
            .map_err(|e| unexpected(&what, e))?
            .full_name)
    }
}

impl Variables for GitHub {
    async fn canonical(&self, scope: &Scope) -> Result<Scope, GhError> {
        match scope {
            Scope::Repository(r) => Ok(Scope::Repository(self.full_name(r).await?)),
            Scope::Environment {
                repository,
                environment,
            } => {
                let repository = self.full_name(repository).await?;
                let what = format!("reading the environments of {repository}");
                let path = format!("/repos/{}/environments", repo_path(&repository));
                let names = self
                    .all_pages(&path, &what, |e: Environments| e.environments)
                    .await?;
                let Some(found) = names
                    .into_iter()
                    .find(|e| e.name.eq_ignore_ascii_case(environment))
                else {
                    return Err(GhError {
                        kind: GhErrorKind::NotFound,
                        message: format!(
                            "{repository} has no environment {environment:?}: fix the manifest, or create the environment"
                        ),
                        uncertain: false,
                        status: Some(404),
                    });
                };
                Ok(Scope::Environment {
                    repository,
                    environment: found.name,
                })
            }
            // The login as GitHub spells it (CONTRACT §12a): IAM compares a token's `sub`
            // case-sensitively, and GitHub mints it with this spelling.
            Scope::Organization {
                organization,
                dependabot,
                visibility,
                selected,
            } => {
                let what = format!("reading organization {organization}");
                let reply = self
                    .send(
                        http::Method::GET,
                        &format!("/orgs/{}", encode_segment(organization)),
                        None,
                        &what,
                    )
                    .await?;
                let login = serde_json::from_str::<OrgLogin>(&reply.body)
                    .map_err(|e| unexpected(&what, e))?
                    .login;
                Ok(Scope::Organization {
                    organization: login,
                    dependabot: *dependabot,
                    visibility: *visibility,
                    selected: selected.clone(),
                })
            }
            other => Ok(other.clone()),
        }
    }

    async fn org_readers(&self, org: &str, secret: &str) -> Result<Option<Readers>, GhError> {
        let what = format!("reading who can read secret {secret} of organization {org}");
        let path = format!(
            "/orgs/{}/actions/secrets/{}",
            encode_segment(org),
            encode_segment(secret)
        );
        let visibility = match self.send(http::Method::GET, &path, None, &what).await {
            Ok(reply) => {
                serde_json::from_str::<Visibility>(&reply.body)
                    .map_err(|e| unexpected(&what, e))?
                    .visibility
            }
            Err(e) if e.kind == GhErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let (repos, selected_ids) = if visibility == "selected" {
            let repos = self
                .all_pages(&format!("{path}/repositories"), &what, |p: RepoPage| {
                    p.repositories
                })
                .await?;
            let ids = repos.iter().map(|r| r.id).collect();
            (repos, ids)
        } else {
            let all = self
                .all_pages(
                    &format!("/orgs/{}/repos?type=all", encode_segment(org)),
                    &what,
                    |p: Vec<RepoEntry>| p,
                )
                .await?;
            // `private`: the organization's private and internal repositories.
            let readable = |r: &RepoEntry| {
                visibility == "all" || r.private || r.visibility.as_deref() == Some("internal")
            };
            (all.into_iter().filter(readable).collect(), Vec::new())
        };
        Ok(Some(Readers {
            visibility,
            repositories: repos.into_iter().map(|r| r.full_name).collect(),
            selected_ids,
        }))
    }

    async fn variable(&self, scope: &Scope, name: &str) -> Result<Option<String>, GhError> {
        let Some(base) = variables_path(scope) else {
            return Ok(None);
        };
        let what = format!("reading variable {name} of {scope}");
        match self
            .send(
                http::Method::GET,
                &format!("{base}/{}", encode_segment(name)),
                None,
                &what,
            )
            .await
        {
            Ok(reply) => Ok(Some(
                serde_json::from_str::<VariableBody>(&reply.body)
                    .map_err(|e| unexpected(&what, e))?
                    .value,
            )),
            Err(e) if e.kind == GhErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn write_variable(
        &self,
        scope: &Scope,
        name: &str,
        value: &str,
        exists: bool,
        readers: Option<&Readers>,
    ) -> Result<(), GhError> {
        let what = format!("writing variable {name} in {scope}");
        let base = variables_path(scope)
            .ok_or_else(|| unexpected(&what, "this store has no Actions variables"))?;
        if exists {
            // An organization variable keeps its own visibility: only the value changes.
            let body = json!({ "name": name, "value": value });
            self.send(
                http::Method::PATCH,
                &format!("{base}/{}", encode_segment(name)),
                Some(&body),
                &what,
            )
            .await?;
            return Ok(());
        }
        let mut body = json!({ "name": name, "value": value });
        if let Scope::Organization { .. } = scope {
            // Readable by exactly the repositories that read the key's secret.
            let r =
                readers.ok_or_else(|| unexpected(&what, "who reads the secret is not known"))?;
            body["visibility"] = json!(r.visibility);
            if r.visibility == "selected" {
                body["selected_repository_ids"] = json!(r.selected_ids);
            }
        }
        self.send_once(&base, &body, &what).await?;
        Ok(())
    }

    async fn fork_pull_requests_write(&self, repository: &str) -> Result<Option<bool>, GhError> {
        #[derive(Deserialize)]
        struct ForkSettings {
            #[serde(default)]
            run_workflows_from_fork_pull_requests: bool,
            #[serde(default)]
            send_write_tokens_to_workflows: bool,
        }
        let what = format!("reading the fork pull request settings of {repository}");
        let path = format!(
            "/repos/{}/actions/permissions/fork-pr-workflows-private-repos",
            repo_path(repository)
        );
        match self.send(http::Method::GET, &path, None, &what).await {
            Ok(reply) => {
                let f: ForkSettings =
                    serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
                Ok(Some(
                    f.run_workflows_from_fork_pull_requests && f.send_write_tokens_to_workflows,
                ))
            }
            // A public repository (422), an older GitHub (404), or a token that may not read
            // the repository's administration settings (403): not known.
            Err(e)
                if matches!(
                    e.kind,
                    GhErrorKind::NotFound | GhErrorKind::Rejected | GhErrorKind::Forbidden
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn workflow_files(&self, repository: &str) -> Result<Vec<(String, String)>, GhError> {
        let what = format!("listing the workflows of {repository}");
        let dir = format!(
            "/repos/{}/contents/.github/workflows",
            repo_path(repository)
        );
        let entries: Vec<Entry> = match self.send(http::Method::GET, &dir, None, &what).await {
            Ok(reply) => serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?,
            // No workflows at all.
            Err(e) if e.kind == GhErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut files = Vec::new();
        for e in entries
            .into_iter()
            .filter(|e| e.kind == "file" && (e.name.ends_with(".yml") || e.name.ends_with(".yaml")))
        {
            if let Some(text) = self.file_at(repository, &e.path).await? {
                files.push((e.path, text));
            }
        }
        Ok(files)
    }
}
