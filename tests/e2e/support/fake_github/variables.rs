//! Actions variables: a repository's, an environment's and an organization's (with who may
//! read it); listing (GitHub pages them 10 at a time, at most 30), reading, creating (409 if
//! it exists) and updating, and an organization variable's selected repositories. Names are
//! case-insensitive: stored upper-case.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{SubsecRound, Utc};
use serde_json::{Value, json};

use super::gate::Caller;
use super::{
    ScopeId, Shared, StoredVariable, environment, error, not_found, ok, org, page, repo, time,
    writable,
};

type Params = Path<HashMap<String, String>>;

/// Where each kind of store lives, and how its path names the scope.
type ScopeOf = fn(&HashMap<String, String>) -> ScopeId;

const STORES: [(&str, ScopeOf); 3] = [
    ("/repos/{o}/{r}/actions/variables", |p| repo(&full(p))),
    ("/repos/{o}/{r}/environments/{e}/variables", |p| {
        environment(&full(p), &p["e"])
    }),
    ("/orgs/{o}/actions/variables", |p| org(&p["o"])),
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
                })
                .post(
                    move |State(s): State<Shared>,
                          Path(p): Params,
                          Extension(caller): Extension<Caller>,
                          body: Bytes| async move {
                        create(&s, &scope_of(&p), &caller, &body)
                    },
                ),
            )
            .route(
                &format!("{base}/{{name}}"),
                get(move |State(s): State<Shared>, Path(p): Params| async move {
                    read(&s, &scope_of(&p), &p["name"])
                })
                .patch(
                    move |State(s): State<Shared>,
                          Path(p): Params,
                          Extension(caller): Extension<Caller>,
                          body: Bytes| async move {
                        update(&s, &scope_of(&p), &p["name"], &caller, &body)
                    },
                ),
            );
    }
    router.route(
        "/orgs/{o}/actions/variables/{name}/repositories",
        get(
            |State(s): State<Shared>, Path(p): Params, RawQuery(q): RawQuery| async move {
                selected_repositories(&s, &org(&p["o"]), &p["name"], &q.unwrap_or_default())
            },
        ),
    )
}

/// A variable as GitHub shows it; an organization's also says who may read it.
fn shown(scope: &ScopeId, name: &str, v: &StoredVariable) -> Value {
    let mut j = json!({"name": name, "value": v.value, "created_at": time(v.created_at), "updated_at": time(v.updated_at)});
    if let Some(visibility) = &v.visibility {
        j["visibility"] = json!(visibility);
        if visibility == "selected" {
            j["selected_repositories_url"] = json!(format!(
                "https://api.github.example/orgs/{}/actions/variables/{name}/repositories",
                scope.repository
            ));
        }
    }
    j
}

/// `?per_page=&page=` as GitHub reads it for variables: 10 a page by default, at most 30.
fn variables_page(items: &[Value], query: &str) -> Vec<Value> {
    let param = |k: &str| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(n, _)| *n == k)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let per_page = param("per_page").unwrap_or(10).clamp(1, 30);
    let n = param("page").unwrap_or(1);
    page(items, &format!("per_page={per_page}&page={n}"))
}

fn list(state: &Shared, scope: &ScopeId, query: &str) -> Response {
    let s = state.lock().unwrap();
    if !s.scopes.contains_key(scope) {
        return not_found();
    }
    let variables: Vec<Value> = s
        .variables
        .get(scope)
        .into_iter()
        .flatten()
        .map(|(name, v)| shown(scope, name, v))
        .collect();
    ok(
        StatusCode::OK,
        json!({"total_count": variables.len(), "variables": variables_page(&variables, query)}),
    )
}

fn read(state: &Shared, scope: &ScopeId, name: &str) -> Response {
    let s = state.lock().unwrap();
    let name = name.to_ascii_uppercase();
    match s.variables.get(scope).and_then(|vs| vs.get(&name)) {
        Some(v) if s.scopes.contains_key(scope) => ok(StatusCode::OK, shown(scope, &name, v)),
        _ => not_found(),
    }
}

/// GitHub's rule: letters, digits and underscores, not starting with a digit nor `GITHUB_`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.to_ascii_uppercase().starts_with("GITHUB_")
}

