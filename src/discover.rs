//! `discover` (CONTRACT §10): where the managed secret names live that the manifest does not
//! name. Read-only. The search is pure ([`findings`] over an [`Inventory`]); the GitHub adapter
//! gathers the inventory, and the report says what was found with each key's last use.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::manifest::{Scope, UserSpec};

pub use crate::ports::{Inventory, Lister};

/// A place that holds one of a user's secret names and is not one of its consumers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub user: String,
    /// The store, in the manifest's words (see [`Scope`]'s `Display`).
    pub store: String,
    pub secret: String,
    /// The manifest entry that would list it.
    pub snippet: String,
    #[serde(skip)]
    pub scope: Scope,
}

/// The owners whose stores `user`'s key may live in: its GitHub consumers' and verify entries'.
pub fn owners(users: &[UserSpec]) -> Vec<String> {
    let mut owners = BTreeSet::new();
    for u in users {
        for c in &u.consumers {
            let owner = match &c.scope {
                Scope::Repository(r)
                | Scope::Environment { repository: r, .. }
                | Scope::RepositoryDependabot(r) => {
                    r.split('/').next().map(str::to_ascii_lowercase)
                }
                Scope::Organization { organization, .. } => Some(organization.to_ascii_lowercase()),
                Scope::SecretsManager { .. }
                | Scope::ParameterStore { .. }
                | Scope::Vault { .. }
                | Scope::S3 { .. } => None,
            };
            owners.extend(owner);
        }
        for v in &u.verify {
            owners.extend(v.repository.split('/').next().map(str::to_ascii_lowercase));
        }
    }
    owners.into_iter().collect()
}

/// The manifest entry for a store, ready to paste under `consumers:`.
pub fn snippet(scope: &Scope) -> String {
    match scope {
        Scope::Repository(r) => format!("- repository: {r}"),
        Scope::Environment {
            repository,
            environment,
        } => format!("- repository: {repository}\n  environment: {environment}"),
        Scope::RepositoryDependabot(r) => format!("- repository: {r}\n  app: dependabot"),
        Scope::Organization {
            organization,
            dependabot: false,
            ..
        } => format!("- organization: {organization}"),
        Scope::Organization {
            organization,
            dependabot: true,
            ..
        } => format!("- organization: {organization}\n  app: dependabot"),
        Scope::SecretsManager { secret, .. } => format!("- aws-secrets-manager: {secret}"),
        Scope::ParameterStore { .. } => "- ssm-parameters: {}".to_owned(),
        Scope::Vault { mount, path, .. } => format!("- vault: {{ mount: {mount}, path: {path} }}"),
        Scope::S3 {
            bucket,
            key,
            format,
            ..
        } => format!("- s3: {{ bucket: {bucket}, key: {key} }}\n  format: {format}"),
    }
}

/// Organization scopes compare without the manifest's `visibility` (it only shapes creation).
fn same_store(a: &Scope, b: &Scope) -> bool {
    match (a, b) {
        (
            Scope::Organization {
                organization: o1,
                dependabot: d1,
                ..
            },
            Scope::Organization {
                organization: o2,
                dependabot: d2,
                ..
            },
        ) => o1.eq_ignore_ascii_case(o2) && d1 == d2,
        (Scope::Repository(x), Scope::Repository(y))
        | (Scope::RepositoryDependabot(x), Scope::RepositoryDependabot(y)) => {
            x.eq_ignore_ascii_case(y)
        }
        (
            Scope::Environment {
                repository: r1,
                environment: e1,
            },
            Scope::Environment {
                repository: r2,
                environment: e2,
            },
        ) => r1.eq_ignore_ascii_case(r2) && e1 == e2,
        _ => a == b,
    }
}

