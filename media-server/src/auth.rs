//! Signed URLs for publishing and playing, per app (see `media_core::token`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use media_core::token::{self, Action, TokenError};
use serde::Deserialize;

use crate::http::AppState;

/// Shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// The signed-URL policy of one app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppAuth {
    /// The app's HMAC secret, at least [`MIN_SECRET_LEN`] bytes.
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

/// Which apps need tokens, and their secrets.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    apps: BTreeMap<String, AppAuth>,
}

impl Auth {
    /// The policy of every app listed; apps not listed need no token.
    pub fn new(apps: BTreeMap<String, AppAuth>) -> Self {
        Self { apps }
    }

    /// Checks the token in `query` for `action` on `app/stream` at `now` (Unix seconds).
    pub fn check(
        &self,
        action: Action,
        app: &str,
        stream: &str,
        query: &str,
        now: u64,
    ) -> Result<(), TokenError> {
        let Some(policy) = self.apps.get(app) else {
            return Ok(());
        };
        let required = match action {
            Action::Publish => policy.publish,
            Action::Play => policy.play,
        };
        if !required {
            return Ok(());
        }
        token::verify(
            policy.secret.as_bytes(),
            action,
            app,
            stream,
            token::from_query(query),
            now,
        )
    }

    /// [`Auth::check`] at the current time.
    pub fn check_now(
        &self,
        action: Action,
        app: &str,
        stream: &str,
        query: &str,
    ) -> Result<(), TokenError> {
        self.check(action, app, stream, query, unix_now())
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Proof that the request may play its stream: a playlist or an HTTP-FLV stream of an app
/// that needs tokens carries a valid play token; anything else passes. Refused with `403`
/// and the reason.
pub struct PlayAllowed;

impl FromRequestParts<AppState> for PlayAllowed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some((app, stream)) = token::play_target(parts.uri.path()) else {
            return Ok(Self);
        };
        let query = parts.uri.query().unwrap_or_default();
        match state.auth.check_now(Action::Play, app, stream, query) {
            Ok(()) => Ok(Self),
            Err(e) => {
                state.metrics.play_refused.inc();
                Err((StatusCode::FORBIDDEN, format!("{e}\n")).into_response())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_apps_and_actions_need_tokens() {
        let mut apps = BTreeMap::new();
        apps.insert(
            "paid".to_string(),
            AppAuth {
                secret: "0123456789abcdef".into(),
                publish: true,
                play: false,
            },
        );
        let auth = Auth::new(apps);
        assert_eq!(auth.check(Action::Publish, "live", "cam", "", 0), Ok(()));
        assert_eq!(auth.check(Action::Play, "paid", "cam", "", 0), Ok(()));
        assert_eq!(
            auth.check(Action::Publish, "paid", "cam", "", 0),
            Err(TokenError::Missing)
        );
        let t = token::sign(b"0123456789abcdef", Action::Publish, "paid", "cam", 100);
        let query = format!("x=1&token={t}");
        assert_eq!(
            auth.check(Action::Publish, "paid", "cam", &query, 50),
            Ok(())
        );
        assert_eq!(
            auth.check(Action::Publish, "paid", "cam", &query, 150),
            Err(TokenError::Expired(50))
        );
    }
}
