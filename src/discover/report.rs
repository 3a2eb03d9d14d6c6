//! The `discover` report: text, Markdown and JSON. Foreign text in it (repository paths, store
//! names) is quoted in text and escaped in Markdown; file contents never appear.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Finding;
use super::aws::Mention;
use super::code::CodeFinding;
use crate::manifest::UserSpec;
use crate::text::{markdown, quoted};

/// A key of a user with findings, and when it was last used.
#[derive(Clone, Debug, Serialize)]
pub struct KeyUse {
    pub access_key_id: String,
    pub status: String,
    pub last_used: String,
}

/// One user's part of the report.
#[derive(Clone, Debug, Serialize)]
pub struct UserFindings {
    pub name: String,
    /// GitHub stores holding its secret names that the manifest does not list.
    pub findings: Vec<Finding>,
    /// AWS places naming it or holding its key that the manifest does not list.
    pub mentions: Vec<Mention>,
    /// Files naming one of its key ids (exposed) or its name.
    pub code: Vec<CodeFinding>,
    /// Its key ids found in code: each is exposed (CONTRACT §17).
    pub exposed: Vec<String>,
    /// Its keys' last use: a key used where nothing listed uses it hints at the finding's use.
    pub keys: Vec<KeyUse>,
    /// The entries to paste under the user's `consumers:`.
    pub snippet: String,
}

impl UserFindings {
    fn is_empty(&self) -> bool {
        self.findings.is_empty() && self.mentions.is_empty() && self.code.is_empty()
    }
}

/// What one `discover` gathered.
#[derive(Default)]
pub struct Gathered {
    pub owners: Vec<String>,
    pub repositories: usize,
    pub github_requests: usize,
    pub code_searches: usize,
    pub findings: Vec<Finding>,
    pub mentions: Vec<Mention>,
    pub code: Vec<CodeFinding>,
    pub keys: BTreeMap<String, Vec<KeyUse>>,
}

/// The `discover` report (`--json` prints it as it is).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub command: &'static str,
    pub owners: Vec<String>,
    pub repositories: usize,
    /// GitHub requests this discover made (GitHub's primary limit is 5,000 an hour).
    pub github_requests: usize,
    /// Code search requests among them (code search allows 10 a minute).
    pub code_searches: usize,
    pub users: Vec<UserFindings>,
}

impl Report {
    pub fn new(users: &[UserSpec], g: Gathered) -> Self {
        let users = users
            .iter()
            .map(|u| {
                let findings: Vec<Finding> = g
                    .findings
                    .iter()
                    .filter(|f| f.user == u.name)
                    .cloned()
                    .collect();
                let mentions: Vec<Mention> = g
                    .mentions
                    .iter()
                    .filter(|m| m.user == u.name)
                    .cloned()
                    .collect();
                let code: Vec<CodeFinding> = g
                    .code
                    .iter()
                    .filter(|c| c.user == u.name)
                    .cloned()
                    .collect();
                let exposed: BTreeSet<String> = code
                    .iter()
                    .filter_map(|c| c.access_key_id.clone())
                    .collect();
                let mut seen = BTreeSet::new();
                let snippet = findings
                    .iter()
                    .map(|f| &f.snippet)
                    .chain(mentions.iter().map(|m| &m.snippet))
                    .filter(|s| seen.insert((*s).clone()))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n");
                UserFindings {
                    name: u.name.clone(),
                    findings,
                    mentions,
                    code,
                    exposed: exposed.into_iter().collect(),
                    keys: g.keys.get(&u.name).cloned().unwrap_or_default(),
                    snippet,
                }
            })
            .collect();
        Self {
            command: "discover",
            owners: g.owners,
            repositories: g.repositories,
            github_requests: g.github_requests,
            code_searches: g.code_searches,
            users,
        }
    }

