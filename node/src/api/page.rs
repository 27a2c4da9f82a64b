//! The status page at `GET /`: one self-contained HTML file (inline CSS, plain JavaScript, an
//! inline SVG plot; no external assets, no framework) compiled into the binary. It reads the
//! same-origin `/status` every two seconds and shows what an operator asks first: is the node
//! healthy, is the chain moving, where is the DKG, how long do the one-time keys last, who
//! signed what, which peer misbehaves. Panels in detail: `docs/operator-guide.md`.
//!
//! Guarantees: the page holds no data of its own and fetches nothing but `/status` (its
//! Content-Security-Policy forbids any other origin); it inserts what the node reports as text,
//! never as markup. When the API wants a bearer token, the page asks for it and keeps it in the
//! tab's `sessionStorage` only.

use axum::http::header;
use axum::response::IntoResponse;

/// The page.
pub const PAGE: &str = include_str!("page/status.html");

/// What the page may load: inline script and style, and `/status` from its own origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// `GET /`: the page.
pub async fn serve() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained_and_small() {
        assert!(PAGE.len() < 64 * 1024, "{} bytes", PAGE.len());
        // The SVG namespace is a name, not a fetch; the empty `data:` icon keeps the browser
        // from asking for /favicon.ico.
        let page = PAGE
            .replace("'http://www.w3.org/2000/svg'", "")
            .replace("<link rel=\"icon\" href=\"data:,\">", "");
        for external in [
            "http://", "https://", "//cdn", "src=", "href=", "@import", "url(",
        ] {
            assert!(!page.contains(external), "the page references {external}");
        }
        assert!(PAGE.contains("fetch('/status'"));
        // Node data goes in as text: no innerHTML anywhere.
        assert!(!PAGE.contains("innerHTML"));
    }
}
