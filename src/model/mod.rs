//! The things the core and the ports both speak of: access keys as IAM reports them. A leaf:
//! it imports nothing of the crate, so the ports and the core can both depend on it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum KeyStatus {
    Active,
    Inactive,
}

/// One access key as ListAccessKeys reports it. Ids are not secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub status: KeyStatus,
    pub created: DateTime<Utc>,
}

/// What GetAccessKeyLastUsed said about a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastUse {
    pub date: Option<DateTime<Utc>>,
    pub service: String,
    pub region: String,
}

impl fmt::Display for LastUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.date {
            None => f.write_str("never used"),
            Some(d) => write!(
                f,
                "last used {} ({} in {})",
                d.format("%Y-%m-%d %H:%M:%S UTC"),
                self.service,
                self.region
            ),
        }
    }
}

pub mod arn;
pub mod issuer;

/// An IAM access key id: `AKIA` and 16 more capital letters or digits (20 in all).
pub fn is_access_key_id(s: &str) -> bool {
    s.len() == 20
        && s.starts_with("AKIA")
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}