    /// Every exposed key id, with its user.
    pub fn exposed(&self) -> Vec<(&str, &str)> {
        self.users
            .iter()
            .flat_map(|u| u.exposed.iter().map(|k| (u.name.as_str(), k.as_str())))
            .collect()
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes") + "\n"
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "looked at {} repositories of {} ({} GitHub requests, {} code searches)\n",
            self.repositories,
            self.owners.join(", "),
            self.github_requests,
            self.code_searches
        );
        for u in &self.users {
            if u.is_empty() {
                out.push_str(&format!(
                    "{}: every place holding its secret names or its key is in the manifest\n",
                    u.name
                ));
                continue;
            }
            out.push_str(&format!(
                "{}: {} places not in the manifest, {} in code\n",
                u.name,
                u.findings.len() + u.mentions.len(),
                u.code.len()
            ));
            for c in &u.code {
                out.push_str(&match &c.access_key_id {
                    Some(id) => format!(
                        "  EXPOSED: key {id} is in {} {} line {}: respond with `{}`\n",
                        c.repository,
                        quoted(&c.path),
                        c.line,
                        c.respond.as_deref().unwrap_or_default()
                    ),
                    None => format!(
                        "  {} {} line {} names {}\n",
                        c.repository,
                        quoted(&c.path),
                        c.line,
                        u.name
                    ),
                });
            }
            for f in &u.findings {
                out.push_str(&format!("  {} holds {}\n", f.store, f.secret));
            }
            for m in &u.mentions {
                out.push_str(&format!("  {}: {}\n", quoted(&m.store), m.why));
            }
            for k in &u.keys {
                out.push_str(&format!(
                    "  key {} {}: {}\n",
                    k.access_key_id, k.status, k.last_used
                ));
            }
            if !u.snippet.is_empty() {
                out.push_str(
                    "  add to its consumers (after checking each holds this user's key):\n",
                );
                for line in u.snippet.lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
        out
    }

    pub fn markdown(&self) -> String {
        let mut md = format!(
            "## aws-key-rotator `discover`\n\nLooked at {} repositories of {} ({} GitHub requests, {} code searches).\n\n",
            self.repositories,
            self.owners.join(", "),
            self.github_requests,
            self.code_searches
        );
        for u in &self.users {
            md.push_str(&format!("### {}\n\n", u.name));
            if u.is_empty() {
                md.push_str(
                    "Every place holding its secret names or its key is in the manifest.\n\n",
                );
                continue;
            }
            for id in &u.exposed {
                md.push_str(&format!(
                    "> [!CAUTION]\n> Key `{id}` is committed in code: it is exposed. Respond with `{}`.\n\n",
                    super::code::respond(id)
                ));
            }
            md.push_str(&code_table(&u.code));
            if !u.findings.is_empty() || !u.mentions.is_empty() {
                md.push_str("| not in the manifest | why |\n|---|---|\n");
                for f in &u.findings {
                    md.push_str(&format!(
                        "| {} | holds `{}` |\n",
                        f.store.replace('|', "\\|"),
                        f.secret
                    ));
                }
                for m in &u.mentions {
                    md.push_str(&format!(
                        "| {} | {} |\n",
                        markdown(&m.store),
                        markdown(&m.why)
                    ));
                }
                md.push('\n');
            }
            for k in &u.keys {
                md.push_str(&format!(
                    "- key `{}` {}: {}\n",
                    k.access_key_id, k.status, k.last_used
                ));
            }
            if !u.snippet.is_empty() {
                md.push_str(&format!(
                    "\nAdd to its `consumers:` once you have checked each holds this user's key:\n\n```yaml\n{}\n```\n\n",
                    u.snippet
                ));
            }
        }
        md
    }
}

/// The files naming a user's key or name, as a Markdown table (empty when none).
fn code_table(code: &[CodeFinding]) -> String {
    if code.is_empty() {
        return String::new();
    }
    let mut md = "| in code | line | names |\n|---|---|---|\n".to_owned();
    for c in code {
        md.push_str(&format!(
            "| {} {} | {} | {} |\n",
            markdown(&c.repository),
            markdown(&c.path),
            c.line,
            match &c.access_key_id {
                Some(id) => format!("key `{id}` (exposed)"),
                None => "the user".to_owned(),
            }
        ));
    }
    md.push('\n');
    md
}
