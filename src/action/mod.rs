//! The GitHub Actions runtime: `INPUT_*`, workflow commands, `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};

use crate::config::RawInputs;
use crate::ports::Events;

/// What the runner (or the shell) tells the program through the environment.
#[derive(Debug, Default, Clone)]
pub struct Runtime {
    /// `GITHUB_ACTIONS=true`: speak workflow commands.
    pub in_actions: bool,
    pub workspace: Option<String>,
    pub api_url: String,
    /// `GITHUB_SERVER_URL` (`https://github.com`, or a GitHub Enterprise Server's): whose OIDC
    /// tokens a migrated role trusts. Without it, derived from the API's URL.
    pub server_url: String,
    /// `GITHUB_SERVER_URL` as given: with `api_url`, it places the OIDC issuer (CONTRACT §12a).
    pub given_server_url: Option<String>,
    /// `AWS_KEY_ROTATOR_ALLOW_HTTP=1`: plain http to a GitHub that is not on loopback (emulators).
    pub allow_http: bool,
    pub repository: Option<String>,
    pub output_file: Option<String>,
    pub summary_file: Option<String>,
    /// `GITHUB_RUN_ID` and `GITHUB_RUN_ATTEMPT`, which name this run in the lease.
    pub github_run: Option<(String, String)>,
    /// `RUNNER_NAME`: the runner of this job, named in the lease.
    pub runner: Option<String>,
    /// `VAULT_ADDR` and `VAULT_TOKEN` (CONTRACT §14).
    pub vault_address: Option<String>,
    pub vault_token: Option<secrecy::SecretString>,
    /// `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`: the job may ask for
    /// its GitHub OIDC token (`permissions: id-token: write`).
    pub id_token_request: Option<(String, secrecy::SecretString)>,
}

impl Runtime {
    /// The OIDC issuer of the GitHub instance this run talks to, or why it cannot be placed.
    pub fn oidc_issuer(&self) -> Result<String, String> {
        crate::model::issuer::place(self.given_server_url.as_deref(), &self.api_url)
    }

