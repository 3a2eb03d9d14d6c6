//! The OIDC provider GitHub's tokens are trusted through: what it needs, and setting it up.

use super::Stopped;
use crate::exit::Exit;
use crate::migrate::trust::AUDIENCE;
use crate::ports::Events;
use crate::ports::migrate::{Provider, Roles};

/// Makes the OIDC provider (or adds the audience to it); answers what was done.
pub(super) async fn set_up_provider<R: Roles>(
    iam: &R,
    found: Option<&Provider>,
    provider_arn: &str,
    issuer: &str,
    events: &dyn Events,
) -> Result<String, Stopped> {
    let result = match found {
        None => iam
            .create_provider(&format!("https://{issuer}"), AUDIENCE)
            .await
            .map(|_| ()),
        Some(_) => iam.add_audience(provider_arn, AUDIENCE).await,
    };
    if let Err(e) = result {
        return Err(Stopped::new(
            Exit::Failed,
            format!(
                "could not set up the OIDC provider {provider_arn}: {e}. Nothing else was changed; run migrate again"
            ),
        ));
    }
    events.info(&format!("OIDC provider {provider_arn}: done"));
    Ok(match found {
        None => "created",
        Some(_) => "audience added",
    }
    .into())
}

pub(super) fn provider_change(found: Option<&Provider>) -> Option<&'static str> {
    match found {
        None => Some("create it (no thumbprint: IAM trusts GitHub's certificate authority)"),
        Some(p) if !p.audiences.iter().any(|a| a == AUDIENCE) => Some("add the audience"),
        Some(_) => None,
    }
}
