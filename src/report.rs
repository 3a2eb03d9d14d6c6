//! What the user sees: text for the terminal, Markdown for the step summary, JSON for machines.

use serde::Serialize;

use crate::manifest::Scope;
use crate::rotation::run::{Outcome, UserReport};
use crate::rotation::state::{self, KeyStatus};

fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Nothing(_) => "nothing to do",
        Outcome::Refused(_) => "refused",
        Outcome::Invalid(_) => "invalid input",
        Outcome::Planned(_) => "planned (dry run)",
        Outcome::Rotated => "rotated",
        Outcome::Deactivated => "old key deactivated",
        Outcome::Deleted => "old key deleted",
        Outcome::RolledBack(_) => "rolled back",
        Outcome::Failed(_) => "failed",
        Outcome::Reported => "status",
    }
}

fn outcome_detail(o: &Outcome) -> Option<&str> {
    match o {
        Outcome::Nothing(s)
        | Outcome::Refused(s)
        | Outcome::Invalid(s)
        | Outcome::Failed(s)
        | Outcome::RolledBack(s) => Some(s.as_str()).filter(|s| !s.is_empty()),
        _ => None,
    }
}

fn store(scope: &Scope) -> (String, String) {
    match scope {
        Scope::Repository(r) => (r.clone(), "repository secrets".into()),
        Scope::Environment {
            repository,
            environment,
        } => (repository.clone(), format!("environment {environment}")),
    }
}

fn status_word(s: KeyStatus) -> &'static str {
    match s {
        KeyStatus::Active => "Active",
        KeyStatus::Inactive => "Inactive",
    }
}

