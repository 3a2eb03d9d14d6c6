//! A repository's contents (its workflow files): a directory lists its direct children, a
//! file comes base64 in lines of 60 as GitHub sends it; `ref` is ignored (one branch). Shas
//! are git's: a file's is its blob's id.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as Extract};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{Shared, State, not_found, ok, repo};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/repos/{o}/{r}/contents",
            get(
                |Extract(s): Extract<Shared>, Path((o, r)): Path<(String, String)>| async move {
                    contents(&s.lock().unwrap(), &format!("{o}/{r}"), "")
                },
            ),
        )
        .route(
            "/repos/{o}/{r}/contents/{*path}",
            get(
                |Extract(s): Extract<Shared>,
                 Path((o, r, path)): Path<(String, String, String)>| async move {
                    contents(&s.lock().unwrap(), &format!("{o}/{r}"), &path)
                },
            ),
        )
}

fn contents(s: &State, repository: &str, path: &str) -> Response {
    if !s.scopes.contains_key(&repo(repository)) {
        return not_found();
    }
    let path = path.trim_matches('/');
    let files = s.contents.get(repository);
    if let Some(text) = files.and_then(|f| f.get(path)) {
        let mut file = entry(
            repository,
            path,
            "file",
            &git_sha("blob", text.as_bytes()),
            text.len(),
        );
        let b64 = STANDARD.encode(text);
        let lines: String = b64
            .as_bytes()
            .chunks(60)
            .map(|l| format!("{}\n", String::from_utf8_lossy(l)))
            .collect();
        file["encoding"] = json!("base64");
        file["content"] = json!(lines);
        return ok(StatusCode::OK, file);
    }
    let prefix = match path {
        "" => String::new(),
        p => format!("{p}/"),
    };
    // Each direct child: a file, or a directory (with what it holds, for its sha).
    let mut children: BTreeMap<&str, (Option<&String>, String)> = BTreeMap::new();
    for (p, text) in files.into_iter().flatten() {
        let Some(rest) = p.strip_prefix(&prefix) else {
            continue;
        };
        match rest.split_once('/') {
            None => {
                children.insert(rest, (Some(text), String::new()));
            }
            Some((dir, _)) => {
                let held = &mut children.entry(dir).or_insert((None, String::new())).1;
                held.push_str(&format!("{p}\0{}\0", git_sha("blob", text.as_bytes())));
            }
        }
    }
    if children.is_empty() {
        return not_found();
    }
    let entries: Vec<Value> = children
        .into_iter()
        .map(|(name, (text, held))| {
            let p = format!("{prefix}{name}");
            match text {
                Some(t) => entry(
                    repository,
                    &p,
                    "file",
                    &git_sha("blob", t.as_bytes()),
                    t.len(),
                ),
                None => {
                    let sha = git_sha("tree", format!("{p}\0{held}").as_bytes());
                    entry(repository, &p, "dir", &sha, 0)
                }
            }
        })
        .collect();
    ok(StatusCode::OK, Value::Array(entries))
}

/// A directory entry as GitHub lists it (a file's answer adds its content).
fn entry(repository: &str, path: &str, kind: &str, sha: &str, size: usize) -> Value {
    let api = "https://api.github.example";
    let (html, git, download) = match kind {
        "file" => (
            "blob",
            "blobs",
            json!(format!(
                "https://raw.githubusercontent.example/{repository}/main/{path}"
            )),
        ),
        _ => ("tree", "trees", Value::Null),
    };
    json!({
        "type": kind,
        "name": path.rsplit('/').next(),
        "path": path,
        "sha": sha,
        "size": size,
        "url": format!("{api}/repos/{repository}/contents/{path}?ref=main"),
        "git_url": format!("{api}/repos/{repository}/git/{git}/{sha}"),
        "html_url": format!("https://github.example/{repository}/{html}/main/{path}"),
        "download_url": download,
    })
}

/// Git's object id: the SHA-1 of `{kind} {length}\0{bytes}`. (A directory's here is a stand-in
/// that changes with what it holds.)
fn git_sha(kind: &str, bytes: &[u8]) -> String {
    let mut m = format!("{kind} {}\0", bytes.len()).into_bytes();
    m.extend_from_slice(bytes);
    sha1(&m)
}

/// SHA-1 (FIPS 180-4), hex.
fn sha1(data: &[u8]) -> String {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut m = data.to_vec();
    m.push(0x80);
    while m.len() % 64 != 56 {
        m.push(0);
    }
    m.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    for block in m.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().unwrap());
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i / 20 {
                0 => ((b & c) | (!b & d), 0x5A827999),
                1 => (b ^ c ^ d, 0x6ED9EBA1),
                2 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}
