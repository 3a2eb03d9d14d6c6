//! HashiCorp Vault and OpenBao KV v2 consumers (CONTRACT §14): a readable store. A write reads
//! the secret (its other fields and its version), writes the merged map with check-and-set on
//! that version, and a conflict (someone wrote meanwhile) is read again and tried once more.
//! Auth: `VAULT_TOKEN`, or a JWT login with the job's GitHub OIDC token.
//!
//! A few HTTP calls (the job's OIDC token, the login, a token's lifetime, read, write), on the
//! hyper and rustls stack octocrab already brings (no client crate: `vaultrs` would add reqwest
//! and a second TLS setup for these).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use crate::manifest::Scope;
use crate::ports::{StoreError, StoreErrorKind};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

mod auth;

/// How to reach and authenticate to Vault.
#[derive(Clone, Debug, Default)]
pub struct VaultSettings {
    /// `VAULT_ADDR`: the server of consumers that name none.
    pub address: Option<String>,
    /// `VAULT_TOKEN`.
    pub token: Option<SecretString>,
    /// Input `vault-role`: log in with the job's GitHub OIDC token as this JWT role.
    pub role: Option<String>,
    /// Input `vault-auth-mount` (default `jwt`).
    pub auth_mount: String,
    /// Input `vault-audience` (default: the Vault address).
    pub audience: Option<String>,
    /// `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN` (a job with
    /// `permissions: id-token: write`).
    pub id_token_request: Option<(String, SecretString)>,
    pub call_timeout: Duration,
    /// How long this run may need its token: a shorter-lived one is refused before anything
    /// changes (it would expire before a rollback).
    pub min_token_ttl: Duration,
    /// `AWS_KEY_ROTATOR_ALLOW_HTTP=1`: plain http to a server that is not on loopback.
    pub allow_http: bool,
}

pub struct Vault {
    http: Client<Https, Full<Bytes>>,
    settings: VaultSettings,
    /// The token for each server and namespace, once logged in.
    tokens: Mutex<HashMap<String, HeldToken>>,
    /// Masks a secret the moment it exists (the tokens of a login made during the run).
    mask: Option<Masker>,
    /// The secret a read just fetched, for the read of its other field that follows (both
    /// fields from one version); any write forgets it.
    last_read: Mutex<Option<LastRead>>,
}

pub use crate::ports::Mask as Masker;

/// A token, and when a JWT login's token is to be replaced by a fresh login (CONTRACT §12a:
/// a short token TTL is good practice; the job's OIDC token can always log in again).
struct HeldToken {
    token: SecretString,
    renew_at: Option<std::time::Instant>,
}

/// A secret's fields as a read found them, and when.
type LastRead = (Scope, Map<String, Value>, std::time::Instant);

/// A secret's URL (`…/v1/MOUNT/data/PATH`), the token for it and its namespace.
type Target = (String, SecretString, Option<String>);

/// How soon the read of a secret's other field must follow to take the same version.
const PAIRED_READ: Duration = Duration::from_secs(2);

/// Where a token is good: a server, and a namespace on it.
fn realm(address: &str, scope: &Scope) -> String {
    match scope {
        Scope::Vault {
            namespace: Some(n), ..
        } => format!("{address} namespace {n}"),
        _ => address.to_owned(),
    }
}

/// Plain http only to loopback (a local server), unless allowed: a token and a key never
/// travel in clear.
fn check_address(address: &str, allow_http: bool) -> Result<(), String> {
    crate::adapters::net::require_tls("the Vault address", address, allow_http)
}

/// A KV v2 secret as read: its fields, its version and when that version was written.
struct Kv {
    data: Map<String, Value>,
    version: u64,
    written: Option<DateTime<Utc>>,
}

fn error(kind: StoreErrorKind, message: String, status: Option<u16>) -> StoreError {
    StoreError {
        kind,
        message,
        uncertain: false,
        status,
    }
}

/// Vault's own words for a failed request (`{"errors": [...]}`), never a value.
fn said(body: &Value) -> String {
    body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|s| !s.is_empty())
        .map(|s| format!(" ({s})"))
        .unwrap_or_default()
}

