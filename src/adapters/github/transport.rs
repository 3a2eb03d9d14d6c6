//! One request to GitHub and how its answer is read: the status as an error kind, the rate
//! limits, whether a retry may help, and how long GitHub asked to wait.

use super::*;

impl GitHub {
    pub(super) async fn once(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
        headers: Option<HeaderMap>,
    ) -> Result<Reply, Attempt> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let client = self.client_for(path);
        let transport = |e: &dyn std::fmt::Display| Attempt {
            error: GhError {
                kind: GhErrorKind::Unavailable,
                message: format!(
                    "{what}: could not reach GitHub at {} ({}): {e}",
                    self.base,
                    if self.base == "https://api.github.com" {
                        "the default; GITHUB_API_URL changes it"
                    } else {
                        "from GITHUB_API_URL"
                    }
                ),
                uncertain: method != http::Method::GET,
                status: None,
            },
            retry: true,
            retry_after: None,
        };
        // The whole exchange, answer included, within the call timeout: a request that never
        // answers is a lost answer (CONTRACT §12), settled like one.
        let exchange = async {
            let sent = match method {
                http::Method::GET => client._get_with_headers(path, headers).await,
                http::Method::PUT => client._put(path, body).await,
                http::Method::POST => client._post(path, body).await,
                http::Method::PATCH => client._patch(path, body).await,
                _ => unreachable!("only GET, PUT, POST and PATCH are used"),
            };
            let response = sent.map_err(|e| transport(&e))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = client
                .body_to_string(response)
                .await
                .map_err(|e| transport(&e))?;
            Ok((status, headers, body))
        };
        let (status, headers, body) =
            match tokio::time::timeout(self.pacing.call_timeout, exchange).await {
                Ok(done) => done?,
                Err(_) => {
                    return Err(transport(&format_args!(
                        "no answer within {} (AWS_KEY_ROTATOR_CALL_TIMEOUT_SECONDS)",
                        crate::human::duration(self.pacing.call_timeout)
                    )));
                }
            };
        let etag = headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok(Reply { status, etag, body });
        }
        Err(self.classify(status, &headers, &body, what, &method, path))
    }

    fn classify(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &str,
        what: &str,
        method: &http::Method,
        path: &str,
    ) -> Attempt {
        let github_message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_default();
        let retry_after = retry_after(headers, chrono::Utc::now());
        let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN
                && (retry_after.is_some() || github_message.to_lowercase().contains("rate limit")));
        let code = status.as_u16();
        let said = if github_message.is_empty() {
            String::new()
        } else {
            format!(" ({github_message})")
        };
        // GitHub asks for at least a minute before retrying a secondary rate limit that names no time.
        let retry_after = match (rate_limited, retry_after) {
            (true, None) => Some(Duration::from_secs(60)),
            (_, r) => r,
        };
        let (kind, retry, message) = if rate_limited {
            (
                GhErrorKind::Unavailable,
                true,
                format!("{what}: GitHub's rate limit answered {code}{said}"),
            )
        } else if status.is_server_error() {
            (
                GhErrorKind::Unavailable,
                true,
                format!("{what}: GitHub answered {code}{said}"),
            )
        } else {
            let (kind, message) = self.refusal(status, &said, what, method, path);
            (kind, false, message)
        };
        Attempt {
            error: GhError {
                kind,
                message,
                // A server error on a write does not say whether the write landed.
                uncertain: status.is_server_error() && *method != http::Method::GET,
                status: Some(code),
            },
            retry,
            retry_after,
        }
    }
}

impl GitHub {
    /// A 4xx answer in words: what kind of error, and what to do about it.
    fn refusal(
        &self,
        status: StatusCode,
        said: &str,
        what: &str,
        method: &http::Method,
        path: &str,
    ) -> (GhErrorKind, String) {
        let code = status.as_u16();
        match status {
            StatusCode::UNAUTHORIZED => {
                let fix = if self.has_token {
                    "the token is wrong or expired"
                } else {
                    "no token was given"
                };
                (
                    GhErrorKind::Unauthorized,
                    format!(
                        "{what}: GitHub answered 401{said}: {fix}. Give it as input github-token (CLI: env GITHUB_TOKEN): a fine-grained personal access token or a GitHub App installation token, or use app-id and app-private-key"
                    ),
                )
            }
            StatusCode::FORBIDDEN => (
                GhErrorKind::Forbidden,
                format!(
                    "{what}: GitHub answered 403{said}: {}",
                    forbidden_fix(method, path)
                ),
            ),
            StatusCode::NOT_FOUND => (
                GhErrorKind::NotFound,
                format!("{what}: GitHub answered 404{said}"),
            ),
            _ => (
                GhErrorKind::Rejected,
                format!("{what}: GitHub answered {code}{said}"),
            ),
        }
    }
}

/// What a 403 on `path` asks of the token.
fn forbidden_fix(method: &http::Method, path: &str) -> String {
    if path.contains("/actions/workflows/") || path.contains("/actions/runs/") {
        "the token cannot run workflows here. Give it \"Actions: write\" on this repository".into()
    } else if path.contains("/issues") {
        "the token cannot write issues here".into()
    } else if path.contains("/variables") {
        "give the token \"Variables: write\" on this repository (organization variables: the organization's \"Variables: write\")".into()
    } else if path.contains("/contents/") {
        "give the token \"Contents: read\" on this repository".into()
    } else if path.starts_with("/search/") {
        "the token cannot search code here".into()
    } else {
        let need = if *method == http::Method::GET {
            "read"
        } else {
            "write"
        };
        format!(
            "the token cannot {need} secrets here. The workflow's own GITHUB_TOKEN can never write secrets; use a fine-grained token with \"Secrets: write\" (and \"Environments: write\" for environment secrets) on this repository"
        )
    }
}

/// How long GitHub asked to wait, as of `now`: `retry-after` in seconds or as an HTTP date, else
/// the primary limit's reset time when no request is left (`x-ratelimit-remaining: 0`). At
/// least a second when GitHub names a time at all.
pub(super) fn retry_after(
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    let until = |at: i64| Duration::from_secs((at - now.timestamp()).max(1) as u64);
    if let Some(s) = header("retry-after") {
        if let Ok(secs) = s.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = chrono::DateTime::parse_from_rfc2822(s) {
            return Some(until(at.timestamp()));
        }
    }
    if header("x-ratelimit-remaining") == Some("0") {
        return header("x-ratelimit-reset")
            .and_then(|s| s.parse::<i64>().ok())
            .map(until);
    }
    None
}
