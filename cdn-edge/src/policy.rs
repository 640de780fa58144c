//! How long an origin answer may be served from the cache, by status and content type.

use std::time::Duration;

use crate::config::Config;

/// Freshness of one origin answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Not stored; only the waiters of the fetch share it.
    Uncacheable,
    /// Fresh until evicted (segments never change).
    Immutable,
    /// Fresh for this long after it was fetched.
    For(Duration),
}

/// What a request asks for, as far as caching goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A playlist without `_HLS_msn`: it changes as the stream moves on.
    Playlist,
    /// An LL-HLS blocking playlist request (`_HLS_msn`): the origin holds it until the part
    /// exists, and its answer never changes for that URL.
    BlockingPlaylist,
    /// An LL-HLS part or segment (`.m4s`): the origin holds the request until it exists (a
    /// `503` when it does not come in time) or streams it while it fills; it never changes
    /// once complete.
    Part,
    /// Anything else: segments, init segments, keys.
    Media,
}

impl Kind {
    /// The origin may hold the request until what it names exists (blocking playlists and
    /// parts): one fetch attempt, the held timeout, the cap on held fetches and their counters.
    pub fn is_held(self) -> bool {
        matches!(self, Kind::BlockingPlaylist | Kind::Part)
    }
}

/// Fallback freshness of a playlist whose target duration is unknown.
const DEFAULT_PLAYLIST_FRESH: Duration = Duration::from_millis(500);

/// Freshness of a blocking playlist answer when the origin gives no `max-age`: it never
/// changes for its URL, and nobody asks for it once the live edge has moved a few parts on.
pub const BLOCKING_PLAYLIST_FRESH: Duration = Duration::from_secs(6);

/// Decides the freshness of an answer to a request of `kind`.
///
/// - `no-store`, `no-cache` or `private` from the origin: uncacheable.
/// - 404: the configured negative TTL (at most 500 ms); other non-200 statuses (a 503 for a
///   request held too long, a 400 for a directive too far ahead) are uncacheable: the same
///   URL gets a different answer moments later.
/// - playlists: the configured playlist freshness, else the origin's `max-age`, else half
///   the playlist's `#EXT-X-TARGETDURATION`.
/// - blocking playlists: the origin's `max-age`, else [`BLOCKING_PLAYLIST_FRESH`].
/// - anything else (segments, parts): the origin's `max-age` if given, else immutable.
pub fn freshness(
    config: &Config,
    kind: Kind,
    status: u16,
    cache_control: Option<&str>,
    body: &[u8],
) -> Freshness {
    let directives = cache_control.unwrap_or_default().to_ascii_lowercase();
    let has = |d: &str| directives.split(',').any(|x| x.trim() == d);
    if has("no-store") || has("no-cache") || has("private") {
        return Freshness::Uncacheable;
    }
    match status {
        200 => {}
        404 => return Freshness::For(config.negative_ttl()),
        _ => return Freshness::Uncacheable,
    }
    let max_age = directives
        .split(',')
        .filter_map(|x| x.trim().strip_prefix("max-age="))
        .find_map(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    match kind {
        Kind::Playlist => Freshness::For(
            config
                .playlist_fresh_ms
                .map(Duration::from_millis)
                .or(max_age)
                .or_else(|| target_duration(body).map(|t| t / 2))
                .unwrap_or(DEFAULT_PLAYLIST_FRESH),
        ),
        Kind::BlockingPlaylist => Freshness::For(max_age.unwrap_or(BLOCKING_PLAYLIST_FRESH)),
        Kind::Part | Kind::Media if has("immutable") => Freshness::Immutable,
        Kind::Part | Kind::Media => max_age.map_or(Freshness::Immutable, Freshness::For),
    }
}

fn target_duration(playlist: &[u8]) -> Option<Duration> {
    std::str::from_utf8(playlist)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &[u8] = b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\n0.ts\n";

    #[test]
    fn segments_are_immutable() {
        let c = Config::default();
        let f = freshness(
            &c,
            Kind::Media,
            200,
            Some("public, max-age=31536000, immutable"),
            b"",
        );
        assert_eq!(f, Freshness::Immutable);
        assert_eq!(
            freshness(&c, Kind::Media, 200, None, b""),
            Freshness::Immutable
        );
    }

    #[test]
    fn playlists_prefer_config_then_max_age_then_half_target() {
        let mut c = Config::default();
        assert_eq!(
            freshness(&c, Kind::Playlist, 200, None, PLAYLIST),
            Freshness::For(Duration::from_secs(2))
        );
        assert_eq!(
            freshness(&c, Kind::Playlist, 200, Some("max-age=1"), PLAYLIST),
            Freshness::For(Duration::from_secs(1))
        );
        c.playlist_fresh_ms = Some(300);
        assert_eq!(
            freshness(&c, Kind::Playlist, 200, Some("max-age=1"), PLAYLIST),
            Freshness::For(Duration::from_millis(300))
        );
    }

    #[test]
    fn blocking_playlists_use_max_age_else_a_few_seconds_never_the_playlist_setting() {
        let c = Config {
            playlist_fresh_ms: Some(300),
            ..Config::default()
        };
        assert_eq!(
            freshness(&c, Kind::BlockingPlaylist, 200, None, PLAYLIST),
            Freshness::For(BLOCKING_PLAYLIST_FRESH)
        );
        assert_eq!(
            freshness(
                &c,
                Kind::BlockingPlaylist,
                200,
                Some("max-age=12"),
                PLAYLIST
            ),
            Freshness::For(Duration::from_secs(12))
        );
        for status in [400, 503] {
            assert_eq!(
                freshness(&c, Kind::BlockingPlaylist, status, Some("max-age=12"), b""),
                Freshness::Uncacheable,
                "{status}"
            );
        }
    }

    #[test]
    fn origin_no_store_wins_and_errors_are_not_cached() {
        let c = Config::default();
        assert_eq!(
            freshness(&c, Kind::Media, 200, Some("No-Store"), b""),
            Freshness::Uncacheable
        );
        assert_eq!(
            freshness(&c, Kind::Media, 503, None, b""),
            Freshness::Uncacheable
        );
        assert_eq!(
            freshness(&c, Kind::Media, 404, None, b""),
            Freshness::For(Duration::from_millis(500))
        );
    }
}