impl Vault {
    pub fn new(settings: VaultSettings) -> Result<Self, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("could not load the system's CA certificates for Vault: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Ok(Self {
            http,
            settings,
            tokens: Mutex::new(HashMap::new()),
            last_read: Mutex::new(None),
            mask: None,
        })
    }

    /// Masks every token a login during the run makes with `mask`.
    pub fn masking_with(mut self, mask: Masker) -> Self {
        self.mask = Some(mask);
        self
    }

    /// The server of `scope`.
    fn address(&self, scope: &Scope) -> Result<String, StoreError> {
        let Scope::Vault { address, .. } = scope else {
            return Err(error(
                StoreErrorKind::Rejected,
                format!("{scope} is not a Vault secret"),
                None,
            ));
        };
        address
            .clone()
            .or_else(|| self.settings.address.clone())
            .map(|a| a.trim_end_matches('/').to_owned())
            .ok_or_else(|| {
                error(
                    StoreErrorKind::Unauthorized,
                    format!(
                        "{scope}: no Vault address: set VAULT_ADDR, or `address` in the manifest"
                    ),
                    None,
                )
            })
    }

    /// One request; `Ok` with the status and the body as JSON (`Null` when empty).
    async fn call(
        &self,
        method: Method,
        url: &str,
        token: Option<&SecretString>,
        namespace: Option<&str>,
        body: Option<&Value>,
        what: &str,
    ) -> Result<(u16, Value), StoreError> {
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(url)
            .header(http::header::ACCEPT, "application/json");
        if let Some(t) = token {
            request = request.header("X-Vault-Token", t.expose_secret());
        }
        if let Some(n) = namespace {
            request = request.header("X-Vault-Namespace", n);
        }
        let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = request
            .body(Full::new(payload))
            .map_err(|e| error(StoreErrorKind::Rejected, format!("{what}: {e}"), None))?;
        let sent = method != Method::GET;
        let lost = |m: String| StoreError {
            kind: StoreErrorKind::Unavailable,
            message: m,
            uncertain: sent,
            status: None,
        };
        let exchange = async {
            let reply = self
                .http
                .request(request)
                .await
                .map_err(|e| lost(format!("{what}: could not reach {url}: {e}")))?;
            let status = reply.status().as_u16();
            let bytes = reply
                .into_body()
                .collect()
                .await
                .map_err(|e| lost(format!("{what}: the answer was cut off: {e}")))?
                .to_bytes();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok((status, body))
        };
        tokio::time::timeout(self.settings.call_timeout, exchange)
            .await
            .map_err(|_| {
                lost(format!(
                    "{what}: no answer within {:?}",
                    self.settings.call_timeout
                ))
            })?
    }

    /// `MOUNT/data/PATH` of `scope`, with its token and namespace.
    async fn target(&self, scope: &Scope) -> Result<Target, StoreError> {
        let Scope::Vault {
            mount,
            path,
            namespace,
            ..
        } = scope
        else {
            return Err(error(
                StoreErrorKind::Rejected,
                format!("{scope} is not a Vault secret"),
                None,
            ));
        };
        let address = self.address(scope)?;
        let token = self.token(&address, scope).await?;
        let segments = |s: &str| {
            s.split('/')
                .map(crate::adapters::github::encode_segment)
                .collect::<Vec<_>>()
                .join("/")
        };
        Ok((
            format!("{address}/v1/{}/data/{}", segments(mount), segments(path)),
            token,
            namespace.clone(),
        ))
    }

    /// The secret as it is; `None` when it does not exist (or only deleted versions do).
    async fn read_kv(&self, scope: &Scope) -> Result<Option<Kv>, StoreError> {
        let target = self.target(scope).await?;
        self.read_kv_at(scope, &target).await
    }

    /// [`Vault::read_kv`] at a target already resolved.
    async fn read_kv_at(&self, scope: &Scope, target: &Target) -> Result<Option<Kv>, StoreError> {
        let (url, token, namespace) = target;
        let what = format!("reading {scope}");
        let (status, body) = self
            .call(
                Method::GET,
                url,
                Some(token),
                namespace.as_deref(),
                None,
                &what,
            )
            .await?;
        match status {
            200 => {
                let data = body["data"]["data"].as_object().cloned();
                let version = body["data"]["metadata"]["version"].as_u64().unwrap_or(0);
                let written = body["data"]["metadata"]["created_time"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc));
                Ok(data.map(|data| Kv {
                    data,
                    version,
                    written,
                }))
            }
            404 => Ok(None),
            s => Err(self.refusal(&what, s, &body)),
        }
    }

    fn refusal(&self, what: &str, status: u16, body: &Value) -> StoreError {
        let (kind, fix) = match status {
            401 => (
                StoreErrorKind::Unauthorized,
                ": the Vault token is missing or expired",
            ),
            403 => (
                StoreErrorKind::Forbidden,
                ": the token's policy needs read, create and update on MOUNT/data/PATH (see docs/vault-policy.hcl), or the token expired",
            ),
            s if s >= 500 || s == 429 => (StoreErrorKind::Unavailable, ""),
            _ => (StoreErrorKind::Rejected, ""),
        };
        StoreError {
            kind,
            message: format!("{what}: Vault answered {status}{}{fix}", said(body)),
            uncertain: false,
            status: Some(status),
        }
    }

    /// Writes `fields` into the secret, keeping its others: read, merge, write with
    /// check-and-set on the version read; a conflict is read again and tried once more.
    async fn put_fields(
        &self,
        scope: &Scope,
        fields: &[(&str, &SecretString)],
    ) -> Result<(), StoreError> {
        let what = format!("writing {scope}");
        *self.last_read.lock().await = None;
        let target = self.target(scope).await?;
        let (url, token, namespace) = &target;
        for attempt in 0..2 {
            let Some(mut kv) = self.read_kv_at(scope, &target).await? else {
                return Err(missing(scope));
            };
            for (name, value) in fields {
                kv.data.insert(
                    (*name).to_owned(),
                    Value::String(value.expose_secret().to_owned()),
                );
            }
            let body = json!({ "options": { "cas": kv.version }, "data": kv.data });
            let (status, reply) = self
                .call(
                    Method::POST,
                    url,
                    Some(token),
                    namespace.as_deref(),
                    Some(&body),
                    &what,
                )
                .await?;
            match status {
                200 | 204 => return Ok(()),
                400 if said(&reply).contains("check-and-set") && attempt == 0 => continue,
                400 if said(&reply).contains("check-and-set") => {
                    return Err(error(
                        StoreErrorKind::Rejected,
                        format!(
                            "{what}: another writer changed it between this run's read and its write, twice (check-and-set): nothing of this run was written"
                        ),
                        Some(400),
                    ));
                }
                s => {
                    // A server error may come after the write landed.
                    let mut e = self.refusal(&what, s, &reply);
                    e.uncertain = s >= 500;
                    return Err(e);
                }
            }
        }
        unreachable!("the loop returns")
    }
}

