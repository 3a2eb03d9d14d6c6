//! A YAML or shape error in words: where (file, line, column, from the parser's own error),
//! what the key expects, and an example of it written right.

use super::ManifestError;

/// What a key expects, in words, with an example of it written right.
fn expectation(key: &str) -> Option<(&'static str, &'static str)> {
    Some(match key {
        "version" => ("the manifest format version, 1", "version: 1"),
        "max-age-days" => ("a whole number of days from 1 to 3650", "max-age-days: 90"),
        "deactivate-after-hours" => (
            "a whole number of hours from 0 to 8760",
            "deactivate-after-hours: 24",
        ),
        "delete-after-days" => (
            "a whole number of days from 0 to 365",
            "delete-after-days: 7",
        ),
        "visibility" => ("one of all, private or selected", "visibility: selected"),
        "on-exposure" => ("rotate or revoke", "on-exposure: rotate"),
        "users" => ("a list of users", "users:\n  - name: ci-deployer"),
        "consumers" => (
            "a list of consumers",
            "consumers:\n  - repository: acme/web",
        ),
        "verify" => (
            "a list of workflows",
            "verify:\n  - repository: acme/web\n    workflow: verify.yml",
        ),
        "external" => ("a list of names", "external:\n  - on-prem backup script"),
        "secrets" | "ssm-parameters" => (
            "both names",
            "secrets: { access-key-id: AWS_ACCESS_KEY_ID, secret-access-key: AWS_SECRET_ACCESS_KEY }",
        ),
        "name"
        | "repository"
        | "environment"
        | "organization"
        | "app"
        | "workflow"
        | "ref"
        | "region"
        | "aws-secrets-manager"
        | "access-key-id"
        | "secret-access-key" => ("a text value", "repository: acme/web"),
        _ => return None,
    })
}

/// The key written on `line` (1-based) of `text`, and the value after it.
fn key_at(text: &str, line: u64) -> Option<(String, String)> {
    let l = text.lines().nth(line.checked_sub(1)? as usize)?;
    let l = l.trim_start().trim_start_matches("- ").trim_start();
    let (key, value) = l.split_once(':')?;
    Some((key.trim().to_owned(), value.trim().to_owned()))
}

/// What kind of mistake the parser found, from its structured error.
enum Kind {
    /// A value of the wrong kind where a scalar was expected (`max-age-days: ninety`).
    WrongValue,
    UnknownField,
    MissingField(&'static str),
    Other,
}

fn kind(e: &serde_saphyr::Error) -> Kind {
    use serde_saphyr::Error as E;
    let mut e = e;
    // The error as the parser raised it, without the snippet or alias wrappers.
    while let E::WithSnippet { error, .. } | E::AliasError { error, .. } = e {
        e = error;
    }
    match e {
        E::InvalidScalar { .. } | E::SerdeInvalidValue { .. } | E::SerdeUnknownVariant { .. } => {
            Kind::WrongValue
        }
        // A mapping or a list where a value was expected is a shape mistake, not a value's.
        E::SerdeInvalidType { unexpected, .. }
            if !unexpected.starts_with("map") && !unexpected.starts_with("sequence") =>
        {
            Kind::WrongValue
        }
        E::SerdeUnknownField { .. } => Kind::UnknownField,
        E::SerdeMissingField { field, .. } => Kind::MissingField(field),
        _ => Kind::Other,
    }
}

/// The parser's message, without its own location (the location leads the message).
fn message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter as _;
    serde_saphyr::DefaultMessageFormatter
        .format_message(e)
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// What the parser says when the YAML does not parse (most often indentation).
const SYNTAX: [&str; 4] = [
    "mapping values",
    "did not find expected",
    "while parsing",
    "could not find expected",
];

pub(super) fn yaml_error(file: &str, text: &str, e: &serde_saphyr::Error) -> ManifestError {
    let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    let at = |message: String| ManifestError {
        file: file.to_owned(),
        line,
        column,
        message,
    };
    let kind = kind(e);
    // A value of the wrong kind: name the key, what it expects, and an example.
    if let Kind::WrongValue = kind
        && let Some((key, value)) = key_at(text, line)
        && let Some((what, example)) = expectation(&key)
    {
        let value = if value.is_empty() {
            String::new()
        } else {
            format!(", not `{value}`")
        };
        return at(format!(
            "`{key}` must be {what}{value}; for example `{example}`"
        ));
    }
    let message = message(e);
    let hint = match kind {
        Kind::UnknownField => " (see the manifest reference in the README)",
        Kind::MissingField("version") => " (add `version: 1` at the top)",
        Kind::MissingField(_) => {
            " (if it is there, check its indentation: the keys of one entry line up under its first key)"
        }
        _ if SYNTAX.iter().any(|s| message.contains(s)) => {
            " — check the indentation around this line: YAML nests by spaces, two per level"
        }
        Kind::WrongValue | Kind::Other => "",
    };
    at(format!("{message}{hint}"))
}
