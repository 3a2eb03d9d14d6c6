//! The secret stores: a repository's, an environment's, Dependabot's and an organization's
//! (Actions and Dependabot), each with its public key; listing, reading metadata, writing a
//! sealed value (opened with the scope's private key), and an organization secret's
//! selected repositories.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{SubsecRound, Utc};
use serde_json::{Value, json};

use super::gate::Caller;
use super::{
    ScopeId, Shared, StoredSecret, dependabot, environment, error, not_found, ok, org,
    org_dependabot, page, repo, time,
};

type Params = Path<HashMap<String, String>>;

/// Where each kind of store lives, and how its path names the scope.
type ScopeOf = fn(&HashMap<String, String>) -> ScopeId;

const STORES: [(&str, ScopeOf); 5] = [
    ("/repos/{o}/{r}/actions/secrets", |p| repo(&full(p))),
    ("/repos/{o}/{r}/environments/{e}/secrets", |p| {
        environment(&full(p), &p["e"])
    }),
    ("/repos/{o}/{r}/dependabot/secrets", |p| {
        dependabot(&full(p))
    }),
    ("/orgs/{o}/actions/secrets", |p| org(&p["o"])),
    ("/orgs/{o}/dependabot/secrets", |p| org_dependabot(&p["o"])),
];

fn full(p: &HashMap<String, String>) -> String {
    format!("{}/{}", p["o"], p["r"])
}

pub(super) fn routes() -> Router<Shared> {
    let mut router = Router::new();
    for (base, scope_of) in STORES {
        router = router
            .route(
                base,
                get(move |State(s): State<Shared>, Path(p): Params, RawQuery(q): RawQuery| async move {
                    list(&s, &scope_of(&p), &q.unwrap_or_default())
                }),
            )
            .route(
                &format!("{base}/public-key"),
                get(move |State(s): State<Shared>, Path(p): Params| async move {
                    public_key(&s, &scope_of(&p))
                }),
            )
            .route(
                &format!("{base}/{{name}}"),
                get(move |State(s): State<Shared>, Path(p): Params| async move {
                    metadata(&s, &scope_of(&p), &p["name"], base, &p)
                })
                .put(
                    move |State(s): State<Shared>,
                          Path(p): Params,
                          Extension(caller): Extension<Caller>,
                          body: Bytes| async move {
                        put(&s, &scope_of(&p), &p["name"], &caller, &body)
                    },
                ),
            );
    }
    let selected = |scope_of: fn(&str) -> ScopeId| {
        get(
            move |State(s): State<Shared>, Path(p): Params, RawQuery(q): RawQuery| async move {
                selected_repositories(&s, &scope_of(&p["o"]), &p["name"], &q.unwrap_or_default())
            },
        )
    };
    router
        .route(
            "/orgs/{o}/actions/secrets/{name}/repositories",
            selected(org),
        )
        .route(
            "/orgs/{o}/dependabot/secrets/{name}/repositories",
            selected(org_dependabot),
        )
}

fn public_key(state: &Shared, scope: &ScopeId) -> Response {
    let s = state.lock().unwrap();
    match s.scopes.get(scope) {
        Some(sc) => ok(
            StatusCode::OK,
            json!({"key_id": sc.key_id, "key": sc.public_key}),
        ),
        None => not_found(),
    }
}

fn list(state: &Shared, scope: &ScopeId, query: &str) -> Response {
    let s = state.lock().unwrap();
    let Some(sc) = s.scopes.get(scope) else {
        return not_found();
    };
    let secrets: Vec<Value> = sc
        .secrets
        .iter()
        .map(|(name, v)| json!({"name": name, "created_at": time(v.created_at), "updated_at": time(v.updated_at)}))
        .collect();
    ok(
        StatusCode::OK,
        json!({"total_count": secrets.len(), "secrets": page(&secrets, query)}),
    )
}