/// The journal in words: "rotation to AKIA…: verified at …".
fn journal_line(j: &crate::rotation::journal::Journal) -> String {
    let mut line = format!(
        "rotation to {}: {} since {}",
        j.key,
        j.phase,
        j.at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if let Some(h) = j.held {
        line.push_str(&format!(
            "; every consumer held it from {}",
            h.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    line
}

/// Plain text, one block per user.
pub fn text(reports: &[UserReport], now: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = String::new();
    for r in reports {
        let state = r
            .state
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into());
        let due = if r.due { "rotation due" } else { "not due" };
        let head = match r.outcome {
            Outcome::Reported => format!("state {state}, {due}"),
            _ => format!(
                "{} (state before: {state}, {due})",
                outcome_word(&r.outcome)
            ),
        };
        out.push_str(&format!(
            "{}: {head}; max-age-days {}\n",
            r.user.name, r.user.max_age_days
        ));
        if let Some(d) = outcome_detail(&r.outcome) {
            out.push_str(&format!("  {d}\n"));
        }
        if let Some(a) = &r.attention {
            out.push_str(&format!("  needs a person: {a}\n"));
        }
        if let Some(j) = &r.journal {
            out.push_str(&format!("  {}\n", journal_line(j)));
        }
        if let Outcome::Planned(steps) = &r.outcome {
            for s in steps {
                out.push_str(&format!("  would {s}\n"));
            }
        }
        for k in &r.keys {
            let used = r
                .last_used
                .iter()
                .find(|(id, _)| id == &k.id)
                .map(|(_, u)| format!(", {u}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  key {} {} created {} ({} days){used}\n",
                k.id,
                status_word(k.status),
                k.created.format("%Y-%m-%d"),
                state::age_days(k.created, now)
            ));
        }
        for c in &r.consumers {
            let (repo, kind) = store(&c.consumer.scope);
            out.push_str(&format!(
                "  consumer {repo} ({kind}) {}/{}: {}{}\n",
                c.consumer.secrets.access_key_id,
                c.consumer.secrets.secret_access_key,
                c.result,
                c.holds
                    .as_ref()
                    .map(|h| format!(", holds {h}"))
                    .unwrap_or_default()
            ));
        }
        for run in &r.runs {
            out.push_str(&format!(
                "  verification {} in {}: {}{}\n",
                run.workflow.workflow,
                run.workflow.repository,
                run.conclusion,
                run.url
                    .as_ref()
                    .map(|u| format!(" ({u})"))
                    .unwrap_or_default()
            ));
        }
        for e in &r.user.external {
            out.push_str(&format!("  external consumer (update by hand): {e}\n"));
        }
        for n in &r.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The step summary.
pub fn markdown(
    command: &str,
    reports: &[UserReport],
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut md = format!("## aws-key-rotator `{command}`\n\n");
    for r in reports {
        let state = r
            .state
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into());
        md.push_str(&format!(
            "### {} — {}\n\nState before: `{state}`{}\n\n",
            cell(&r.user.name),
            outcome_word(&r.outcome),
            if r.due { " (rotation due)" } else { "" }
        ));
        if let Some(d) = outcome_detail(&r.outcome) {
            md.push_str(&format!("> {}\n\n", cell(d)));
        }
        if let Some(a) = &r.attention {
            md.push_str(&format!("> **Needs a person:** {}\n\n", cell(a)));
        }
        if let Some(j) = &r.journal {
            md.push_str(&format!("{}\n\n", cell(&journal_line(j))));
        }
        if let Outcome::Planned(steps) = &r.outcome {
            md.push_str("Planned (dry run, nothing changed):\n\n");
            for s in steps {
                md.push_str(&format!("1. {}\n", cell(s)));
            }
            md.push('\n');
        }
        if let Some(new) = &r.new_key {
            md.push_str(&format!("New key: `{new}`"));
            if let Some(old) = &r.old_key {
                md.push_str(&format!(" · old key: `{old}`"));
            }
            md.push_str("\n\n");
        }
        if !r.keys.is_empty() {
            md.push_str(
                "| key | status | created | age (days) | last used |\n|---|---|---|---|---|\n",
            );
            for k in &r.keys {
                let used = r
                    .last_used
                    .iter()
                    .find(|(id, _)| id == &k.id)
                    .map(|(_, u)| u.to_string())
                    .unwrap_or_else(|| "–".into());
                md.push_str(&format!(
                    "| `{}` | {} | {} | {} | {} |\n",
                    k.id,
                    status_word(k.status),
                    k.created.format("%Y-%m-%d %H:%M UTC"),
                    state::age_days(k.created, now),
                    cell(&used)
                ));
            }
            md.push('\n');
        }
        md.push_str("| consumer | store | secrets | result | holds key |\n|---|---|---|---|---|\n");
        for c in &r.consumers {
            let (repo, kind) = store(&c.consumer.scope);
            md.push_str(&format!(
                "| {} | {} | `{}`, `{}` | {} | {} |\n",
                cell(&repo),
                cell(&kind),
                c.consumer.secrets.access_key_id,
                c.consumer.secrets.secret_access_key,
                cell(&c.result),
                c.holds
                    .as_deref()
                    .map(|h| format!("`{}`", cell(h)))
                    .unwrap_or_else(|| "–".into())
            ));
        }
        md.push('\n');
        if !r.runs.is_empty() {
            md.push_str(
                "| verification workflow | repository | run | conclusion |\n|---|---|---|---|\n",
            );
            for run in &r.runs {
                md.push_str(&format!(
                    "| `{}` | {} | {} | {} |\n",
                    cell(&run.workflow.workflow),
                    cell(&run.workflow.repository),
                    run.url
                        .as_deref()
                        .map(|u| format!("[run]({u})"))
                        .unwrap_or_else(|| "–".into()),
                    if run.ok {
                        "✅ success".to_owned()
                    } else {
                        format!("❌ {}", cell(&run.conclusion))
                    }
                ));
            }
            md.push('\n');
        }
        if !r.user.external.is_empty() {
            md.push_str("Outside GitHub (update by hand):\n\n");
            for e in &r.user.external {
                md.push_str(&format!("- {}\n", cell(e)));
            }
            md.push('\n');
        }
        for n in &r.notes {
            md.push_str(&format!("- {}\n", cell(n)));
        }
        if !r.notes.is_empty() {
            md.push('\n');
        }
    }
    md
}

#[derive(Serialize)]
pub struct JsonReport {
    pub command: String,
    pub users: Vec<JsonUser>,
}

#[derive(Serialize)]
pub struct JsonUser {
    pub name: String,
    pub state: Option<String>,
    pub due: bool,
    pub max_age_days: u32,
    pub outcome: String,
    pub message: Option<String>,
    /// Why the user needs a person (then the exit code is 3).
    pub attention: Option<String>,
    /// The rotation journal kept on the IAM user.
    pub journal: Option<JsonJournal>,
    pub planned: Vec<String>,
    pub new_access_key_id: Option<String>,
    pub old_access_key_id: Option<String>,
    pub keys: Vec<JsonKey>,
    pub consumers: Vec<JsonConsumer>,
    pub external: Vec<String>,
    pub notes: Vec<String>,
    pub verification_runs: Vec<JsonRun>,
}

#[derive(Serialize)]
pub struct JsonJournal {
    pub phase: String,
    pub access_key_id: String,
    pub rotation: String,
    pub at: String,
    pub held: Option<String>,
}

#[derive(Serialize)]
pub struct JsonRun {
    pub repository: String,
    pub workflow: String,
    pub url: Option<String>,
    pub conclusion: String,
    pub ok: bool,
}

#[derive(Serialize)]
pub struct JsonKey {
    pub access_key_id: String,
    pub status: KeyStatus,
    pub created: String,
    pub age_days: i64,
    pub last_used: Option<JsonLastUse>,
}

#[derive(Serialize)]
pub struct JsonLastUse {
    pub date: Option<String>,
    pub service: String,
    pub region: String,
}

#[derive(Serialize)]
pub struct JsonConsumer {
    pub repository: String,
    pub environment: Option<String>,
    pub access_key_id_secret: String,
    pub secret_access_key_secret: String,
    pub result: String,
    pub holds: Option<String>,
}

/// The `--json` document (the shape is documented in the README).
pub fn json(command: &str, reports: &[UserReport], now: chrono::DateTime<chrono::Utc>) -> String {
    let users = reports
        .iter()
        .map(|r| JsonUser {
            name: r.user.name.clone(),
            state: r.state.map(|s| s.to_string()),
            due: r.due,
            max_age_days: r.user.max_age_days,
            outcome: match &r.outcome {
                Outcome::Nothing(_) => "nothing",
                Outcome::Refused(_) => "refused",
                Outcome::Invalid(_) => "invalid",
                Outcome::Planned(_) => "planned",
                Outcome::Rotated => "rotated",
                Outcome::Deactivated => "deactivated",
                Outcome::Deleted => "deleted",
                Outcome::RolledBack(_) => "rolled-back",
                Outcome::Failed(_) => "failed",
                Outcome::Reported => "status",
            }
            .into(),
            message: outcome_detail(&r.outcome).map(str::to_owned),
            attention: r.attention.clone(),
            journal: r.journal.as_ref().map(|j| JsonJournal {
                phase: j.phase.to_string(),
                access_key_id: j.key.clone(),
                rotation: j.rotation.clone(),
                at: j.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                held: j
                    .held
                    .map(|h| h.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            }),
            planned: match &r.outcome {
                Outcome::Planned(s) => s.clone(),
                _ => Vec::new(),
            },
            new_access_key_id: r.new_key.clone(),
            old_access_key_id: r.old_key.clone(),
            keys: r
                .keys
                .iter()
                .map(|k| JsonKey {
                    access_key_id: k.id.clone(),
                    status: k.status,
                    created: k.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    age_days: state::age_days(k.created, now),
                    last_used: r
                        .last_used
                        .iter()
                        .find(|(id, _)| id == &k.id)
                        .map(|(_, u)| JsonLastUse {
                            date: u
                                .date
                                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                            service: u.service.clone(),
                            region: u.region.clone(),
                        }),
                })
                .collect(),
            consumers: r
                .consumers
                .iter()
                .map(|c| {
                    let (repository, environment) = match &c.consumer.scope {
                        Scope::Repository(r) => (r.clone(), None),
                        Scope::Environment {
                            repository,
                            environment,
                        } => (repository.clone(), Some(environment.clone())),
                    };
                    JsonConsumer {
                        repository,
                        environment,
                        access_key_id_secret: c.consumer.secrets.access_key_id.clone(),
                        secret_access_key_secret: c.consumer.secrets.secret_access_key.clone(),
                        result: c.result.clone(),
                        holds: c.holds.clone(),
                    }
                })
                .collect(),
            external: r.user.external.clone(),
            notes: r.notes.clone(),
            verification_runs: r
                .runs
                .iter()
                .map(|run| JsonRun {
                    repository: run.workflow.repository.clone(),
                    workflow: run.workflow.workflow.clone(),
                    url: run.url.clone(),
                    conclusion: run.conclusion.clone(),
                    ok: run.ok,
                })
                .collect(),
        })
        .collect();
    serde_json::to_string_pretty(&JsonReport {
        command: command.into(),
        users,
    })
    .expect("the report serializes")
        + "\n"
}
