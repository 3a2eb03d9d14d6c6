//! `discover` (CONTRACT §10): where the managed secret names live that the manifest does not
//! name. Read-only. The search is pure ([`findings`] over an [`Inventory`]); the GitHub adapter
//! gathers the inventory, and the report says what was found with each key's last use.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::manifest::{Scope, UserSpec};

pub use crate::ports::{Inventory, Lister};
pub use report::{KeyUse, Report, UserFindings};

pub mod aws;
pub mod code;
pub mod report;
pub mod sarif;

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
mod tests;
