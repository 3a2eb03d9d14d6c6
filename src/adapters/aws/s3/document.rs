//! The text of an S3 config object, edited in place: exactly the two values change, every
//! other byte stays (comments, order, spacing, line endings). Pure: no I/O.
//!
//! - json, yaml: a dotted path of mapping keys (`aws.key_id`). The document is walked as the
//!   YAML parser's events (JSON is YAML's flow style; a JSON document is also checked with
//!   serde_json first), and the value's scalar is replaced by its byte span.
//! - dotenv: a variable name (`NAME=value`, `export NAME=value`, quoted or not).
//! - ini and credentials: `SECTION.KEY` (split at the last dot); a credentials file's fields are
//!   `PROFILE.aws_access_key_id` and `PROFILE.aws_secret_access_key`.
//!
//! Errors name a field and a line, never the document's text (it holds the secret).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle};

use crate::manifest::DocumentFormat;

/// Why a document cannot be read or edited. Names the field and the line, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocError(pub String);

impl fmt::Display for DocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A field's value and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    /// The bytes to replace (for a quoted value, the quotes included).
    span: Range<usize>,
    /// How to write a new value there.
    quote: Quote,
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

impl Quote {
    fn wrap(self, value: &str) -> String {
        match self {
            Quote::None => value.to_owned(),
            Quote::Single => format!("'{value}'"),
            Quote::Double => format!("\"{value}\""),
        }
    }
}

/// The value of `field`; `Ok(None)` when the document has no such field.
pub fn read(format: DocumentFormat, text: &str, field: &str) -> Result<Option<String>, DocError> {
    Ok(locate(format, text, field)?.map(|f| f.value))
}

/// `text` with each `(field, value)` replaced, every other byte kept. Every field must exist.
pub fn replace(
    format: DocumentFormat,
    text: &str,
    edits: &[(&str, &str)],
) -> Result<String, DocError> {
    let mut spans = Vec::new();
    for (field, value) in edits {
        check_value(value)?;
        let found = locate(format, text, field)?.ok_or_else(|| missing(format, field))?;
        spans.push((found.span, found.quote.wrap(value)));
    }
    spans.sort_by_key(|(span, _)| span.start);
    if spans.windows(2).any(|w| w[0].0.end > w[1].0.start) {
        return Err(DocError(
            "the two fields name the same value: give each its own field".into(),
        ));
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (span, new) in spans {
        out.push_str(&text[at..span.start]);
        out.push_str(&new);
        at = span.end;
    }
    out.push_str(&text[at..]);
    // What is written must read as written: each field holds its new value, and the document
    // still parses (a value whose place cannot take it is refused here, before any put).
    for (field, value) in edits {
        if read(format, &out, field)?.as_deref() != Some(*value) {
            return Err(DocError(format!(
                "`{field}` would not read back as the value written there: write the key's current value as a plain string in the {format} document"
            )));
        }
    }
    Ok(out)
}

/// The error for a field the document does not have.
pub fn missing(format: DocumentFormat, field: &str) -> DocError {
    let how = match format {
        DocumentFormat::Json | DocumentFormat::Yaml => "the dotted path of mapping keys",
        DocumentFormat::Dotenv => "a `NAME=value` line",
        DocumentFormat::Ini => "a `KEY = value` line under `[SECTION]`",
        DocumentFormat::Credentials => "the profile's `[PROFILE]` section and key",
    };
    DocError(format!(
        "the {format} document has no field `{field}` ({how}): add it with the key's current value, or fix `fields` in the manifest"
    ))
}

/// Values written are access key ids and secrets: letters, digits, `/`, `+` and `=`. Anything
/// else would need escaping the formats do not share.
fn check_value(value: &str) -> Result<(), DocError> {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/+=".contains(c))
    {
        Ok(())
    } else {
        Err(DocError(
            "a value to write is not an access key id or secret (letters, digits, `/`, `+`, `=`)"
                .into(),
        ))
    }
}

fn locate(format: DocumentFormat, text: &str, field: &str) -> Result<Option<Found>, DocError> {
    match format {
        DocumentFormat::Json => {
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                return Err(DocError(format!(
                    "the object is not a JSON document (line {}, column {}): fix it, or name its `format`",
                    e.line(),
                    e.column()
                )));
            }
            tree(text, field, "JSON")
        }
        DocumentFormat::Yaml => tree(text, field, "YAML"),
        DocumentFormat::Dotenv => dotenv(text, field),
        DocumentFormat::Ini | DocumentFormat::Credentials => ini(text, field),
    }
}

