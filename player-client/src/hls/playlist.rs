//! Playlist text to the few facts a player needs, with URIs resolved against the playlist URL.
//!
//! Numbers come from the server and are checked before use: durations must be finite, above
//! zero (segments) and at most [`MAX_DURATION`], and media sequence numbers must not run past
//! `u64::MAX`, so every timer and position computed from them stays in range.

use std::time::Duration;

use m3u8_rs::Playlist;
use reqwest::Url;

/// Longest target or segment duration accepted: no live playlist lists longer ones.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// One listed media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Media sequence number, below `u64::MAX`.
    pub seq: u64,
    /// Absolute URL.
    pub url: String,
    /// `EXTINF` duration, above zero and at most [`MAX_DURATION`].
    pub duration: Duration,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaList {
    /// `EXT-X-TARGETDURATION`, from 100 ms (so polling never spins) to [`MAX_DURATION`].
    pub target: Duration,
    /// Listed segments, oldest first.
    pub segments: Vec<Entry>,
    /// `EXT-X-ENDLIST` present.
    pub ended: bool,
}

/// What a playlist URL answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A media playlist.
    Media(MediaList),
    /// A master playlist: the absolute URL of the variant to play (the first listed, as
    /// players start with).
    Master(String),
}

/// Why a playlist body cannot be played.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejected {
    /// The body is not an HLS playlist at all.
    NotHls(String),
    /// An HLS playlist with a value no stream can have.
    Invalid(String),
}

const MIN_TARGET: Duration = Duration::from_millis(100);

/// Parses a playlist fetched from `base`.
pub fn parse(base: &str, body: &[u8]) -> Result<Parsed, Rejected> {
    let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if !text.trim_ascii_start().starts_with(b"#EXTM3U") {
        let shown: String = String::from_utf8_lossy(&text[..text.len().min(40)])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        return Err(Rejected::NotHls(format!(
            "does not start with #EXTM3U (starts with {shown:?})"
        )));
    }
    check_numbers(text).map_err(Rejected::Invalid)?;
    let base = Url::parse(base).map_err(|e| Rejected::NotHls(format!("bad playlist URL: {e}")))?;
    let resolve = |uri: &str| {
        base.join(uri)
            .map(String::from)
            .map_err(|e| Rejected::NotHls(format!("bad URI {uri:?}: {e}")))
    };
    let playlist = m3u8_rs::parse_playlist_res(text)
        .map_err(|e| Rejected::NotHls(format!("unparsable playlist: {e:?}")))?;
    match playlist {
        Playlist::MasterPlaylist(master) => {
            let variant = master
                .variants
                .iter()
                .find(|v| !v.is_i_frame)
                .ok_or_else(|| Rejected::NotHls("master playlist lists no variant".into()))?;
            Ok(Parsed::Master(resolve(&variant.uri)?))
        }
        Playlist::MediaPlaylist(media) => {
            let first = media.media_sequence;
            let end = u64::try_from(media.segments.len())
                .ok()
                .and_then(|count| first.checked_add(count))
                .ok_or_else(|| {
                    Rejected::Invalid(format!(
                        "EXT-X-MEDIA-SEQUENCE {first} with {} segment(s) leaves no sequence \
                         number for the next segment",
                        media.segments.len()
                    ))
                })?;
            let segments = media
                .segments
                .iter()
                .zip(first..end)
                .map(|(s, seq)| {
                    let duration = Duration::try_from_secs_f64(f64::from(s.duration))
                        .ok()
                        .filter(|d| !d.is_zero() && *d <= MAX_DURATION)
                        .ok_or_else(|| {
                            Rejected::Invalid(format!(
                                "segment {:?} has no EXTINF duration above 0 s",
                                s.uri
                            ))
                        })?;
                    Ok(Entry {
                        seq,
                        url: resolve(&s.uri)?,
                        duration,
                        discontinuity: s.discontinuity,
                    })
                })
                .collect::<Result<_, Rejected>>()?;
            Ok(Parsed::Media(MediaList {
                target: Duration::from_secs(media.target_duration).clamp(MIN_TARGET, MAX_DURATION),
                segments,
                ended: media.end_list,
            }))
        }
    }
}

