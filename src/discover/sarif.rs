//! `discover --sarif FILE` (CONTRACT §18): the findings as SARIF 2.1.0, the format GitHub code
//! scanning takes (`github/codeql-action/upload-sarif`), so a committed key shows where security
//! teams already look. Pure: a [`Report`] in, a JSON document out.
//!
//! - A key id in code: rule `exposed-access-key-id`, level `error`, security severity 9.0.
//! - A user's name in code: rule `iam-user-in-code`, level `note`.
//! - A place holding a user's key or secret names that the manifest does not list: rule
//!   `unlisted-consumer`, level `warning`, located at the user's entry in the manifest.
//!
//! A file of the repository the workflow runs in is named by its path (code scanning shows it
//! in place); a file elsewhere by its URL.

use serde_json::{Value, json};

use super::Report;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Where the findings are shown from.
pub struct Context<'a> {
    /// `GITHUB_REPOSITORY`: its files are named by path.
    pub repository: Option<&'a str>,
    /// `GITHUB_SERVER_URL` (`https://github.com`): other repositories' files by URL.
    pub server_url: &'a str,
    /// The manifest's path, relative to the workspace, and each user's entry line in it.
    pub manifest: &'a str,
    pub user_lines: &'a [(String, usize)],
}

fn rules() -> Value {
    json!([
        {
            "id": "exposed-access-key-id",
            "name": "ExposedAccessKeyId",
            "shortDescription": { "text": "An AWS access key id of a managed IAM user is committed" },
            "fullDescription": { "text": "The access key id of an IAM user whose keys aws-key-rotator rotates is in a file. Whoever can read the file may also have found its secret: the key is exposed." },
            "help": {
                "text": "Take the key out of service at once: run `aws-key-rotator rotate --compromised-key-id KEY` (the action's input compromised-key-id), which writes a new key everywhere and makes the exposed one Inactive. Then remove the key from the file and its history.",
                "markdown": "Take the key out of service at once: run `aws-key-rotator rotate --compromised-key-id KEY` (the action's input `compromised-key-id`), which writes a new key everywhere and makes the exposed one Inactive. Then remove the key from the file and its history."
            },
            "defaultConfiguration": { "level": "error" },
            "properties": { "security-severity": "9.0", "tags": ["security", "secret", "aws"] }
        },
        {
            "id": "iam-user-in-code",
            "name": "IamUserInCode",
            "shortDescription": { "text": "A managed IAM user is named in code" },
            "fullDescription": { "text": "The name of an IAM user whose keys aws-key-rotator rotates is in a file: the code may use its key from a place the manifest does not list." },
            "help": { "text": "Check whether this code reads the user's key. If it does, list where it reads it as a consumer in the manifest, or move it to a role." },
            "defaultConfiguration": { "level": "note" },
            "properties": { "security-severity": "2.0", "tags": ["security", "aws"] }
        },
        {
            "id": "unlisted-consumer",
            "name": "UnlistedConsumer",
            "shortDescription": { "text": "A place may hold a managed key without being in the manifest" },
            "fullDescription": { "text": "A store holds a managed user's secret names or key id, or is named after the user, and the manifest does not list it: it would break when the old key is retired." },
            "help": { "text": "Check that it holds the user's key, then add the snippet discover prints to the user's consumers." },
            "defaultConfiguration": { "level": "warning" },
            "properties": { "security-severity": "5.0", "tags": ["security", "aws"] }
        }
    ])
}

/// FNV-1a, 64 bits: a stable fingerprint of a finding across runs.
fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.join("\u{1f}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn location(uri: &str, relative: bool, line: usize) -> Value {
    let mut artifact = json!({ "uri": uri });
    if relative {
        artifact["uriBaseId"] = json!("%SRCROOT%");
    }
    json!([{ "physicalLocation": { "artifactLocation": artifact, "region": { "startLine": line.max(1) } } }])
}

fn file_uri(cx: &Context<'_>, repository: &str, path: &str) -> (String, bool) {
    let own = cx
        .repository
        .is_some_and(|r| r.eq_ignore_ascii_case(repository));
    let encoded: Vec<String> = path
        .split('/')
        .map(crate::adapters::github::encode_segment)
        .collect();
    if own {
        (encoded.join("/"), true)
    } else {
        (
            format!(
                "{}/{repository}/blob/HEAD/{}",
                cx.server_url.trim_end_matches('/'),
                encoded.join("/")
            ),
            false,
        )
    }
}

/// The SARIF 2.1.0 log of `report`.
pub fn log(report: &Report, cx: &Context<'_>) -> Value {
    let mut results = Vec::new();
    for u in &report.users {
        for c in &u.code {
            let (uri, relative) = file_uri(cx, &c.repository, &c.path);
            let (rule, index, text) = match &c.access_key_id {
                Some(id) => (
                    "exposed-access-key-id",
                    0,
                    format!(
                        "Access key id {id} of IAM user {} is committed here: the key is exposed. Respond with `{}`.",
                        u.name,
                        c.respond.as_deref().unwrap_or_default()
                    ),
                ),
                None => (
                    "iam-user-in-code",
                    1,
                    format!(
                        "IAM user {} is named here: check whether this code reads its key.",
                        u.name
                    ),
                ),
            };
            let term = c.access_key_id.as_deref().unwrap_or(&u.name);
            results.push(json!({
                "ruleId": rule,
                "ruleIndex": index,
                "level": if index == 0 { "error" } else { "note" },
                "message": { "text": text },
                "locations": location(&uri, relative, c.line),
                "partialFingerprints": { "awsKeyRotator/v1": fingerprint(&[rule, &c.repository, &c.path, term]) },
            }));
        }
        let line = cx
            .user_lines
            .iter()
            .find(|(n, _)| *n == u.name)
            .map_or(1, |(_, l)| *l);
        let unlisted = u
            .findings
            .iter()
            .map(|f| (f.store.clone(), format!("holds {}", f.secret)))
            .chain(u.mentions.iter().map(|m| (m.store.clone(), m.why.clone())));
        for (store, why) in unlisted {
            results.push(json!({
                "ruleId": "unlisted-consumer",
                "ruleIndex": 2,
                "level": "warning",
                "message": { "text": format!("{store} ({why}) is not a consumer of IAM user {} in the manifest: it may use the user's key and would break when the old key is retired.", u.name) },
                "locations": location(cx.manifest, true, line),
                "partialFingerprints": { "awsKeyRotator/v1": fingerprint(&["unlisted-consumer", &u.name, &store]) },
            }));
        }
    }
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "aws-key-rotator",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules(),
            } },
            "automationDetails": { "id": "aws-key-rotator/discover/" },
            "results": results,
        }],
    })
}
