//! Repository and environment Actions secrets: public keys, metadata, writes.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{GitHub, encode_segment, unexpected};
use crate::manifest::Scope;
use crate::ports::{GhError, GhErrorKind, SecretStore};
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
    async fn public_key(&self, scope: &Scope) -> Result<ScopeKey, GhError> {
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
        ScopeKey::parse(&body.key_id, &body.key).map_err(|e| unexpected(&what, e))
    }

    async fn updated_at(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<DateTime<Utc>>, GhError> {
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
            Err(e) => Err(e),
        }
    }

    async fn put(
        &self,
        scope: &Scope,
        key: &ScopeKey,
        name: &str,
        value: &SecretString,
    ) -> Result<(), GhError> {
        let what = format!("writing secret {name} in {scope}");
        let sealed: Sealed = seal::seal(key, value).map_err(|e| GhError {
            kind: GhErrorKind::Rejected,
            message: format!("{what}: {e}"),
            uncertain: false,
            status: None,
        })?;
        let path = format!("{}/{}", secrets_path(scope), encode_segment(name));
        let body = serde_json::json!({
            "encrypted_value": sealed.encrypted_value,
            "key_id": sealed.key_id,
        });
        let reply = self
            .send(http::Method::PUT, &path, Some(&body), &what)
            .await?;
        match reply.status.as_u16() {
            201 | 204 => Ok(()),
            other => Err(unexpected(&what, format!("HTTP {other}"))),
        }
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
