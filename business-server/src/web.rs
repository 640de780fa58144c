//! The web page: the viewer page at `/`, the host page at `/host`, their scripts and the
//! vendored player bundles under `/assets/`, all embedded from `web/` at build time; the
//! page's settings at `/api/v1/web-config`; and, when enabled, demo tokens.

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::{json_body, ApiError};
use crate::auth::{valid_name, Claims, Role};
use crate::config::{Config, WebPage, DEMO_ADMIN_KEY};
use crate::protocol::ErrorCode;
use crate::server::{now_secs, AppState};

/// How long a demo token is valid: 12 hours.
pub const DEMO_TOKEN_TTL_SECS: u64 = 12 * 3600;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/", $path)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Everything under `web/` the pages use; the first two are the pages.
static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("host.html", HTML),
    asset!("app.css", CSS),
    asset!("common.js", JS),
    asset!("viewer.js", JS),
    asset!("host.js", JS),
    asset!("charts.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("vendor/hls.min.js", JS),
    asset!("vendor/mpegts.js", JS),
    asset!("vendor/LICENSE.hls.js.txt", TEXT),
    asset!("vendor/LICENSE.mpegts.js.txt", TEXT),
    asset!("vendor/mpegts.js.LICENSE.txt", TEXT),
];

/// Scripts only from this server, no inline code; media and metrics from anywhere the
/// page is configured to read them.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; media-src 'self' blob: http: https:; \
    connect-src 'self' http: https: ws: wss:; worker-src 'self' blob:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Strong validators for the embedded files, computed once.
fn etags() -> &'static [HeaderValue] {
    static ETAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                HeaderValue::from_str(&format!("\"{hex}\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
            })
            .collect()
    })
}

/// The page routes; `/api/v1/demo/token` only when `config.demo_tokens` is set.
pub fn router(config: &Config) -> Router<Arc<AppState>> {
    let router = Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { serve(0, &headers) }),
        )
        .route(
            "/host",
            get(|headers: HeaderMap| async move { serve(1, &headers) }),
        )
        .route("/assets/{*path}", get(asset))
        .route("/api/v1/web-config", get(web_config));
    if config.demo_tokens {
        router.route("/api/v1/demo/token", post(demo_token))
    } else {
        router
    }
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.path == path) {
        Some(i) => serve(i, &headers),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

/// Serves embedded file `i`, or `304` when the browser has it.
fn serve(i: usize, headers: &HeaderMap) -> Response {
    let (asset, etag) = (&ASSETS[i], &etags()[i]);
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !cached {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
    }
    if asset.content_type == HTML {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

/// Body of `GET /api/v1/web-config`.
#[derive(Serialize)]
struct WebConfig<'a> {
    #[serde(flatten)]
    page: &'a WebPage,
    /// Whether `POST /api/v1/demo/token` exists.
    demo_tokens: bool,
    /// Whether it also gives the host page the admin key (only `livepulse demo`).
    demo_host: bool,
}

/// `GET /api/v1/web-config`: the page's room, video URLs and metrics sources.
async fn web_config(State(app): State<Arc<AppState>>) -> Response {
    Json(WebConfig {
        page: &app.config.web,
        demo_tokens: app.config.demo_tokens,
        demo_host: demo_host(&app.config),
    })
    .into_response()
}

/// Host tokens and the admin key are handed out only by `livepulse demo`, whose admin key
/// is the public demo one.
fn demo_host(config: &Config) -> bool {
    config.demo_tokens && config.demo && config.admin_key == DEMO_ADMIN_KEY
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoTokenRequest {
    user: Option<String>,
    #[serde(default = "viewer")]
    role: Role,
}

fn viewer() -> Role {
    Role::Viewer
}

#[derive(Serialize)]
struct DemoTokenResponse {
    token: String,
    #[serde(flatten)]
    claims: Claims,
    /// The public demo admin key, for the host page's sales and notices.
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_key: Option<&'static str>,
}

/// `POST /api/v1/demo/token` (demo only): a token for the page's room, for the given user
/// name or a random guest; `{"role":"host"}` also gets the admin key under `livepulse demo`.
async fn demo_token(
    State(app): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<DemoTokenResponse>, ApiError> {
    let req: DemoTokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DemoTokenRequest {
            user: None,
            role: Role::Viewer,
        }
    } else {
        json_body(&body)?
    };
    let host = match req.role {
        Role::Viewer => false,
        Role::Host if demo_host(&app.config) => true,
        _ => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "demo tokens are for viewers; hosts get theirs from POST /api/v1/tokens with the admin key",
            ))
        }
    };
    let user = req
        .user
        .unwrap_or_else(|| format!("guest-{:04x}", rand::random::<u16>()));
    if !valid_name(&user) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "user must be 1-64 characters of [A-Za-z0-9_-]",
        ));
    }
    let claims = Claims {
        user,
        room: app.config.web.room.clone(),
        role: req.role,
        exp: now_secs() + DEMO_TOKEN_TTL_SECS,
    };
    Ok(Json(DemoTokenResponse {
        token: app.signer.issue(&claims),
        claims,
        admin_key: host.then_some(DEMO_ADMIN_KEY),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_with_a_distinct_validator() {
        assert_eq!(
            (ASSETS[0].path, ASSETS[1].path),
            ("index.html", "host.html")
        );
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{}", a.path);
        }
        let mut tags: Vec<_> = etags().iter().collect();
        tags.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len());
    }
}
