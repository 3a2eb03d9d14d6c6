//! The lease (CONTRACT §5, §12): one run at a time changes a user. Taken with a tag written,
//! waited on and read back; re-checked before every destructive step; given back at the end,
//! or taken over when GitHub says its holder is gone.

use crate::exit::RUN_AGAIN;
use chrono::{DateTime, Utc};

use super::context::{Ctx, Scene, retry};
use super::journal::{self, Journal, LEASE_TAG, Lease, Tags};
use super::outcome::Halt;
use super::state;
use crate::manifest::UserSpec;
use crate::model::KeyInfo;
use crate::ports::{Clock, Iam, IamError, Ports, Workflows};

/// This run's hold on the user: whether it wrote the lease, and until when it holds.
#[derive(Debug, Default)]
pub(super) struct LeaseGuard {
    /// This run wrote the lease tag (it gives it back, even when it lost a race for it).
    pub written: bool,
    /// Until when the lease is this run's, once read back.
    pub until: Option<DateTime<Utc>>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The user's tags (the journal and the lease).
pub(super) async fn read_tags<I: Iam>(iam: &I, user: &str) -> Result<Tags, IamError> {
    let pairs = iam.tags(user).await?;
    Ok(Tags::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

/// The same, tried a few times (a read is harmless to repeat).
pub(super) async fn read_tags_again<P: Ports>(s: Scene<'_, '_, P>) -> Result<Tags, IamError> {
    retry(|| read_tags(s.ctx.iam(), s.name())).await
}

/// Whether this run may take the lease on the user whose tags are `tags`: free, its own, expired,
/// or held by a run GitHub says has finished (said in `notes`); else why not.
async fn free_for_me<P: Ports>(
    s: Scene<'_, '_, P>,
    tags: &Tags,
    notes: &mut Vec<String>,
) -> Result<(), Halt> {
    let ctx = s.ctx;
    let me = &ctx.lease.run_id;
    let name = s.name();
    let now = ctx.clock().now();
    match &tags.lease {
        Some(Ok(l)) if &l.run != me && l.live(now) && holder_gone(ctx, l).await => {
            let note = format!(
                "the lease of run {} on user {name} lasts until {}, but GitHub says its holder has finished: it is dead, and this run takes it",
                l.run,
                stamp(l.until)
            );
            ctx.events.warn(&note);
            notes.push(note);
        }
        Some(Ok(l)) if &l.run != me && l.live(now) => {
            return Err(Halt::Refused(format!(
                "run {} is changing user {name} (its lease lasts until {}): one run at a time. Wait for it; if it died, the lease expires at that time",
                l.run,
                stamp(l.until)
            )));
        }
        Some(Err(raw)) => {
            return Err(Halt::Refused(format!(
                "the lease tag {LEASE_TAG} of user {name} holds {raw:?}, which this release cannot read: if no run is changing the user, remove it (aws iam untag-user --user-name {name} --tag-keys {LEASE_TAG}) and run again"
            )));
        }
        _ => {}
    }
    Ok(())
}

impl LeaseGuard {
    /// Takes the lease, or says why not (another live run holds it; the tag is unreadable).
    /// `notes` gets a line when a dead holder's lease is taken over.
    pub async fn take<P: Ports>(
        &mut self,
        s: Scene<'_, '_, P>,
        notes: &mut Vec<String>,
    ) -> Result<(), Halt> {
        let ctx = s.ctx;
        let me = &ctx.lease.run_id;
        let name = s.name();
        let tags = read_tags_again(s).await.map_err(|e| {
            Halt::Failed(format!(
                "could not read the tags of IAM user {name}: {e}. {RUN_AGAIN}"
            ))
        })?;
        free_for_me(s, &tags, notes).await?;
        let lease = Lease {
            run: me.clone(),
            until: s.now() + ctx.lease.ttl,
            github: ctx.lease.github.clone(),
        };
        self.written = true;
        if let Err(e) = ctx.iam().set_tag(name, LEASE_TAG, &lease.value()).await {
            return Err(Halt::Failed(format!(
                "could not take the lease on IAM user {name} (iam:TagUser: {e}). {RUN_AGAIN}"
            )));
        }
        ctx.clock().sleep(ctx.lease.settle).await;
        let tags = read_tags_again(s).await.map_err(|e| {
            Halt::Failed(format!(
                "could not read back the lease on IAM user {name}: {e}. {RUN_AGAIN}"
            ))
        })?;
        match tags.lease() {
            Some(l) if &l.run == me => {
                self.until = Some(l.until);
                Ok(())
            }
            Some(l) => {
                self.written = false;
                Err(Halt::Refused(format!(
                    "run {} took the lease on user {name} at the same time: one run at a time. Nothing was changed",
                    l.run
                )))
            }
            None => Err(Halt::Refused(format!(
                "the lease on user {name} was removed while this run took it (another run or a person): nothing was changed; run again"
            ))),
        }
    }

    /// Gives the lease back, if it is still this run's: `Err` says why it could not.
    pub async fn release<P: Ports>(&self, s: Scene<'_, '_, P>) -> Result<(), String> {
        if !self.written {
            return Ok(());
        }
        let me = &s.ctx.lease.run_id;
        // Read again before each attempt (one read each: a lost answer of the removal must not
        // remove a lease another run took since).
        for _ in 0..super::context::ATTEMPTS {
            let Ok(tags) = read_tags(s.ctx.iam(), s.name()).await else {
                continue;
            };
            match tags.lease() {
                Some(l) if &l.run == me => {}
                _ => return Ok(()),
            }
            if s.ctx.iam().remove_tag(s.name(), LEASE_TAG).await.is_ok() {
                return Ok(());
            }
        }
        Err(format!(
            "could not give back the lease tag {LEASE_TAG} of user {}: it expires by itself",
            s.name()
        ))
    }
}

/// Whether the workflow run that holds a live lease is gone (CONTRACT §12): another run
/// that GitHub reports completed (or re-run since), or another job of this very run attempt
/// whose runner no unfinished job uses but this one. Anything GitHub cannot tell: not gone.
async fn holder_gone<P: Ports>(ctx: &Ctx<'_, P>, lease: &Lease) -> bool {
    let Some(theirs) = &lease.github else {
        return false;
    };
    let w = ctx.workflows();
    let same_attempt = ctx.lease.github.as_ref().filter(|me| {
        me.repository.eq_ignore_ascii_case(&theirs.repository)
            && me.id == theirs.id
            && me.attempt == theirs.attempt
    });
    match same_attempt {
        Some(me) => match w
            .busy_runners(&theirs.repository, theirs.id, theirs.attempt)
            .await
        {
            Ok(busy) => {
                me.runner == theirs.runner
                    || !busy.iter().any(|r| journal::tag_word(r) == theirs.runner)
            }
            Err(_) => false,
        },
        None => match w.run_attempt(&theirs.repository, theirs.id).await {
            Ok((status, attempt)) => status == "completed" || attempt > theirs.attempt,
            Err(_) => false,
        },
    }
}

/// Reads the keys, the journal and the lease again: `Err` says what moved since this run
/// last looked (or left them): `keys` and `journal` are what it expects.
pub(super) async fn moved<P: Ports>(
    s: Scene<'_, '_, P>,
    keys: &[KeyInfo],
    journal: Option<&Journal>,
) -> Result<(), String> {
    let name = s.name();
    let now = s
        .ctx
        .iam()
        .list_keys(name)
        .await
        .map_err(|e| format!("could not read the keys again ({e})"))?;
    let now = state::oldest_first(now);
    let tags = read_tags_again(s)
        .await
        .map_err(|e| format!("could not read the journal again ({e})"))?;
    let same_keys = now.len() == keys.len()
        && now
            .iter()
            .zip(keys)
            .all(|(a, b)| a.id == b.id && a.status == b.status);
    if !same_keys {
        return Err(format!(
            "the keys of user {name} changed under this run (now: {})",
            now.iter()
                .map(|k| format!("{} {:?}", k.id, k.status))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if tags.journal() != journal {
        return Err(format!(
            "the rotation journal of user {name} changed under this run (another run or a person)"
        ));
    }
    match tags.lease() {
        Some(l) if l.run == s.ctx.lease.run_id => Ok(()),
        Some(l) => Err(format!("run {} holds the lease on user {name} now", l.run)),
        None => Err(format!("the lease on user {name} was removed")),
    }
}

/// After a stop that could not wait for `user`'s run: gives its lease back if it is still this
/// run's, and says where the rotation stopped (the journal's phase).
pub async fn give_back_lease<P: Ports>(ctx: &Ctx<'_, P>, user: &UserSpec) -> String {
    let tags = match read_tags(ctx.iam(), &user.name).await {
        Ok(t) => t,
        Err(e) => {
            return format!("could not read the lease to give it back ({e}): it expires by itself");
        }
    };
    let phase = tags
        .journal()
        .map_or("no journal".to_owned(), |j| format!("journal {}", j.phase));
    match tags.lease() {
        Some(l) if l.run == ctx.lease.run_id => {
            match ctx.iam().remove_tag(&user.name, LEASE_TAG).await {
                Ok(()) => format!("{phase}; the lease is given back"),
                Err(e) => format!(
                    "{phase}; giving the lease back failed ({e}): it expires at {}",
                    stamp(l.until)
                ),
            }
        }
        _ => format!("{phase}; this run held no lease"),
    }
}
