//! `discover` (CONTRACT §10, §18): every place a managed key may live that the manifest does not
//! list — GitHub stores holding its secret names, files naming its key id or user, AWS stores
//! named after the user, S3 objects holding its key id — each key's last use, and, with
//! `sarif-file`, the findings as SARIF. Reads only. A key id found in code is exposed: the run
//! says so as an error and exits 3; every other finding is a warning.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Stop, github_client, load_manifest, summarize};
use crate::action::{Console, Runtime};
use crate::adapters::aws::{self, Aws};
use crate::adapters::aws_stores::AwsStores;
use crate::adapters::github::GitHub;
use crate::config::Settings;
use crate::config::Tuning;
use crate::discover::code::{self, CodeFinding};
use crate::discover::report::Gathered;
use crate::discover::{self, Inventory, KeyUse, Lister, Report};
use crate::exit::Exit;
use crate::manifest::UserSpec;
use crate::model::KeyInfo;
use crate::ports::discover::CodeSearch;
use crate::ports::{Events, GhErrorKind, Iam};

pub(super) async fn discover(
    settings: &Settings,
    rt: &Runtime,
    console: &Console,
    tuning: &Tuning,
) -> Result<Exit, Stop> {
    let manifest = load_manifest(settings, rt)?;
    let github = github_client(settings, rt, console, tuning, &manifest).await?;
    let owners = discover::owners(&manifest.users);
    let inventory = inventory(&github, &owners, console).await?;
    let findings = discover::findings(&manifest.users, &inventory);
    let home = aws::load(tuning.propagation, tuning.pacing.call_timeout).await;
    let sessions = reach(&home, &manifest.users, console).await?;
    let accounts: Vec<(&Aws, Vec<&UserSpec>)> = std::iter::once((
        &home,
        manifest
            .users
            .iter()
            .filter(|u| u.account_role.is_none())
            .collect(),
    ))
    .chain(sessions.iter().map(|(aws, users)| (aws, users.clone())))
    .collect();
    let key_ids = all_keys(&accounts).await?;
    let ids: BTreeMap<String, Vec<String>> = key_ids
        .iter()
        .map(|(u, keys)| (u.clone(), keys.iter().map(|k| k.id.clone()).collect()))
        .collect();
    let (code, code_searches) = search_code(&github, &owners, &manifest.users, &ids, console).await;
    let mentions = aws_mentions(&accounts, &ids, console).await;
    let found = |name: &str| {
        findings.iter().any(|f| f.user == name)
            || mentions.iter().any(|m| m.user == name)
            || code.iter().any(|c| c.user == name)
    };
    let keys = key_uses(&accounts, &key_ids, found).await;
    let report = Report::new(
        &manifest.users,
        Gathered {
            owners,
            repositories: inventory.repositories,
            github_requests: github.requests(),
            code_searches,
            findings,
            mentions,
            code,
            keys,
        },
    );
    tell(&report, console);
    if let Some(file) = &settings.sarif_file {
        write_sarif(&report, &manifest.users, file, settings, rt)?;
    }
    if settings.json {
        print!("{}", console.scrub(&report.json()));
    } else {
        console.info(report.text().trim_end());
    }
    summarize(rt, console, || report.markdown());
    Ok(if report.exposed().is_empty() {
        Exit::Ok
    } else {
        Exit::Refused
    })
}

/// Every user's keys, oldest first.
async fn all_keys(
    accounts: &[(&Aws, Vec<&UserSpec>)],
) -> Result<BTreeMap<String, Vec<KeyInfo>>, Stop> {
    let mut out = BTreeMap::new();
    for (aws, users) in accounts {
        for u in users {
            out.insert(u.name.clone(), list_keys(aws, u).await?);
        }
    }
    Ok(out)
}

