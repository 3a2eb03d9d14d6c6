//! One TLS rule for every URL the tool sends a credential to (CONTRACT §12a): GitHub, Vault and
//! anything added later. A leaf: it imports nothing of the crate.

/// `url` (named `what` in the error, e.g. `GITHUB_API_URL`) may carry a credential: it must be
/// `https://`, or plain `http://` only to a loopback host (`127.0.0.0/8`, `::1`, `localhost`,
/// read after any userinfo) or with `allow_http` (`AWS_KEY_ROTATOR_ALLOW_HTTP=1`, emulators).
/// The URI is parsed, never compared as a prefix, and its scheme compared case-insensitively.
pub fn require_tls(what: &str, url: &str, allow_http: bool) -> Result<(), String> {
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|e| format!("{what} {url:?} is not a valid URL ({e}): use an https:// URL"))?;
    // `http::Uri::host` is the host after any `user:password@`.
    let host = uri
        .authority()
        .map(|a| a.as_str().rsplit('@').next().unwrap_or_default())
        .map(|h| match h.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => h.rsplit_once(':').map_or(h, |(host, _)| host),
        })
        .unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let scheme = uri.scheme_str().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{what} {url:?} names no host: use an https:// URL"));
    }
    if scheme.eq_ignore_ascii_case("https") {
        return Ok(());
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "{what} {url:?} is not an https:// URL: use https://"
        ));
    }
    if loopback || allow_http {
        Ok(())
    } else {
        Err(format!(
            "{what} {url:?} is plain http: the credential would travel unencrypted to {host}. Use https://; plain http is accepted only for a loopback address, or with AWS_KEY_ROTATOR_ALLOW_HTTP=1 for an emulator"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::require_tls;

    #[test]
    fn https_passes_and_plain_http_only_to_loopback_or_when_allowed() {
        for ok in [
            "https://api.github.com",
            "HTTPS://ghe.example.com/api/v3",
            "http://127.0.0.1:8080",
            "http://127.8.9.10/api/v3",
            "http://localhost:3000",
            "HTTP://LOCALHOST:3000",
            "http://[::1]:9000/api/v3",
        ] {
            assert_eq!(require_tls("X", ok, false), Ok(()), "{ok}");
        }
        for clear in [
            "http://github.example.com/api/v3",
            // The scheme is case-insensitive: upper case is still plain http.
            "HTTP://vault.example.com:8200",
            "Http://vault.example.com",
            // Userinfo that looks like loopback: the host is after the `@`.
            "http://127.0.0.1:1@vault.example.com",
            "http://localhost@vault.example.com:8200",
            // 127.example.com is not loopback.
            "http://127.0.0.1.example.com",
        ] {
            let e = require_tls("VAULT_ADDR", clear, false).unwrap_err();
            assert!(
                e.starts_with("VAULT_ADDR") && e.contains("unencrypted"),
                "{clear}: {e}"
            );
            assert_eq!(require_tls("X", clear, true), Ok(()), "{clear}");
        }
        for bad in [
            "ftp://x.example.com",
            "github.example.com",
            "http://",
            "https://",
        ] {
            let e = require_tls("GITHUB_API_URL", bad, true).unwrap_err();
            assert!(e.starts_with("GITHUB_API_URL"), "{bad}: {e}");
        }
    }
}
