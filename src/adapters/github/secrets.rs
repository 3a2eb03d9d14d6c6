//! Secrets in every GitHub store — repository, environment and organization Actions secrets,
//! repository and organization Dependabot secrets: public keys, metadata, writes. A write to an
//! organization secret keeps who can read it (its visibility and selected repositories).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{GitHub, PER_PAGE, encode_segment, unexpected};
use crate::manifest::{Scope, Visibility};
use crate::ports::{GhError, GhErrorKind, SecretStore, StoreError};
use crate::seal::{self, ScopeKey, Sealed};
use secrecy::SecretString;

fn secrets_path(scope: &Scope) -> String {
    let repo = |r: &str| {
        r.split('/')
            .map(encode_segment)
            .collect::<Vec<_>>()
            .join("/")
    };
    match scope {
        Scope::Repository(r) => format!("/repos/{}/actions/secrets", repo(r)),
        Scope::Environment {
            repository,
            environment,
        } => format!(
            "/repos/{}/environments/{}/secrets",
            repo(repository),
            encode_segment(environment)
        ),
        Scope::RepositoryDependabot(r) => format!("/repos/{}/dependabot/secrets", repo(r)),
        Scope::Organization {
            organization,
            dependabot,
            ..
        } => format!(
            "/orgs/{}/{}/secrets",
            encode_segment(organization),
            if *dependabot { "dependabot" } else { "actions" }
        ),
        Scope::SecretsManager { .. }
        | Scope::ParameterStore { .. }
        | Scope::Vault { .. }
        | Scope::S3 { .. } => {
            unreachable!("readable stores have adapters of their own, never GitHub's")
        }
    }
}

/// An organization secret's metadata: who reads it.
#[derive(Deserialize)]
struct OrgSecretMeta {
    visibility: String,
}

/// One page of an organization secret's selected repositories.
#[derive(Deserialize)]
struct RepositoriesPage {
    total_count: u64,
    repositories: Vec<RepositoryId>,
}

#[derive(Deserialize)]
struct RepositoryId {
    id: u64,
}

impl GitHub {
    /// The ids of repositories named `owner/name` (one `GET /repos/{owner}/{name}` each).
    async fn repository_ids(&self, names: &[String]) -> Result<Vec<u64>, GhError> {
        let mut ids = Vec::new();
        for r in names {
            let what = format!("reading the id of repository {r} (selected-repositories)");
            let path = format!(
                "/repos/{}",
                r.split('/')
                    .map(encode_segment)
                    .collect::<Vec<_>>()
                    .join("/")
            );
            let reply = self.send(http::Method::GET, &path, None, &what).await?;
            let body: RepositoryId =
                serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
            ids.push(body.id);
        }
        Ok(ids)
    }

    /// Who reads organization secret `name` now: its visibility and, for `selected`, every
    /// selected repository's id (all pages). A secret that does not exist yet gets the
    /// manifest's visibility, else `private`.
    async fn org_access(
        &self,
        scope: &Scope,
        name: &str,
        default: Option<Visibility>,
    ) -> Result<(String, Option<Vec<u64>>), GhError> {
        let selected_names = match scope {
            Scope::Organization { selected, .. } => selected.as_slice(),
            _ => &[],
        };
        let what = format!("reading who can read secret {name} of {scope}");
        let path = format!("{}/{}", secrets_path(scope), encode_segment(name));
        let visibility = match self.send(http::Method::GET, &path, None, &what).await {
            Ok(reply) => {
                let meta: OrgSecretMeta =
                    serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
                meta.visibility
            }
            Err(e) if e.kind == GhErrorKind::NotFound => {
                // A new secret: read by exactly the manifest's selected repositories.
                let selected = match default {
                    Some(Visibility::Selected) => Some(self.repository_ids(selected_names).await?),
                    _ => None,
                };
                return Ok((
                    default.unwrap_or(Visibility::Private).as_str().to_owned(),
                    selected,
                ));
            }
            Err(e) => return Err(e),
        };
        if visibility != "selected" {
            return Ok((visibility, None));
        }
        let mut ids = Vec::new();
        for page in 1.. {
            let reply = self
                .send(
                    http::Method::GET,
                    &format!("{path}/repositories?per_page={PER_PAGE}&page={page}"),
                    None,
                    &what,
                )
                .await?;
            let body: RepositoriesPage =
                serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
            let got = body.repositories.len();
            ids.extend(body.repositories.into_iter().map(|r| r.id));
            if got < PER_PAGE || ids.len() as u64 >= body.total_count {
                break;
            }
        }
        Ok((visibility, Some(ids)))
    }
}

