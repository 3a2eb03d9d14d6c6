//! What the user sees: text for the terminal, Markdown for the step summary, JSON for machines.
//!
//! One view of each user's report ([`UserView`]) is built once; the JSON document is that view
//! serialized, and the text and Markdown renderers only lay it out.

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use crate::manifest::Scope;
use crate::rotation::outcome::{Outcome, UserReport};
use crate::rotation::state::{self, KeyStatus};

pub mod exposure;
mod json;
mod markdown;
mod text;

pub use json::{
    Body, ErrorView, ReportView, error_json, json, json_schema, migration_json, verify_json, views,
};
pub use markdown::markdown;
pub use text::text;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What `verify` found.
#[derive(Serialize, JsonSchema)]
pub struct VerifyView {
    pub access_key_id: String,
    pub expected_access_key_id: Option<String>,
    /// The role the credentials must be a session of.
    pub expected_role_arn: Option<String>,
    /// STS accepted the credentials and they are the expected key.
    pub ok: bool,
    pub arn: Option<String>,
    pub account: Option<String>,
    pub message: String,
}

#[derive(Serialize, JsonSchema)]
pub struct UserView {
    pub name: String,
    /// The AWS account the user is in (its `account-role`'s, else the run's own), when known.
    pub account: Option<String>,
    pub state: Option<String>,
    pub due: bool,
    pub max_age_days: u32,
    /// One word for machines: `status`, `nothing`, `planned`, `rotated`, …
    pub outcome: String,
    /// Why, for the outcomes that carry a reason.
    pub message: Option<String>,
    /// Why the user needs a person (then the exit code is 3).
    pub attention: Option<String>,
    /// The rotation journal kept on the IAM user.
    pub journal: Option<JournalView>,
    pub planned: Vec<String>,
    pub new_access_key_id: Option<String>,
    pub old_access_key_id: Option<String>,
    pub keys: Vec<KeyView>,
    pub consumers: Vec<ConsumerView>,
    /// The consumers that assume the user's role (`oidc: true`) instead of holding the key.
    pub on_role: Vec<String>,
    pub external: Vec<String>,
    pub notes: Vec<String>,
    pub verification_runs: Vec<RunView>,
    /// An exposure of the user's keys and its evidence (CONTRACT §17).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposure: Option<exposure::ExposureView>,
    /// The outcome in words, for people.
    #[serde(skip)]
    pub outcome_words: &'static str,
}

#[derive(Serialize, JsonSchema)]
pub struct JournalView {
    pub phase: String,
    pub access_key_id: String,
    pub rotation: String,
    pub at: String,
    pub held: Option<String>,
    #[serde(skip)]
    pub words: String,
}

#[derive(Serialize, JsonSchema)]
pub struct RunView {
    pub repository: String,
    pub workflow: String,
    pub url: Option<String>,
    pub conclusion: String,
    pub ok: bool,
}

