//! CloudTrail's `LookupEvents`, which moto does not serve: a small stateful fake that speaks
//! the real protocol (AWS JSON 1.1, `X-Amz-Target: CloudTrail_20131101.LookupEvents`), so the
//! SDK client runs unchanged. The test seeds the events; the fake filters them by access key
//! and start time, returns the newest first (at most `MaxResults`), and can deny the call.

use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::runtime;

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub time: DateTime<Utc>,
    pub access_key_id: String,
    pub event_name: String,
    pub source_ip: String,
    pub user_agent: String,
}

#[derive(Default)]
struct State {
    events: Vec<Recorded>,
    denied: bool,
    /// Every LookupEvents request's body.
    requests: Vec<Value>,
}

pub struct FakeCloudTrail {
    state: Arc<Mutex<State>>,
    pub url: String,
}

/// The one fake of the test binary (tests run one at a time), reset by each test's setup.
pub fn fake() -> &'static FakeCloudTrail {
    static FAKE: OnceLock<FakeCloudTrail> = OnceLock::new();
    FAKE.get_or_init(|| {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = runtime()
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the fake CloudTrail");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/", post(lookup))
            .with_state(state.clone());
        runtime().spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeCloudTrail { state, url }
    })
}

impl FakeCloudTrail {
    pub fn reset(&self) {
        *self.state.lock().unwrap() = State::default();
    }
    pub fn record(&self, event: Recorded) {
        self.state.lock().unwrap().events.push(event);
    }
    /// The identity may not call LookupEvents from now on.
    pub fn deny(&self) {
        self.state.lock().unwrap().denied = true;
    }
    pub fn requests(&self) -> Vec<Value> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

async fn lookup(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<State>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target != "CloudTrail_20131101.LookupEvents" {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"__type": "UnknownOperationException", "message": target}),
        );
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut s = state.lock().unwrap();
    s.requests.push(req.clone());
    if s.denied {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"__type": "AccessDeniedException", "message": "User is not authorized to perform: cloudtrail:LookupEvents"}),
        );
    }
    let key = req["LookupAttributes"][0]
        .as_object()
        .filter(|a| a["AttributeKey"] == "AccessKeyId")
        .and_then(|a| a["AttributeValue"].as_str())
        .unwrap_or_default()
        .to_owned();
    let since = req["StartTime"].as_f64().unwrap_or(0.0);
    let max = req["MaxResults"].as_u64().unwrap_or(50) as usize;
    let mut found: Vec<&Recorded> = s
        .events
        .iter()
        .filter(|e| e.access_key_id == key && e.time.timestamp() as f64 >= since)
        .collect();
    found.sort_by_key(|e| std::cmp::Reverse(e.time));
    let events: Vec<Value> = found
        .into_iter()
        .take(max)
        .enumerate()
        .map(|(i, e)| {
            let record = json!({
                "eventVersion": "1.08",
                "eventTime": e.time.to_rfc3339(),
                "eventName": e.event_name,
                "sourceIPAddress": e.source_ip,
                "userAgent": e.user_agent,
                "userIdentity": {"type": "IAMUser", "accessKeyId": e.access_key_id},
            });
            json!({
                "EventId": format!("fake-event-{i}"),
                "EventName": e.event_name,
                "ReadOnly": "true",
                "AccessKeyId": e.access_key_id,
                "EventTime": e.time.timestamp() as f64,
                "EventSource": "sts.amazonaws.com",
                "Username": "ci-deployer",
                "Resources": [],
                "CloudTrailEvent": record.to_string(),
            })
        })
        .collect();
    answer(StatusCode::OK, json!({"Events": events}))
}
