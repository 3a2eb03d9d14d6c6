//! The README and the reference in `docs/` stay true: every relative link resolves (to a file,
//! and to a heading when it names one), the front door and the reference link both ways, the
//! inputs table lists exactly the action's inputs, and the help the docs quote is the binary's.
//! `UPDATE_DOCS=1` rewrites the quoted help from the binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page of docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The text outside code blocks (a link in an example is not a link).
fn prose(text: &str) -> String {
    let mut fence = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fence = !fence;
                return false;
            }
            !fence
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `](target)` of a page's prose.
fn links(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_owned());
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap().display().to_string()
}

#[test]
fn every_relative_link_resolves_to_a_file_and_its_heading() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((link.as_str(), ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", rel(&page)));
                continue;
            }
            if !anchor.is_empty() && target.extension().is_some_and(|x| x == "md") {
                let there = std::fs::read_to_string(&target).unwrap();
                if !anchors(&there).contains(anchor) {
                    broken.push(format!("{}: {link} (no such heading)", rel(&page)));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_front_door_and_the_reference_link_both_ways_and_the_readme_stays_short() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.lines().count() <= 250,
        "the README is a front door of at most 250 lines: {}",
        readme.lines().count()
    );
    let from_readme: BTreeSet<String> = links(&readme).into_iter().collect();
    for page in pages().iter().skip(1) {
        let name = format!("docs/{}", page.file_name().unwrap().to_string_lossy());
        if name != "docs/README.md" {
            assert!(
                from_readme.contains(&name),
                "the README does not link to {name}"
            );
        }
        let text = std::fs::read_to_string(page).unwrap();
        assert!(
            links(&text).iter().any(|l| l == "../README.md"),
            "{name} does not link back to the README"
        );
    }
}

/// The first column of the table under `## Inputs` in docs/workflows.md, each name once.
fn documented_inputs() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("docs/workflows.md")).unwrap();
    let section = text
        .split("\n## Inputs\n")
        .nth(1)
        .expect("docs/workflows.md has an Inputs section");
    // The first table of the section (the next one is the numbers' ranges).
    section
        .lines()
        .skip_while(|l| !l.starts_with("| input |"))
        .take_while(|l| l.starts_with('|'))
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let cell = l.split('|').nth(1).unwrap_or_default();
            cell.split(',')
                .map(|n| n.trim().trim_matches('`').to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_inputs_table_lists_exactly_the_actions_inputs() {
    let action: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root().join("action.yml")).unwrap())
            .unwrap();
    let declared: BTreeSet<String> = action["inputs"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let documented = documented_inputs();
    let missing: Vec<_> = declared.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&declared).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "inputs the docs do not list: {missing:?}; documented but not inputs: {stale:?}"
    );
}

#[test]
fn the_help_the_docs_quote_is_the_binarys() {
    let env = TestEnv::new();
    let none = Key {
        id: String::new(),
        secret: String::new(),
    };
    let help = env.cli(&none, &["--help"]);
    assert_eq!(help.code, 0);
    let path = root().join("docs/workflows.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let (head, rest) = text.split_once("<!-- help:begin -->\n```text\n").unwrap();
    let (quoted, tail) = rest.split_once("```\n<!-- help:end -->").unwrap();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let fresh = format!(
            "{head}<!-- help:begin -->\n```text\n{}\n```\n<!-- help:end -->{tail}",
            help.stdout.trim_end()
        );
        std::fs::write(&path, fresh).unwrap();
        return;
    }
    assert_eq!(
        quoted.trim_end(),
        help.stdout.trim_end(),
        "docs/workflows.md quotes another help: UPDATE_DOCS=1 cargo test --test e2e docs::"
    );
}
