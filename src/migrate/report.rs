//! What `migrate` did or would do, for people (text, Markdown) and machines (`--json`).

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::role::RoleSpec;
use super::trust::Reach;
use super::workflows::SecretUse;
use crate::exit::Exit;
use crate::manifest::{Consumer, UserSpec};

#[derive(Serialize, JsonSchema)]
pub struct MigrationView {
    pub provider: ProviderView,
    pub users: Vec<UserMigration>,
}

/// GitHub's OIDC provider in the account.
#[derive(Serialize, JsonSchema)]
pub struct ProviderView {
    pub arn: String,
    pub issuer: String,
    pub audience: String,
    /// What it needs (`None`: it is as it should be).
    pub change: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct UserMigration {
    pub name: String,
    /// `planned`, `migrated`, `unchanged`, `nothing-to-move`, `refused`, `failed`, `invalid`.
    pub outcome: String,
    pub message: Option<String>,
    pub role_name: String,
    pub role_arn: String,
    /// The Actions variable that carries the role's ARN.
    pub variable: String,
    /// The role's changes, made (or, in a dry run, planned) in this order.
    pub changes: Vec<String>,
    pub trust_policy: Option<Value>,
    pub attached_policies: Vec<String>,
    pub inline_policies: Vec<String>,
    pub permissions_boundary: Option<String>,
    pub consumers: Vec<ConsumerMove>,
    /// Workflow files that read the key's secrets: each needs the snippet instead.
    pub workflows: Vec<WorkflowView>,
    pub snippet: String,
    /// What a person should know about who the role admits (fork pull requests with write
    /// tokens, CONTRACT §12a).
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub exit: Exit,
}

#[derive(Serialize, JsonSchema)]
pub struct ConsumerMove {
    pub consumer: String,
    /// Marked `oidc: true`: it assumes the role already.
    pub oidc: bool,
    pub movable: bool,
    /// The OIDC subjects (`sub`) its jobs present: exact, or patterns with `*`.
    pub subjects: Vec<String>,
    /// Why it cannot move (it keeps the key).
    pub not_movable: Option<String>,
    /// The variable's state in its scope.
    pub variable: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct WorkflowView {
    pub repository: String,
    pub path: String,
    #[schemars(with = "Vec<SecretUseView>")]
    pub uses: Vec<SecretUse>,
}

/// A line of a workflow that reads one of the key's secrets.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct SecretUseView {
    pub line: usize,
    pub secret: String,
    pub text: String,
}

impl ConsumerMove {
    pub fn new(c: &Consumer, oidc: bool, reach: &Reach) -> Self {
        let (subjects, not_movable) = match reach {
            Reach::Subjects { exact, like } => (exact.iter().chain(like).cloned().collect(), None),
            Reach::NotMovable(why) => (Vec::new(), Some((*why).to_owned())),
        };
        Self {
            consumer: c.scope.to_string(),
            oidc,
            movable: not_movable.is_none(),
            subjects,
            not_movable,
            variable: None,
        }
    }
}

impl UserMigration {
    pub fn new(user: &UserSpec, role_arn: String) -> Self {
        Self {
            name: user.name.clone(),
            outcome: String::new(),
            message: None,
            role_name: user.migrate.role_name.clone(),
            role_arn,
            variable: user.migrate.variable.clone(),
            changes: Vec::new(),
            trust_policy: None,
            attached_policies: Vec::new(),
            inline_policies: Vec::new(),
            permissions_boundary: None,
            consumers: Vec::new(),
            workflows: Vec::new(),
            snippet: String::new(),
            warnings: Vec::new(),
            exit: Exit::Ok,
        }
    }
    pub fn set_role(&mut self, spec: &RoleSpec) {
        self.trust_policy = Some(spec.trust.clone());
        self.attached_policies = spec.permissions.attached.iter().cloned().collect();
        self.inline_policies = spec.permissions.inline.keys().cloned().collect();
        self.permissions_boundary = spec.permissions.boundary.clone();
    }
    /// Stops this user with `exit` and why (the first reason stays).
    pub fn fail(&mut self, exit: Exit, why: String) {
        self.outcome = match exit {
            Exit::Refused => "refused",
            Exit::Invalid => "invalid",
            _ => "failed",
        }
        .into();
        if self.exit < exit {
            self.exit = exit;
        }
        self.message.get_or_insert(why);
    }
}

impl MigrationView {
    pub fn exit(&self) -> Exit {
        self.users.iter().map(|u| u.exit).max().unwrap_or(Exit::Ok)
    }

