//! The AWS places that may hold a key and are not consumers (CONTRACT §18): Secrets Manager
//! secrets and SSM parameters whose name or description names a user (listed, never read), and
//! the S3 objects under the prefixes the manifest's objects already live in that hold a managed
//! key id (read, never shown).
//!
//! Who else writes these: anyone who may create a secret, a parameter or an object there. A name
//! only ever makes a finding to check, shown quoted; an object's text is only searched.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::ExposeSecret;
use serde::Serialize;

use super::code::names;
use super::snippet;
use crate::manifest::{DocumentFormat, Scope, UserSpec};
use crate::ports::discover::{AwsListing, Named};

/// The largest object read for a key id: config, not data.
pub const OBJECT_LIMIT: u64 = 1024 * 1024;

/// A place in AWS that names a user or holds its key, with the entry that would list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mention {
    pub user: String,
    pub store: String,
    pub why: String,
    pub snippet: String,
}

/// What the AWS search found, and what it could not look at.
#[derive(Debug, Default)]
pub struct Found {
    pub mentions: Vec<Mention>,
    pub warnings: Vec<String>,
}

/// Searches one account's stores for `users` (those reached through it). `keys`: each user's
/// key ids.
pub async fn search<A: AwsListing>(
    aws: &A,
    users: &[&UserSpec],
    keys: &BTreeMap<String, Vec<String>>,
) -> Found {
    let mut found = Found::default();
    for region in regions(users) {
        secrets(aws, users, &region, &mut found).await;
        parameters(aws, users, &region, &mut found).await;
    }
    objects(aws, users, keys, &mut found).await;
    found
}

/// The run's region, and every region an AWS consumer names.
fn regions(users: &[&UserSpec]) -> BTreeSet<Option<String>> {
    let mut out = BTreeSet::from([None]);
    for c in users.iter().flat_map(|u| &u.consumers) {
        if let Scope::SecretsManager { region, .. } | Scope::ParameterStore { region } = &c.scope
            && region.is_some()
        {
            out.insert(region.clone());
        }
    }
    out
}

fn in_words(region: &Option<String>) -> String {
    region
        .as_deref()
        .map_or_else(|| "the run's region".to_owned(), |r| r.to_owned())
}

/// The users whose name `n`'s name or description names.
fn named<'a>(users: &[&'a UserSpec], n: &Named) -> Vec<&'a UserSpec> {
    users
        .iter()
        .copied()
        .filter(|u| {
            names(&n.name, &u.name) || n.description.as_deref().is_some_and(|d| names(d, &u.name))
        })
        .collect()
}

async fn secrets<A: AwsListing>(
    aws: &A,
    users: &[&UserSpec],
    region: &Option<String>,
    found: &mut Found,
) {
    let listed = match aws.secrets(region).await {
        Ok(l) => l,
        Err(e) => {
            found.warnings.push(format!(
                "Secrets Manager in {} not searched: {e}",
                in_words(region)
            ));
            return;
        }
    };
    for s in &listed {
        for u in named(users, s) {
            let consumer = u.consumers.iter().any(|c| {
                matches!(&c.scope, Scope::SecretsManager { secret, .. }
                    if secret == &s.name || arn_names(secret, &s.name))
            });
            if consumer {
                continue;
            }
            let scope = Scope::SecretsManager {
                secret: s.name.clone(),
                region: region.clone(),
            };
            let mut snippet = snippet(&scope);
            if let Some(r) = region {
                snippet.push_str(&format!("\n  region: {r}"));
            }
            found.mentions.push(Mention {
                user: u.name.clone(),
                store: scope.to_string(),
                why: format!("its name or description names {}", u.name),
                snippet,
            });
        }
    }
}

async fn parameters<A: AwsListing>(
    aws: &A,
    users: &[&UserSpec],
    region: &Option<String>,
    found: &mut Found,
) {
    let listed = match aws.parameters(region).await {
        Ok(l) => l,
        Err(e) => {
            found.warnings.push(format!(
                "Parameter Store in {} not searched: {e}",
                in_words(region)
            ));
            return;
        }
    };
    for u in users {
        let held: BTreeSet<&str> = u
            .consumers
            .iter()
            .filter(|c| matches!(c.scope, Scope::ParameterStore { .. }))
            .flat_map(|c| {
                [
                    c.secrets.access_key_id.as_str(),
                    c.secrets.secret_access_key.as_str(),
                ]
            })
            .collect();
        let mine: Vec<&Named> = listed
            .iter()
            .filter(|p| !held.contains(p.name.as_str()) && named(&[u], p).len() == 1)
            .collect();
        for pair in pairs(&mine) {
            let store = match region {
                Some(r) => format!("Parameter Store in {r}"),
                None => "Parameter Store".to_owned(),
            };
            let (why, snippet) = match pair {
                (Some(id), Some(secret)) => (
                    format!("parameters {id} and {secret} name {}", u.name),
                    format!(
                        "- ssm-parameters: {{ access-key-id: {id}, secret-access-key: {secret} }}"
                    ),
                ),
                (one, other) => {
                    let name = one.or(other).unwrap_or_default();
                    (
                        format!("parameter {name} names {}", u.name),
                        format!(
                            "# - ssm-parameters: {{ access-key-id: …, secret-access-key: … }}   # one of them: {name}"
                        ),
                    )
                }
            };
            let snippet = match region {
                Some(r) if !snippet.starts_with('#') => format!("{snippet}\n  region: {r}"),
                _ => snippet,
            };
            found.mentions.push(Mention {
                user: u.name.clone(),
                store,
                why,
                snippet,
            });
        }
    }
}

