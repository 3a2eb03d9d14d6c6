//! GitHub Actions' OIDC issuer, as a job sees it: a discovery document, the signing keys
//! (JWKS), and the token endpoint a job calls with `ACTIONS_ID_TOKEN_REQUEST_TOKEN` (RS256,
//! claims `iss`, `aud`, `sub`, `repository`, `ref`). Outside the gate: no GitHub token here.

use axum::Router;
use axum::extract::{RawQuery, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::{Shared, error, ok};

/// What a job presents to ask for its token.
pub const REQUEST_TOKEN: &str = "ghs_fakeOidcRequestToken0000000000003";

/// The issuer's key and who the job is.
pub struct Issuer {
    pub url: String,
    pub key: jsonwebtoken::EncodingKey,
    pub jwk: jsonwebtoken::jwk::Jwk,
    /// The job's repository (`owner/name`): `sub` is `repo:REPOSITORY:ref:refs/heads/main`.
    pub repository: String,
    /// Every token issued, for the leak scan.
    pub issued: Vec<String>,
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(|Extract(s): Extract<Shared>| async move {
                let s = s.lock().unwrap();
                let Some(i) = &s.oidc else { return error(StatusCode::NOT_FOUND, "Not Found") };
                ok(
                    StatusCode::OK,
                    json!({
                        "issuer": i.url,
                        "jwks_uri": format!("{}/.well-known/jwks", i.url),
                        "subject_types_supported": ["public", "pairwise"],
                        "response_types_supported": ["id_token"],
                        "claims_supported": ["sub", "aud", "exp", "iat", "iss", "repository", "ref"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "scopes_supported": ["openid"],
                    }),
                )
            }),
        )
        .route(
            "/.well-known/jwks",
            get(|Extract(s): Extract<Shared>| async move {
                let s = s.lock().unwrap();
                let Some(i) = &s.oidc else { return error(StatusCode::NOT_FOUND, "Not Found") };
                ok(StatusCode::OK, json!({ "keys": [i.jwk] }))
            }),
        )
        .route("/_services/token", get(token))
}

async fn token(Extract(s): Extract<Shared>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let mut s = s.lock().unwrap();
    let Some(i) = &mut s.oidc else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("bearer ")
                .or_else(|| v.strip_prefix("Bearer "))
        });
    if bearer != Some(REQUEST_TOKEN) {
        return error(StatusCode::UNAUTHORIZED, "Bad request token");
    }
    let audience = q
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("audience="))
        .map(|a| {
            percent_encoding::percent_decode_str(a)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_else(|| "https://github.com/octo".into());
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": i.url,
        "aud": audience,
        "sub": format!("repo:{}:ref:refs/heads/main", i.repository),
        "repository": i.repository,
        "repository_owner": i.repository.split('/').next(),
        "ref": "refs/heads/main",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
        "jti": format!("jti-{now}"),
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("fake-github-oidc".into());
    let jwt = jsonwebtoken::encode(&header, &claims, &i.key).unwrap();
    i.issued.push(jwt.clone());
    ok(StatusCode::OK, json!({ "count": 1, "value": jwt }))
}
