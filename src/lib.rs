//! aws-key-rotator: rotates AWS IAM access keys and writes them into every consumer's GitHub secrets.
//!
//! The core (`rotation`) decides and executes through the traits in `ports`; the adapters
//! (`aws`, `github`, `action`, `cli`) are thin. `app` wires them for one invocation.

pub mod action;
pub mod adapters;
pub mod alerts;
pub mod app;
pub mod bounds;
pub mod cli;
pub mod config;
pub mod discover;
pub mod exit;
pub mod human;
pub mod manifest;
pub mod migrate;
pub mod model;
pub mod notify;
pub mod policy;
pub mod ports;
#[cfg(test)]
mod properties;
pub mod report;
pub mod rotation;
pub mod seal;
#[cfg(test)]
mod testing;
pub mod text;
