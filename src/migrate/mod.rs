//! `migrate` (CONTRACT §13): moving a user's GitHub Actions consumers off its long-lived key to
//! an IAM role they assume through GitHub's OIDC. `trust` decides who may assume the role.

pub mod trust;
pub mod workflows;