/// The AWS places of each account that name its users or hold their key ids.
async fn aws_mentions(
    accounts: &[(&Aws, Vec<&UserSpec>)],
    ids: &BTreeMap<String, Vec<String>>,
    console: &Console,
) -> Vec<discover::aws::Mention> {
    let mut mentions = Vec::new();
    for (aws, users) in accounts {
        let found = discover::aws::search(&AwsStores::new(aws.config()), users, ids).await;
        for w in &found.warnings {
            console.warn(&format!("discover: {w}"));
        }
        mentions.extend(found.mentions);
    }
    mentions
}

/// The last use of every key of each user with a finding (`found`).
async fn key_uses(
    accounts: &[(&Aws, Vec<&UserSpec>)],
    keys: &BTreeMap<String, Vec<KeyInfo>>,
    found: impl Fn(&str) -> bool,
) -> BTreeMap<String, Vec<KeyUse>> {
    let mut out = BTreeMap::new();
    for (aws, users) in accounts {
        for u in users.iter().filter(|u| found(&u.name)) {
            out.insert(u.name.clone(), last_uses(aws, &keys[&u.name]).await);
        }
    }
    out
}

/// Every store of every owner, with the limits of what could be seen said as warnings.
async fn inventory(
    github: &GitHub,
    owners: &[String],
    console: &Console,
) -> Result<Inventory, Stop> {
    let mut inventory = Inventory::default();
    for owner in owners {
        let inv = github.inventory(owner).await.map_err(|e| {
            let code = match e.kind {
                GhErrorKind::Unavailable => Exit::Failed,
                _ => Exit::Invalid,
            };
            Stop::new(code, format!("discover: {}", e.message))
        })?;
        inventory.repositories += inv.repositories;
        inventory.stores.extend(inv.stores);
        for limit in &inv.limits {
            console.warn(&format!("discover: {limit}"));
        }
    }
    Ok(inventory)
}

/// Each other account the users live in, with its users: one session per account role
/// (CONTRACT §15).
async fn reach<'a>(
    home: &Aws,
    users: &'a [UserSpec],
    console: &Console,
) -> Result<Vec<(Aws, Vec<&'a UserSpec>)>, Stop> {
    let run_id = format!("discover-{}", std::process::id());
    let mut out: Vec<(Aws, Vec<&UserSpec>)> = Vec::new();
    let mut roles = Vec::new();
    for u in users {
        if let Some(role) = &u.account_role
            && !roles.contains(role)
        {
            roles.push(role.clone());
        }
    }
    for role in roles {
        let session = home
            .through_role(&role, &run_id, super::mask_with(console))
            .await;
        let mine: Vec<&UserSpec> = users
            .iter()
            .filter(|u| u.account_role.as_ref() == Some(&role))
            .collect();
        let aws = session.reached.map_err(|e| {
            let (code, why) = super::not_reached(&e);
            Stop::new(
                code,
                format!("{}: {why}", mine.first().map_or("", |u| &u.name)),
            )
        })?;
        out.push((aws, mine));
    }
    Ok(out)
}

async fn list_keys(aws: &Aws, user: &UserSpec) -> Result<Vec<KeyInfo>, Stop> {
    let listed = aws.list_keys(&user.name).await.map_err(|e| {
        Stop::new(
            Exit::Invalid,
            format!("iam:ListAccessKeys for {}: {e}", user.name),
        )
    })?;
    Ok(crate::rotation::state::oldest_first(listed))
}

async fn last_uses(aws: &Aws, keys: &[KeyInfo]) -> Vec<KeyUse> {
    let mut uses = Vec::new();
    for k in keys {
        let used = aws
            .last_used(&k.id)
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("last use unknown ({e})"));
        uses.push(KeyUse {
            access_key_id: k.id.clone(),
            status: format!("{:?}", k.status),
            last_used: used,
        });
    }
    uses
}

