//! The dashboard at `/ui/`: plain HTML, CSS and JavaScript embedded in the binary at build
//! time (no build step, no CDN: it works offline). It talks to the v1 API with the session
//! cookie (password sign-in) or a bearer token.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::AppState;

/// Scripts and styles from this origin only; the API is same-origin too.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                       connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The embedded files: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("ui/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("ui/app.js")),
    ("overview.js", "text/javascript; charset=utf-8", include_str!("ui/overview.js")),
    ("stacks.js", "text/javascript; charset=utf-8", include_str!("ui/stacks.js")),
    ("jobs.js", "text/javascript; charset=utf-8", include_str!("ui/jobs.js")),
    ("account.js", "text/javascript; charset=utf-8", include_str!("ui/account.js")),
    ("monitors.js", "text/javascript; charset=utf-8", include_str!("ui/monitors.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("ui/style.css")),
    ("docs.js", "text/javascript; charset=utf-8", include_str!("ui/docs.js")),
    ("favicon.svg", "image/svg+xml", include_str!("ui/favicon.svg")),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { asset("index.html") }))
        // Any depth: a mistyped deep link gets the not-found page too.
        .route("/ui/{*file}", get(|Path(file): Path<String>| async move { asset(&file) }))
}

/// What an unknown `/ui/` path answers: a page saying so, with a way back (status 404).
const NOT_FOUND_PAGE: &str = include_str!("ui/404.html");

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => served(StatusCode::OK, content_type, body),
        None => served(StatusCode::NOT_FOUND, "text/html; charset=utf-8", NOT_FOUND_PAGE),
    }
}

fn served(status: StatusCode, content_type: &'static str, body: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, content_type),
            // Embedded in this very binary: revalidate, so an upgrade shows at once.
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        body,
    )
        .into_response()
}
