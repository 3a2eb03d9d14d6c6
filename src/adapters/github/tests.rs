#[test]
fn the_api_url_must_be_https_unless_loopback_or_allowed() {
    for ok in [
        "https://api.github.com",
        "https://ghe.example.com/api/v3",
        "http://127.0.0.1:8080",
        "http://127.8.9.10/api/v3",
        "http://localhost:3000",
        "http://[::1]:9000/api/v3",
    ] {
        assert_eq!(super::check_api_url(ok, false), Ok(()), "{ok}");
    }
    let e = super::check_api_url("http://github.example.com/api/v3", false).unwrap_err();
    assert!(
        e.contains("GITHUB_API_URL") && e.contains("unencrypted"),
        "{e}"
    );
    assert_eq!(
        super::check_api_url("http://github.example.com/api/v3", true),
        Ok(())
    );
    for bad in [
        "ftp://x.example.com",
        "github.example.com",
        "http://",
        "https://",
    ] {
        let e = super::check_api_url(bad, true).unwrap_err();
        assert!(e.starts_with("GITHUB_API_URL"), "{bad}: {e}");
    }
    // 127.example.com is not loopback
    assert!(super::check_api_url("http://127.0.0.1.example.com", false).is_err());
}

use super::*;
use chrono::TimeZone;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().unwrap());
    }
    h
}

#[test]
fn retry_after_reads_seconds_dates_and_the_primary_reset() {
    let now = chrono::Utc
        .with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
        .unwrap();
    let secs = |n| Some(Duration::from_secs(n));
    assert_eq!(
        retry_after(&headers(&[("retry-after", "30")]), now),
        secs(30)
    );
    assert_eq!(
        retry_after(
            &headers(&[("retry-after", "Thu, 26 Nov 2026 12:01:30 GMT")]),
            now
        ),
        secs(90)
    );
    // A date already past still waits a second.
    assert_eq!(
        retry_after(
            &headers(&[("retry-after", "Thu, 26 Nov 2026 11:59:00 GMT")]),
            now
        ),
        secs(1)
    );
    let reset = (now.timestamp() + 600).to_string();
    assert_eq!(
        retry_after(
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", reset.as_str())
            ]),
            now
        ),
        secs(600)
    );
    // Requests left: the reset time is no reason to wait.
    assert_eq!(
        retry_after(
            &headers(&[
                ("x-ratelimit-remaining", "12"),
                ("x-ratelimit-reset", reset.as_str())
            ]),
            now
        ),
        None
    );
    assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
    assert_eq!(retry_after(&HeaderMap::new(), now), None);
}
