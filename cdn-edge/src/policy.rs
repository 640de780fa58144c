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

/// Fallback freshness of a playlist whose target duration is unknown.
const DEFAULT_PLAYLIST_FRESH: Duration = Duration::from_millis(500);

/// Decides the freshness of an answer for `path`.
///
/// - `no-store`, `no-cache` or `private` from the origin: uncacheable.
/// - 404: the configured negative TTL (at most 500 ms); other non-200 statuses: uncacheable.
/// - `.m3u8`: the configured playlist freshness, else the origin's `max-age`, else half
///   the playlist's `#EXT-X-TARGETDURATION`.
/// - anything else (segments): the origin's `max-age` if given, else immutable.
pub fn freshness(
    config: &Config,
    path: &str,
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
    if path.ends_with(".m3u8") {
        let fresh = config
            .playlist_fresh_ms
            .map(Duration::from_millis)
            .or(max_age)
            .or_else(|| target_duration(body).map(|t| t / 2))
            .unwrap_or(DEFAULT_PLAYLIST_FRESH);
        return Freshness::For(fresh);
    }
    if has("immutable") {
        return Freshness::Immutable;
    }
    max_age.map_or(Freshness::Immutable, Freshness::For)
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
            "/live/s/3.ts",
            200,
            Some("public, max-age=31536000, immutable"),
            b"",
        );
        assert_eq!(f, Freshness::Immutable);
        assert_eq!(
            freshness(&c, "/live/s/3.ts", 200, None, b""),
            Freshness::Immutable
        );
    }

    #[test]
    fn playlists_prefer_config_then_max_age_then_half_target() {
        let mut c = Config::default();
        assert_eq!(
            freshness(&c, "/live/s.m3u8", 200, None, PLAYLIST),
            Freshness::For(Duration::from_secs(2))
        );
        assert_eq!(
            freshness(&c, "/live/s.m3u8", 200, Some("max-age=1"), PLAYLIST),
            Freshness::For(Duration::from_secs(1))
        );
        c.playlist_fresh_ms = Some(300);
        assert_eq!(
            freshness(&c, "/live/s.m3u8", 200, Some("max-age=1"), PLAYLIST),
            Freshness::For(Duration::from_millis(300))
        );
    }

    #[test]
    fn origin_no_store_wins_and_errors_are_not_cached() {
        let c = Config::default();
        assert_eq!(
            freshness(&c, "/a.ts", 200, Some("No-Store"), b""),
            Freshness::Uncacheable
        );
        assert_eq!(
            freshness(&c, "/a.ts", 503, None, b""),
            Freshness::Uncacheable
        );
        assert_eq!(
            freshness(&c, "/a.ts", 404, None, b""),
            Freshness::For(Duration::from_millis(500))
        );
    }
}
