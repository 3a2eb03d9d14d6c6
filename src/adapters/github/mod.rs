//! GitHub REST adapters on octocrab's raw requests: retries and pacing live here.
//!
//! octocrab's typed handlers are not used: its environment-secret handler takes the legacy
//! repository-id path without URL-encoding, and its default retry resends every method. Its
//! retry layer is compiled out (feature `retry` off); this module retries deliberately.

mod alerts;
mod app;
mod code_search;
pub mod governor;
mod inventory;
mod issues;
mod secrets;
mod transport;
#[cfg(test)]
use transport::retry_after;
mod variables;
mod workflows;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use http::{HeaderMap, StatusCode};
use octocrab::Octocrab;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::ports::{GhError, GhErrorKind};

/// How long any AWS or GitHub request may take by default (CONTRACT §12).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Knobs for talking to GitHub; the defaults follow GitHub's guidance.
#[derive(Clone, Debug)]
pub struct Pacing {
    /// Minimum time between two content-creating requests (GitHub asks for about a second).
    pub write_interval: Duration,
    /// First retry delay; doubles up to 4 attempts in all.
    pub retry_base: Duration,
    /// The longest `retry-after` honoured before giving up.
    pub max_wait: Duration,
    /// Content-creating requests allowed in any minute, and in any hour (GitHub allows about
    /// 80 and 500 per token; the hour keeps room for a person's own work).
    pub per_minute: usize,
    pub per_hour: usize,
    /// GitHub's clock runs this many times fast (a benchmark's fake; 1 for GitHub itself).
    pub clock_speedup: u32,
    /// The longest a request may take, answer included (then it is a lost answer).
    pub call_timeout: Duration,
    /// Time between two code search requests (GitHub allows 10 a minute).
    pub search_interval: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        let limits = governor::Limits::default();
        Self {
            write_interval: limits.spacing,
            retry_base: Duration::from_secs(1),
            max_wait: Duration::from_secs(300),
            per_minute: limits.per_minute,
            per_hour: limits.per_hour,
            clock_speedup: 1,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            search_interval: Duration::from_secs(6),
        }
    }
}

impl Pacing {
    fn limits(&self) -> governor::Limits {
        governor::Limits {
            spacing: self.write_interval,
            per_minute: self.per_minute,
            per_hour: self.per_hour,
            ..governor::Limits::default()
        }
        .sped_up(self.clock_speedup)
    }
}

pub struct GitHub {
    client: Octocrab,
    /// With a GitHub App: one client per owner, with that owner's installation token.
    owners: HashMap<String, Octocrab>,
    /// Requests sent (every attempt), for `discover`'s report of what it cost.
    requests: std::sync::atomic::AtomicUsize,
    /// `GITHUB_API_URL`, for messages about reaching it.
    base: String,
    has_token: bool,
    pacing: Pacing,
    /// Every content-creating request of the process goes through it.
    governor: Mutex<governor::Governor>,
    /// The governor's clock starts here.
    started: Instant,
    runs: workflows::RunCache,
    /// The server refused `return_run_details` once (GitHub Enterprise Server 3.20 and older):
    /// later dispatches do without.
    run_details_refused: std::sync::atomic::AtomicBool,
    /// When the last code search request went out.
    last_search: Mutex<Option<Instant>>,
}

enum ClientAuth {
    Token(SecretString),
    App(octocrab::models::AppId, jsonwebtoken::EncodingKey),
}

/// CONTRACT §12: the token never travels in clear. `GITHUB_API_URL` must be `https://`, except
/// for a loopback host (`127.0.0.0/8`, `::1`, `localhost`) or with `allow_http`
/// (`AWS_KEY_ROTATOR_ALLOW_HTTP=1`, for emulators on other hosts).
pub fn check_api_url(api_url: &str, allow_http: bool) -> Result<(), String> {
    crate::adapters::net::require_tls("GITHUB_API_URL", api_url, allow_http).map_err(|e| {
        format!("{e} (GitHub: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server)")
    })
}

