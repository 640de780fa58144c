//! Playlist text to the few facts a player needs, with URIs resolved against the playlist URL.

use std::time::Duration;

use m3u8_rs::Playlist;
use reqwest::Url;

/// One listed media segment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// Media sequence number.
    pub(crate) seq: u64,
    /// Absolute URL.
    pub(crate) url: String,
    /// `EXTINF` duration.
    pub(crate) duration: Duration,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub(crate) discontinuity: bool,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MediaList {
    /// `EXT-X-TARGETDURATION` (at least 100 ms, so polling never spins).
    pub(crate) target: Duration,
    /// Listed segments, oldest first.
    pub(crate) segments: Vec<Entry>,
    /// `EXT-X-ENDLIST` present.
    pub(crate) ended: bool,
}

/// What a playlist URL answered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
    /// A media playlist.
    Media(MediaList),
    /// A master playlist: the absolute URL of the variant to play (the first listed, as
    /// players start with).
    Master(String),
}

const MIN_TARGET: Duration = Duration::from_millis(100);

/// Parses a playlist fetched from `base`; the error says why the body is not HLS.
pub(crate) fn parse(base: &str, body: &[u8]) -> Result<Parsed, String> {
    let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if !text.trim_ascii_start().starts_with(b"#EXTM3U") {
        let shown: String = String::from_utf8_lossy(&text[..text.len().min(40)])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        return Err(format!(
            "does not start with #EXTM3U (starts with {shown:?})"
        ));
    }
    let base = Url::parse(base).map_err(|e| format!("bad playlist URL: {e}"))?;
    let resolve = |uri: &str| {
        base.join(uri)
            .map(String::from)
            .map_err(|e| format!("bad URI {uri:?}: {e}"))
    };
    match m3u8_rs::parse_playlist_res(text).map_err(|e| format!("unparsable playlist: {e:?}"))? {
        Playlist::MasterPlaylist(master) => {
            let variant = master
                .variants
                .iter()
                .find(|v| !v.is_i_frame)
                .ok_or("master playlist lists no variant")?;
            Ok(Parsed::Master(resolve(&variant.uri)?))
        }
        Playlist::MediaPlaylist(media) => {
            let segments = media
                .segments
                .iter()
                .zip(media.media_sequence..)
                .map(|(s, seq)| {
                    Ok(Entry {
                        seq,
                        url: resolve(&s.uri)?,
                        duration: Duration::from_secs_f64(f64::from(s.duration.max(0.0))),
                        discontinuity: s.discontinuity,
                    })
                })
                .collect::<Result<_, String>>()?;
            Ok(Parsed::Media(MediaList {
                target: Duration::from_secs(media.target_duration).max(MIN_TARGET),
                segments,
                ended: media.end_list,
            }))
        }
    }
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
        let err = parse(BASE, b"<html>\n<body>hello</body>").expect_err("not HLS");
        assert!(err.contains("#EXTM3U"), "{err}");
        assert!(err.contains("<html>"), "{err}");
        assert!(parse(BASE, b"").is_err());
    }
}