    pub fn from_env(env: &HashMap<String, String>) -> Self {
        let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty()).cloned();
        Self {
            in_actions: get("GITHUB_ACTIONS").as_deref() == Some("true"),
            workspace: get("GITHUB_WORKSPACE"),
            api_url: get("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            server_url: get("GITHUB_SERVER_URL").unwrap_or_else(|| {
                let api = get("GITHUB_API_URL").unwrap_or_default();
                match api.trim_end_matches('/').strip_suffix("/api/v3") {
                    Some(ghes) => ghes.to_owned(),
                    None => "https://github.com".into(),
                }
            }),
            given_server_url: get("GITHUB_SERVER_URL"),
            allow_http: get("AWS_KEY_ROTATOR_ALLOW_HTTP").as_deref() == Some("1"),
            repository: get("GITHUB_REPOSITORY"),
            output_file: get("GITHUB_OUTPUT"),
            summary_file: get("GITHUB_STEP_SUMMARY"),
            github_run: get("GITHUB_RUN_ID")
                .map(|id| (id, get("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into()))),
            runner: get("RUNNER_NAME"),
            vault_address: get("VAULT_ADDR"),
            vault_token: get("VAULT_TOKEN").map(secrecy::SecretString::from),
            id_token_request: get("ACTIONS_ID_TOKEN_REQUEST_URL")
                .zip(get("ACTIONS_ID_TOKEN_REQUEST_TOKEN").map(secrecy::SecretString::from)),
        }
    }
}

/// Reads the action's inputs (`INPUT_*`, dashes kept); the table is [`crate::config::INPUTS`].
pub fn inputs_from_env(env: &HashMap<String, String>) -> RawInputs {
    RawInputs::from_env(env)
}

/// Escapes the data of a workflow command (`%`, CR, LF).
pub fn escape_data(s: &str) -> String {
    s.chars()
        .filter(|&c| matches!(c, '\r' | '\n' | '\t') || !c.is_control())
        .collect::<String>()
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Prints the core's messages: workflow commands under Actions, plain lines elsewhere.
/// With `quiet` (JSON output) progress goes to stderr so stdout stays one document.
pub struct Console {
    pub in_actions: bool,
    pub quiet: bool,
    /// Every value masked so far; nothing printed through the console may contain one.
    masker: Masker,
}

/// Masks values from anywhere in the process (an AWS session renewed by the SDK's task):
/// `::add-mask::` for the runner, and the list the console scrubs every line against.
#[derive(Clone)]
pub struct Masker {
    in_actions: bool,
    /// `--json`: stdout is one JSON document, so workflow commands go to stderr (the runner
    /// reads both).
    quiet: bool,
    masked: Arc<Mutex<Vec<SecretString>>>,
}

/// A workflow command line: on stdout, or on stderr when stdout is the JSON document.
fn command_line(quiet: bool, line: &str) {
    if quiet {
        eprintln!("{line}");
        let _ = std::io::stderr().flush();
    } else {
        println!("{line}");
        let _ = std::io::stdout().flush();
    }
}

impl Masker {
    pub fn mask(&self, secret: &SecretString) {
        if self.in_actions && !secret.expose_secret().is_empty() {
            // The runner consumes this line; it must come before anything that could show the value.
            command_line(
                self.quiet,
                &format!("::add-mask::{}", escape_data(secret.expose_secret())),
            );
        }
        self.masked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(secret.clone());
    }
}

impl Console {
    pub fn new(in_actions: bool, quiet: bool) -> Self {
        Self {
            in_actions,
            quiet,
            masker: Masker {
                in_actions,
                quiet,
                masked: Arc::default(),
            },
        }
    }

    /// Defence in depth: replaces any masked value that slipped into a line.
    /// A handle that masks through this console from any thread.
    pub fn masker(&self) -> Masker {
        self.masker.clone()
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let masked = self.masker.masked.lock().unwrap_or_else(|p| p.into_inner());
        for s in masked.iter() {
            let v = s.expose_secret();
            if !v.is_empty() {
                out = out.replace(v, "***");
            }
        }
        out
    }

    /// Text for the log (stdout or stderr: the runner reads both for workflow commands):
    /// masked values scrubbed, and foreign text inert (CONTRACT §12a).
    fn inert(&self, text: &str) -> String {
        let text = self.scrub(text);
        if self.in_actions {
            crate::text::for_log(&text, crate::text::stop_token)
        } else {
            text.split('\n')
                .map(crate::text::strip_controls)
                .collect::<Vec<_>>()
                .join("\n")
        }
    }

    fn out(&self, line: &str) {
        let line = self.inert(line);
        if self.quiet {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    pub fn error(&self, text: &str) {
        let text = self.scrub(text);
        if self.in_actions {
            command_line(self.quiet, &format!("::error::{}", escape_data(&text)));
        }
        eprintln!("{}", self.inert(&format!("error: {text}")));
    }
}

impl Events for Console {
    fn mask(&self, secret: &SecretString) {
        self.masker.mask(secret);
    }
    fn info(&self, text: &str) {
        self.out(text);
    }
    fn warn(&self, text: &str) {
        let text = self.scrub(text);
        if self.in_actions {
            command_line(self.quiet, &format!("::warning::{}", escape_data(&text)));
        } else {
            eprintln!("{}", self.inert(&format!("warning: {text}")));
        }
    }
    fn group(&self, title: &str) {
        if self.in_actions {
            command_line(self.quiet, &format!("::group::{}", escape_data(title)));
        } else {
            self.out(&format!("== {title}"));
        }
    }
    fn end_group(&self) {
        if self.in_actions {
            command_line(self.quiet, "::endgroup::");
        }
    }
}

/// One user's messages while several users are worked on side by side. Masks reach the console
/// at once (the runner must learn a value before anything could show it); everything else is
/// held and printed as one block when the user is done, so users' lines never interleave.
/// `live` prints at once instead, for a run that works on one user at a time.
pub struct UserLog<'a> {
    console: &'a Console,
    live: bool,
    held: RefCell<Vec<Held>>,
}

enum Held {
    Info(String),
    Warn(String),
    Group(String),
    EndGroup,
}

impl<'a> UserLog<'a> {
    pub fn new(console: &'a Console, live: bool) -> Self {
        Self {
            console,
            live,
            held: RefCell::new(Vec::new()),
        }
    }

    fn hold(&self, line: Held) {
        if self.live {
            self.play(line);
        } else {
            self.held.borrow_mut().push(line);
        }
    }

    fn play(&self, line: Held) {
        match line {
            Held::Info(t) => self.console.info(&t),
            Held::Warn(t) => self.console.warn(&t),
            Held::Group(t) => self.console.group(&t),
            Held::EndGroup => self.console.end_group(),
        }
    }

    /// Prints what was held, in order (masks learnt since are applied by the console).
    pub fn flush(&self) {
        let held = std::mem::take(&mut *self.held.borrow_mut());
        for line in held {
            self.play(line);
        }
    }
}

impl Events for UserLog<'_> {
    fn mask(&self, secret: &SecretString) {
        self.console.mask(secret);
    }
    fn info(&self, text: &str) {
        self.hold(Held::Info(text.to_owned()));
    }
    fn warn(&self, text: &str) {
        self.hold(Held::Warn(text.to_owned()));
    }
    fn group(&self, title: &str) {
        self.hold(Held::Group(title.to_owned()));
    }
    fn end_group(&self) {
        self.hold(Held::EndGroup);
    }
}

/// Appends `name=value` pairs to `$GITHUB_OUTPUT` (heredoc form for multi-line values, with a
/// random delimiter that is checked not to occur in the value).
pub fn write_outputs(path: &str, outputs: &[(&str, String)]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    for (name, value) in outputs {
        f.write_all(output_entry(name, value, random_hex).as_bytes())?;
    }
    Ok(())
}

/// One `$GITHUB_OUTPUT` entry; `random` gives the delimiter's randomness.
fn output_entry(name: &str, value: &str, mut random: impl FnMut() -> String) -> String {
    if !value.contains('\n') && !value.contains('\r') {
        return format!("{name}={value}\n");
    }
    loop {
        let delimiter = format!("ghadelimiter_{}", random());
        if !value.contains(&delimiter) {
            return format!("{name}<<{delimiter}\n{value}\n{delimiter}\n");
        }
    }
}

/// Appends Markdown to `$GITHUB_STEP_SUMMARY`.
pub fn append_summary(path: &str, markdown: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(markdown.as_bytes())
}

/// 128 random bits, in hex, from the operating system.
fn random_hex() -> String {
    use crypto_box::aead::rand_core::RngCore as _;
    let mut bytes = [0u8; 16];
    crypto_box::aead::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_keep_dashes() {
        let env: HashMap<String, String> = [
            ("INPUT_DRY-RUN", "true"),
            ("INPUT_COMMAND", "status"),
            ("INPUT_OLD-ACCESS-KEY-ID", "AKIA1"),
            ("INPUT_GITHUB-TOKEN", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let raw = inputs_from_env(&env);
        assert_eq!(raw.get("dry-run"), "true");
        assert_eq!(raw.get("command"), "status");
        assert_eq!(raw.get("old-access-key-id"), "AKIA1");
        assert!(raw.secret("github-token").is_none());
    }

    #[test]
    fn escapes_workflow_command_data() {
        assert_eq!(escape_data("50%\nnext\r"), "50%25%0Anext%0D");
    }

    #[test]
    fn outputs_use_heredoc_for_multiline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let p = path.to_str().unwrap();
        write_outputs(p, &[("a", "1".into()), ("b", "x\ny".into())]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("a=1\nb<<ghadelimiter_"), "{text}");
        assert!(text.contains("\nx\ny\nghadelimiter_"));
    }

    #[test]
    fn a_heredoc_delimiter_never_occurs_in_its_value() {
        // The value carries the first delimiter the randomness would give: the next one is used.
        let mut draws = ["aaaa", "bbbb"].into_iter().map(String::from);
        let value = "line\nghadelimiter_aaaa\nevil=1";
        let entry = output_entry("o", value, || draws.next().unwrap());
        assert_eq!(
            entry,
            format!("o<<ghadelimiter_bbbb\n{value}\nghadelimiter_bbbb\n")
        );
        assert_ne!(random_hex(), random_hex());
        assert_eq!(random_hex().len(), 32);
    }
}
