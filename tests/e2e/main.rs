//! The end-to-end tests, in one binary: the real binary (and its container image) against one
//! moto server and a fake GitHub per test, started and reset by `support`.

mod support;

mod accounts;
mod act;
mod app_auth;
mod bad_input;
mod cli;
mod container;
mod demo;
mod discover;
mod docs;
mod exposure;
mod fleet;
mod ghes;
mod issues;
mod least_privilege;
mod libsodium;
mod migrate;
mod protocol;
mod rotation;
mod s3;
mod schema;
mod stores;
mod vault;
mod verification;
mod workflows;
