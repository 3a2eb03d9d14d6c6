//! The report as plain text, one block per user (the log; stderr with `--json`).

use super::{ReportView, UserView, exposure, status_word};

/// Plain text, one block per user.
pub fn text(report: &ReportView) -> String {
    let mut out = String::new();
    for u in &report.users {
        user_head(&mut out, u);
        user_rest(&mut out, u);
    }
    out
}

/// The user's line, its reason, its journal and its plan.
fn user_head(out: &mut String, u: &UserView) {
    let state = u.state.as_deref().unwrap_or("unknown");
    let due = if u.due { "rotation due" } else { "not due" };
    let head = if u.outcome == "status" {
        format!("state {state}, {due}")
    } else {
        format!("{} (state before: {state}, {due})", u.outcome_words)
    };
    out.push_str(&format!(
        "{}{}: {head}; max-age-days {}\n",
        u.name,
        u.account
            .as_ref()
            .map(|a| format!(" (account {a})"))
            .unwrap_or_default(),
        u.max_age_days
    ));
    for line in u.message.iter() {
        out.push_str(&format!("  {line}\n"));
    }
    if let Some(a) = &u.attention {
        out.push_str(&format!("  needs a person: {a}\n"));
    }
    if let Some(j) = &u.journal {
        out.push_str(&format!("  {}\n", j.words));
    }
    for s in &u.planned {
        out.push_str(&format!("  would {s}\n"));
    }
}

/// The keys, the exposure, the consumers, the runs, the people outside GitHub, the notes.
fn user_rest(out: &mut String, u: &UserView) {
    for k in &u.keys {
        out.push_str(&format!(
            "  key {} {} created {} ({} days){}\n",
            k.access_key_id,
            status_word(k.status),
            k.created_at.format("%Y-%m-%d"),
            k.age_days,
            k.last_used_words
                .as_ref()
                .map(|w| format!(", {w}"))
                .unwrap_or_default()
        ));
    }
    if let Some(x) = &u.exposure {
        out.push_str(&exposure::text(x));
    }
    for c in &u.consumers {
        out.push_str(&format!(
            "  consumer {} ({}) {}/{}: {}{}\n",
            c.repository,
            c.store,
            c.access_key_id_secret,
            c.secret_access_key_secret,
            c.result,
            c.holds
                .as_ref()
                .map(|h| format!(", holds {h}"))
                .unwrap_or_default()
        ));
    }
    for c in &u.on_role {
        out.push_str(&format!("  consumer {c}: assumes the role (oidc)\n"));
    }
    for run in &u.verification_runs {
        out.push_str(&format!(
            "  verification {} in {}: {}{}\n",
            run.workflow,
            run.repository,
            run.conclusion,
            run.url
                .as_ref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default()
        ));
    }
    for e in &u.external {
        out.push_str(&format!("  external consumer (update by hand): {e}\n"));
    }
    for n in &u.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
}
