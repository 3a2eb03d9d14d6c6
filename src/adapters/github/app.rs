//! Authenticating as a GitHub App (CONTRACT §9): the App's JWT, its installation on each
//! owner, and one installation token per owner.

use octocrab::Octocrab;
use secrecy::{ExposeSecret, SecretString};

use super::{ClientAuth, GitHub, Pacing, client, encode_segment};

#[derive(serde::Deserialize)]
struct AccessToken {
    token: String,
}

#[derive(serde::Deserialize)]
struct InstallationId {
    id: u64,
}

/// The App's installation on `owner` (an organization, else a user).
async fn installation_of(app: &Octocrab, owner: &str, app_id: u64) -> Result<u64, String> {
    let o = encode_segment(owner);
    for path in [
        format!("/orgs/{o}/installation"),
        format!("/users/{o}/installation"),
    ] {
        let reply = app
            ._get(path.as_str())
            .await
            .map_err(|e| format!("could not look up the App's installation on {owner}: {e}"))?;
        let status = reply.status();
        let body = app.body_to_string(reply).await.unwrap_or_default();
        match status.as_u16() {
            200 => {
                let i: InstallationId = serde_json::from_str(&body)
                    .map_err(|e| format!("unexpected answer to {path}: {e}"))?;
                return Ok(i.id);
            }
            404 => continue,
            401 => {
                return Err(format!(
                    "GitHub refused the App's credentials (HTTP 401): check app-id ({app_id}) and that app-private-key is a current key of that App"
                ));
            }
            other => {
                return Err(format!(
                    "GitHub answered {other} looking up the App's installation on {owner}"
                ));
            }
        }
    }
    Err(format!(
        "the GitHub App {app_id} is not installed on {owner}: install it there (the owner's Settings → GitHub Apps, or the App's public page) with access to the repositories the manifest names"
    ))
}

impl GitHub {
    /// Authenticated as a GitHub App: for each owner, its installation's token (which reaches
    /// that owner's repositories only), used for every request about that owner. Returns the
    /// tokens too, so they can be masked. An error is the user's to fix (exit 2).
    pub async fn with_app(
        api_url: &str,
        app_id: u64,
        private_key: &SecretString,
        owners: &[String],
        pacing: Pacing,
    ) -> Result<(Self, Vec<SecretString>), String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose_secret().as_bytes())
            .map_err(|_| {
                "app-private-key (CLI: env GITHUB_APP_PRIVATE_KEY) is not an RSA private key in PEM form: give the whole .pem file GitHub generated for the App".to_owned()
            })?;
        let app = client(
            api_url,
            Some(ClientAuth::App(octocrab::models::AppId(app_id), key)),
        )?;
        let mut this = Self::new(api_url, None, pacing)?;
        this.has_token = true;
        let mut tokens = Vec::new();
        for owner in owners {
            let installation = installation_of(&app, owner, app_id).await?;
            let path = format!("/app/installations/{installation}/access_tokens");
            let reply = app._post(path.as_str(), None::<&()>).await.map_err(|e| {
                format!("could not get a token for the App's installation on {owner}: {e}")
            })?;
            let status = reply.status();
            let body = app.body_to_string(reply).await.unwrap_or_default();
            if !status.is_success() {
                return Err(format!(
                    "GitHub refused a token for the App's installation on {owner} (HTTP {status}): check that the installation is not suspended"
                ));
            }
            let token: AccessToken = serde_json::from_str(&body)
                .map_err(|e| format!("unexpected answer to {path}: {e}"))?;
            let secret = SecretString::from(token.token);
            this.owners.insert(
                owner.to_ascii_lowercase(),
                client(api_url, Some(ClientAuth::Token(secret.clone())))?,
            );
            tokens.push(secret);
        }
        Ok((this, tokens))
    }
}