    pub fn text(&self) -> String {
        let mut out = format!("OIDC provider {}", self.provider.arn);
        match &self.provider.change {
            Some(c) => out.push_str(&format!(": {c}\n")),
            None => out.push_str(": in place\n"),
        }
        for u in &self.users {
            out.push_str(&format!(
                "\nuser {}: {}{}\n  role {}\n",
                u.name,
                u.outcome,
                u.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default(),
                u.role_arn
            ));
            for c in &u.changes {
                out.push_str(&format!("  role: {c}\n"));
            }
            for c in &u.consumers {
                let what = match (&c.not_movable, &c.variable) {
                    (Some(why), _) => format!("keeps the key ({why})"),
                    (None, v) => format!(
                        "{}{}",
                        c.subjects.join(", "),
                        v.as_ref().map(|v| format!("; {v}")).unwrap_or_default()
                    ),
                };
                out.push_str(&format!(
                    "  consumer {}{}: {what}\n",
                    c.consumer,
                    if c.oidc { " (oidc)" } else { "" }
                ));
            }
            for w in &u.warnings {
                out.push_str(&format!("  warning: {w}\n"));
            }
            for w in &u.workflows {
                for s in &w.uses {
                    out.push_str(&format!(
                        "  workflow {}/{}:{} reads {}: {}\n",
                        w.repository, w.path, s.line, s.secret, s.text
                    ));
                }
            }
            if !u.workflows.is_empty() {
                out.push_str("  replace those reads with:\n");
                for line in u.snippet.lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
        out
    }

    pub fn markdown(&self) -> String {
        let mut md = format!(
            "## aws-key-rotator migrate\n\nOIDC provider `{}`: {}\n\n",
            self.provider.arn,
            self.provider.change.as_deref().unwrap_or("in place")
        );
        for u in &self.users {
            md.push_str(&format!(
                "### {} — {}\n\n{}Role `{}`, variable `{}`\n\n",
                u.name,
                u.outcome,
                u.message
                    .as_ref()
                    .map(|m| format!("{}\n\n", crate::text::markdown(m)))
                    .unwrap_or_default(),
                u.role_arn,
                u.variable
            ));
            for w in &u.warnings {
                md.push_str(&format!("> **Warning:** {}\n\n", crate::text::markdown(w)));
            }
            for c in &u.changes {
                md.push_str(&format!("- role: {c}\n"));
            }
            md.push_str("\n| consumer | subjects | variable |\n|---|---|---|\n");
            for c in &u.consumers {
                md.push_str(&format!(
                    "| {}{} | {} | {} |\n",
                    c.consumer,
                    if c.oidc { " (oidc)" } else { "" },
                    c.not_movable.clone().unwrap_or_else(|| c
                        .subjects
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")),
                    c.variable.as_deref().unwrap_or("–")
                ));
            }
            if !u.workflows.is_empty() {
                md.push_str("\n| workflow | line | reads |\n|---|---|---|\n");
                for w in &u.workflows {
                    for s in &w.uses {
                        md.push_str(&format!(
                            "| {}/{} | {} | `{}` |\n",
                            w.repository, w.path, s.line, s.secret
                        ));
                    }
                }
                md.push_str(&format!("\n```yaml\n{}```\n", u.snippet));
            }
            md.push('\n');
        }
        md
    }
}
