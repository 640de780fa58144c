//! Reading LL-HLS media playlists (draft-pantos-hls-rfc8216bis-16) into a [`Playlist`]:
//! segments with their parts, the segment being written, the preload hint and the server's
//! control values.
//!
//! [`parse`] knows only the tags the packager writes and refuses anything else (the spec
//! checker's view); [`parse_lenient`] ignores tags and comments it does not know, as a client
//! must. Both refuse a malformed value of a tag they read. Numbers are checked and arithmetic
//! saturates, so any text parses or fails without panicking; its size is the caller's bound.

/// One `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistPart {
    /// `DURATION` in microseconds.
    pub duration_us: u64,
    /// `URI`.
    pub uri: String,
    /// `INDEPENDENT=YES`.
    pub independent: bool,
}

/// One segment as listed; the segment being written has no URI and the sum of its parts as
/// duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistSegment {
    /// Media Sequence Number, counted from `EXT-X-MEDIA-SEQUENCE` and `EXT-X-SKIP`.
    pub msn: u64,
    /// `EXTINF` in microseconds.
    pub duration_us: u64,
    /// The URI line; empty for the segment being written.
    pub uri: String,
    /// Its `EXT-X-PART` lines.
    pub parts: Vec<PlaylistPart>,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// The `EXT-X-MAP` URI in effect.
    pub map: Option<String>,
    /// `EXT-X-PROGRAM-DATE-TIME` in unix milliseconds.
    pub program_date_time_ms: Option<u64>,
}

/// A parsed media playlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Playlist {
    /// `EXT-X-VERSION`.
    pub version: u64,
    /// `EXT-X-TARGETDURATION` in seconds.
    pub target_duration: u64,
    /// `CAN-BLOCK-RELOAD=YES`.
    pub can_block_reload: bool,
    /// `PART-HOLD-BACK` in microseconds.
    pub part_hold_back_us: Option<u64>,
    /// `HOLD-BACK` in microseconds.
    pub hold_back_us: Option<u64>,
    /// `CAN-SKIP-UNTIL` in microseconds.
    pub can_skip_until_us: Option<u64>,
    /// `PART-TARGET` in microseconds.
    pub part_target_us: Option<u64>,
    /// `EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`.
    pub discontinuity_sequence: u64,
    /// `EXT-X-SKIP:SKIPPED-SEGMENTS`.
    pub skipped: u64,
    /// Complete segments listed.
    pub segments: Vec<PlaylistSegment>,
    /// The segment being written, when it has parts.
    pub open: Option<PlaylistSegment>,
    /// `EXT-X-PRELOAD-HINT` URI.
    pub preload_hint: Option<String>,
    /// `EXT-X-RENDITION-REPORT` attribute lists.
    pub rendition_reports: Vec<String>,
    /// `EXT-X-ENDLIST`: no segment will be added.
    pub ended: bool,
}

impl Playlist {
    /// The Media Sequence Number of the segment the next part belongs to, if it continues the
    /// open one.
    pub fn open_msn(&self) -> u64 {
        self.media_sequence
            .saturating_add(self.skipped)
            .saturating_add(self.segments.len() as u64)
    }

    /// Time from the end of each complete segment to the end of the playlist, in µs.
    pub fn ages_us(&self) -> Vec<u64> {
        let mut after = self.open.as_ref().map_or(0, |o| o.duration_us);
        let mut ages = vec![0; self.segments.len()];
        for (age, segment) in ages.iter_mut().zip(&self.segments).rev() {
            *age = after;
            after = after.saturating_add(segment.duration_us);
        }
        ages
    }
}

/// Parses a media playlist with the tags the packager writes (and `EXT-X-ENDLIST`); anything
/// else is an error.
pub fn parse(text: &str) -> Result<Playlist, String> {
    parse_with(text, Mode::Strict)
}

/// Parses a media playlist as a client reads it: a byte order mark, comments, unknown tags and
/// preload hints of other types than `PART` are skipped, and an unreadable
/// `EXT-X-PROGRAM-DATE-TIME` leaves the date unknown.
pub fn parse_lenient(text: &str) -> Result<Playlist, String> {
    parse_with(text.strip_prefix('\u{feff}').unwrap_or(text), Mode::Lenient)
}

/// What to do with lines the packager never writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Lenient,
}

