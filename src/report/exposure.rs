//! An exposure in the report (CONTRACT §17): the sighting and the evidence of who used the
//! key, in every format. The calls' source address and user agent are the caller's own text:
//! control characters stripped where they are read, escaped for Markdown here, and printed to
//! the log only through the console's guard against workflow commands.

use schemars::JsonSchema;
use serde::Serialize;

use super::{escape_markdown, rfc3339};
use crate::rotation::outcome::ExposureReport;

#[derive(Serialize, JsonSchema)]
pub struct ExposureView {
    /// `quarantine`, `alert` or `manual`.
    pub source: String,
    /// When this tool first saw it.
    pub seen_at: String,
    pub access_key_ids: Vec<String>,
    /// AWS's quarantine policy is still attached to the user.
    pub quarantined: bool,
    /// CloudTrail's calls with the exposed keys since `seen_at`, newest first (at most 50).
    pub events: Vec<EventView>,
    /// Why `events` could not be read (a missing `cloudtrail:LookupEvents`, say).
    pub events_unavailable: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct EventView {
    pub time: String,
    pub access_key_id: String,
    pub event_name: String,
    pub source_ip: String,
    pub user_agent: String,
}

pub fn view(x: &ExposureReport) -> ExposureView {
    let (events, events_unavailable) = match &x.trail {
        Some(Ok(events)) => (events.as_slice(), None),
        Some(Err(why)) => (&[][..], Some(why.clone())),
        None => (&[][..], None),
    };
    ExposureView {
        source: x.sighting.source.as_str().to_owned(),
        seen_at: rfc3339(x.sighting.at),
        access_key_ids: x.sighting.keys.clone(),
        quarantined: x.quarantined,
        events: events
            .iter()
            .map(|e| EventView {
                time: rfc3339(e.time),
                access_key_id: e.access_key_id.clone(),
                event_name: e.event_name.clone(),
                source_ip: e.source_ip.clone(),
                user_agent: e.user_agent.clone(),
            })
            .collect(),
        events_unavailable,
    }
}

fn headline(x: &ExposureView) -> String {
    format!(
        "exposed ({}) since {}: {}{}",
        x.source,
        x.seen_at,
        x.access_key_ids.join(", "),
        if x.quarantined {
            "; AWS's quarantine policy is attached"
        } else {
            ""
        }
    )
}

/// The text report's lines (indented, as a user's other lines).
pub fn text(x: &ExposureView) -> String {
    let mut out = format!("  {}\n", headline(x));
    if let Some(why) = &x.events_unavailable {
        out.push_str(&format!("  {why}\n"));
    } else {
        out.push_str(&format!(
            "  CloudTrail: {} call(s) with the exposed key since it was seen{}\n",
            x.events.len(),
            if x.events.is_empty() {
                ""
            } else {
                " (newest first):"
            }
        ));
    }
    for e in &x.events {
        out.push_str(&format!(
            "    {} {} {} from {} ({})\n",
            e.time, e.access_key_id, e.event_name, e.source_ip, e.user_agent
        ));
    }
    out
}

/// The evidence as Markdown: the step summary's, and the exposure issue's.
pub fn markdown(x: &ExposureView) -> String {
    let mut md = format!("**{}**\n\n", escape_markdown(&headline(x)));
    if let Some(why) = &x.events_unavailable {
        md.push_str(&format!("{}\n\n", escape_markdown(why)));
        return md;
    }
    if x.events.is_empty() {
        md.push_str("CloudTrail records no call with the exposed key since it was seen.\n\n");
        return md;
    }
    md.push_str(&format!(
        "CloudTrail: {} call(s) with the exposed key since it was seen, newest first:\n\n| time | key | event | source IP | user agent |\n|---|---|---|---|---|\n",
        x.events.len()
    ));
    for e in &x.events {
        md.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            e.time,
            escape_markdown(&e.access_key_id),
            escape_markdown(&e.event_name),
            escape_markdown(&e.source_ip),
            escape_markdown(&e.user_agent)
        ));
    }
    md.push('\n');
    md
}