/// Who may read an organization variable, from a body's `visibility` and
/// `selected_repository_ids` (kept for `selected` only).
fn org_access(v: &Value) -> Result<(String, Vec<u64>), &'static str> {
    let Some(visibility) = v["visibility"].as_str() else {
        return Err("Invalid request.\n\n\"visibility\" is required");
    };
    if !["all", "private", "selected"].contains(&visibility) {
        return Err("visibility is not valid");
    }
    let selected: Vec<u64> = match visibility {
        "selected" => v["selected_repository_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok((visibility.to_owned(), selected))
}

fn create(state: &Shared, scope: &ScopeId, caller: &Caller, body: &Bytes) -> Response {
    let v = match writable(state, scope, caller, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (Some(name), Some(value)) = (v["name"].as_str(), v["value"].as_str()) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"name\", \"value\" are required",
        );
    };
    if !valid_name(name) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid name");
    }
    let access = match scope.organization {
        true => match org_access(&v) {
            Ok(a) => Some(a),
            Err(why) => return error(StatusCode::UNPROCESSABLE_ENTITY, why),
        },
        false => None,
    };
    let mut s = state.lock().unwrap();
    let now = (Utc::now() + s.clock_skew).trunc_subsecs(0);
    let vars = s.variables.entry(scope.clone()).or_default();
    let name = name.to_ascii_uppercase();
    if vars.contains_key(&name) {
        return error(
            StatusCode::CONFLICT,
            "Already exists - Variable already exists",
        );
    }
    let (visibility, selected) = access.unzip();
    vars.insert(
        name,
        StoredVariable {
            value: value.to_owned(),
            created_at: now,
            updated_at: now,
            visibility,
            selected: selected.unwrap_or_default(),
        },
    );
    ok(StatusCode::CREATED, json!({}))
}

/// Any of `name` (a rename), `value`, and for an organization's `visibility` and
/// `selected_repository_ids`; what is not given stays.
fn update(state: &Shared, scope: &ScopeId, name: &str, caller: &Caller, body: &Bytes) -> Response {
    let v = match writable(state, scope, caller, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let access = match (scope.organization, v.get("visibility")) {
        (true, Some(_)) => match org_access(&v) {
            Ok(a) => Some(a),
            Err(why) => return error(StatusCode::UNPROCESSABLE_ENTITY, why),
        },
        _ => None,
    };
    let new_name = v["name"].as_str().map(str::to_ascii_uppercase);
    if new_name.as_deref().is_some_and(|n| !valid_name(n)) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid name");
    }
    let mut s = state.lock().unwrap();
    let now = (Utc::now() + s.clock_skew).trunc_subsecs(0);
    let vars = s.variables.entry(scope.clone()).or_default();
    let name = name.to_ascii_uppercase();
    let new_name = new_name.unwrap_or_else(|| name.clone());
    if !vars.contains_key(&name) {
        return not_found();
    }
    if new_name != name && vars.contains_key(&new_name) {
        return error(
            StatusCode::CONFLICT,
            "Already exists - Variable already exists",
        );
    }
    let mut stored = vars.remove(&name).unwrap();
    if let Some(value) = v["value"].as_str() {
        stored.value = value.to_owned();
    }
    if let Some((visibility, selected)) = access {
        stored.visibility = Some(visibility);
        stored.selected = selected;
    } else if let (true, Some(ids)) = (
        stored.visibility.as_deref() == Some("selected"),
        v["selected_repository_ids"].as_array(),
    ) {
        stored.selected = ids.iter().filter_map(Value::as_u64).collect();
    }
    stored.updated_at = now;
    vars.insert(new_name, stored);
    StatusCode::NO_CONTENT.into_response()
}

fn selected_repositories(state: &Shared, scope: &ScopeId, name: &str, query: &str) -> Response {
    let s = state.lock().unwrap();
    let Some(v) = s
        .variables
        .get(scope)
        .and_then(|vs| vs.get(&name.to_ascii_uppercase()))
    else {
        return not_found();
    };
    if v.visibility.as_deref() != Some("selected") {
        return error(
            StatusCode::CONFLICT,
            "The visibility of the variable is not set to selected",
        );
    }
    let names: std::collections::BTreeMap<u64, &String> =
        s.repo_ids.iter().map(|(n, id)| (*id, n)).collect();
    let repositories: Vec<Value> = v
        .selected
        .iter()
        .filter_map(|id| names.get(id).map(|n| (id, n)))
        .map(|(id, n)| json!({"id": id, "full_name": n, "name": n.split('/').nth(1)}))
        .collect();
    ok(
        StatusCode::OK,
        json!({"total_count": repositories.len(), "repositories": page(&repositories, query)}),
    )
}
