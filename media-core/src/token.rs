//! Signed media URLs: a publisher or viewer proves, with `?token=`, that whoever holds an
//! app's secret let it publish or play one stream until a deadline.
//!
//! A token is `{expires}-{signature}`: `expires` in Unix seconds, and `signature` the
//! lowercase hex HMAC-SHA256, keyed by the app's secret, of `"{action}\n{app}/{stream}\n
//! {expires}"` with `action` `publish` or `play`. One play token covers the stream's
//! playlists, HTTP-FLV and RTMP play; a publish token only publishing.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Shortest app secret a server accepts.
pub const MIN_SECRET_LEN: usize = 16;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Publishing the stream.
    Publish,
    /// Playing the stream, in any protocol.
    Play,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

/// Why a token was refused; the text is what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `token` query parameter.
    #[error("a token is required (?token=)")]
    Missing,
    /// Not `{expires}-{hex signature}`.
    #[error("the token is malformed")]
    Malformed,
    /// The deadline has passed.
    #[error("the token expired {0} s ago")]
    Expired(u64),
    /// Signed for another stream or action, or with another secret.
    #[error("the token's signature does not match this stream")]
    BadSignature,
}

fn mac(secret: &[u8], action: Action, app: &str, stream: &str, expires: u64) -> Hmac<Sha256> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(format!("{}\n{app}/{stream}\n{expires}", action.as_str()).as_bytes());
    mac
}

/// A token for `action` on `app/stream`, valid until `expires` (Unix seconds).
pub fn sign(secret: &[u8], action: Action, app: &str, stream: &str, expires: u64) -> String {
    let signature = mac(secret, action, app, stream, expires)
        .finalize()
        .into_bytes();
    let hex: String = signature.iter().map(|b| format!("{b:02x}")).collect();
    format!("{expires}-{hex}")
}

/// Checks `token` for `action` on `app/stream` at `now` (Unix seconds), in constant time
/// over the signature.
pub fn verify(
    secret: &[u8],
    action: Action,
    app: &str,
    stream: &str,
    token: Option<&str>,
    now: u64,
) -> Result<(), TokenError> {
    let token = token.ok_or(TokenError::Missing)?;
    let (expires, hex) = token.split_once('-').ok_or(TokenError::Malformed)?;
    let expires: u64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    let signature = decode_hex(hex).ok_or(TokenError::Malformed)?;
    if now > expires {
        return Err(TokenError::Expired(now - expires));
    }
    mac(secret, action, app, stream, expires)
        .verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)
}

/// The value of the `token` parameter in a URL query (`a=1&token=...`), if any.
pub fn from_query(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

/// What one app needs tokens for, and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPolicy {
    /// The HMAC secret, shared by whoever signs and whoever checks.
    pub secret: String,
    /// Publishing needs a publish token.
    pub publish: bool,
    /// Playing needs a play token.
    pub play: bool,
}

/// Which apps need tokens for what; apps not listed need none. The origin checks publish and
/// play tokens with it, the edge play tokens, and the edge signs its own for the origin.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    apps: BTreeMap<String, AppPolicy>,
}

impl Policy {
    /// The policy of every app listed.
    pub fn new(apps: impl IntoIterator<Item = (String, AppPolicy)>) -> Self {
        Self {
            apps: apps.into_iter().collect(),
        }
    }

    fn secret(&self, action: Action, app: &str) -> Option<&str> {
        let policy = self.apps.get(app)?;
        let required = match action {
            Action::Publish => policy.publish,
            Action::Play => policy.play,
        };
        required.then_some(policy.secret.as_str())
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
        match self.secret(action, app) {
            Some(secret) => verify(
                secret.as_bytes(),
                action,
                app,
                stream,
                from_query(query),
                now,
            ),
            None => Ok(()),
        }
    }

