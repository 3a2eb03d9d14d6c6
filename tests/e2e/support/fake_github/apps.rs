//! GitHub Apps: the endpoints an App's JWT reaches (finding an installation, minting its
//! token). The JWT must be signed (RS256) by a registered App's key, issued by it, and live at
//! most ten minutes (a minute of clock slack).

use axum::Router;
use axum::extract::{Extension, Path, State as Extract};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::json;

use super::gate::Caller;
use super::{Shared, State, error, ok, org, time};

/// What a GitHub App's JWT says.
#[derive(serde::Deserialize)]
struct AppClaims {
    iss: u64,
    iat: i64,
    exp: i64,
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/orgs/{o}/installation",
            get(
                |Extract(s): Extract<Shared>,
                 Path(owner): Path<String>,
                 Extension(c): Extension<Caller>| async move {
                    installation(&s.lock().unwrap(), true, &owner, &c)
                },
            ),
        )
        .route(
            "/users/{o}/installation",
            get(
                |Extract(s): Extract<Shared>,
                 Path(owner): Path<String>,
                 Extension(c): Extension<Caller>| async move {
                    installation(&s.lock().unwrap(), false, &owner, &c)
                },
            ),
        )
        .route(
            "/app/installations/{id}/access_tokens",
            post(
                |Extract(s): Extract<Shared>,
                 Path(id): Path<String>,
                 Extension(c): Extension<Caller>| async move {
                    access_token(&mut s.lock().unwrap(), &id, &c)
                },
            ),
        )
}

/// The App whose JWT this is, when it is one of ours and live.
/// Errs with the status and message GitHub would answer.
fn verify(s: &State, caller: &Caller) -> Result<AppClaims, (StatusCode, &'static str)> {
    // Another credential on an App's endpoint: as GitHub, nothing is there.
    let Caller::App(jwt) = caller else {
        return Err((StatusCode::NOT_FOUND, "Not Found"));
    };
    let unauthorized = |why: &'static str| (StatusCode::UNAUTHORIZED, why);
    let Ok(header) = jsonwebtoken::decode_header(jwt) else {
        return Err(unauthorized("A JSON web token could not be decoded"));
    };
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return Err(unauthorized(
            "'Expiration time' claim ('exp') must be a numeric value",
        ));
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp"]);
    validation.leeway = 0;
    let mut verified = None;
    for (id, pem) in &s.apps {
        let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()) else {
            continue;
        };
        if let Ok(data) = jsonwebtoken::decode::<AppClaims>(jwt, &key, &validation)
            && data.claims.iss == *id
        {
            verified = Some(data.claims);
        }
    }
    let Some(claims) = verified else {
        return Err(unauthorized("A JSON web token could not be decoded"));
    };
    let now = Utc::now().timestamp();
    if claims.iat > now + 60 || claims.exp - claims.iat > 660 || claims.exp > now + 600 {
        return Err(unauthorized(
            "'Expiration time' claim ('exp') is too far in the future",
        ));
    }
    Ok(claims)
}

/// An organization's installation is found under /orgs, a user's under /users.
fn installation(s: &State, is_org: bool, owner: &str, caller: &Caller) -> Response {
    let claims = match verify(s, caller) {
        Ok(c) => c,
        Err((status, why)) => return error(status, why),
    };
    if s.scopes.contains_key(&org(owner)) != is_org {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    match s
        .installations
        .get(&(claims.iss, owner.to_ascii_lowercase()))
    {
        Some(id) => ok(StatusCode::OK, json!({"id": id, "app_id": claims.iss})),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn access_token(s: &mut State, id: &str, caller: &Caller) -> Response {
    let claims = match verify(s, caller) {
        Ok(c) => c,
        Err((status, why)) => return error(status, why),
    };
    let Some(((_, owner), _)) = s
        .installations
        .iter()
        .find(|((app, _), i)| *app == claims.iss && i.to_string() == id)
    else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let owner = owner.clone();
    let token = format!(
        "ghs_fakeInstallationToken{:016}",
        s.installation_tokens.len() + 1
    );
    s.installation_tokens.insert(token.clone(), owner);
    s.written.push(token.clone());
    ok(
        StatusCode::CREATED,
        json!({"token": token, "expires_at": time(Utc::now() + chrono::Duration::hours(1))}),
    )
}
