//! The issues a person is told through (CONTRACT §16): what `notify` reads and writes.

/// An open issue of the label, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub number: u64,
    pub title: String,
    pub body: String,
    /// How many comments it has (they are read only when there are some).
    pub comments: u64,
    /// Who opened it (its `user.login`).
    pub author: String,
}

/// A comment on an issue: who wrote it, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub author: String,
    pub body: String,
}

/// An issue API error: what failed, in words (the adapter's message names the fix).
#[derive(Clone, Debug)]
pub struct IssueError(pub String);

/// The issues of one repository.
#[allow(async_fn_in_trait)]
pub trait Issues {
    /// The open issues (not pull requests) with `label`.
    async fn open_issues(&self, repo: &str, label: &str) -> Result<Vec<Found>, IssueError>;
    /// Who this token acts as (`GET /user`), or `None` when it cannot say (an installation
    /// token).
    async fn identity(&self) -> Result<Option<String>, IssueError>;
    /// An issue's comments, oldest first.
    async fn comments(&self, repo: &str, number: u64) -> Result<Vec<Comment>, IssueError>;
    async fn open(
        &self,
        repo: &str,
        title: &str,
        body: &str,
        label: &str,
    ) -> Result<u64, IssueError>;
    async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<(), IssueError>;
    async fn close(&self, repo: &str, number: u64) -> Result<(), IssueError>;
}