    /// Checks the play token of a request for `path` (see [`play_target`]); paths that play
    /// nothing pass.
    pub fn check_play_path(&self, path: &str, query: &str, now: u64) -> Result<(), TokenError> {
        match play_target(path) {
            Some((app, stream)) => self.check(Action::Play, app, stream, query, now),
            None => Ok(()),
        }
    }

    /// `path_and_query` with a play token valid until `expires` appended when its app needs
    /// one: what an edge sends its origin.
    pub fn sign_play_path(&self, path_and_query: &str, expires: u64) -> String {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let target = play_target(path)
            .and_then(|(app, stream)| Some((app, stream, self.secret(Action::Play, app)?)));
        let Some((app, stream, secret)) = target else {
            return path_and_query.to_string();
        };
        let t = sign(secret.as_bytes(), Action::Play, app, stream, expires);
        if query.is_empty() {
            format!("{path}?token={t}")
        } else {
            format!("{path}?{query}&token={t}")
        }
    }
}

/// The `(app, stream)` a request path plays when it needs a play token: a media playlist
/// (`/{app}/{stream}.m3u8`), a master playlist (`/{app}/{stream}/master.m3u8`), an LL-HLS
/// media or master playlist (`/{app}/{stream}/ll.m3u8`, `ll-master.m3u8`) or an HTTP-FLV
/// stream (`/{app}/{stream}.flv`). Segments and parts are reached only through a playlist and
/// need none.
pub fn play_target(path: &str) -> Option<(&str, &str)> {
    let mut parts = path.trim_start_matches('/').split('/');
    let (app, second) = (parts.next()?, parts.next()?);
    let stream = match (parts.next(), parts.next()) {
        (Some("master.m3u8" | "ll.m3u8" | "ll-master.m3u8"), None) => second,
        (None, None) => second
            .strip_suffix(".m3u8")
            .or_else(|| second.strip_suffix(".flv"))?,
        _ => return None,
    };
    Some((app, stream))
}