#[derive(Deserialize)]
struct PublicKeyBody {
    key_id: String,
    key: String,
}

#[derive(Deserialize)]
struct SecretMeta {
    updated_at: DateTime<Utc>,
}

impl SecretStore for GitHub {
    async fn public_key(&self, scope: &Scope) -> Result<ScopeKey, StoreError> {
        let what = format!("reading the public key of {scope}");
        let reply = self
            .send(
                http::Method::GET,
                &format!("{}/public-key", secrets_path(scope)),
                None,
                &what,
            )
            .await?;
        let body: PublicKeyBody =
            serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
        Ok(ScopeKey::parse(&body.key_id, &body.key).map_err(|e| unexpected(&what, e))?)
    }

    async fn updated_at(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let what = format!("reading secret {name} of {scope}");
        let path = format!("{}/{}", secrets_path(scope), encode_segment(name));
        match self.send(http::Method::GET, &path, None, &what).await {
            Ok(reply) => {
                let meta: SecretMeta =
                    serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
                Ok(Some(meta.updated_at))
            }
            // The caller has fetched the scope's public key, so the scope exists: the secret does not.
            Err(e) if e.kind == GhErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn put(
        &self,
        scope: &Scope,
        key: Option<&ScopeKey>,
        name: &str,
        value: &SecretString,
    ) -> Result<(), StoreError> {
        let what = format!("writing secret {name} in {scope}");
        let key = key.ok_or_else(|| unexpected(&what, "no public key was fetched"))?;
        let sealed: Sealed = seal::seal(key, value).map_err(|e| GhError {
            kind: GhErrorKind::Rejected,
            message: format!("{what}: {e}"),
            uncertain: false,
            status: None,
        })?;
        let path = format!("{}/{}", secrets_path(scope), encode_segment(name));
        let mut body = serde_json::json!({
            "encrypted_value": sealed.encrypted_value,
            "key_id": sealed.key_id,
        });
        if let Scope::Organization { visibility, .. } = scope {
            // GitHub requires the visibility on every write: send back what the secret has, so
            // a rotation never changes who can read it.
            let (visibility, selected) = self.org_access(scope, name, *visibility).await?;
            body["visibility"] = visibility.into();
            if let Some(ids) = selected {
                body["selected_repository_ids"] = ids.into();
            }
        }
        let reply = self
            .send(http::Method::PUT, &path, Some(&body), &what)
            .await?;
        match reply.status.as_u16() {
            201 | 204 => Ok(()),
            other => Err(unexpected(&what, format!("HTTP {other}")).into()),
        }
    }

    async fn stamps(
        &self,
        scope: &Scope,
    ) -> Result<Option<std::collections::BTreeMap<String, DateTime<Utc>>>, StoreError> {
        #[derive(Deserialize)]
        struct Listed {
            name: String,
            updated_at: DateTime<Utc>,
        }
        #[derive(Deserialize)]
        struct Page {
            secrets: Vec<Listed>,
        }
        let what = format!("listing the secrets of {scope}");
        let listed = self
            .all_pages(&secrets_path(scope), &what, |p: Page| p.secrets)
            .await?;
        let out = listed
            .into_iter()
            .map(|s| (s.name.to_ascii_uppercase(), s.updated_at))
            .collect();
        Ok(Some(out))
    }

    async fn access(&self, scope: &Scope, name: &str) -> Result<Option<String>, StoreError> {
        let Scope::Organization { visibility, .. } = scope else {
            return Ok(None);
        };
        let (visibility, selected) = self.org_access(scope, name, *visibility).await?;
        Ok(Some(match (visibility.as_str(), selected) {
            ("selected", Some(ids)) => format!(
                "selected: {} repositor{}",
                ids.len(),
                if ids.len() == 1 { "y" } else { "ies" }
            ),
            ("all", _) => "all repositories".to_owned(),
            ("private", _) => "private repositories".to_owned(),
            (other, _) => other.to_owned(),
        }))
    }

    async fn read(&self, scope: &Scope, name: &str) -> Result<Option<SecretString>, StoreError> {
        Err(unexpected(
            &format!("reading secret {name} of {scope}"),
            "GitHub secrets are write-only",
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_environment_names() {
        assert_eq!(
            secrets_path(&Scope::Environment {
                repository: "acme/web".into(),
                environment: "prod eu/1".into()
            }),
            "/repos/acme/web/environments/prod%20eu%2F1/secrets"
        );
        assert_eq!(
            secrets_path(&Scope::Repository("acme/web".into())),
            "/repos/acme/web/actions/secrets"
        );
    }
}
