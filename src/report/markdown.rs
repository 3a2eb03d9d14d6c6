//! The report as Markdown: the step summary. Every text from elsewhere is escaped.

use super::{ReportView, UserView, escape_markdown, exposure, run_link, status_word};

/// The step summary.
pub fn markdown(report: &ReportView) -> String {
    let mut md = format!("## aws-key-rotator `{}`\n\n", report.command);
    for u in &report.users {
        user_head(&mut md, u);
        user_keys_and_consumers(&mut md, u);
        user_runs_and_notes(&mut md, u);
    }
    md
}

/// The user's heading, outcome, reason, journal, plan and keys named.
fn user_head(md: &mut String, u: &UserView) {
    md.push_str(&format!(
        "### {} — {}\n\nState before: `{}`{}{}\n\n",
        escape_markdown(&u.name),
        u.outcome_words,
        u.state.as_deref().unwrap_or("unknown"),
        if u.due { " (rotation due)" } else { "" },
        u.account
            .as_ref()
            .map(|a| format!(" · account `{a}`"))
            .unwrap_or_default()
    ));
    if let Some(m) = &u.message {
        md.push_str(&format!("> {}\n\n", escape_markdown(m)));
    }
    if let Some(a) = &u.attention {
        md.push_str(&format!("> **Needs a person:** {}\n\n", escape_markdown(a)));
    }
    if let Some(j) = &u.journal {
        md.push_str(&format!("{}\n\n", escape_markdown(&j.words)));
    }
    if !u.planned.is_empty() {
        md.push_str("Planned (dry run, nothing changed):\n\n");
        for s in &u.planned {
            md.push_str(&format!("1. {}\n", escape_markdown(s)));
        }
        md.push('\n');
    }
    if let Some(new) = &u.new_access_key_id {
        md.push_str(&format!("New key: `{new}`"));
        if let Some(old) = &u.old_access_key_id {
            md.push_str(&format!(" · old key: `{old}`"));
        }
        md.push_str("\n\n");
    }
}

/// The keys, the exposure's evidence and the consumers, as tables.
fn user_keys_and_consumers(md: &mut String, u: &UserView) {
    if !u.keys.is_empty() {
        md.push_str("| key | status | created | age (days) | last used |\n|---|---|---|---|---|\n");
        for k in &u.keys {
            md.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                k.access_key_id,
                status_word(k.status),
                k.created_at.format("%Y-%m-%d %H:%M UTC"),
                k.age_days,
                escape_markdown(k.last_used_words.as_deref().unwrap_or("–"))
            ));
        }
        md.push('\n');
    }
    if let Some(x) = &u.exposure {
        md.push_str(&exposure::markdown(x));
    }
    if !u.consumers.is_empty() {
        md.push_str("| consumer | store | secrets | result | holds key |\n|---|---|---|---|---|\n");
    }
    for c in &u.consumers {
        md.push_str(&format!(
            "| {} | {} | `{}`, `{}` | {} | {} |\n",
            escape_markdown(&c.repository),
            escape_markdown(&c.store),
            c.access_key_id_secret,
            c.secret_access_key_secret,
            escape_markdown(&c.result),
            c.holds
                .as_deref()
                .map(|h| format!("`{}`", escape_markdown(h)))
                .unwrap_or_else(|| "–".into())
        ));
    }
    if !u.consumers.is_empty() {
        md.push('\n');
    }
}

/// The role's consumers, the verification runs, the people outside GitHub, the notes.
fn user_runs_and_notes(md: &mut String, u: &UserView) {
    if !u.on_role.is_empty() {
        md.push_str(&format!(
            "Assume the role instead of holding the key (`oidc: true`): {}\n\n",
            u.on_role
                .iter()
                .map(|c| escape_markdown(c))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !u.verification_runs.is_empty() {
        md.push_str(
            "| verification workflow | repository | run | conclusion |\n|---|---|---|---|\n",
        );
        for run in &u.verification_runs {
            md.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                escape_markdown(&run.workflow),
                escape_markdown(&run.repository),
                run.url
                    .as_deref()
                    .and_then(run_link)
                    .unwrap_or_else(|| "–".into()),
                if run.ok {
                    "✅ success".to_owned()
                } else {
                    format!("❌ {}", escape_markdown(&run.conclusion))
                }
            ));
        }
        md.push('\n');
    }
    if !u.external.is_empty() {
        md.push_str("Outside GitHub (update by hand):\n\n");
        for e in &u.external {
            md.push_str(&format!("- {}\n", escape_markdown(e)));
        }
        md.push('\n');
    }
    for n in &u.notes {
        md.push_str(&format!("- {}\n", escape_markdown(n)));
    }
    if !u.notes.is_empty() {
        md.push('\n');
    }
}
