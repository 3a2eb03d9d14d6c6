//! The core: key states, plans and their execution. No I/O of its own and no printing.
//!
//! Deciding: `state` (the key states), `plan` (what each command does), `journal` (the tags
//! kept on the IAM user). Doing: `prepare` (reading a user), `execute` (the step machine),
//! with `lease`, `recorder` (the journal), `keyring` (the keys), `writes` and `ledger` (every
//! secret write and what each consumer holds), `before`, `compensate` and `verify`;
//! `exposure` (what is seen and recorded of an exposed key, and its retirement in the run).
//! Saying: `outcome`. `run` is the front door.
#![warn(clippy::print_stdout, clippy::print_stderr)]

mod answer;
mod before;
mod compensate;
mod context;
mod execute;
mod exposure;
pub mod journal;
mod keyring;
mod lease;
pub mod ledger;
#[cfg(test)]
mod machine_tests;
#[cfg(test)]
pub(crate) mod memory;
pub mod outcome;
pub mod plan;
pub mod prepare;
mod recorder;
mod reporting;
pub mod run;
pub mod state;
mod steps;
pub mod verify;
mod writes;
