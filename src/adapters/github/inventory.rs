//! `discover`'s reads: an owner's repositories (all pages), their environments, and the names
//! of the secrets in every store. Names only: GitHub never returns a secret's value.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{GitHub, encode_segment};
use crate::manifest::Scope;
use crate::ports::{GhError, GhErrorKind};
use crate::ports::{Inventory, Lister};

#[derive(Deserialize)]
struct Repo {
    full_name: String,
}

#[derive(Deserialize)]
struct Login {
    login: String,
}

/// `GET /installation/repositories`: the repositories an App's installation reaches.
#[derive(Deserialize)]
struct InstallationRepos {
    repositories: Vec<Repo>,
}

#[derive(Deserialize)]
struct NamedList<T> {
    #[serde(alias = "secrets", alias = "environments")]
    items: Vec<T>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

impl GitHub {
    /// Every repository of the user account `owner`, private ones included, when the
    /// credentials are that account's: its own token (`/user/repos`), or an App installed on it
    /// (`/installation/repositories`). `None` for another user's account.
    async fn account_repos(&self, owner: &str, what: &str) -> Result<Option<Vec<Repo>>, GhError> {
        if self.owners.contains_key(&owner.to_ascii_lowercase()) {
            // The App's installation on this account: it lists what it reaches.
            let path = format!("/installation/repositories?owner={}", encode_segment(owner));
            return self
                .all_pages(&path, what, |r: InstallationRepos| r.repositories)
                .await
                .map(Some);
        }
        let reply = match self
            .send(
                http::Method::GET,
                "/user",
                None,
                "reading the token's account",
            )
            .await
        {
            Ok(reply) => reply,
            // An integration's token (the workflow's GITHUB_TOKEN) belongs to no account.
            Err(e) if matches!(e.kind, GhErrorKind::Forbidden | GhErrorKind::NotFound) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let me: Login = serde_json::from_str(&reply.body)
            .map_err(|e| super::unexpected("reading the token's account", e))?;
        if !me.login.eq_ignore_ascii_case(owner) {
            return Ok(None);
        }
        self.all_pages("/user/repos?affiliation=owner", what, |r: Vec<Repo>| r)
            .await
            .map(Some)
    }

    /// The secret names of a store; a store the token may not read (Dependabot off, no
    /// permission) counts as empty rather than failing the whole search.
    async fn names(&self, path: &str, what: &str) -> Result<BTreeSet<String>, GhError> {
        match self
            .all_pages(path, what, |l: NamedList<Named>| {
                l.items.into_iter().map(|n| n.name).collect()
            })
            .await
        {
            Ok(names) => Ok(names.into_iter().collect()),
            Err(e) if matches!(e.kind, GhErrorKind::NotFound | GhErrorKind::Forbidden) => {
                tracing::info!("{what}: skipped ({e})");
                Ok(BTreeSet::new())
            }
            Err(e) => Err(e),
        }
    }
}

impl GitHub {
    /// A repository's stores with their secret names: its Actions and Dependabot secrets, and
    /// each environment's.
    async fn repository_stores(&self, r: &str, inv: &mut Inventory) -> Result<(), GhError> {
        let rp = r
            .split('/')
            .map(encode_segment)
            .collect::<Vec<_>>()
            .join("/");
        let what = format!("listing the secrets of {r}");
        inv.stores.insert(
            Scope::Repository(r.to_owned()),
            self.names(&format!("/repos/{rp}/actions/secrets"), &what)
                .await?,
        );
        inv.stores.insert(
            Scope::RepositoryDependabot(r.to_owned()),
            self.names(&format!("/repos/{rp}/dependabot/secrets"), &what)
                .await?,
        );
        let envs = self
            .names(
                &format!("/repos/{rp}/environments"),
                &format!("listing the environments of {r}"),
            )
            .await?;
        for e in envs {
            let names = self
                .names(
                    &format!("/repos/{rp}/environments/{}/secrets", encode_segment(&e)),
                    &what,
                )
                .await?;
            inv.stores.insert(
                Scope::Environment {
                    repository: r.to_owned(),
                    environment: e,
                },
                names,
            );
        }
        Ok(())
    }
}

impl Lister for GitHub {
    async fn inventory(&self, owner: &str) -> Result<Inventory, GhError> {
        let o = encode_segment(owner);
        let what = format!("looking up owner {owner}");
        let is_org = match self
            .send(http::Method::GET, &format!("/orgs/{o}"), None, &what)
            .await
        {
            Ok(_) => true,
            Err(e) if e.kind == GhErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        let what = format!("listing the repositories of {owner}");
        let mut limits = Vec::new();
        let repos = if is_org {
            self.all_pages(&format!("/orgs/{o}/repos"), &what, |r: Vec<Repo>| r)
                .await?
        } else {
            match self.account_repos(owner, &what).await? {
                Some(repos) => repos,
                None => {
                    limits.push(format!(
                        "{owner} is a user account this token does not belong to: GitHub lists only its public repositories, so its private ones were not searched. Run discover with {owner}'s own token, or as an App installed on {owner}"
                    ));
                    self.all_pages(&format!("/users/{o}/repos"), &what, |r: Vec<Repo>| r)
                        .await?
                }
            }
        };
        let mut inv = Inventory {
            owners: vec![owner.to_owned()],
            repositories: repos.len(),
            limits,
            ..Inventory::default()
        };
        for repo in repos {
            self.repository_stores(&repo.full_name, &mut inv).await?;
        }
        if is_org {
            for dependabot in [false, true] {
                let app = if dependabot { "dependabot" } else { "actions" };
                inv.stores.insert(
                    Scope::Organization {
                        organization: owner.to_owned(),
                        dependabot,
                        visibility: None,
                        selected: Vec::new(),
                    },
                    self.names(
                        &format!("/orgs/{o}/{app}/secrets"),
                        &format!("listing the {app} secrets of organization {owner}"),
                    )
                    .await?,
                );
            }
        }
        inv.stores.retain(|_, names| !names.is_empty());
        Ok(inv)
    }
}