/// The lines of `text` with the byte offset each starts at, without their line ending.
fn lines(text: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut at = 0;
    text.split_inclusive('\n').enumerate().map(move |(n, raw)| {
        let start = at;
        at += raw.len();
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        (n + 1, start, line)
    })
}

/// One value on a line, from `start` (bytes into the line) to its end or, in dotenv
/// (`shell`), a comment; there a quoted value is its inside (a quote escaped with `\` is part
/// of it). An ini value is the rest of the line as it is: the AWS CLI keeps quotes.
fn value_at(line: &str, start: usize, shell: bool) -> (Range<usize>, Quote) {
    let rest = &line[start..];
    let lead = rest.len() - rest.trim_start().len();
    let from = start + lead;
    let body = &line[from..];
    if shell {
        for (q, quote) in [('"', Quote::Double), ('\'', Quote::Single)] {
            if let Some(inner) = body.strip_prefix(q)
                && let Some(end) = closing(inner, q)
            {
                return (from + 1..from + 1 + end, quote);
            }
        }
    }
    let mut end = body.len();
    if shell && let Some(hash) = body.find(" #") {
        end = hash;
    }
    let value = body[..end].trim_end();
    (from..from + value.len(), Quote::None)
}

/// Where the quote `q` that closes `inner` is: the first not escaped with a backslash.
fn closing(inner: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == q && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn dotenv(text: &str, field: &str) -> Result<Option<Found>, DocError> {
    let mut found: Option<(usize, Found)> = None;
    for (n, start, line) in lines(text) {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let body = t.strip_prefix("export ").map_or(t, str::trim_start);
        let Some((name, _)) = body.split_once('=') else {
            return Err(DocError(format!(
                "line {n} of the dotenv document is not `NAME=value` or a comment: fix it, or name its `format`"
            )));
        };
        if name.trim_end() != field {
            continue;
        }
        if let Some((first, _)) = &found {
            return Err(DocError(format!(
                "`{field}` is set twice in the dotenv document (lines {first} and {n}): keep one"
            )));
        }
        let eq = line.len() - body.len() + name.len() + 1;
        let (span, quote) = value_at(line, eq, true);
        let value = line[span.clone()].to_owned();
        // The quotes belong to the span written back.
        let span = match quote {
            Quote::None => span,
            _ => span.start - 1..span.end + 1,
        };
        found = Some((
            n,
            Found {
                span: start + span.start..start + span.end,
                quote,
                value,
            },
        ));
    }
    Ok(found.map(|(_, f)| f))
}

fn ini(text: &str, field: &str) -> Result<Option<Found>, DocError> {
    let Some((section, key)) = field.rsplit_once('.') else {
        return Err(DocError(format!(
            "`{field}` is not SECTION.KEY: name the section and the key, e.g. `default.aws_access_key_id`"
        )));
    };
    let mut current: Option<&str> = None;
    let mut found: Option<(usize, Found)> = None;
    for (n, start, line) in lines(text) {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(name) = t.strip_prefix('[') {
            let Some(name) = name.strip_suffix(']') else {
                return Err(DocError(format!(
                    "line {n} opens a section without closing it (`[NAME]`): fix it"
                )));
            };
            current = Some(name.trim());
            continue;
        }
        // An indented line continues the setting above it (the AWS CLI's nested settings).
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((name, _)) = line.split_once('=') else {
            return Err(DocError(format!(
                "line {n} of the ini document is not `[SECTION]`, `KEY = value` or a comment: fix it, or name its `format`"
            )));
        };
        if current != Some(section) || name.trim() != key {
            continue;
        }
        if let Some((first, _)) = &found {
            return Err(DocError(format!(
                "`{key}` is set twice in [{section}] (lines {first} and {n}): keep one"
            )));
        }
        let (span, _) = value_at(line, name.len() + 1, false);
        let value = line[span.clone()].to_owned();
        found = Some((
            n,
            Found {
                span: start + span.start..start + span.end,
                quote: Quote::None,
                value,
            },
        ));
    }
    Ok(found.map(|(_, f)| f))
}

type Events<'a> = Vec<(Event<'a>, Range<usize>)>;