/// Code search for every key id and user name over the owners, then each file found read for
/// the lines that name them. A token that may not search gets one warning, and the run goes
/// on. Answers the findings and how many search requests were sent.
async fn search_code(
    github: &GitHub,
    owners: &[String],
    users: &[UserSpec],
    ids: &BTreeMap<String, Vec<String>>,
    console: &Console,
) -> (Vec<CodeFinding>, usize) {
    let terms = code::terms(users, ids);
    let mut hits = Vec::new();
    let mut searches = 0;
    for query in code::queries(owners, &terms) {
        searches += 1;
        match github.search_code(&query).await {
            Ok(found) => {
                if found.total > found.hits.len() as u64 {
                    console.warn(&format!(
                        "discover: code search for {} found {} files, and GitHub answers only the first {}: narrow the search by hand",
                        crate::text::quoted(&query),
                        found.total,
                        found.hits.len()
                    ));
                }
                hits.extend(found.hits);
            }
            // The token may not search at all: said once.
            Err(e) if matches!(e.kind, GhErrorKind::Forbidden | GhErrorKind::Unauthorized) => {
                console.warn(&format!(
                    "discover: code not searched ({e}); a token that may search code (any token that reads the repositories) lets discover find the key in files"
                ));
                break;
            }
            // This owner cannot be searched (422), or GitHub failed: the others still are.
            Err(e) => console.warn(&format!("discover: code not searched: {e}")),
        }
    }
    hits.sort_by(|a, b| (&a.repository, &a.path).cmp(&(&b.repository, &b.path)));
    hits.dedup();
    let mut out = Vec::new();
    for hit in &hits {
        match github.file_text(&hit.repository, &hit.path).await {
            Ok(Some(text)) => out.extend(code::findings(hit, &text, &terms)),
            Ok(None) => {}
            Err(e) => console.warn(&format!("discover: {e}")),
        }
    }
    (out, searches)
}

/// One warning per place not in the manifest, one error per exposed key.
fn tell(report: &Report, console: &Console) {
    for u in &report.users {
        for f in &u.findings {
            console.warn(&format!(
                "{}: {} holds {}, but the manifest does not list it as a consumer: it may use this user's key and would break when the old key is retired. Check it, then add it to the manifest",
                u.name, f.store, f.secret
            ));
        }
        for m in &u.mentions {
            console.warn(&format!(
                "{}: {} ({}) is not in the manifest: check whether it holds this user's key, then add it",
                u.name,
                crate::text::quoted(&m.store),
                m.why
            ));
        }
    }
    for (user, id) in report.exposed() {
        console.error(&format!(
            "{user}: access key {id} is committed in code (see the report for where): it is exposed. Respond with `{}` (the action's input compromised-key-id)",
            code::respond(id)
        ));
    }
}

/// The SARIF log at `file` (relative to the workspace).
fn write_sarif(
    report: &Report,
    users: &[UserSpec],
    file: &str,
    settings: &Settings,
    rt: &Runtime,
) -> Result<(), Stop> {
    let crate::config::ManifestSource::File { path, .. } = &settings.config;
    let user_lines: Vec<(String, usize)> = users
        .iter()
        .map(|u| {
            // `file:line:column`.
            let line = u
                .origin
                .rsplit(':')
                .nth(1)
                .and_then(|l| l.parse().ok())
                .unwrap_or(1);
            (u.name.clone(), line)
        })
        .collect();
    let cx = discover::sarif::Context {
        repository: rt.repository.as_deref(),
        server_url: &rt.server_url,
        manifest: path,
        user_lines: &user_lines,
    };
    let log = discover::sarif::log(report, &cx);
    let full = match &rt.workspace {
        Some(ws) if Path::new(file).is_relative() => Path::new(ws).join(file),
        _ => Path::new(file).to_path_buf(),
    };
    let text = serde_json::to_string_pretty(&log).expect("the log serializes") + "\n";
    std::fs::write(&full, text).map_err(|e| {
        Stop::new(
            Exit::Invalid,
            format!(
                "cannot write the SARIF file {}: {e}; {} is relative to the workspace",
                full.display(),
                settings.named("sarif-file")
            ),
        )
    })
}
