use std::process::ExitCode;

use aws_key_rotator::action::{self, Console, Runtime};
use aws_key_rotator::app::{self, Tuning};
use aws_key_rotator::cli::{Cli, RawInputs, Settings};
use clap::Parser;

fn main() -> ExitCode {
    let env = app::environment();
    let rt = Runtime::from_env(&env);
    // The action face: under the runner with no arguments, inputs come from INPUT_*.
    let raw = if rt.in_actions && std::env::args_os().len() <= 1 {
        action::inputs_from_env(&env)
    } else {
        RawInputs::from_cli(Cli::parse(), app::token_from_env(&env))
    };
    // Only this crate's own logs can be turned up: the SDKs' debug and trace logs may carry
    // request and response bodies, and a CreateAccessKey response holds a secret.
    let level = env
        .get("AWS_KEY_ROTATOR_LOG")
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| ["error", "warn", "info", "debug", "trace"].contains(&l.as_str()))
        .unwrap_or_else(|| "warn".into());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "warn,aws_key_rotator={level}"
        )))
        .without_time()
        .init();
    let json = raw.json.trim() == "true";
    let console = Console::new(rt.in_actions, json);
    let settings = match Settings::from_raw(raw) {
        Ok(s) => s,
        Err(e) => {
            console.error(&e);
            return ExitCode::from(app::INVALID);
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
            return ExitCode::from(app::FAILED);
        }
    };
    ExitCode::from(runtime.block_on(app::run(settings, &rt, &console, tuning)))
}
