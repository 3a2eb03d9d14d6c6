//! Logging in to Vault: a static token, or GitHub's OIDC token exchanged through the JWT auth
//! method, renewed by a fresh login before it runs out (CONTRACT §14).

use super::*;

impl Vault {
    /// Logs in to every server (and namespace) `scopes` use, once: `VAULT_TOKEN` for
    /// `VAULT_ADDR`, a JWT login when `vault-role` is set. Returns the tokens this made, to be
    /// masked. A token that would expire before this run may need it is refused.
    pub async fn log_in(&self, scopes: &[&Scope]) -> Result<Vec<SecretString>, String> {
        let mut made = Vec::new();
        for scope in scopes {
            let address = self.address(scope).map_err(|e| e.message)?;
            check_address(&address, self.settings.allow_http)?;
            let key = realm(&address, scope);
            if self.tokens.lock().await.contains_key(&key) {
                continue;
            }
            let vault_addr = self
                .settings
                .address
                .as_deref()
                .map(|a| a.trim_end_matches('/'));
            let held = match (&self.settings.role, &self.settings.token) {
                (Some(role), _) => {
                    let (jwt, token) = self.jwt_login(&address, role, scope).await?;
                    made.push(jwt);
                    made.push(token.clone());
                    let ttl = self.token_ttl(&address, &token, scope).await?;
                    HeldToken {
                        renew_at: self.renewal(ttl),
                        token,
                    }
                }
                (None, Some(t)) if vault_addr == Some(address.as_str()) => {
                    let ttl = self.token_ttl(&address, t, scope).await?;
                    // 0: it never expires.
                    let need = self.settings.min_token_ttl.as_secs();
                    if ttl > 0 && ttl < need {
                        return Err(format!(
                            "the Vault token for {address} expires in {ttl} s, but this run may need it for {need} s (a rollback comes after the verification timeout): give VAULT_TOKEN at least that, or log in with input vault-role (the job's OIDC token logs in again when a short-lived token runs out)"
                        ));
                    }
                    HeldToken {
                        token: t.clone(),
                        renew_at: None,
                    }
                }
                (None, Some(_)) => {
                    return Err(format!(
                        "{scope} is on {address}, but VAULT_TOKEN is VAULT_ADDR's token and is not sent elsewhere: log in with input vault-role, or point VAULT_ADDR at that server"
                    ));
                }
                (None, None) => {
                    return Err(format!(
                        "{scope}: no Vault credentials: set VAULT_TOKEN, or input vault-role to log in with the job's GitHub OIDC token"
                    ));
                }
            };
            self.tokens.lock().await.insert(key, held);
        }
        Ok(made)
    }

    /// When a JWT login's token of `ttl` seconds (0: it never expires) is to be replaced: with
    /// room left for two calls, or half its life, whichever comes first.
    pub(super) fn renewal(&self, ttl: u64) -> Option<std::time::Instant> {
        (ttl > 0).then(|| {
            let ttl = Duration::from_secs(ttl);
            let margin = (2 * self.settings.call_timeout).min(ttl / 2);
            std::time::Instant::now() + ttl - margin
        })
    }

    /// The token's remaining life in seconds (0: it never expires), from `lookup-self`.
    pub(super) async fn token_ttl(
        &self,
        address: &str,
        token: &SecretString,
        scope: &Scope,
    ) -> Result<u64, String> {
        let namespace = match scope {
            Scope::Vault { namespace, .. } => namespace.as_deref(),
            _ => None,
        };
        let (status, body) = self
            .call(
                Method::GET,
                &format!("{address}/v1/auth/token/lookup-self"),
                Some(token),
                namespace,
                None,
                "looking up the Vault token",
            )
            .await
            .map_err(|e| e.message)?;
        if status != 200 {
            return Err(format!(
                "Vault at {address} does not accept the token (HTTP {status}){}: check VAULT_TOKEN, or the role's policies",
                said(&body)
            ));
        }
        Ok(body["data"]["ttl"].as_u64().unwrap_or(0))
    }