/// Checks the numeric tags as written, before m3u8-rs reads them: it takes a malformed value
/// (`NaN`, `-1`, a number past `u64::MAX`) for an unknown tag or a comment and goes on without
/// it. `EXT-X-TARGETDURATION` and `EXT-X-MEDIA-SEQUENCE` must be decimal integers, the target
/// at most [`MAX_DURATION`]; `EXTINF` a decimal number above 0 and at most [`MAX_DURATION`].
fn check_numbers(text: &[u8]) -> Result<(), String> {
    let max = MAX_DURATION.as_secs();
    for line in text.split(|&b| b == b'\n').map(<[u8]>::trim_ascii) {
        if let Some(value) = line.strip_prefix(b"#EXT-X-TARGETDURATION:") {
            let secs = integer(value)
                .ok_or_else(|| not_a("EXT-X-TARGETDURATION", value, "whole number of seconds"))?;
            if secs > max {
                return Err(format!("EXT-X-TARGETDURATION {secs} s is over {max} s"));
            }
        } else if let Some(value) = line.strip_prefix(b"#EXT-X-MEDIA-SEQUENCE:") {
            integer(value)
                .ok_or_else(|| not_a("EXT-X-MEDIA-SEQUENCE", value, "whole number below 2^64"))?;
        } else if let Some(rest) = line.strip_prefix(b"#EXTINF:") {
            let value = rest
                .split(|&b| b == b',' || b.is_ascii_whitespace())
                .next()
                .unwrap_or_default();
            let secs = decimal(value)
                .ok_or_else(|| not_a("EXTINF", value, "decimal number of seconds"))?;
            if secs <= 0.0 || secs > max as f64 {
                return Err(format!(
                    "EXTINF {} s is not above 0 s and at most {max} s",
                    shown(value)
                ));
            }
        }
    }
    Ok(())
}

/// Why `value` of `tag` was refused.
fn not_a(tag: &str, value: &[u8], what: &str) -> String {
    format!("{tag} {:?} is not a {what}", shown(value))
}

