//! `migrate` (CONTRACT §13): moving a user's GitHub Actions consumers off its long-lived key to
//! an IAM role they assume through GitHub's OIDC. `trust` decides who may assume the role,
//! `permissions` what it may do, `role` the changes that make IAM's role so, `workflows` where
//! the consumers' workflows read the key; `run` carries it out through its ports (`crate::ports::migrate`).

pub mod permissions;
pub mod report;
pub mod role;
pub mod run;
pub mod trust;
pub mod workflows;