fn missing(scope: &Scope) -> StoreError {
    error(
        StoreErrorKind::NotFound,
        format!(
            "{scope} does not exist (or its mount is not a KV v2 engine): create it first (bao kv put / vault kv put), so that the tool knows what it held"
        ),
        Some(404),
    )
}

impl Vault {
    pub async fn updated_at(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .read_kv(scope)
            .await?
            .filter(|kv| kv.data.contains_key(name))
            .and_then(|kv| kv.written))
    }
    pub async fn put(
        &self,
        scope: &Scope,
        name: &str,
        value: &SecretString,
    ) -> Result<(), StoreError> {
        self.put_fields(scope, &[(name, value)]).await
    }
    pub async fn put_pair(
        &self,
        scope: &Scope,
        names: [&str; 2],
        values: [&SecretString; 2],
    ) -> Result<(), StoreError> {
        self.put_fields(scope, &[(names[0], values[0]), (names[1], values[1])])
            .await
    }
    /// One field. The read of the other field that follows at once takes the same version
    /// (the pair read before a write, and read back after it, is one version's).
    pub async fn read(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<SecretString>, StoreError> {
        let cached = {
            let mut last = self.last_read.lock().await;
            match last.take() {
                Some((s, data, at)) if &s == scope && at.elapsed() < PAIRED_READ => Some(data),
                _ => None,
            }
        };
        let data = match cached {
            Some(data) => data,
            None => {
                let Some(kv) = self.read_kv(scope).await? else {
                    return Err(missing(scope));
                };
                *self.last_read.lock().await =
                    Some((scope.clone(), kv.data.clone(), std::time::Instant::now()));
                kv.data
            }
        };
        Ok(data
            .get(name)
            .and_then(Value::as_str)
            .map(|v| SecretString::from(v.to_owned())))
    }
}
