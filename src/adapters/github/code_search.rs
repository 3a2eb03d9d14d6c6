//! GitHub code search (CONTRACT §18) and a file's text through the contents API. Code search has
//! its own limit (10 requests a minute for a token, apart from the REST limit): every search
//! request of the process waits its turn ([`Pacing::search_interval`] apart).

use base64::Engine as _;
use serde::Deserialize;

use super::{GitHub, encode_segment, repo_path, unexpected};
use crate::ports::discover::{CodeHit, CodeResults, CodeSearch};
use crate::ports::{GhError, GhErrorKind};

/// Code search answers at most 1,000 results: ten pages of 100.
const MAX_PAGES: usize = 10;

#[derive(Deserialize)]
struct SearchPage {
    #[serde(default)]
    total_count: u64,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    path: String,
    repository: Repository,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct FileBody {
    #[serde(default)]
    content: String,
    #[serde(default)]
    encoding: String,
}

impl GitHub {
    /// Waits until the last search request is `search_interval` behind.
    async fn pace_search(&self) {
        let mut last = self.last_search.lock().await;
        if let Some(at) = *last {
            let due = at + self.pacing.search_interval;
            let now = std::time::Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
        *last = Some(std::time::Instant::now());
    }

    /// The text of a repository's file (default branch), base64-decoded.
    pub(super) async fn file_at(
        &self,
        repository: &str,
        path: &str,
    ) -> Result<Option<String>, GhError> {
        let what = format!("reading {path} of {repository}");
        let url = format!(
            "/repos/{}/contents/{}",
            repo_path(repository),
            path.split('/')
                .map(encode_segment)
                .collect::<Vec<_>>()
                .join("/")
        );
        let reply = match self.send(http::Method::GET, &url, None, &what).await {
            Ok(r) => r,
            Err(e) if e.kind == GhErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let body: FileBody = serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
        // Over a megabyte the contents API answers no content (`encoding: none`).
        if body.encoding != "base64" {
            return Ok(None);
        }
        let packed: String = body.content.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .map_err(|e| unexpected(&what, e))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

impl CodeSearch for GitHub {
    async fn search_code(&self, query: &str) -> Result<CodeResults, GhError> {
        let what = format!("searching code for {}", crate::text::quoted(query));
        // With a GitHub App, the searched owner's installation token (`owner=` picks it).
        let owner = query
            .split_whitespace()
            .find_map(|w| w.strip_prefix("user:").or_else(|| w.strip_prefix("org:")))
            .unwrap_or_default();
        let q = percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC);
        let mut hits = Vec::new();
        let mut total = 0;
        for page in 1..=MAX_PAGES {
            self.pace_search().await;
            let path = format!(
                "/search/code?q={q}&per_page={}&page={page}&owner={}",
                super::PER_PAGE,
                encode_segment(owner)
            );
            let reply = self.send(http::Method::GET, &path, None, &what).await?;
            let body: SearchPage =
                serde_json::from_str(&reply.body).map_err(|e| unexpected(&what, e))?;
            let n = body.items.len();
            total = total.max(body.total_count);
            hits.extend(body.items.into_iter().map(|i| CodeHit {
                repository: i.repository.full_name,
                path: i.path,
            }));
            if n < super::PER_PAGE {
                break;
            }
        }
        Ok(CodeResults { hits, total })
    }

    async fn file_text(&self, repository: &str, path: &str) -> Result<Option<String>, GhError> {
        self.file_at(repository, path).await
    }
}