/// Every store that holds one of a user's secret names (GitHub compares them without case) and
/// is not that user's consumer for that name.
pub fn findings(users: &[UserSpec], inventory: &Inventory) -> Vec<Finding> {
    let mut out = Vec::new();
    for u in users {
        let names: BTreeSet<String> = u
            .consumers
            .iter()
            .filter(|c| c.scope.is_github())
            .flat_map(|c| [&c.secrets.access_key_id, &c.secrets.secret_access_key])
            .map(|n| n.to_ascii_uppercase())
            .collect();
        for (scope, held) in &inventory.stores {
            for secret in held {
                let upper = secret.to_ascii_uppercase();
                if !names.contains(&upper) {
                    continue;
                }
                let listed = u.consumers.iter().any(|c| {
                    same_store(&c.scope, scope)
                        && (c.secrets.access_key_id.eq_ignore_ascii_case(secret)
                            || c.secrets.secret_access_key.eq_ignore_ascii_case(secret))
                });
                if !listed {
                    out.push(Finding {
                        user: u.name.clone(),
                        store: scope.to_string(),
                        secret: secret.clone(),
                        snippet: snippet(scope),
                        scope: scope.clone(),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Consumer, SecretNames, VerifyWorkflow};

    fn user(consumers: Vec<Scope>) -> UserSpec {
        UserSpec {
            on_exposure: Default::default(),
            name: "ci".into(),
            max_age_days: 90,
            deactivate_after_hours: 24,
            delete_after_days: 7,
            consumers: consumers
                .into_iter()
                .map(|scope| Consumer {
                    pull_requests: true,
                    scope,
                    secrets: SecretNames::default(),
                })
                .collect(),
            verify: vec![VerifyWorkflow {
                repository: "tools/checks".into(),
                workflow: "v.yml".into(),
                git_ref: None,
            }],
            external: vec![],
            origin: "m.yml:3:5".into(),
            on_role: Vec::new(),
            migrate: crate::manifest::Migration::defaults("ci"),
            account_role: None,
        }
    }

    fn names(n: &[&str]) -> BTreeSet<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unlisted_places_with_a_users_names_are_found_and_nothing_else() {
        let org = |dependabot| Scope::Organization {
            organization: "acme".into(),
            dependabot,
            visibility: None,
            selected: Vec::new(),
        };
        let u = user(vec![
            Scope::Repository("acme/web".into()),
            Scope::Organization {
                organization: "ACME".into(),
                dependabot: false,
                visibility: Some(crate::manifest::Visibility::All),
                selected: Vec::new(),
            },
        ]);
        assert_eq!(owners(std::slice::from_ref(&u)), ["acme", "tools"]);
        let inventory = Inventory {
            stores: [
                (
                    Scope::Repository("acme/web".into()),
                    names(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
                ),
                (
                    Scope::Repository("acme/api".into()),
                    names(&["aws_access_key_id", "NPM_TOKEN"]),
                ),
                (
                    Scope::Environment {
                        repository: "acme/web".into(),
                        environment: "staging".into(),
                    },
                    names(&["AWS_SECRET_ACCESS_KEY"]),
                ),
                (Scope::Repository("acme/docs".into()), names(&["NPM_TOKEN"])),
                (org(false), names(&["AWS_ACCESS_KEY_ID"])),
                (org(true), names(&["AWS_ACCESS_KEY_ID"])),
            ]
            .into_iter()
            .collect(),
            ..Inventory::default()
        };
        let found: Vec<(String, String)> = findings(&[u], &inventory)
            .into_iter()
            .map(|f| (f.store, f.secret))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "acme/api (repository secrets)".to_owned(),
                    "aws_access_key_id".to_owned()
                ),
                (
                    "acme/web environment \"staging\"".to_owned(),
                    "AWS_SECRET_ACCESS_KEY".to_owned()
                ),
                (
                    "organization acme (Dependabot secrets)".to_owned(),
                    "AWS_ACCESS_KEY_ID".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn snippets_paste_into_the_manifest() {
        assert_eq!(
            snippet(&Scope::Environment {
                repository: "acme/web".into(),
                environment: "staging".into()
            }),
            "- repository: acme/web\n  environment: staging"
        );
        assert_eq!(
            snippet(&Scope::RepositoryDependabot("acme/web".into())),
            "- repository: acme/web\n  app: dependabot"
        );
    }
}

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
    pub findings: Vec<Finding>,
    /// Its keys' last use: a key used where nothing listed uses it hints at the finding's use.
    pub keys: Vec<KeyUse>,
    /// The entries to paste under the user's `consumers:`.
    pub snippet: String,
}

/// The `discover` report (`--json` prints it as it is).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub command: &'static str,
    pub owners: Vec<String>,
    pub repositories: usize,
    /// GitHub requests this discover made (GitHub's primary limit is 5,000 an hour).
    pub github_requests: usize,
    pub users: Vec<UserFindings>,
}

impl Report {
    pub fn new(
        owners: Vec<String>,
        repositories: usize,
        github_requests: usize,
        users: &[UserSpec],
        findings: &[Finding],
        keys: &BTreeMap<String, Vec<KeyUse>>,
    ) -> Self {
        let users = users
            .iter()
            .map(|u| {
                let mine: Vec<Finding> = findings
                    .iter()
                    .filter(|f| f.user == u.name)
                    .cloned()
                    .collect();
                let mut seen = BTreeSet::new();
                let snippet = mine
                    .iter()
                    .filter(|f| seen.insert(f.snippet.clone()))
                    .map(|f| f.snippet.clone())
                    .collect::<Vec<_>>()
                    .join("\n");
                UserFindings {
                    name: u.name.clone(),
                    findings: mine,
                    keys: keys.get(&u.name).cloned().unwrap_or_default(),
                    snippet,
                }
            })
            .collect();
        Self {
            command: "discover",
            owners,
            repositories,
            github_requests,
            users,
        }
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "looked at {} repositories of {} ({} GitHub requests)\n",
            self.repositories,
            self.owners.join(", "),
            self.github_requests
        );
        for u in &self.users {
            if u.findings.is_empty() {
                out.push_str(&format!(
                    "{}: every place holding its secret names is in the manifest\n",
                    u.name
                ));
                continue;
            }
            out.push_str(&format!(
                "{}: {} places not in the manifest\n",
                u.name,
                u.findings.len()
            ));
            for f in &u.findings {
                out.push_str(&format!("  {} holds {}\n", f.store, f.secret));
            }
            for k in &u.keys {
                out.push_str(&format!(
                    "  key {} {}: {}\n",
                    k.access_key_id, k.status, k.last_used
                ));
            }
            out.push_str("  add to its consumers (after checking each holds this user's key):\n");
            for line in u.snippet.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
        out
    }

    pub fn markdown(&self) -> String {
        let mut md = format!(
            "## aws-key-rotator `discover`\n\nLooked at {} repositories of {} ({} GitHub requests).\n\n",
            self.repositories,
            self.owners.join(", "),
            self.github_requests
        );
        for u in &self.users {
            md.push_str(&format!("### {}\n\n", u.name));
            if u.findings.is_empty() {
                md.push_str("Every place holding its secret names is in the manifest.\n\n");
                continue;
            }
            md.push_str("| not in the manifest | secret |\n|---|---|\n");
            for f in &u.findings {
                md.push_str(&format!(
                    "| {} | `{}` |\n",
                    f.store.replace('|', "\\|"),
                    f.secret
                ));
            }
            md.push('\n');
            for k in &u.keys {
                md.push_str(&format!(
                    "- key `{}` {}: {}\n",
                    k.access_key_id, k.status, k.last_used
                ));
            }
            md.push_str(&format!(
                "\nAdd to its `consumers:` once you have checked each holds this user's key:\n\n```yaml\n{}\n```\n\n",
                u.snippet
            ));
        }
        md
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes") + "\n"
    }
}