/// The events of the document's first document, each with its byte span.
fn events<'a>(text: &'a str, kind: &str) -> Result<Events<'a>, DocError> {
    let mut out = Vec::new();
    for next in Parser::new_from_str(text) {
        let (event, span) = next.map_err(|e| {
            DocError(format!(
                "the object is not a {kind} document (line {}, column {}): fix it, or name its `format`",
                e.marker().line(),
                e.marker().col() + 1
            ))
        })?;
        let (Some(from), Some(to)) = (span.start.byte_offset(), span.end.byte_offset()) else {
            return Err(DocError(format!("the {kind} parser gave no byte offsets")));
        };
        let done = matches!(event, Event::DocumentEnd);
        // Comments (and anchors' names) are presentation: the walk sees only the nodes.
        let kept = event.is_node()
            || matches!(
                event,
                Event::MappingEnd
                    | Event::SequenceEnd
                    | Event::DocumentStart(..)
                    | Event::DocumentEnd
            );
        if !kept {
            continue;
        }
        out.push((event, from..to));
        if done {
            break;
        }
    }
    Ok(out)
}

/// The index just past the node that starts at `i`.
fn skip(events: &Events<'_>, mut i: usize) -> usize {
    let mut depth = 0usize;
    loop {
        match events.get(i).map(|(e, _)| e) {
            Some(Event::MappingStart(..) | Event::SequenceStart(..)) => depth += 1,
            Some(Event::MappingEnd | Event::SequenceEnd) => depth = depth.saturating_sub(1),
            None => return i,
            _ => {}
        }
        i += 1;
        if depth == 0 {
            return i;
        }
    }
}

fn tree(text: &str, field: &str, kind: &str) -> Result<Option<Found>, DocError> {
    let events = events(text, kind)?;
    let Some(mut i) = events
        .iter()
        .position(|(e, _)| matches!(e, Event::DocumentStart(..)))
        .map(|i| i + 1)
    else {
        return Ok(None);
    };
    for segment in field.split('.') {
        if !matches!(events.get(i), Some((Event::MappingStart(..), _))) {
            return Ok(None);
        }
        let mut j = i + 1;
        let mut value = None;
        while let Some((event, _)) = events.get(j) {
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let key = match event {
                Event::Scalar(k, ..) => Some(k.as_ref()),
                _ => None,
            };
            let v = skip(&events, j);
            if key == Some(segment) {
                if value.is_some() {
                    return Err(DocError(format!(
                        "`{segment}` of `{field}` appears twice in one mapping of the {kind} document: keep one"
                    )));
                }
                value = Some(v);
            }
            j = skip(&events, v);
        }
        let Some(v) = value else {
            return Ok(None);
        };
        i = v;
    }
    scalar_at(text, &events, i, field, kind)
}

/// The scalar at event `i`, where `field` leads, as a found value.
fn scalar_at(
    text: &str,
    events: &Events<'_>,
    i: usize,
    field: &str,
    kind: &str,
) -> Result<Option<Found>, DocError> {
    match events.get(i) {
        Some((Event::Scalar(_, style, ..), span))
            if span.is_empty() || (*style == ScalarStyle::Plain && kind == "JSON") =>
        {
            Err(DocError(format!(
                "`{field}` in the {kind} document holds no string: write the key's current value there (quoted), so the tool knows its place"
            )))
        }
        Some((Event::Scalar(value, style, ..), span)) => {
            let quote = match style {
                ScalarStyle::Plain => Quote::None,
                ScalarStyle::SingleQuoted => Quote::Single,
                ScalarStyle::DoubleQuoted => Quote::Double,
                _ => {
                    return Err(DocError(format!(
                        "`{field}` in the {kind} document is a block scalar (`|` or `>`): write its value plain or quoted on the key's line"
                    )));
                }
            };
            let span = quoted_span(text, span.clone(), quote);
            Ok(Some(Found {
                span,
                quote,
                value: Cow::as_ref(value).to_owned(),
            }))
        }
        Some((Event::Alias(..), _)) => Err(DocError(format!(
            "`{field}` in the {kind} document is an alias: write the value itself there"
        ))),
        Some(_) => Err(DocError(format!(
            "`{field}` in the {kind} document is a mapping or a list, not a value: name the value's own path"
        ))),
        None => Ok(None),
    }
}

/// The span of a scalar with its quotes, whether or not the parser's span includes them.
fn quoted_span(text: &str, span: Range<usize>, quote: Quote) -> Range<usize> {
    let q = match quote {
        Quote::None => return span,
        Quote::Single => b'\'',
        Quote::Double => b'"',
    };
    let bytes = text.as_bytes();
    let start = if bytes.get(span.start) == Some(&q) {
        span.start
    } else {
        span.start.saturating_sub(1)
    };
    let end = if span.end > 0 && bytes.get(span.end - 1) == Some(&q) && span.end - 1 > start {
        span.end
    } else {
        span.end + 1
    };
    start..end.min(text.len())
}

#[cfg(test)]
mod tests;
