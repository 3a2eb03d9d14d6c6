//! The wire: every port the core and the use cases name, implemented on an SDK or a REST API.
//! Adapters return errors in the ports' terms and import no use case: every trait and type they
//! speak is in `crate::ports`. One exception is left to straighten: `aws/accounts.rs` picks exit
//! codes for an account role it cannot reach, and masks through the action's masker.
//!
//! - `aws`: IAM and STS (keys, tags, the caller), account roles, migrate's roles and provider,
//!   CloudTrail's evidence;
//! - `aws_stores`: Secrets Manager and Parameter Store;
//! - `vault`: Vault and OpenBao KV v2, and the login;
//! - `github`: secrets, workflows, variables, issues, alerts, inventory, the App, the governor;
//! - `stores`: the router that sends each scope to its store;
//! - `net`: the one TLS rule for every URL a credential goes to.

pub mod aws;
pub mod aws_stores;
pub mod github;
pub mod net;
pub mod stores;
pub mod vault;