    /// The job's GitHub OIDC token for `audience` (ACTIONS_ID_TOKEN_REQUEST_URL).
    async fn job_token(&self, audience: &str) -> Result<SecretString, String> {
        let Some((url, bearer)) = &self.settings.id_token_request else {
            return Err(
                "input vault-role logs in with the job's GitHub OIDC token, but ACTIONS_ID_TOKEN_REQUEST_URL is not set: give the job `permissions: id-token: write`, or use VAULT_TOKEN".into(),
            );
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let request_url = format!(
            "{url}{sep}audience={}",
            percent_encoding::utf8_percent_encode(audience, percent_encoding::NON_ALPHANUMERIC)
        );
        let bearer = SecretString::from(format!("bearer {}", bearer.expose_secret()));
        let request = http::Request::builder()
            .method(Method::GET)
            .uri(&request_url)
            .header(http::header::AUTHORIZATION, bearer.expose_secret())
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("requesting the job's OIDC token: {e}"))?;
        let exchange = async {
            let reply = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("requesting the job's OIDC token: {e}"))?;
            let status = reply.status();
            let bytes = reply
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("requesting the job's OIDC token: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.settings.call_timeout, exchange)
            .await
            .map_err(|_| "requesting the job's OIDC token: no answer".to_owned())??;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let Some(jwt) = body["value"].as_str().filter(|_| status.is_success()) else {
            return Err(format!(
                "GitHub did not give the job an OIDC token (HTTP {status}): give the job `permissions: id-token: write`"
            ));
        };
        Ok(SecretString::from(jwt.to_owned()))
    }

    /// The job's OIDC token, then `auth/MOUNT/login`: (the OIDC token, the Vault token).
    pub(super) async fn jwt_login(
        &self,
        address: &str,
        role: &str,
        scope: &Scope,
    ) -> Result<(SecretString, SecretString), String> {
        let audience = self
            .settings
            .audience
            .clone()
            .unwrap_or_else(|| address.to_owned());
        let jwt = self.job_token(&audience).await?;
        let mount = self
            .settings
            .auth_mount
            .trim_matches('/')
            .split('/')
            .map(crate::adapters::github::encode_segment)
            .collect::<Vec<_>>()
            .join("/");
        let namespace = match scope {
            Scope::Vault { namespace, .. } => namespace.as_deref(),
            _ => None,
        };
        let (status, body) = self
            .call(
                Method::POST,
                &format!("{address}/v1/auth/{mount}/login"),
                None,
                namespace,
                Some(&json!({ "role": role, "jwt": jwt.expose_secret() })),
                "logging in to Vault",
            )
            .await
            .map_err(|e| e.message)?;
        match body["auth"]["client_token"].as_str() {
            Some(t) if status == 200 => Ok((jwt, SecretString::from(t.to_owned()))),
            _ => Err(format!(
                "Vault at {address} refused the JWT login as role {role} on auth/{mount} (HTTP {status}){}: check the role's bound claims (repository, ref, environment) and bound audience ({audience})",
                said(&body)
            )),
        }
    }

    /// The token `log_in` got for the scope's server and namespace; a JWT login's that is due
    /// for renewal is replaced by a fresh login first (its tokens masked at once).
    pub(super) async fn token(
        &self,
        address: &str,
        scope: &Scope,
    ) -> Result<SecretString, StoreError> {
        let key = realm(address, scope);
        let mut tokens = self.tokens.lock().await;
        let Some(held) = tokens.get(&key) else {
            return Err(error(
                StoreErrorKind::Unauthorized,
                format!("{scope}: not logged in to Vault (the run logs in before it starts)"),
                None,
            ));
        };
        let due = held
            .renew_at
            .is_some_and(|at| std::time::Instant::now() >= at);
        if !due {
            return Ok(held.token.clone());
        }
        let Some(role) = &self.settings.role else {
            return Ok(held.token.clone());
        };
        let fail = |m: String| error(StoreErrorKind::Unauthorized, m, None);
        let (jwt, token) = self.jwt_login(address, role, scope).await.map_err(|m| {
            fail(format!(
                "logging in to Vault again before the token ran out: {m}"
            ))
        })?;
        if let Some(mask) = &self.mask {
            mask(&jwt);
            mask(&token);
        }
        let ttl = self.token_ttl(address, &token, scope).await.map_err(fail)?;
        tokens.insert(
            key,
            HeldToken {
                token: token.clone(),
                renew_at: self.renewal(ttl),
            },
        );
        Ok(token)
    }
}
