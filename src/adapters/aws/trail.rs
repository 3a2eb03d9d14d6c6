//! CloudTrail's event history (`LookupEvents` by `AccessKeyId`): who used an exposed key, for
//! the evidence of CONTRACT §17. Reads only; an identity that may not call it gets one line
//! naming the permission, never a failure.

use aws_config::SdkConfig;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use chrono::{DateTime, Utc};

use super::classify;
use crate::ports::{IamError, IamErrorKind, TrailEvent};

/// The CloudTrail client of one account (the home account's, or an account role's session).
pub struct Trail {
    client: aws_sdk_cloudtrail::Client,
    endpoint: String,
}

impl Trail {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_cloudtrail::Client::new(config),
            endpoint: config.endpoint_url().unwrap_or("CloudTrail").to_owned(),
        }
    }
}

/// At most this many characters of a caller's user agent are kept: it is the caller's text.
const AGENT_CHARS: usize = 160;

/// The source address and user agent out of the event's own record (a JSON document).
fn caller(record: Option<&str>) -> (String, String) {
    let v: serde_json::Value = record
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let field = |name: &str, max: usize| {
        let s = crate::text::strip_controls(v[name].as_str().unwrap_or("unknown"));
        s.chars().take(max).collect::<String>()
    };
    (
        field("sourceIPAddress", 64),
        field("userAgent", AGENT_CHARS),
    )
}

impl crate::ports::Trail for Trail {
    async fn key_events(
        &self,
        key_id: &str,
        since: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<TrailEvent>, IamError> {
        let action = "cloudtrail:LookupEvents";
        let attribute = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::AccessKeyId)
            .attribute_value(key_id)
            .build()
            .map_err(|e| IamError {
                kind: IamErrorKind::Other,
                message: format!("{action} could not be built: {e}"),
            })?;
        let out = self
            .client
            .lookup_events()
            .lookup_attributes(attribute)
            .start_time(aws_sdk_cloudtrail::primitives::DateTime::from_secs(
                since.timestamp(),
            ))
            .max_results(max.clamp(1, 50) as i32)
            .send()
            .await
            .map_err(|e| classify(action, &self.endpoint, e))?;
        let mut events: Vec<TrailEvent> = out
            .events()
            .iter()
            .filter_map(|e| {
                let t = e.event_time()?;
                let (source_ip, user_agent) = caller(e.cloud_trail_event());
                Some(TrailEvent {
                    time: DateTime::from_timestamp(t.secs(), t.subsec_nanos())?,
                    access_key_id: e.access_key_id().unwrap_or(key_id).to_owned(),
                    event_name: crate::text::strip_controls(e.event_name().unwrap_or("unknown")),
                    source_ip,
                    user_agent,
                })
            })
            .collect();
        events.sort_by_key(|e| std::cmp::Reverse(e.time));
        events.truncate(max);
        Ok(events)
    }
}
