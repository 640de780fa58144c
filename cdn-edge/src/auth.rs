//! Signed URLs at the edge: a playlist or HTTP-FLV request of an app that needs tokens must
//! carry a valid play token (see `media_core::token`), checked before the cache is even
//! looked at. The token never enters the cache key; the edge signs its own short-lived token
//! for the origin, so one cached object serves every authorized viewer.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use media_core::token::{self, Action, TokenError};

/// How long a token the edge signs for an origin fetch stays valid.
const ORIGIN_TOKEN_SECS: u64 = 60;

/// App secrets shared with the origin.
#[derive(Debug, Default)]
pub struct EdgeAuth {
    secrets: HashMap<String, String>,
}

impl EdgeAuth {
    /// The policy for `(app, secret)` pairs; other apps need no token.
    pub fn new(apps: &[(String, String)]) -> Self {
        Self {
            secrets: apps.iter().cloned().collect(),
        }
    }

    /// Checks a client request's play token at `now` (Unix seconds).
    pub fn check(&self, path: &str, query: &str, now: u64) -> Result<(), TokenError> {
        let Some((app, stream)) = token::play_target(path) else {
            return Ok(());
        };
        let Some(secret) = self.secrets.get(app) else {
            return Ok(());
        };
        token::verify(
            secret.as_bytes(),
            Action::Play,
            app,
            stream,
            token::from_query(query),
            now,
        )
    }

    /// `path_and_query` with a fresh play token appended when its app needs one, for the
    /// fetch from the origin.
    pub fn for_origin(&self, path_and_query: &str, now: u64) -> String {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let target = token::play_target(path)
            .and_then(|(app, stream)| Some((app, stream, self.secrets.get(app)?)));
        let Some((app, stream, secret)) = target else {
            return path_and_query.to_string();
        };
        let expires = now.saturating_add(ORIGIN_TOKEN_SECS);
        let t = token::sign(secret.as_bytes(), Action::Play, app, stream, expires);
        if query.is_empty() {
            format!("{path}?token={t}")
        } else {
            format!("{path}?{query}&token={t}")
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edge_checks_clients_and_signs_for_the_origin() {
        let auth = EdgeAuth::new(&[("paid".into(), "0123456789abcdef".into())]);
        assert_eq!(auth.check("/live/cam.m3u8", "", 0), Ok(()));
        assert_eq!(auth.check("/paid/cam/1.ts", "", 0), Ok(()));
        assert_eq!(
            auth.check("/paid/cam.m3u8", "", 0),
            Err(TokenError::Missing)
        );
        let upstream = auth.for_origin("/paid/cam.m3u8?v=1", 100);
        let (path, query) = upstream.split_once('?').unwrap();
        assert_eq!(auth.check(path, query, 150), Ok(()));
        assert_eq!(auth.check(path, query, 200), Err(TokenError::Expired(40)));
        assert_eq!(auth.for_origin("/live/cam.m3u8", 0), "/live/cam.m3u8");
    }
}
