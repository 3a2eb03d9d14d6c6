use std::process::ExitCode;

use aws_key_rotator::action::{self, Console, Runtime};
use aws_key_rotator::app;
use aws_key_rotator::config::Tuning;
use aws_key_rotator::config::{RawInputs, Settings};
use aws_key_rotator::exit::Exit;
use aws_key_rotator::report;

fn main() -> ExitCode {
    let env = app::environment();
    let rt = Runtime::from_env(&env);
    // The action face: under the runner with no arguments, inputs come from INPUT_*.
    let raw = if rt.in_actions && std::env::args_os().len() <= 1 {
        action::inputs_from_env(&env)
    } else {
        match RawInputs::from_args(std::env::args_os(), &env) {
            Ok(raw) => raw,
            // --help and --version print to stdout and succeed; mistakes print the usage.
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() {
                    Exit::Invalid.into()
                } else {
                    Exit::Ok.into()
                };
            }
        }
    };
    logging(&env);
    let json = raw.get("json").trim() == "true";
    let console = Console::new(rt.in_actions, json);
    let command = match raw.get("command").trim() {
        "" => "rotate".to_owned(),
        c => c.to_ascii_lowercase(),
    };
    let settings = match Settings::from_raw(raw) {
        Ok(s) => s,
        Err(e) => {
            console.error(&e);
            if json {
                print!(
                    "{}",
                    console.scrub(&report::error_json(&command, Exit::Invalid.code(), &e))
                );
            }
            if let Some(path) = &rt.output_file {
                let _ = action::write_outputs(path, &app::exit_output(Exit::Invalid));
            }
            return Exit::Invalid.into();
        }
    };
    let tuning = Tuning::from_env(&env);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            console.error(&format!("could not start the async runtime: {e}"));
            return Exit::Failed.into();
        }
    };
    runtime
        .block_on(app::run(settings, &rt, &console, tuning))
        .into()
}

/// Logs to stderr: this crate's at `AWS_KEY_ROTATOR_LOG` (default `warn`), every other crate's
/// warnings only.
fn logging(env: &std::collections::HashMap<String, String>) {
    // Only this crate's own logs can be turned up: the SDKs' debug and trace logs may carry
    // request and response bodies, and a CreateAccessKey response holds a secret.
    let level = env
        .get("AWS_KEY_ROTATOR_LOG")
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| ["error", "warn", "info", "debug", "trace"].contains(&l.as_str()))
        .unwrap_or_else(|| "warn".into());
    // Colour only on a terminal, and never with NO_COLOR set (https://no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && env.get("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "warn,octocrab=off,aws_key_rotator={level}"
        )))
        .without_time()
        .init();
}
