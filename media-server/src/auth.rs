//! Signed URLs for publishing and playing, per app: the `[auth.APP]` config and the HTTP
//! extractor that checks play tokens (the rule itself is `media_core::token::Policy`).

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use media_core::token::{AppPolicy, Policy};
use serde::Deserialize;

use crate::http::AppState;

/// The signed-URL policy of one app, as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppAuth {
    /// The app's HMAC secret, at least `media_core::token::MIN_SECRET_LEN` bytes.
    pub secret: String,
    /// Publishing needs a publish token.
    #[serde(default = "yes")]
    pub publish: bool,
    /// Playing (RTMP, HTTP-FLV, HLS playlists) needs a play token.
    #[serde(default = "yes")]
    pub play: bool,
}

fn yes() -> bool {
    true
}

/// The policy of the configured apps.
pub fn policy(apps: &BTreeMap<String, AppAuth>) -> Policy {
    Policy::new(apps.iter().map(|(app, a)| {
        let policy = AppPolicy {
            secret: a.secret.clone(),
            publish: a.publish,
            play: a.play,
        };
        (app.clone(), policy)
    }))
}

/// Proof that the request may play its stream: a playlist or an HTTP-FLV stream of an app
/// that needs tokens carries a valid play token; anything else passes. Refused with `403`
/// and the reason.
pub struct PlayAllowed;

impl FromRequestParts<AppState> for PlayAllowed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let query = parts.uri.query().unwrap_or_default();
        match state
            .auth
            .check_play_path(parts.uri.path(), query, net_guard::unix_secs())
        {
            Ok(()) => Ok(Self),
            Err(e) => {
                state.metrics.play_refused.inc();
                Err((StatusCode::FORBIDDEN, format!("{e}\n")).into_response())
            }
        }
    }
}