fn metadata(
    state: &Shared,
    scope: &ScopeId,
    name: &str,
    base: &str,
    p: &HashMap<String, String>,
) -> Response {
    let s = state.lock().unwrap();
    let Some(v) = s.scopes.get(scope).and_then(|sc| sc.secrets.get(name)) else {
        return not_found();
    };
    if !scope.organization {
        return ok(
            StatusCode::OK,
            json!({"name": name, "created_at": time(v.created_at), "updated_at": time(v.updated_at)}),
        );
    }
    let path = base.trim_start_matches('/').replace("{o}", &p["o"]);
    ok(
        StatusCode::OK,
        json!({"name": name, "created_at": time(v.created_at), "updated_at": time(v.updated_at),
               "visibility": v.visibility.clone().unwrap_or_else(|| "private".into()),
               "selected_repositories_url": format!("https://api.github.example/{path}/{name}/repositories")}),
    )
}

fn selected_repositories(state: &Shared, scope: &ScopeId, name: &str, query: &str) -> Response {
    let s = state.lock().unwrap();
    let Some(v) = s.scopes.get(scope).and_then(|sc| sc.secrets.get(name)) else {
        return not_found();
    };
    let names: std::collections::BTreeMap<u64, String> =
        s.repo_ids.iter().map(|(n, id)| (*id, n.clone())).collect();
    let repositories: Vec<Value> = v
        .selected
        .iter()
        .map(|id| json!({"id": id, "full_name": names.get(id).cloned().unwrap_or_default()}))
        .collect();
    ok(
        StatusCode::OK,
        json!({"total_count": v.selected.len(), "repositories": page(&repositories, query)}),
    )
}

/// Who may read a new organization secret, from the body GitHub requires on every write.
fn org_access(v: &Value) -> Result<(String, Vec<u64>), &'static str> {
    let Some(visibility) = v["visibility"].as_str() else {
        return Err("Invalid request.\n\n\"visibility\" is required");
    };
    if !["all", "private", "selected"].contains(&visibility) {
        return Err("visibility is not valid");
    }
    let selected: Vec<u64> = v["selected_repository_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    Ok((visibility.to_owned(), selected))
}

fn put(state: &Shared, scope: &ScopeId, name: &str, caller: &Caller, body: &Bytes) -> Response {
    let mut s = state.lock().unwrap();
    let skew = s.clock_skew;
    let Some(sc) = s.scopes.get_mut(scope) else {
        return not_found();
    };
    if !caller.can_write() {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let (Some(enc), Some(key_id)) = (v["encrypted_value"].as_str(), v["key_id"].as_str()) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"encrypted_value\", \"key_id\" are required",
        );
    };
    if key_id != sc.key_id {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Bad request - key_id does not match",
        );
    }
    // Organization secrets: GitHub requires the visibility on every write.
    let access = match scope.organization {
        true => match org_access(&v) {
            Ok(a) => Some(a),
            Err(why) => return error(StatusCode::UNPROCESSABLE_ENTITY, why),
        },
        false => None,
    };
    let Some(plain) = STANDARD
        .decode(enc)
        .ok()
        .and_then(|b| sc.secret_key.unseal(&b).ok())
        .and_then(|p| String::from_utf8(p).ok())
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Bad request - could not decrypt the secret",
        );
    };
    let now = (Utc::now() + skew).trunc_subsecs(0);
    let status = match sc.secrets.get_mut(name) {
        Some(existing) => {
            existing.value = plain.clone();
            existing.updated_at = now;
            if let Some((visibility, selected)) = access {
                existing.visibility = Some(visibility);
                existing.selected = selected;
            }
            StatusCode::NO_CONTENT
        }
        None => {
            let (visibility, selected) = access.unzip();
            sc.secrets.insert(
                name.to_owned(),
                StoredSecret {
                    value: plain.clone(),
                    created_at: now,
                    updated_at: now,
                    visibility,
                    selected: selected.unwrap_or_default(),
                },
            );
            StatusCode::CREATED
        }
    };
    s.written.push(plain);
    if status == StatusCode::CREATED {
        ok(status, json!({}))
    } else {
        status.into_response()
    }
}