#[derive(Serialize, JsonSchema)]
pub struct KeyView {
    pub access_key_id: String,
    pub status: KeyStatus,
    pub created: String,
    pub age_days: i64,
    pub last_used: Option<LastUseView>,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
    /// "last used … (service in region)" or "never used".
    #[serde(skip)]
    pub last_used_words: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct LastUseView {
    pub date: Option<String>,
    pub service: String,
    pub region: String,
}

#[derive(Serialize, JsonSchema)]
pub struct ConsumerView {
    /// The repository; for an organization secret the organization (then also `organization`);
    /// for Secrets Manager the secret; for Parameter Store the access key id's parameter.
    pub repository: String,
    pub organization: Option<String>,
    pub environment: Option<String>,
    /// The kind of store in words: "repository secrets", "environment production",
    /// "Dependabot secret", "organization secret", "organization Dependabot secret",
    /// "Secrets Manager", "Parameter Store" (with the region when the manifest names one).
    pub store: String,
    pub access_key_id_secret: String,
    pub secret_access_key_secret: String,
    pub result: String,
    pub holds: Option<String>,
}

fn outcome_words(o: &Outcome) -> (&'static str, &'static str) {
    match o {
        Outcome::Nothing(_) => ("nothing", "nothing to do"),
        Outcome::Refused(_) => ("refused", "refused"),
        Outcome::Invalid(_) => ("invalid", "invalid input"),
        Outcome::Planned(_) => ("planned", "planned (dry run)"),
        Outcome::Rotated => ("rotated", "rotated"),
        Outcome::Deactivated => ("deactivated", "old key deactivated"),
        Outcome::Deleted => ("deleted", "old key deleted"),
        Outcome::RolledBack(_) => ("rolled-back", "rolled back"),
        Outcome::Deferred(_) => ("deferred", "deferred to the next run"),
        Outcome::Failed(_) => ("failed", "failed"),
        Outcome::Reported => ("status", "status"),
        Outcome::Interrupted(_) => ("interrupted", "interrupted"),
    }
}

fn message(o: &Outcome) -> Option<String> {
    match o {
        Outcome::Nothing(s)
        | Outcome::Refused(s)
        | Outcome::Invalid(s)
        | Outcome::Failed(s)
        | Outcome::RolledBack(s)
        | Outcome::Interrupted(s)
        | Outcome::Deferred(s) => Some(s.clone()).filter(|s| !s.is_empty()),
        _ => None,
    }
}

fn with_region(store: &str, region: &Option<String>) -> String {
    match region {
        Some(r) => format!("{store} ({r})"),
        None => store.to_owned(),
    }
}

/// The one view of a user's report that every format renders.
pub fn view(r: &UserReport, now: DateTime<Utc>) -> UserView {
    let (outcome, outcome_words) = outcome_words(&r.outcome);
    UserView {
        name: r.user.name.clone(),
        account: r.account.clone(),
        state: r.keys.state.map(|s| s.to_string()),
        due: r.keys.due,
        max_age_days: r.user.max_age_days,
        outcome: outcome.into(),
        outcome_words,
        message: message(&r.outcome),
        attention: r.attention.clone(),
        journal: r.keys.journal.as_ref().map(journal_view),
        planned: match &r.outcome {
            Outcome::Planned(s) => s.clone(),
            _ => Vec::new(),
        },
        new_access_key_id: r.keys.new.clone(),
        old_access_key_id: r.keys.old.clone(),
        exposure: r.exposure.as_ref().map(exposure::view),
        keys: key_views(r, now),
        on_role: r.user.on_role.iter().map(|c| c.scope.to_string()).collect(),
        consumers: r.consumers.iter().map(consumer_view).collect(),
        external: r.user.external.clone(),
        notes: r.notes.clone(),
        verification_runs: r.runs.iter().map(run_view).collect(),
    }
}

/// The journal in words and fields.
fn journal_view(j: &crate::rotation::journal::Journal) -> JournalView {
    let mut words = format!(
        "rotation to {}: {} since {}",
        j.key,
        j.phase,
        j.at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if let Some(h) = j.held {
        words.push_str(&format!(
            "; every consumer held it from {}",
            h.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    JournalView {
        phase: j.phase.to_string(),
        access_key_id: j.key.clone(),
        rotation: j.rotation.clone(),
        at: rfc3339(j.at),
        held: j.held.map(rfc3339),
        words,
    }
}

/// Each key with its age and last use.
fn key_views(r: &UserReport, now: DateTime<Utc>) -> Vec<KeyView> {
    r.keys
        .list
        .iter()
        .map(|k| {
            let used = r
                .keys
                .last_used
                .iter()
                .find(|(id, _)| id == &k.id)
                .map(|(_, u)| u);
            KeyView {
                access_key_id: k.id.clone(),
                status: k.status,
                created: rfc3339(k.created),
                created_at: k.created,
                age_days: state::age_days(k.created, now),
                last_used: used.map(|u| LastUseView {
                    date: u.date.map(rfc3339),
                    service: u.service.clone(),
                    region: u.region.clone(),
                }),
                last_used_words: used.map(ToString::to_string),
            }
        })
        .collect()
}

/// Where a consumer is, in the report's words: the repository (or the store's own name), its
/// environment, and the kind of store.
fn place(consumer: &crate::manifest::Consumer) -> (String, Option<String>, String) {
    match &consumer.scope {
        Scope::Repository(r) => (r.clone(), None, "repository secrets".to_owned()),
        Scope::Environment {
            repository,
            environment,
        } => (
            repository.clone(),
            Some(environment.clone()),
            format!("environment {environment}"),
        ),
        Scope::RepositoryDependabot(r) => (r.clone(), None, "Dependabot secret".to_owned()),
        Scope::Organization {
            organization,
            dependabot,
            ..
        } => (
            organization.clone(),
            None,
            if *dependabot {
                "organization Dependabot secret".to_owned()
            } else {
                "organization secret".to_owned()
            },
        ),
        Scope::SecretsManager { secret, region } => {
            (secret.clone(), None, with_region("Secrets Manager", region))
        }
        Scope::ParameterStore { region } => (
            consumer.secrets.access_key_id.clone(),
            None,
            with_region("Parameter Store", region),
        ),
        Scope::Vault {
            mount,
            path,
            address,
            ..
        } => (
            format!("{mount}/{path}"),
            None,
            match address {
                Some(a) => format!("Vault KV at {a}"),
                None => "Vault KV".to_owned(),
            },
        ),
        Scope::S3 {
            bucket,
            key,
            format,
            region,
        } => (
            format!("s3://{bucket}/{key}"),
            None,
            with_region(&format!("S3 object ({format})"), region),
        ),
    }
}

/// A consumer: where, which store, its two secrets, the result and the key it holds.
fn consumer_view(c: &crate::rotation::outcome::ConsumerReport) -> ConsumerView {
    let (repository, environment, store) = place(&c.consumer);
    let store = match &c.access {
        Some(a) => format!("{store} ({a})"),
        None => store,
    };
    let organization = match &c.consumer.scope {
        Scope::Organization { organization, .. } => Some(organization.clone()),
        _ => None,
    };
    ConsumerView {
        repository,
        organization,
        environment,
        store,
        access_key_id_secret: c.consumer.secrets.access_key_id.clone(),
        secret_access_key_secret: c.consumer.secrets.secret_access_key.clone(),
        result: c.result.to_string(),
        holds: c.holds.clone(),
    }
}

/// A verification run.
fn run_view(run: &crate::rotation::verify::RunResult) -> RunView {
    RunView {
        repository: run.workflow.repository.clone(),
        workflow: run.workflow.workflow.clone(),
        url: run.url.clone(),
        conclusion: run.conclusion.clone(),
        ok: run.ok,
    }
}

fn status_word(s: KeyStatus) -> &'static str {
    match s {
        KeyStatus::Active => "Active",
        KeyStatus::Inactive => "Inactive",
    }
}

/// Text from anywhere (GitHub's and AWS's messages, names from the manifest) as inert Markdown
/// on one line: every character that could open a link or an image (`[`), HTML or an autolink
/// (`<`), emphasis (`*`, `~`), code, a table cell, a heading or an issue reference (`#`) is
/// backslash-escaped, so it renders as written and nothing in it acts. (`_` cannot emphasize
/// inside a word in GitHub's Markdown, and stays, so secret names read as they are.)
pub fn escape_markdown(s: &str) -> String {
    crate::text::markdown(s)
}

/// A link to a run, only when it is a plain http(s) URL (anything else could carry Markdown).
fn run_link(url: &str) -> Option<String> {
    plain_url(url).then(|| format!("[run]({url})"))
}

/// A plain http(s) URL: printable ASCII without the characters that could end or start
/// Markdown (a link, code, an HTML tag) around it.
pub(crate) fn plain_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://"))
        && u.chars()
            .all(|c| c.is_ascii_graphic() && !"()[]<>`\\\"'".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_text_is_inert_in_markdown() {
        assert_eq!(
            escape_markdown("[a](https://evil) ![i](x) <img src=x> *c* `d` | e\n# f ~g~ \\"),
            "\\[a\\](https://evil) !\\[i\\](x) &lt;img src=x&gt; \\*c\\* \\`d\\` \\| e \\# f \\~g\\~ \\\\"
        );
        assert_eq!(
            escape_markdown("plain words, 1.5: ok"),
            "plain words, 1.5: ok"
        );
        assert_eq!(
            run_link("https://github.com/a/b/actions/runs/1").as_deref(),
            Some("[run](https://github.com/a/b/actions/runs/1)")
        );
        assert_eq!(run_link("javascript:alert(1)"), None);
        assert_eq!(run_link("https://x.example/a) ![i](https://evil"), None);
    }
}
