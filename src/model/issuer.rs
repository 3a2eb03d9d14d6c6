//! Whose OIDC tokens a role trusts (CONTRACT §12a): the issuer of the GitHub instance this run
//! talks to, placed from `GITHUB_SERVER_URL` and checked against `GITHUB_API_URL`, never
//! assumed. A leaf.

/// The issuer's host and path, as IAM names an OIDC provider (`oidc-provider/ISSUER`) and its
/// condition keys (`ISSUER:sub`): no scheme.
///
/// - `https://github.com` (API `https://api.github.com`) → `token.actions.githubusercontent.com`;
/// - a GHE.com tenant `https://TENANT.ghe.com` (API `https://api.TENANT.ghe.com`) →
///   `token.actions.TENANT.ghe.com`;
/// - GitHub Enterprise Server `https://HOST` (API `https://HOST/api/v3`) → `HOST/_services/token`.
///
/// Without `server_url` the instance is read from `api_url` by the same table. A server and an
/// API that name different instances, or an instance that cannot be placed, is an error: a
/// role must never trust another instance's issuer by default. An API on a loopback host (an
/// emulator or a local proxy) serves whatever instance `GITHUB_SERVER_URL` names.
pub fn place(server_url: Option<&str>, api_url: &str) -> Result<String, String> {
    let api = Url::parse(api_url).ok_or_else(|| {
        format!("GITHUB_API_URL {api_url:?} is not a URL: the OIDC issuer cannot be placed")
    })?;
    let instance = match server_url {
        Some(s) => {
            let server = Url::parse(s)
                .filter(|u| u.path.is_empty())
                .ok_or_else(|| {
                    format!(
                        "GITHUB_SERVER_URL {s:?} is not a GitHub instance's URL (https://github.com, https://TENANT.ghe.com or https://HOST): the OIDC issuer cannot be placed"
                    )
                })?;
            if !api.loopback() && instance_of_api(&api).as_ref() != Some(&server) {
                return Err(format!(
                    "GITHUB_SERVER_URL {s:?} and GITHUB_API_URL {api_url:?} name different GitHub instances: a role would trust the wrong issuer. Set both for one instance (github.com: https://github.com with https://api.github.com; GHE.com: https://TENANT.ghe.com with https://api.TENANT.ghe.com; GitHub Enterprise Server: https://HOST with https://HOST/api/v3)"
                ));
            }
            server
        }
        None => instance_of_api(&api).ok_or_else(|| {
            format!(
                "GITHUB_API_URL {api_url:?} is neither github.com's, a GHE.com tenant's nor a GitHub Enterprise Server's (https://HOST/api/v3): set GITHUB_SERVER_URL to the instance whose OIDC tokens the role should trust"
            )
        })?,
    };
    Ok(issuer_of(&instance))
}

/// The issuer of instance `server`.
fn issuer_of(server: &Url) -> String {
    if server.host == "github.com" {
        "token.actions.githubusercontent.com".to_owned()
    } else if let Some(tenant) = ghe_com_tenant(&server.host) {
        format!("token.actions.{tenant}.ghe.com")
    } else {
        format!("{}/_services/token", server.authority())
    }
}

/// `TENANT` of `TENANT.ghe.com` (one label).
fn ghe_com_tenant(host: &str) -> Option<&str> {
    host.strip_suffix(".ghe.com")
        .filter(|t| !t.is_empty() && !t.contains('.'))
}

/// The instance (its web URL) whose REST API is `api`.
fn instance_of_api(api: &Url) -> Option<Url> {
    if api.host == "api.github.com" && api.path.is_empty() {
        return Some(Url::instance(&api.scheme, "github.com", None));
    }
    if let Some(tenant) = api
        .host
        .strip_prefix("api.")
        .and_then(ghe_com_tenant)
        .filter(|_| api.path.is_empty())
    {
        return Some(Url::instance(
            &api.scheme,
            &format!("{tenant}.ghe.com"),
            None,
        ));
    }
    if api.path == "/api/v3" && api.host != "github.com" && ghe_com_tenant(&api.host).is_none() {
        return Some(Url::instance(&api.scheme, &api.host, api.port));
    }
    None
}

