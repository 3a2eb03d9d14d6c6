//! Foreign text made inert on every way out (CONTRACT §12a). Workflow lines, error bodies,
//! names, tag values and issue comments are written by others; on their way to the log, the
//! summary or an issue they lose every power over it. A leaf: it imports nothing of the crate.
//!
//! - The log (stdout and stderr, both of which the runner reads for workflow commands): control
//!   characters go (a lone CR ends a line for the runner, ESC drives terminals); a block in
//!   which a line would start a workflow command (`::` after leading whitespace, which the
//!   runner trims) is wrapped in the Actions toolkit's `::stop-commands::TOKEN` … `::TOKEN::`,
//!   with a token no one can guess.
//! - Markdown (the step summary, issue bodies): the characters that start Markdown or HTML are
//!   escaped, and `@` never starts a mention (a zero-width space follows it).

/// `s` for a log line: every control character but tab removed (Unicode's line and paragraph
/// separators too). Multi-line text keeps its line feeds: see [`for_log`].
pub fn strip_controls(s: &str) -> String {
    s.chars()
        .filter(|&c| c == '\t' || !(c.is_control() || c == '\u{2028}' || c == '\u{2029}'))
        .collect()
}

/// Whether the runner would take `line` for a workflow command.
pub fn starts_command(line: &str) -> bool {
    line.trim_start().starts_with("::")
}

/// Text (one line or many) for the log: each line without control characters, and, when any
/// line would start a workflow command, the whole between `::stop-commands::TOKEN` and
/// `::TOKEN::` (`token` is asked for only then).
pub fn for_log(text: &str, token: impl FnOnce() -> String) -> String {
    let lines: Vec<String> = text.split('\n').map(strip_controls).collect();
    let body = lines.join("\n");
    if lines.iter().any(|l| starts_command(l)) {
        let t = token();
        format!("::stop-commands::{t}\n{body}\n::{t}::")
    } else {
        body
    }
}

/// A fresh stop-commands token: 128 random bits in hex, never one a writer could guess.
pub fn stop_token() -> String {
    use crypto_box::aead::rand_core::RngCore as _;
    let mut bytes = [0u8; 16];
    crypto_box::aead::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The longest foreign value a message quotes.
const QUOTED_MAX: usize = 200;

/// A short foreign value inside one of the tool's messages: quoted, every control character
/// escaped (so it stays on the message's line), at most 200 characters.
pub fn quoted(s: &str) -> String {
    let mut short: String = s.chars().take(QUOTED_MAX).collect();
    if short.len() < s.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// Text for Markdown (a summary cell, an issue body): one line, every character that could
/// start Markdown or HTML escaped (not `_`, which GitHub ignores inside a word, as in secret
/// names), and no `@` that GitHub would take for a mention.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\r' | '\u{2028}' | '\u{2029}' => out.push(' '),
            c if c.is_control() && c != '\t' => {}
            // As entities: no `<!--` (an issue marker, a hidden comment) survives.
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '[' | ']' | '|' | '~' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '@' => {
                out.push('@');
                if chars.peek().is_some_and(|n| n.is_alphanumeric()) {
                    out.push('\u{200B}');
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_carriage_return_or_a_command_line_never_reaches_the_runner_as_a_command() {
        // What `migrate` prints from a workflow file anyone with push access wrote.
        let hostile = "run: echo hi\r::add-mask::AKIAOLD\n  ::error::forged\n\x1b[2Jcleared";
        let out = for_log(hostile, || "0123abcd".into());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.first(), Some(&"::stop-commands::0123abcd"));
        assert_eq!(lines.last(), Some(&"::0123abcd::"));
        assert!(!out.contains('\r') && !out.contains('\x1b'), "{out:?}");
        // Between the markers the runner runs no command; every line is there, inert.
        assert_eq!(
            &lines[1..lines.len() - 1],
            &[
                "run: echo hi::add-mask::AKIAOLD",
                "  ::error::forged",
                "[2Jcleared"
            ]
        );
        // Text that starts no command is only stripped, never wrapped.
        assert_eq!(for_log("plain\u{2028}text", || unreachable!()), "plaintext");
    }

    #[test]
    fn tokens_are_fresh_and_long() {
        let (a, b) = (stop_token(), stop_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn a_quoted_value_stays_on_its_line_and_is_bounded() {
        assert_eq!(quoted("a\r\n::error::x"), "\"a\\r\\n::error::x\"");
        let long = "x".repeat(500);
        assert!(quoted(&long).chars().count() < 210);
    }

    #[test]
    fn markdown_from_others_is_escaped_and_pings_nobody() {
        let out = markdown(
            "hi @acme/security and @octocat <!-- aws-key-rotator:reason=x --> [a](b) *b* `c`\n# h",
        );
        assert!(!out.contains("@acme") && !out.contains("@octocat"), "{out}");
        assert!(out.contains("@\u{200B}octocat"), "{out}");
        assert!(!out.contains("<!--") && !out.contains('\n'), "{out}");
        assert!(
            out.contains("\\[a\\](b)") && out.contains("\\`c\\`"),
            "{out}"
        );
        // An e-mail-like or lone @ stays readable.
        assert_eq!(markdown("a @ b"), "a @ b");
    }
}
