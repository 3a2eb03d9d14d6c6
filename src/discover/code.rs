//! The key searched for in code (CONTRACT §18): each managed key id and user name, in GitHub's
//! code search over the consumers' owners, then found line by line in each file. Pure: the
//! queries, and the lines of a file's text that name a term.
//!
//! Who else writes what this reads: anyone who can push to a repository of an owner writes its
//! files, their paths included. A file only ever makes a finding (never an action), its path is
//! quoted wherever it is shown, and its text is never shown (the secret may be beside the id).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::manifest::UserSpec;
use crate::ports::discover::CodeHit;

/// At most this many terms in one query: GitHub allows five `OR`s.
const TERMS_PER_QUERY: usize = 5;

/// What is searched for: a managed key id (`key_id`) or a user's name, and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    pub text: String,
    pub user: String,
    pub key_id: bool,
}

/// Each user's name and each of its keys' ids (`keys`: user → key ids).
pub fn terms(users: &[UserSpec], keys: &BTreeMap<String, Vec<String>>) -> Vec<Term> {
    let mut out = Vec::new();
    for u in users {
        for id in keys.get(&u.name).into_iter().flatten() {
            out.push(Term {
                text: id.clone(),
                user: u.name.clone(),
                key_id: true,
            });
        }
        out.push(Term {
            text: u.name.clone(),
            user: u.name.clone(),
            key_id: false,
        });
    }
    out
}

/// The code search queries: for each owner, the terms quoted and joined by `OR`, five at most
/// per query, key ids apart from names (a common name filling GitHub's 1,000 results must not
/// hide a key id). `user:` reaches an organization's repositories as well as a user's.
pub fn queries(owners: &[String], terms: &[Term]) -> Vec<String> {
    let mut out = Vec::new();
    for owner in owners {
        for ids in [true, false] {
            let kind: Vec<&Term> = terms.iter().filter(|t| t.key_id == ids).collect();
            for chunk in kind.chunks(TERMS_PER_QUERY) {
                let words: Vec<String> = chunk.iter().map(|t| format!("\"{}\"", t.text)).collect();
                out.push(format!("{} user:{owner}", words.join(" OR ")));
            }
        }
    }
    out
}

/// A place in code that names a managed key id (exposed) or a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CodeFinding {
    pub user: String,
    pub repository: String,
    pub path: String,
    /// 1-based.
    pub line: usize,
    /// The key id found, when the term was one: the key is exposed (CONTRACT §17).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// The command that takes an exposed key out of service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub respond: Option<String>,
}

/// The command that answers an exposed key.
pub fn respond(key_id: &str) -> String {
    format!("aws-key-rotator rotate --compromised-key-id {key_id}")
}

/// Every line of `text` naming a term, as findings in `hit`'s file. A term counts only as a
/// whole word: no letter, digit or character of an IAM name (`+=,.@_-`) right before or after.
pub fn findings(hit: &CodeHit, text: &str, terms: &[Term]) -> Vec<CodeFinding> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for t in terms {
            if !names(line, &t.text) {
                continue;
            }
            out.push(CodeFinding {
                user: t.user.clone(),
                repository: hit.repository.clone(),
                path: hit.path.clone(),
                line: n + 1,
                access_key_id: t.key_id.then(|| t.text.clone()),
                respond: t.key_id.then(|| respond(&t.text)),
            });
        }
    }
    out
}

pub(crate) fn names(line: &str, term: &str) -> bool {
    // A key id is letters and digits; a name also `_` and `-`, and `.,=@+` inside it (a name
    // at the end of a sentence is still the name).
    let id = crate::model::is_access_key_id(term);
    let word = |c: char| c.is_ascii_alphanumeric() || (!id && (c == '_' || c == '-'));
    let joins = |c: char| !id && ".,=@+".contains(c);
    // Whether the term is not part of a longer word on this side: the next character is no
    // word's, or one that joins two words but is not followed by one.
    let bounded = |side: &mut dyn Iterator<Item = char>| match side.next() {
        None => true,
        Some(c) if word(c) => false,
        Some(c) if joins(c) => !side.next().is_some_and(word),
        Some(_) => true,
    };
    line.match_indices(term).any(|(at, _)| {
        bounded(&mut line[..at].chars().rev()) && bounded(&mut line[at + term.len()..].chars())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(text: &str, key_id: bool) -> Term {
        Term {
            text: text.into(),
            user: "ci".into(),
            key_id,
        }
    }

    #[test]
    fn a_term_counts_as_a_whole_word_on_its_line() {
        let hit = CodeHit {
            repository: "acme/web".into(),
            path: "deploy.sh".into(),
        };
        let text = "#!/bin/sh\nexport AWS_ACCESS_KEY_ID=AKIAEXAMPLE000000001\nAKIAEXAMPLE0000000012 is another\nuser ci-deployer, not ci.\nci.deployer is another\n";
        let terms = [term("AKIAEXAMPLE000000001", true), term("ci", false)];
        let found = findings(&hit, text, &terms);
        assert_eq!(
            found
                .iter()
                .map(|f| (f.line, f.access_key_id.is_some()))
                .collect::<Vec<_>>(),
            [(2, true), (4, false)]
        );
        assert_eq!(
            found[0].respond.as_deref(),
            Some("aws-key-rotator rotate --compromised-key-id AKIAEXAMPLE000000001")
        );
    }

    #[test]
    fn queries_quote_terms_five_at_most_per_owner() {
        let mut terms: Vec<Term> = (0..6).map(|i| term(&format!("t{i}"), false)).collect();
        terms.insert(2, term("AKIAEXAMPLE000000001", true));
        let q = queries(&["acme".into(), "bob".into()], &terms);
        assert_eq!(
            q,
            [
                "\"AKIAEXAMPLE000000001\" user:acme",
                "\"t0\" OR \"t1\" OR \"t2\" OR \"t3\" OR \"t4\" user:acme",
                "\"t5\" user:acme",
                "\"AKIAEXAMPLE000000001\" user:bob",
                "\"t0\" OR \"t1\" OR \"t2\" OR \"t3\" OR \"t4\" user:bob",
                "\"t5\" user:bob",
            ]
        );
    }
}