/// Parameters paired by their path: two under one path, one naming a secret, are an id and
/// its secret; any other is alone.
fn pairs<'a>(params: &[&'a Named]) -> Vec<(Option<&'a str>, Option<&'a str>)> {
    let mut by_path: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in params {
        let path = p.name.rsplit_once('/').map_or("", |(dir, _)| dir);
        by_path.entry(path).or_default().push(&p.name);
    }
    let mut out = Vec::new();
    for (_, names) in by_path {
        let secret = |n: &&str| {
            n.rsplit('/')
                .next()
                .unwrap_or(n)
                .to_ascii_lowercase()
                .contains("secret")
        };
        match names.as_slice() {
            [a, b] if secret(a) != secret(b) => {
                let (id, s) = if secret(a) { (b, a) } else { (a, b) };
                out.push((Some(*id), Some(*s)));
            }
            _ => out.extend(names.iter().map(|n| (Some(*n), None))),
        }
    }
    out
}

/// The S3 objects the manifest names, and the prefixes they live under (bucket, prefix,
/// region).
type Prefixes = BTreeSet<(String, String, Option<String>)>;

fn prefixes(users: &[&UserSpec]) -> (BTreeSet<(String, String)>, Prefixes) {
    let mut objects = BTreeSet::new();
    let mut prefixes = BTreeSet::new();
    for c in users.iter().flat_map(|u| &u.consumers) {
        if let Scope::S3 {
            bucket,
            key,
            region,
            ..
        } = &c.scope
        {
            objects.insert((bucket.clone(), key.clone()));
            let prefix = match key.rsplit_once('/') {
                Some((dir, _)) if !dir.is_empty() => format!("{dir}/"),
                _ => String::new(),
            };
            prefixes.insert((bucket.clone(), prefix, region.clone()));
        }
    }
    (objects, prefixes)
}

async fn objects<A: AwsListing>(
    aws: &A,
    users: &[&UserSpec],
    keys: &BTreeMap<String, Vec<String>>,
    found: &mut Found,
) {
    let (named, prefixes) = prefixes(users);
    for (bucket, prefix, region) in prefixes {
        let (listed, more) = match aws.objects(&bucket, &prefix, &region).await {
            Ok(l) => l,
            Err(e) => {
                found
                    .warnings
                    .push(format!("s3://{bucket}/{prefix} not searched: {e}"));
                continue;
            }
        };
        if more {
            found.warnings.push(format!(
                "s3://{bucket}/{prefix}: only its first 1,000 objects were searched"
            ));
        }
        let mut unread = 0;
        for key in listed {
            if named.contains(&(bucket.clone(), key.clone())) {
                continue;
            }
            let Some(format) = DocumentFormat::from_name(&key) else {
                continue;
            };
            // Its name goes into a snippet to paste: only a plain one.
            if !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+=@".contains(c))
            {
                found.warnings.push(format!(
                    "s3://{bucket}/{}: not searched (a name to quote by hand)",
                    crate::text::quoted(&key)
                ));
                continue;
            }
            let scope = Scope::S3 {
                bucket: bucket.clone(),
                key,
                format,
                region: region.clone(),
            };
            match object(aws, &scope, users, keys).await {
                Ok(mentions) => found.mentions.extend(mentions),
                Err(()) => unread += 1,
            }
        }
        if unread > 0 {
            found.warnings.push(format!(
                "s3://{bucket}/{prefix}: {unread} objects could not be read (s3:GetObject on the prefix lets discover search them)"
            ));
        }
    }
}

/// The users whose key id the object holds, as mentions; `Err` when it could not be read.
async fn object<A: AwsListing>(
    aws: &A,
    scope: &Scope,
    users: &[&UserSpec],
    keys: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<Mention>, ()> {
    let Scope::S3 {
        bucket,
        key,
        format,
        region,
    } = scope
    else {
        return Ok(Vec::new());
    };
    let text = match aws.object_text(bucket, key, region, OBJECT_LIMIT).await {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(Vec::new()),
        Err(_) => return Err(()),
    };
    let mut out = Vec::new();
    for u in users {
        let Some(id) = keys
            .get(&u.name)
            .into_iter()
            .flatten()
            .find(|id| text.expose_secret().lines().any(|l| names(l, id)))
        else {
            continue;
        };
        let mut snippet = snippet(scope);
        if !matches!(format, DocumentFormat::Dotenv | DocumentFormat::Credentials) {
            snippet.push_str(
                "\n  fields: { access-key-id: …, secret-access-key: … }   # where the pair is",
            );
        }
        out.push(Mention {
            user: u.name.clone(),
            store: scope.to_string(),
            why: format!("holds key id {id}"),
            snippet,
        });
    }
    Ok(out)
}

/// Whether `arn` is the ARN of the secret named `name` (Secrets Manager appends `-` and six
/// characters to it).
fn arn_names(arn: &str, name: &str) -> bool {
    arn.rsplit_once(":secret:")
        .and_then(|(_, tail)| tail.strip_prefix(name))
        .is_some_and(|rest| rest.len() == 7 && rest.starts_with('-'))
}
