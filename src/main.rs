use std::process::ExitCode;

use aws_key_rotator::action::{self, Console, Runtime};
use aws_key_rotator::app::{self, Tuning};
use aws_key_rotator::cli::{RawInputs, Settings};
use aws_key_rotator::exit::Exit;

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
    let json = raw.get("json").trim() == "true";
    let console = Console::new(rt.in_actions, json);
    let settings = match Settings::from_raw(raw) {
        Ok(s) => s,
        Err(e) => {
            console.error(&e);
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
