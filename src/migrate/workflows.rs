//! Which of a repository's workflows read a migrated key's secrets (CONTRACT §13), and what
//! replaces those reads. Pure: the adapters list `.github/workflows/*` through the contents API
//! and hand each file's text here.

use serde::Serialize;

/// The `secret` of a `secrets: inherit` line: the job passes every secret to the reusable
/// workflow it calls, which reads them.
pub const INHERIT: &str = "inherit";

/// The `secret` of an expression that reads the whole `secrets` context, or a secret chosen at
/// run time: `toJSON(secrets)`, `secrets[format('{0}_KEY', env.NAME)]`.
pub const ANY: &str = "secrets";

/// One line of a workflow file that reads one of the key's secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretUse {
    /// 1-based.
    pub line: usize,
    /// The name as the caller spelled it in `names` (GitHub's are case-insensitive), or
    /// [`INHERIT`] or [`ANY`].
    pub secret: String,
    /// The line, trimmed.
    pub text: String,
}

/// A workflow file that reads the key's secrets, with every line that does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub path: String,
    pub uses: Vec<SecretUse>,
}

/// The lines of a workflow file's `text` that read any of `names`: `${{ secrets.NAME }}` and
/// `secrets['NAME']` (or `"NAME"`) anywhere in a `${{ }}` expression, whatever the spacing or
/// the letter case, in `env:`, `with:`, `secrets:` mappings and `run:` scripts alike; and
/// `secrets: inherit`, which passes every secret to the called workflow. YAML comment lines are
/// ignored; a `#` line inside a block scalar (`run: |`) is script, still interpolated, so it
/// counts. `None` when the file reads none of them.
pub fn scan(path: &str, text: &str, names: &[&str]) -> Option<Finding> {
    if names.is_empty() {
        return None;
    }
    let mut uses = Vec::new();
    // The column the key of the block scalar being read starts at: its lines are indented more.
    let mut block: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let body = line.trim();
        let indent = line.len() - line.trim_start_matches(' ').len();
        let in_block = block.is_some_and(|key| body.is_empty() || indent > key);
        let mut found = Vec::new();
        if !in_block {
            if body.starts_with('#') {
                block = None;
                continue;
            }
            block = block_scalar(line);
            if is_inherit(body) {
                found.push(INHERIT.to_owned());
            }
        }
        for expression in expressions(line) {
            secrets_in(expression, names, &mut found);
        }
        uses.extend(found.into_iter().map(|secret| SecretUse {
            line: i + 1,
            secret,
            text: body.to_owned(),
        }));
    }
    (!uses.is_empty()).then(|| Finding {
        path: path.to_owned(),
        uses,
    })
}

/// The line without a trailing YAML comment (a `#` after a space).
fn code(line: &str) -> &str {
    line.split(" #").next().unwrap_or(line).trim_end()
}

/// Where the key of a line opening a block scalar (`run: |`, `- script: >-`, `- |`) starts.
fn block_scalar(line: &str) -> Option<usize> {
    let (head, indicator) = code(line).rsplit_once(' ')?;
    let mut header = indicator.chars();
    let is_header = matches!(header.next(), Some('|' | '>'))
        && header.all(|c| matches!(c, '-' | '+' | '1'..='9'));
    let head = head.trim();
    if !is_header {
        None
    } else if head.ends_with(':') {
        Some(line.len() - line.trim_start_matches([' ', '-']).len())
    } else if !head.is_empty() && head.chars().all(|c| c == '-' || c == ' ') {
        Some(line.len() - line.trim_start_matches(' ').len())
    } else {
        None
    }
}

/// `secrets: inherit`, a trimmed line.
fn is_inherit(body: &str) -> bool {
    code(body)
        .strip_prefix("secrets")
        .and_then(|rest| rest.trim_start().strip_prefix(':'))
        .is_some_and(|value| matches!(value.trim(), "inherit" | "'inherit'" | "\"inherit\""))
}

/// The insides of the line's `${{ … }}` expressions (to the line's end if one is not closed).
fn expressions(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("${{") {
        let inside = &rest[start + 3..];
        let end = inside.find("}}").unwrap_or(inside.len());
        found.push(&inside[..end]);
        rest = &inside[end..];
    }
    found
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Adds to `found` each of `names` (or [`ANY`]) the `secrets` context is read at in an
/// expression, once.
fn secrets_in(expression: &str, names: &[&str], found: &mut Vec<String>) {
    let mut add = |secret: &str| {
        if !found.iter().any(|f| f == secret) {
            found.push(secret.to_owned());
        }
    };
    let b = expression.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\'' {
            // A string literal ('' is a quote in it): its words are not contexts.
            i += 1;
            while i < b.len() && !(b[i] == b'\'' && b.get(i + 1) != Some(&b'\'')) {
                i += if b[i] == b'\'' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if !is_ident(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        let is_property = start > 0 && b[start - 1] == b'.';
        if is_property || !expression[start..i].eq_ignore_ascii_case("secrets") {
            continue;
        }
        let rest = expression[i..].trim_start();
        let name = if let Some(after) = rest.strip_prefix('.') {
            let after = after.trim_start();
            let len = after.bytes().take_while(|c| is_ident(*c)).count();
            Some(&after[..len])
        } else if let Some(after) = rest.strip_prefix('[') {
            quoted_index(after)
        } else {
            None
        };
        match name {
            Some(name) => {
                if let Some(key) = names.iter().find(|n| n.eq_ignore_ascii_case(name)) {
                    add(key);
                }
            }
            None => add(ANY),
        }
    }
}

/// `'NAME']` or `"NAME"]` (after the `[`): `NAME`; `None` for a computed index.
fn quoted_index(after: &str) -> Option<&str> {
    let after = after.trim_start();
    let quote = after.chars().next().filter(|c| matches!(c, '\'' | '"'))?;
    let (name, tail) = after[1..].split_once(quote)?;
    tail.trim_start().starts_with(']').then_some(name)
}

/// What a consumer pastes into each job instead of reading the key: the job's permission to
/// request GitHub's OIDC token, and a first step assuming the role whose ARN is in the Actions
/// variable `variable` (e.g. `AWS_ROLE_ARN`) in `region`. A comment line first says to remove
/// the lines that read `secret_names`.
pub fn snippet(variable: &str, region: &str, secret_names: &[&str]) -> String {
    let secrets = match secret_names {
        [] => "the key's secrets".to_owned(),
        names => format!("secrets {}", names.join("/")),
    };
    format!(
        "# Remove the lines that read {secrets}, and add to each job that read them:
permissions:
  id-token: write   # lets the job request GitHub's OIDC token
  contents: read
# ... the job's runs-on and other keys, as they are
steps:
  - uses: aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c # v6.2.3
    with:
      role-to-assume: ${{{{ vars.{variable} }}}}
      aws-region: {region}
  # ... the job's other steps, as they are
"
    )
}

#[cfg(test)]
mod tests;
