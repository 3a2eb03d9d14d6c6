//! What `discover` needs to search for the key itself (CONTRACT §18): GitHub's code search and
//! a repository's files, and the names (never the values) of the AWS stores and S3 objects.

use secrecy::SecretString;

use super::{GhError, StoreError};

/// A file code search found (default branch: what code search indexes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeHit {
    /// `owner/name`.
    pub repository: String,
    pub path: String,
}

/// What one code search found: the files read, and how many GitHub counted (it answers at
/// most 1,000).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeResults {
    pub hits: Vec<CodeHit>,
    pub total: u64,
}

/// GitHub's code search, and the text of a file it found.
pub trait CodeSearch {
    /// Every file matching `query` (GitHub's syntax; at most 1,000), each search request paced
    /// under code search's own limit.
    async fn search_code(&self, query: &str) -> Result<CodeResults, GhError>;
    /// The text of `path` on the repository's default branch (`None`: not there any more, or
    /// too large to read through the contents API).
    async fn file_text(&self, repository: &str, path: &str) -> Result<Option<String>, GhError>;
}

/// A store named in AWS: a secret, a parameter or an object, with its description if it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub description: Option<String>,
}

/// The names AWS shows of what may hold a key: listed, never read (an S3 object's text aside,
/// which `discover` reads to find a key id in it).
pub trait AwsListing {
    /// Every Secrets Manager secret of `region` (`None`: the run's), name and description.
    async fn secrets(&self, region: &Option<String>) -> Result<Vec<Named>, StoreError>;
    /// Every SSM parameter of `region`, name and description.
    async fn parameters(&self, region: &Option<String>) -> Result<Vec<Named>, StoreError>;
    /// The objects of `bucket` under `prefix` (at most 1,000), and whether there were more.
    async fn objects(
        &self,
        bucket: &str,
        prefix: &str,
        region: &Option<String>,
    ) -> Result<(Vec<String>, bool), StoreError>;
    /// An object's text (`None`: larger than `limit` bytes, or not text).
    async fn object_text(
        &self,
        bucket: &str,
        key: &str,
        region: &Option<String>,
        limit: u64,
    ) -> Result<Option<SecretString>, StoreError>;
}
