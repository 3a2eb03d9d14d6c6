use std::cell::RefCell;

use super::*;
use crate::model::KeyInfo;
use crate::ports::{GhError, KeyAlert};
use crate::rotation::journal::{Exposure, ExposureSource};
use crate::rotation::outcome::{ExposureReport, Outcome};

/// GitHub's secret scanning, in memory: organizations' and repositories' alerts, answers
/// that refuse, and the resolutions asked for.
#[derive(Default)]
struct Scanning {
    orgs: Vec<(&'static str, Vec<KeyAlert>)>,
    repos: Vec<(&'static str, Result<Vec<KeyAlert>, GhErrorKind>)>,
    refuse_org: Option<&'static str>,
    asked: RefCell<Vec<String>>,
    resolved: RefCell<Vec<(String, u64, String)>>,
}

fn refused(kind: GhErrorKind) -> GhError {
    GhError {
        kind,
        message: format!("{kind:?}"),
        uncertain: false,
        status: None,
    }
}

impl Alerts for Scanning {
    async fn org_key_alerts(&self, org: &str) -> Result<Option<Vec<KeyAlert>>, GhError> {
        self.asked.borrow_mut().push(format!("org {org}"));
        if self.refuse_org == Some(org) {
            return Err(refused(GhErrorKind::Forbidden));
        }
        Ok(self
            .orgs
            .iter()
            .find(|(o, _)| *o == org)
            .map(|(_, a)| a.clone()))
    }
    async fn repo_key_alerts(&self, repository: &str) -> Result<Vec<KeyAlert>, GhError> {
        self.asked.borrow_mut().push(format!("repo {repository}"));
        match self.repos.iter().find(|(r, _)| *r == repository) {
            Some((_, Ok(a))) => Ok(a.clone()),
            Some((_, Err(kind))) => Err(refused(*kind)),
            None => Err(refused(GhErrorKind::NotFound)),
        }
    }
    async fn resolve_alert(
        &self,
        repository: &str,
        number: u64,
        comment: &str,
    ) -> Result<(), GhError> {
        self.resolved
            .borrow_mut()
            .push((repository.to_owned(), number, comment.to_owned()));
        Ok(())
    }
}

fn alert(repository: &str, number: u64, key_id: &str) -> KeyAlert {
    KeyAlert {
        repository: repository.into(),
        number,
        key_id: key_id.into(),
        validity: Some("active".into()),
        url: String::new(),
    }
}

fn users() -> Vec<UserSpec> {
    let text = r#"
version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
        secrets: { access-key-id: A, secret-access-key: S }
      - repository: mona/tool
        secrets: { access-key-id: A, secret-access-key: S }
      - repository: mona/site
        environment: prod
        secrets: { access-key-id: A, secret-access-key: S }
"#;
    crate::manifest::parse("m.yml", text).unwrap().users
}

#[tokio::test]
async fn an_organizations_alerts_are_read_at_once_and_a_users_repository_by_repository() {
    let github = Scanning {
        orgs: vec![("acme", vec![alert("acme/api", 3, "AKIAEXPOSED000000001")])],
        repos: vec![
            (
                "mona/tool",
                Ok(vec![alert("mona/tool", 1, "AKIAEXPOSED000000002")]),
            ),
            // Secret scanning is off there: nothing to see, and nothing to warn about.
            ("mona/site", Err(GhErrorKind::NotFound)),
        ],
        ..Scanning::default()
    };
    let seen = look(&github, &users()).await;
    assert_eq!(
        github.asked.borrow().as_slice(),
        ["org acme", "org mona", "repo mona/site", "repo mona/tool"]
    );
    let ids: Vec<_> = seen.alerts.iter().map(|a| a.key_id.as_str()).collect();
    assert_eq!(ids, ["AKIAEXPOSED000000001", "AKIAEXPOSED000000002"]);
    assert_eq!(seen.warning(), None);
}

#[tokio::test]
async fn alerts_the_token_may_not_read_are_one_warning_naming_the_permission() {
    let github = Scanning {
        refuse_org: Some("acme"),
        repos: vec![("mona/tool", Err(GhErrorKind::Forbidden))],
        ..Scanning::default()
    };
    let seen = look(&github, &users()).await;
    assert!(seen.alerts.is_empty());
    let w = seen.warning().expect("a warning");
    assert!(
        w.contains("acme (Forbidden)") && w.contains("mona/tool (Forbidden)"),
        "{w}"
    );
    assert!(
        w.contains("secret_scanning_alerts: read") && w.contains("the run goes on"),
        "{w}"
    );
}

#[tokio::test]
async fn an_alert_is_resolved_once_its_key_is_inactive_or_deleted_and_not_before() {
    let user = &users()[0];
    let key = |id: &str, status| KeyInfo {
        id: id.into(),
        status,
        created: chrono::Utc::now(),
    };
    let mut report = UserReport::new(user, Outcome::Rotated);
    report.keys.list = vec![
        key("AKIAEXPOSED000000001", KeyStatus::Inactive),
        key("AKIANEWKEY0000000001", KeyStatus::Active),
    ];
    report.exposure = Some(ExposureReport {
        sighting: Exposure {
            keys: vec!["AKIAEXPOSED000000001".into(), "AKIADELETED000000001".into()],
            source: ExposureSource::Alert,
            at: chrono::Utc::now(),
        },
        quarantined: false,
        trail: None,
    });
    let alerts = [
        alert("acme/api", 3, "AKIAEXPOSED000000001"),
        alert("acme/api", 4, "AKIANEWKEY0000000001"),
        alert("mona/tool", 1, "AKIADELETED000000001"),
        alert("mona/tool", 2, "AKIASTRANGER00000001"),
    ];
    let github = Scanning::default();
    let (done, failed) = resolve(
        &github,
        &alerts,
        &[report],
        Some("https://github.com/acme/ops/actions/runs/9"),
    )
    .await;
    assert!(failed.is_empty());
    assert_eq!(done.len(), 2, "{done:?}");
    let resolved = github.resolved.borrow();
    assert_eq!(
        resolved
            .iter()
            .map(|(r, n, _)| (r.as_str(), *n))
            .collect::<Vec<_>>(),
        [("acme/api", 3), ("mona/tool", 1)]
    );
    assert_eq!(
        resolved[0].2,
        "aws-key-rotator: access key AKIAEXPOSED000000001 of IAM user ci-deployer is Inactive (https://github.com/acme/ops/actions/runs/9)"
    );
}