/// A URL's parts, lower-cased where case does not matter.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    scheme: String,
    host: String,
    port: Option<u16>,
    /// Without a trailing `/`.
    path: String,
}

impl Url {
    fn parse(s: &str) -> Option<Url> {
        let uri: http::Uri = s.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return None;
        }
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        // A default port is the same instance as none.
        let port = authority
            .port_u16()
            .filter(|p| !matches!((scheme.as_str(), p), ("https", 443) | ("http", 80)));
        Some(Url {
            scheme,
            host,
            port,
            path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    fn instance(scheme: &str, host: &str, port: Option<u16>) -> Url {
        Url {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
            path: String::new(),
        }
    }

    fn loopback(&self) -> bool {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        bare == "localhost"
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::place;

    #[test]
    fn each_instance_gets_its_own_issuer() {
        for (server, api, issuer) in [
            (
                Some("https://github.com"),
                "https://api.github.com",
                "token.actions.githubusercontent.com",
            ),
            (
                None,
                "https://api.github.com/",
                "token.actions.githubusercontent.com",
            ),
            (
                Some("https://acme.ghe.com"),
                "https://api.acme.ghe.com",
                "token.actions.acme.ghe.com",
            ),
            (
                None,
                "https://api.acme.ghe.com",
                "token.actions.acme.ghe.com",
            ),
            (
                Some("https://GHE.Example.com"),
                "https://ghe.example.com/api/v3",
                "ghe.example.com/_services/token",
            ),
            (
                None,
                "https://ghe.example.com:8443/api/v3",
                "ghe.example.com:8443/_services/token",
            ),
            (
                None,
                "https://ghe.example.com:443/api/v3/",
                "ghe.example.com/_services/token",
            ),
            // An emulator on loopback serves the instance the server URL names.
            (
                Some("https://github.com"),
                "http://127.0.0.1:9999",
                "token.actions.githubusercontent.com",
            ),
            (
                None,
                "http://127.0.0.1:9999/api/v3",
                "127.0.0.1:9999/_services/token",
            ),
        ] {
            assert_eq!(
                place(server, api).as_deref(),
                Ok(issuer),
                "{server:?} {api}"
            );
        }
    }

    #[test]
    fn an_instance_that_cannot_be_placed_or_two_that_disagree_are_refused() {
        for (server, api, needle) in [
            // GHE.com without GITHUB_SERVER_URL was taken for github.com.
            (
                Some("https://github.com"),
                "https://api.acme.ghe.com",
                "different GitHub instances",
            ),
            (
                Some("https://acme.ghe.com"),
                "https://api.github.com",
                "different GitHub instances",
            ),
            (
                Some("https://acme.ghe.com"),
                "https://api.other.ghe.com",
                "different GitHub instances",
            ),
            (
                Some("https://ghe.example.com"),
                "https://ghe.other.com/api/v3",
                "different GitHub instances",
            ),
            (
                Some("https://github.com"),
                "https://ghe.example.com/api/v3",
                "different GitHub instances",
            ),
            (None, "https://api.example.com", "neither github.com's"),
            (None, "http://127.0.0.1:9999", "neither github.com's"),
            (None, "https://github.com/api/v3", "neither github.com's"),
            (
                Some("https://github.com/enterprises/x"),
                "https://api.github.com",
                "not a GitHub instance's URL",
            ),
            (
                Some("not a url"),
                "https://api.github.com",
                "not a GitHub instance's URL",
            ),
        ] {
            let e = place(server, api).unwrap_err();
            assert!(e.contains(needle), "{server:?} {api}: {e}");
        }
    }
}