fn parse_with(text: &str, mode: Mode) -> Result<Playlist, String> {
    let strict = mode == Mode::Strict;
    let mut lines = text.lines();
    if lines.next().map(|l| if strict { l } else { l.trim_end() }) != Some("#EXTM3U") {
        return Err("no #EXTM3U".into());
    }
    let mut p = Playlist::default();
    let mut pending = PlaylistSegment {
        msn: 0,
        duration_us: 0,
        uri: String::new(),
        parts: Vec::new(),
        discontinuity: false,
        map: None,
        program_date_time_ms: None,
    };
    let mut map: Option<String> = None;
    let mut extinf: Option<u64> = None;
    let lines = lines.map(|l| if strict { l } else { l.trim() });
    for line in lines.filter(|l| !l.is_empty()) {
        let Some(tag) = line.strip_prefix('#') else {
            let duration_us = extinf.take().ok_or("URI without EXTINF")?;
            let next = PlaylistSegment {
                duration_us,
                uri: line.to_owned(),
                map: map.clone(),
                ..pending.clone()
            };
            p.segments.push(next);
            pending.parts.clear();
            pending.discontinuity = false;
            pending.program_date_time_ms = None;
            continue;
        };
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        match name {
            "EXT-X-VERSION" => p.version = number(value)?,
            "EXT-X-TARGETDURATION" => p.target_duration = number(value)?,
            "EXT-X-MEDIA-SEQUENCE" => p.media_sequence = number(value)?,
            "EXT-X-DISCONTINUITY-SEQUENCE" => p.discontinuity_sequence = number(value)?,
            "EXT-X-SERVER-CONTROL" => {
                let attrs = attributes(value)?;
                p.can_block_reload = find(&attrs, "CAN-BLOCK-RELOAD") == Some("YES");
                p.part_hold_back_us = find(&attrs, "PART-HOLD-BACK").map(micros).transpose()?;
                p.hold_back_us = find(&attrs, "HOLD-BACK").map(micros).transpose()?;
                p.can_skip_until_us = find(&attrs, "CAN-SKIP-UNTIL").map(micros).transpose()?;
            }
            "EXT-X-PART-INF" => {
                let attrs = attributes(value)?;
                p.part_target_us = find(&attrs, "PART-TARGET").map(micros).transpose()?;
            }
            "EXT-X-SKIP" => {
                let attrs = attributes(value)?;
                p.skipped = number(find(&attrs, "SKIPPED-SEGMENTS").unwrap_or(""))?;
            }
            "EXT-X-DISCONTINUITY" => pending.discontinuity = true,
            "EXT-X-MAP" => map = find(&attributes(value)?, "URI").map(str::to_owned),
            "EXT-X-PROGRAM-DATE-TIME" => {
                pending.program_date_time_ms = match date_time(value, strict) {
                    Ok(ms) => Some(ms),
                    Err(e) if strict => return Err(e),
                    Err(_) => None,
                };
            }
            "EXT-X-PART" => {
                let attrs = attributes(value)?;
                pending.parts.push(PlaylistPart {
                    duration_us: micros(find(&attrs, "DURATION").unwrap_or(""))?,
                    uri: find(&attrs, "URI").ok_or("part without URI")?.to_owned(),
                    independent: find(&attrs, "INDEPENDENT") == Some("YES"),
                });
            }
            "EXTINF" => {
                let duration = value.split(',').next().unwrap_or("");
                extinf = Some(micros(duration)?);
            }
            "EXT-X-PRELOAD-HINT" => {
                let attrs = attributes(value)?;
                match find(&attrs, "TYPE") {
                    Some("PART") => p.preload_hint = find(&attrs, "URI").map(str::to_owned),
                    _ if strict => return Err(format!("preload hint {value}")),
                    _ => {}
                }
            }
            "EXT-X-RENDITION-REPORT" => p.rendition_reports.push(value.to_owned()),
            "EXT-X-ENDLIST" => p.ended = true,
            _ if strict => return Err(format!("unexpected line {line}")),
            _ => {}
        }
    }
    if extinf.is_some() {
        return Err("EXTINF without URI".into());
    }
    let first = p.media_sequence.saturating_add(p.skipped);
    for (i, segment) in p.segments.iter_mut().enumerate() {
        segment.msn = first.saturating_add(i as u64);
    }
    if !pending.parts.is_empty() {
        p.open = Some(PlaylistSegment {
            msn: p.open_msn(),
            duration_us: pending
                .parts
                .iter()
                .fold(0u64, |sum, part| sum.saturating_add(part.duration_us)),
            map,
            ..pending
        });
    }
    Ok(p)
}

