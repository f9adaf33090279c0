//! What every response says to the browser, and what every action must come from.
//!
//! - Headers on every page: a Content-Security-Policy that runs no script but the server's own
//!   `/live.js` (no inline script, no other origin; inline styles stay allowed because
//!   `report.html` is one standalone file), connects only back to the server, posts forms only
//!   to it and lets no page frame it; `Referrer-Policy: same-origin` (a run's address never
//!   leaves in a link to elsewhere; `no-referrer` would also blank the `Origin` of the page's
//!   own form posts, which the check below needs); `X-Content-Type-Options: nosniff`;
//!   `X-Frame-Options: DENY` for older browsers.
//! - An action (a POST) is refused unless it comes from the server's own pages: an `Origin`
//!   that is not the server's, or a `Sec-Fetch-Site` other than `same-origin`, is a 403 even
//!   with the right token — a page elsewhere cannot make a visitor's browser act. A client
//!   that sends neither (curl, a script) is judged by the token alone.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the headers to every response.
pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Why a POST does not come from the server's own page, if it does not.
pub fn foreign(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && site != "same-origin"
    {
        return Some(format!(
            "the request came from another site (Sec-Fetch-Site: {site})"
        ));
    }
    if let Some(origin) = text("origin") {
        let own = text("host").map(|h| format!("http://{h}"));
        if own.as_deref() != Some(origin) {
            return Some(format!(
                "the request came from {origin}, not from this server's pages"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_the_servers_own_pages_may_post() {
        let host = ("host", "127.0.0.1:8080");
        assert_eq!(foreign(&with(&[host])), None, "curl: the token decides");
        assert_eq!(
            foreign(&with(&[
                host,
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "same-origin")
            ])),
            None
        );
        assert!(foreign(&with(&[host, ("origin", "http://evil.example")])).is_some());
        assert!(foreign(&with(&[host, ("origin", "null")])).is_some());
        assert!(foreign(&with(&[host, ("sec-fetch-site", "same-site")])).is_some());
        assert!(foreign(&with(&[host, ("sec-fetch-site", "cross-site")])).is_some());
    }
}
