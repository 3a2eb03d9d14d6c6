//! `migrate`'s warning where fork pull requests get write tokens (CONTRACT §12a).

use super::{Reading, Stop, gh_stop};
use crate::manifest::Consumer;
use crate::migrate::report::UserMigration;
use crate::migrate::trust::{self, Reach};
use crate::ports::migrate::Variables;

/// Fork pull requests with write tokens present the same `pull_request` subject as the
/// repository's own branches (CONTRACT §12a): warned about where GitHub says so (each
/// repository read once a run).
pub(super) async fn warn_fork_writes<V: Variables>(
    github: &V,
    reading: &mut Reading,
    view: &mut UserMigration,
    c: &Consumer,
    reach: &Reach,
) -> Result<(), Stop> {
    for repo in trust::pull_request_repositories(reach) {
        let writes = match reading.fork_writes.get(&repo) {
            Some(w) => *w,
            None => {
                let w = github
                    .fork_pull_requests_write(&repo)
                    .await
                    .map_err(gh_stop)?;
                reading.fork_writes.insert(repo.clone(), w);
                w
            }
        };
        if writes == Some(true) {
            view.warnings.push(format!(
                "workflows of fork pull requests in {repo} get write tokens, and present the subject repo:{repo}:pull_request, which the role admits for {}: set `pull-requests: false` on that consumer, or turn off \"Send write tokens to workflows from fork pull requests\" in {repo}'s Actions settings",
                c.scope
            ));
        }
    }
    Ok(())
}