/// Decodes 32 bytes of hex: exactly 64 hex digits, nothing else (no signs, no spaces).
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    hex.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => u8::try_from(digit(*high)? * 16 + digit(*low)?).ok(),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"app-secret";

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let token = sign(SECRET, Action::Play, "live", "cam", 1_000);
        let check =
            |token: Option<&str>, now| verify(SECRET, Action::Play, "live", "cam", token, now);
        assert_eq!(check(Some(&token), 999), Ok(()));
        assert_eq!(check(Some(&token), 1_000), Ok(()));
        assert_eq!(check(Some(&token), 1_030), Err(TokenError::Expired(30)));
        assert_eq!(check(None, 0), Err(TokenError::Missing));
        assert_eq!(check(Some("1000-zz"), 0), Err(TokenError::Malformed));
        assert_eq!(check(Some("soon-00"), 0), Err(TokenError::Malformed));
        assert_eq!(check(Some("1000-é"), 0), Err(TokenError::Malformed));
        assert_eq!(
            check(Some(&token.to_uppercase()), 999),
            Ok(()),
            "hex in either case"
        );
    }

    #[test]
    fn a_signed_digit_pair_is_not_hex() {
        // `from_str_radix` reads "+c" as 0x0c: a token whose signature has a byte below 0x10,
        // written with a sign instead of its leading zero, must not pass.
        let (token, at) = (1_000..)
            .map(|expires| sign(SECRET, Action::Play, "live", "cam", expires))
            .find_map(|t| {
                let hex_start = t.find('-')? + 1;
                let at = (hex_start..t.len())
                    .step_by(2)
                    .find(|&i| &t[i..=i] == "0")?;
                Some((t, at))
            })
            .unwrap();
        let signed = format!("{}+{}", &token[..at], &token[at + 1..]);
        let check = |token: &str| verify(SECRET, Action::Play, "live", "cam", Some(token), 0);
        assert_eq!(check(&token), Ok(()));
        assert_eq!(check(&signed), Err(TokenError::Malformed), "{signed}");
    }

    #[test]
    fn a_token_is_bound_to_its_stream_action_and_secret() {
        let token = sign(SECRET, Action::Play, "live", "cam", 1_000);
        let bad = Err(TokenError::BadSignature);
        assert_eq!(
            verify(SECRET, Action::Publish, "live", "cam", Some(&token), 0),
            bad
        );
        assert_eq!(
            verify(SECRET, Action::Play, "live", "cam2", Some(&token), 0),
            bad
        );
        assert_eq!(
            verify(b"other", Action::Play, "live", "cam", Some(&token), 0),
            bad
        );
        let later = token.replacen("1000", "2000", 1);
        assert_eq!(
            verify(SECRET, Action::Play, "live", "cam", Some(&later), 0),
            bad
        );
    }

    #[test]
    fn playlists_and_flv_need_tokens_segments_do_not() {
        assert_eq!(play_target("/live/cam.m3u8"), Some(("live", "cam")));
        assert_eq!(play_target("/live/cam.flv"), Some(("live", "cam")));
        assert_eq!(play_target("/live/cam/master.m3u8"), Some(("live", "cam")));
        assert_eq!(play_target("/live/cam/ll.m3u8"), Some(("live", "cam")));
        assert_eq!(
            play_target("/live/cam/ll-master.m3u8"),
            Some(("live", "cam"))
        );
        assert_eq!(play_target("/live/cam/ll-3.1.m4s"), None);
        assert_eq!(play_target("/live/cam/3.ts"), None);
        assert_eq!(play_target("/live/cam/a/master.m3u8"), None);
        assert_eq!(play_target("/metrics"), None);
    }

    #[test]
    fn only_listed_apps_and_actions_need_tokens() {
        let policy = Policy::new([(
            "paid".to_string(),
            AppPolicy {
                secret: "0123456789abcdef".into(),
                publish: true,
                play: false,
            },
        )]);
        assert_eq!(policy.check(Action::Publish, "live", "cam", "", 0), Ok(()));
        assert_eq!(policy.check(Action::Play, "paid", "cam", "", 0), Ok(()));
        assert_eq!(
            policy.check(Action::Publish, "paid", "cam", "", 0),
            Err(TokenError::Missing)
        );
        let t = sign(b"0123456789abcdef", Action::Publish, "paid", "cam", 100);
        let query = format!("x=1&token={t}");
        assert_eq!(
            policy.check(Action::Publish, "paid", "cam", &query, 50),
            Ok(())
        );
        assert_eq!(
            policy.check(Action::Publish, "paid", "cam", &query, 150),
            Err(TokenError::Expired(50))
        );
    }

    #[test]
    fn a_signed_path_passes_the_check_of_the_same_path() {
        let app = AppPolicy {
            secret: "0123456789abcdef".into(),
            publish: false,
            play: true,
        };
        let policy = Policy::new([("paid".to_string(), app)]);
        assert_eq!(policy.check_play_path("/paid/cam/1.ts", "", 0), Ok(()));
        assert_eq!(
            policy.check_play_path("/paid/cam.m3u8", "", 0),
            Err(TokenError::Missing)
        );
        let signed = policy.sign_play_path("/paid/cam.m3u8?v=1", 160);
        let (path, query) = signed.split_once('?').unwrap();
        assert_eq!(policy.check_play_path(path, query, 150), Ok(()));
        assert_eq!(
            policy.check_play_path(path, query, 200),
            Err(TokenError::Expired(40))
        );
        assert_eq!(policy.sign_play_path("/live/cam.m3u8", 0), "/live/cam.m3u8");
    }

    #[test]
    fn the_token_is_found_in_a_query() {
        assert_eq!(from_query("a=1&token=5-ab&b=2"), Some("5-ab"));
        assert_eq!(from_query("tokens=1"), None);
        assert_eq!(from_query(""), None);
    }
}