/// An octocrab client for `api_url`: GitHub's media type and API version, timeouts, and no
/// retry layer (this adapter retries deliberately).
fn client(api_url: &str, auth: Option<ClientAuth>) -> Result<Octocrab, String> {
    let mut builder = Octocrab::builder()
        .base_uri(api_url.trim_end_matches('/'))
        .map_err(|e| format!("GITHUB_API_URL {api_url:?} is not a valid URL: {e}"))?
        .add_header(http::header::ACCEPT, "application/vnd.github+json".into())
        .add_header(
            http::HeaderName::from_static("x-github-api-version"),
            "2022-11-28".into(),
        )
        .set_connect_timeout(Some(Duration::from_secs(10)))
        .set_read_timeout(Some(Duration::from_secs(30)));
    match auth {
        None => {}
        Some(ClientAuth::Token(t)) => builder = builder.personal_token(t),
        Some(ClientAuth::App(id, key)) => builder = builder.app(id, key),
    }
    builder
        .build()
        .map_err(|e| format!("could not set up the GitHub client: {e}"))
}

/// GitHub's largest page.
const PER_PAGE: usize = 100;

/// A finished exchange: status, `ETag` and body text.
struct Reply {
    status: StatusCode,
    etag: Option<String>,
    body: String,
}

/// Why one attempt failed, with what the retry loop needs.
#[derive(Debug)]
struct Attempt {
    error: GhError,
    retry: bool,
    retry_after: Option<Duration>,
}

impl GitHub {
    /// `api_url` is `GITHUB_API_URL` (GitHub Enterprise Server: `https://HOST/api/v3`); plain http works.
    pub fn new(api_url: &str, token: Option<SecretString>, pacing: Pacing) -> Result<Self, String> {
        let token = token.filter(|t| !t.expose_secret().trim().is_empty());
        let has_token = token.is_some();
        let client = client(api_url, token.map(ClientAuth::Token))?;
        let limits = pacing.limits();
        Ok(Self {
            client,
            owners: HashMap::new(),
            requests: Default::default(),
            base: api_url.trim_end_matches('/').to_owned(),
            has_token,
            pacing,
            governor: Mutex::new(governor::Governor::new(limits)),
            started: Instant::now(),
            runs: Default::default(),
            run_details_refused: Default::default(),
            last_search: Mutex::new(None),
        })
    }