/// A decimal integer (digits only, as RFC 8216 writes them) that fits a `u64`.
fn integer(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A decimal number: digits, optionally a point and more digits.
fn decimal(value: &[u8]) -> Option<f64> {
    let mut parts = value.splitn(2, |&b| b == b'.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next().unwrap_or_default();
    if whole.is_empty() || !whole.iter().chain(fraction).all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A tag value for an error message, cut to a readable length.
fn shown(value: &[u8]) -> String {
    String::from_utf8_lossy(&value[..value.len().min(60)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://h:8080/live/cam.m3u8?token=1";

    #[test]
    fn media_playlist_with_relative_uris_and_discontinuity() {
        let body = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
#EXTINF:2.000,\ncam/7.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.5,\n/other/8.ts\n";
        let Ok(Parsed::Media(list)) = parse(BASE, body) else {
            panic!("not a media playlist");
        };
        assert_eq!(list.target, Duration::from_secs(2));
        assert!(!list.ended);
        assert_eq!(
            list.segments,
            vec![
                Entry {
                    seq: 7,
                    url: "http://h:8080/live/cam/7.ts".into(),
                    duration: Duration::from_secs(2),
                    discontinuity: false
                },
                Entry {
                    seq: 8,
                    url: "http://h:8080/other/8.ts".into(),
                    duration: Duration::from_millis(1500),
                    discontinuity: true
                },
            ]
        );
    }

    #[test]
    fn master_playlist_picks_the_first_variant() {
        let body = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=3000000\nhigh/index.m3u8\n";
        assert_eq!(
            parse(BASE, body),
            Ok(Parsed::Master("http://h:8080/live/low/index.m3u8".into()))
        );
    }

    #[test]
    fn ended_playlist_and_bom() {
        let body =
            b"\xEF\xBB\xBF#EXTM3U\n#EXT-X-TARGETDURATION:0\n#EXTINF:1,\na.ts\n#EXT-X-ENDLIST\n";
        let Ok(Parsed::Media(list)) = parse(BASE, body) else {
            panic!("not a media playlist");
        };
        assert!(list.ended);
        assert_eq!(list.target, MIN_TARGET);
    }

    #[test]
    fn text_that_is_not_hls_is_rejected_with_a_reason() {
        let Err(Rejected::NotHls(err)) = parse(BASE, b"<html>\n<body>hello</body>") else {
            panic!("not rejected as not HLS");
        };
        assert!(err.contains("#EXTM3U"), "{err}");
        assert!(err.contains("<html>"), "{err}");
        assert!(parse(BASE, b"").is_err());
    }

    /// The reason a playlist with `tags` before one segment `a.ts` is invalid.
    fn invalid(tags: &str) -> String {
        let body = format!("#EXTM3U\n{tags}\na.ts\n");
        match parse(BASE, body.as_bytes()) {
            Err(Rejected::Invalid(reason)) => reason,
            other => panic!("{tags:?} accepted: {other:?}"),
        }
    }

    #[test]
    fn durations_that_are_not_finite_positive_and_at_most_an_hour_are_invalid() {
        let huge = "#EXT-X-TARGETDURATION:2\n\
#EXTINF:999999999999999999999999999999999999999999999999,";
        assert!(invalid(huge).contains("EXTINF 999999"), "{}", invalid(huge));
        for extinf in ["0", "3600.5", "1e3", "-1", "NaN", "inf", ""] {
            let reason = invalid(&format!("#EXT-X-TARGETDURATION:2\n#EXTINF:{extinf},"));
            assert!(reason.contains("EXTINF"), "{extinf}: {reason}");
        }
        for target in ["NaN", "-1", "2.5", "3601", "18446744073709551616", ""] {
            let reason = invalid(&format!("#EXT-X-TARGETDURATION:{target}\n#EXTINF:1,"));
            assert!(
                reason.contains("EXT-X-TARGETDURATION"),
                "{target}: {reason}"
            );
        }
        // A segment without EXTINF lasts nothing.
        assert!(invalid("#EXT-X-TARGETDURATION:2").contains("\"a.ts\""));
        let body =
            b"#EXTM3U\n#EXT-X-TARGETDURATION:3600\n#EXTINF:3600,\na.ts\n#EXTINF:0.5 x,\nb.ts\n";
        let Ok(Parsed::Media(list)) = parse(BASE, body) else {
            panic!("an hour is the longest duration accepted");
        };
        assert_eq!(list.target, MAX_DURATION);
        assert_eq!(list.segments[0].duration, MAX_DURATION);
        assert_eq!(list.segments[1].duration, Duration::from_millis(500));
    }

    #[test]
    fn media_sequence_numbers_stay_below_the_largest_u64() {
        let last = u64::MAX - 2;
        let body =
            format!("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:{last}\n#EXTINF:1,\na.ts\n#EXTINF:1,\nb.ts\n");
        let Ok(Parsed::Media(list)) = parse(BASE, body.as_bytes()) else {
            panic!("the last segment is numbered u64::MAX - 1");
        };
        let seqs: Vec<u64> = list.segments.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [last, last + 1]);
        let tags = format!(
            "#EXT-X-MEDIA-SEQUENCE:{}\n#EXTINF:1,\nz.ts\n#EXTINF:1,",
            u64::MAX - 1
        );
        assert!(
            invalid(&tags).contains("no sequence number"),
            "{}",
            invalid(&tags)
        );
        for sequence in ["-1", "18446744073709551616", "x"] {
            let reason = invalid(&format!("#EXT-X-MEDIA-SEQUENCE:{sequence}\n#EXTINF:1,"));
            assert!(
                reason.contains("EXT-X-MEDIA-SEQUENCE"),
                "{sequence}: {reason}"
            );
        }
    }
}
