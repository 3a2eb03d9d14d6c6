//! The wire: every port the core and the use cases name, implemented on an SDK or a REST API.
//! Adapters return errors in the ports' terms. The ports they implement are in `ports.rs`, but
//! for three use cases whose ports still live with them (`notify`'s issues, `migrate`'s roles and
//! variables, `discover`'s inventory), and `aws/accounts.rs` still picks exit codes and masks
//! through the action's masker: both are to straighten.
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