    /// The client for a request: the installation token of the path's owner, when
    /// authenticated as an App; else the one client.
    ///
    /// An installation's own endpoints (`/installation/…`) name their owner in an `owner=`
    /// query parameter, which only picks the token here (GitHub ignores it).
    fn client_for(&self, path: &str) -> &Octocrab {
        let mut segments = path.trim_start_matches('/').split('/');
        let owner = match (segments.next(), segments.next()) {
            (Some("repos" | "orgs" | "users"), Some(owner)) => owner.to_ascii_lowercase(),
            (Some("search"), Some(rest)) => {
                match rest
                    .split_once('?')
                    .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("owner=")))
                {
                    Some(owner) => owner.to_ascii_lowercase(),
                    None => return &self.client,
                }
            }
            (Some("installation"), Some(rest)) => match rest
                .split_once('?')
                .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("owner=")))
            {
                Some(owner) => owner.to_ascii_lowercase(),
                None => return &self.client,
            },
            _ => return &self.client,
        };
        self.owners.get(&owner).unwrap_or(&self.client)
    }

    /// Waits so that writes are at least `write_interval` apart.
    /// Waits for the governor's next slot: spacing, the per-minute and hourly caps, and any
    /// pause GitHub asked for. Writes go one at a time.
    async fn pace_write(&self) {
        let mut g = self.governor.lock().await;
        let slot = g.next_slot(self.started.elapsed());
        let wait = slot.saturating_sub(self.started.elapsed());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        g.record(slot.max(self.started.elapsed()));
    }

    /// Every page of a list endpoint (`?per_page=100&page=N`), parsed by `page`.
    pub(super) async fn all_pages<T: DeserializeOwned, I>(
        &self,
        path: &str,
        what: &str,
        page_items: impl Fn(T) -> Vec<I>,
    ) -> Result<Vec<I>, GhError> {
        let mut items = Vec::new();
        for page in 1.. {
            let sep = if path.contains('?') { '&' } else { '?' };
            let reply = self
                .send(
                    http::Method::GET,
                    &format!("{path}{sep}per_page={PER_PAGE}&page={page}"),
                    None,
                    what,
                )
                .await?;
            let body: T = serde_json::from_str(&reply.body).map_err(|e| unexpected(what, e))?;
            let got = page_items(body);
            let n = got.len();
            items.extend(got);
            if n < PER_PAGE {
                break;
            }
        }
        Ok(items)
    }

    /// How many more writes this process's hour allows.
    pub async fn writes_left_this_hour(&self) -> usize {
        self.governor
            .lock()
            .await
            .left_this_hour(self.started.elapsed())
    }

    /// GitHub answered a write with a secondary rate limit: every write waits `wait`.
    async fn pause_writes(&self, wait: Duration) {
        self.governor
            .lock()
            .await
            .pause_until(self.started.elapsed() + wait);
    }

    /// One request with retries on 5xx, 429, rate-limited 403 and transport errors.
    /// `what` names the request in errors ("writing secret X in Y").
    async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<Reply, GhError> {
        self.send_with(method, path, body, what, None).await
    }

    /// [`GitHub::send`] with extra request headers (e.g. `If-None-Match`).
    async fn send_with(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
        headers: Option<HeaderMap>,
    ) -> Result<Reply, GhError> {
        debug_assert!(method != http::Method::POST, "POSTs go through send_once");
        // Once any attempt may have landed, the request stays "may have landed".
        let uncertain = std::cell::Cell::new(false);
        let attempt = || async {
            let write = method != http::Method::GET;
            if write {
                self.pace_write().await;
            }
            let result = self
                .once(method.clone(), path, body, what, headers.clone())
                .await
                .inspect_err(|a| uncertain.set(uncertain.get() || a.error.uncertain));
            if let Err(a) = &result
                && write
                && a.error.status.is_some_and(|s| s == 403 || s == 429)
                && let Some(wait) = a.retry_after
            {
                // A secondary limit is the token's, not this request's: every write waits.
                self.pause_writes(wait).await;
            }
            result
        };
        let max_wait = self.pacing.max_wait;
        attempt
            .retry(
                ExponentialBuilder::new()
                    .with_min_delay(self.pacing.retry_base)
                    .with_max_times(3),
            )
            .when(|a: &Attempt| a.retry)
            .adjust(move |a: &Attempt, planned| match (a.retry_after, planned) {
                (_, None) => None,
                (Some(wait), Some(_)) if wait <= max_wait => Some(wait),
                (Some(_), Some(_)) => None,
                (None, planned) => planned,
            })
            .notify(|a, wait| {
                tracing::warn!("{}; retrying in {}", a.error, crate::human::duration(wait))
            })
            .await
            .map_err(|a| {
                let mut e = a.error;
                e.uncertain |= uncertain.get();
                e
            })
    }

    /// A request that must not be repeated blindly (a workflow dispatch): one attempt, paced.
    /// A server error or a lost answer is `uncertain`: the request may have taken effect.
    async fn send_once(
        &self,
        path: &str,
        body: &serde_json::Value,
        what: &str,
    ) -> Result<Reply, GhError> {
        let mut waits = 0;
        loop {
            self.pace_write().await;
            match self
                .once(http::Method::POST, path, Some(body), what, None)
                .await
            {
                Ok(reply) => return Ok(reply),
                // A rate-limited request was not processed: waiting and sending it again is safe.
                Err(a)
                    if a.error.status.is_some_and(|s| s == 429 || s == 403)
                        && a.retry
                        && waits < 3 =>
                {
                    let wait = a.retry_after.unwrap_or(self.pacing.retry_base);
                    if wait > self.pacing.max_wait {
                        return Err(a.error);
                    }
                    self.pause_writes(wait).await;
                    tracing::warn!(
                        "{}; sending it again in {}",
                        a.error,
                        crate::human::duration(wait)
                    );
                    tokio::time::sleep(wait).await;
                    waits += 1;
                }
                Err(a) => {
                    let mut e = a.error;
                    e.uncertain |= e.status.is_none_or(|s| s >= 500);
                    return Err(e);
                }
            }
        }
    }

    /// How many requests this client has sent.
    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `/repos/{owner}/{repo}/…` or `/repos/{owner}/{repo}/environments/{name}/…`, encoded.
/// `owner/name` for a path, each part encoded.
pub(crate) fn repo_path(r: &str) -> String {
    r.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) fn encode_segment(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// An answer GitHub should not have given (a body that does not parse).
pub(crate) fn unexpected(what: &str, e: impl std::fmt::Display) -> GhError {
    GhError {
        kind: GhErrorKind::Rejected,
        message: format!("{what}: unexpected answer from GitHub: {e}"),
        uncertain: false,
        status: None,
    }
}

#[cfg(test)]
mod tests;
