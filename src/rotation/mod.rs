//! The core: key states, plans and their execution. No I/O of its own and no printing.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod journal;
pub mod ledger;
pub mod plan;
pub mod run;
pub mod state;
pub mod verify;
