//! Secret scanning alerts (CONTRACT §17): the open alerts of type `aws_access_key_id` of an
//! organization or a repository, and resolving one as revoked.

use serde::Deserialize;
use serde_json::json;

use super::{GitHub, encode_segment, repo_path};
use crate::ports::{Alerts, GhError, GhErrorKind, KeyAlert};

/// GitHub's name for an AWS access key id found in code.
pub const SECRET_TYPE: &str = "aws_access_key_id";

#[derive(Deserialize)]
struct AlertEntry {
    number: u64,
    #[serde(default)]
    secret_type: Option<String>,
    /// For this type, the access key id (not the secret access key).
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    validity: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

/// The alerts of `page` that name an access key id; `repository` when the endpoint is one
/// repository's (its entries may not repeat it). Anything else GitHub lists is dropped unread:
/// an alert of another type holds a secret this tool has no business keeping.
fn key_alerts(page: Vec<AlertEntry>, repository: Option<&str>) -> Vec<KeyAlert> {
    page.into_iter()
        .filter(|a| a.secret_type.as_deref() == Some(SECRET_TYPE))
        .filter_map(|a| {
            let key_id = a.secret.filter(|s| crate::model::is_access_key_id(s))?;
            let repository = a
                .repository
                .map(|r| r.full_name)
                .or_else(|| repository.map(str::to_owned))?;
            Some(KeyAlert {
                repository,
                number: a.number,
                key_id,
                validity: a.validity,
                url: a.html_url.unwrap_or_default(),
            })
        })
        .collect()
}

const OPEN: &str = "state=open&secret_type=aws_access_key_id";

impl Alerts for GitHub {
    async fn org_key_alerts(&self, org: &str) -> Result<Option<Vec<KeyAlert>>, GhError> {
        let what = format!("listing the open secret scanning alerts of organization {org}");
        let path = format!(
            "/orgs/{}/secret-scanning/alerts?{OPEN}",
            encode_segment(org)
        );
        match self
            .all_pages(&path, &what, |p: Vec<AlertEntry>| key_alerts(p, None))
            .await
        {
            Ok(found) => Ok(Some(found)),
            Err(e) if e.kind == GhErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn repo_key_alerts(&self, repository: &str) -> Result<Vec<KeyAlert>, GhError> {
        let what = format!("listing the open secret scanning alerts of {repository}");
        let path = format!(
            "/repos/{}/secret-scanning/alerts?{OPEN}",
            repo_path(repository)
        );
        self.all_pages(&path, &what, |p: Vec<AlertEntry>| {
            key_alerts(p, Some(repository))
        })
        .await
    }

    async fn resolve_alert(
        &self,
        repository: &str,
        number: u64,
        comment: &str,
    ) -> Result<(), GhError> {
        let what = format!("resolving secret scanning alert #{number} of {repository}");
        self.send(
            http::Method::PATCH,
            &format!(
                "/repos/{}/secret-scanning/alerts/{number}",
                repo_path(repository)
            ),
            Some(&json!({
                "state": "resolved",
                "resolution": "revoked",
                "resolution_comment": comment,
            })),
            &what,
        )
        .await
        .map(drop)
    }
}