/// An attribute list: `KEY=value` or `KEY="quoted, value"`, comma separated.
fn attributes(list: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut found = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or(format!("bad attributes {list}"))?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let (value, after) = quoted.split_once('"').ok_or("unterminated quote")?;
                (value, after)
            }
            None => after.split_at(after.find(',').unwrap_or(after.len())),
        };
        found.push((key, value));
        rest = match after.strip_prefix(',') {
            Some(next) => next,
            None if after.is_empty() => after,
            None => return Err(format!("bad attributes {list}")),
        };
    }
    Ok(found)
}

fn find<'a>(attrs: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn number(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

/// Decimal seconds with at most six decimals, in microseconds.
fn micros(text: &str) -> Result<u64, String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad duration {text:?}"));
    }
    let scale = 10u64.pow(6 - fraction.len() as u32);
    let fraction = if fraction.is_empty() {
        0
    } else {
        number(fraction)?
    };
    number(whole)?
        .checked_mul(1_000_000)
        .and_then(|us| us.checked_add(fraction * scale))
        .ok_or(format!("duration too large {text:?}"))
}

/// An RFC 3339 date in unix milliseconds; strictly, only `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn date_time(text: &str, strict: bool) -> Result<u64, String> {
    let bad = || format!("bad date {text:?}");
    // What the packager writes: UTC with milliseconds, `2024-05-01T12:00:00.123Z`.
    if strict && !(text.len() == 24 && text.ends_with('Z')) {
        return Err(bad());
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=1.002,HOLD-BACK=6.0\n\
#EXT-X-PART-INF:PART-TARGET=0.334\n#EXT-X-MEDIA-SEQUENCE:7\n\
#EXT-X-MAP:URI=\"init0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z\n\
#EXT-X-PART:DURATION=0.334,URI=\"7.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.3,URI=\"7.1.m4s\"\n\
#EXTINF:0.634,\n7.m4s\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.634Z\n\
#EXT-X-PART:DURATION=0.334,URI=\"8.0.m4s\",INDEPENDENT=YES\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"8.1.m4s\"\n";

    #[test]
    fn the_packager_s_tags_read_the_same_strict_and_lenient() {
        let p = parse(PLAYLIST).expect("strict");
        assert_eq!(parse_lenient(PLAYLIST), Ok(p.clone()));
        assert_eq!((p.segments.len(), p.open_msn()), (1, 8));
        assert_eq!(p.segments[0].parts[1].duration_us, 300_000);
        let open = p.open.expect("an open segment");
        assert_eq!((open.msn, open.parts.len()), (8, 1));
        assert_eq!(p.preload_hint.as_deref(), Some("8.1.m4s"));
        assert_eq!(p.part_hold_back_us, Some(1_002_000));
        assert!(p.can_block_reload && !p.ended);
    }

    #[test]
    fn lenient_reading_skips_what_a_client_does_not_know() {
        let text = format!(
            "\u{feff}#EXTM3U \r\n# a comment\r\n#EXT-X-INDEPENDENT-SEGMENTS\r\n\
             #EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"init1.mp4\"\r\n{}#EXT-X-ENDLIST\n",
            PLAYLIST
                .trim_start_matches("#EXTM3U\n")
                .replace("2024-05-01T12:00:00.634Z", "2024-05-01T12:00:00.634+00:00")
        );
        for strict in [parse(&text), parse(&text.replace('\u{feff}', ""))] {
            assert!(strict.is_err(), "{strict:?}");
        }
        let p = parse_lenient(&text).expect("lenient");
        assert!(p.ended);
        assert_eq!(p.segments[0].uri, "7.m4s");
        let open = p.open.expect("open");
        assert_eq!(
            open.program_date_time_ms,
            Some(1_714_564_800_634),
            "any RFC 3339 offset"
        );
        assert_eq!(p.preload_hint.as_deref(), Some("8.1.m4s"));
        // A value of a tag the reader uses must still be well formed.
        for bad in [
            "DURATION=abc",
            "DURATION=1.0000001",
            "DURATION=99999999999999999999",
        ] {
            let text = PLAYLIST.replace("DURATION=0.3,", &format!("{bad},"));
            assert!(parse_lenient(&text).is_err(), "{bad}");
        }
        assert!(parse_lenient("<html>").is_err());
    }

    #[test]
    fn huge_values_saturate_instead_of_overflowing() {
        let part = "#EXT-X-PART:DURATION=18446744073709.551615,URI=\"x.m4s\"\n";
        let text = format!(
            "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXT-X-SKIP:SKIPPED-SEGMENTS=9\n{part}{part}"
        );
        let p = parse_lenient(&text).expect("parses");
        let open = p.open.expect("open");
        assert_eq!((open.msn, open.duration_us), (u64::MAX, u64::MAX));
    }
}
