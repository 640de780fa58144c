//! The live media playlist: a sliding window of segments rendered with m3u8-rs.

use m3u8_rs::{MediaPlaylist, MediaSegment};
use std::collections::VecDeque;

/// HLS protocol version declared by the playlist.
const VERSION: usize = 3;

/// One segment to list.
#[derive(Debug, Clone)]
pub struct ListedSegment {
    /// Media sequence number.
    pub sequence: u64,
    /// Duration in seconds.
    pub duration: f64,
    /// URI, relative to the playlist.
    pub uri: String,
    /// The segment follows a discontinuity (`EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
    /// Wall clock of its first frame in unix milliseconds (`EXT-X-PROGRAM-DATE-TIME`).
    pub program_date_time_ms: u64,
}

/// A sliding-window live media playlist.
#[derive(Debug, Clone)]
pub struct Playlist {
    window: usize,
    target_duration: u64,
    entries: VecDeque<ListedSegment>,
    media_sequence: u64,
    discontinuity_sequence: u64,
    ended: bool,
}

impl Playlist {
    /// Creates an empty playlist listing at most `window` segments (at least one), with a
    /// target duration of at least `min_target_duration` seconds.
    pub fn new(window: usize, min_target_duration: u64) -> Self {
        Self {
            window: window.max(1),
            target_duration: min_target_duration,
            entries: VecDeque::new(),
            media_sequence: 0,
            discontinuity_sequence: 0,
            ended: false,
        }
    }

    /// Appends a segment and drops the oldest ones beyond the window. Dropping a segment marked
    /// as a discontinuity increments the discontinuity sequence.
    pub fn push(&mut self, entry: ListedSegment) {
        let rounded = entry.duration.max(0.0).round() as u64;
        self.target_duration = self.target_duration.max(rounded);
        self.entries.push_back(entry);
        while self.entries.len() > self.window {
            if let Some(dropped) = self.entries.pop_front() {
                if dropped.discontinuity {
                    self.discontinuity_sequence += 1;
                }
            }
        }
        if let Some(first) = self.entries.front() {
            self.media_sequence = first.sequence;
        }
    }

    /// `EXT-X-TARGETDURATION`: at least every listed duration rounded to the nearest second,
    /// and never decreasing.
    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    /// `EXT-X-MEDIA-SEQUENCE`: the sequence number of the first listed segment.
    pub fn media_sequence(&self) -> u64 {
        self.media_sequence
    }

    /// `EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities that slid out of the window.
    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// The listed segments as `(sequence, duration)`.
    pub fn segments(&self) -> Vec<(u64, f64)> {
        self.entries
            .iter()
            .map(|e| (e.sequence, e.duration))
            .collect()
    }

    /// Marks the stream as ended (`EXT-X-ENDLIST`) or live again.
    pub fn set_ended(&mut self, ended: bool) {
        self.ended = ended;
    }

    /// Renders the playlist text. Durations are rounded to milliseconds (m3u8-rs prints the
    /// shortest exact form, so a whole 2 s prints as `2`).
    pub fn render(&self) -> String {
        let playlist = MediaPlaylist {
            version: Some(VERSION),
            target_duration: self.target_duration,
            media_sequence: self.media_sequence,
            discontinuity_sequence: self.discontinuity_sequence,
            end_list: self.ended,
            segments: self
                .entries
                .iter()
                .map(|e| MediaSegment {
                    uri: e.uri.clone(),
                    duration: ((e.duration * 1000.0).round() / 1000.0) as f32,
                    discontinuity: e.discontinuity,
                    program_date_time: i64::try_from(e.program_date_time_ms)
                        .ok()
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .map(|t| t.fixed_offset()),
                    ..MediaSegment::default()
                })
                .collect(),
            ..MediaPlaylist::default()
        };
        let mut out = Vec::new();
        if playlist.write_to(&mut out).is_err() {
            return String::new();
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sequence: u64, duration: f64, discontinuity: bool) -> ListedSegment {
        ListedSegment {
            sequence,
            duration,
            uri: format!("{sequence}.ts"),
            discontinuity,
            program_date_time_ms: 1_714_564_800_000 + sequence * 2000,
        }
    }

    fn parse(text: &str) -> MediaPlaylist {
        m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap()
    }

    #[test]
    fn window_slides_and_sequences_advance() {
        let mut playlist = Playlist::new(3, 2);
        for seq in 0..5 {
            playlist.push(entry(seq, 2.002, seq == 1 || seq == 3));
        }
        assert_eq!(
            playlist.segments(),
            vec![(2, 2.002), (3, 2.002), (4, 2.002)]
        );
        assert_eq!(playlist.media_sequence(), 2);
        assert_eq!(playlist.discontinuity_sequence(), 1);
        let parsed = parse(&playlist.render());
        assert_eq!(parsed.version, Some(3));
        assert_eq!(parsed.media_sequence, 2);
        assert_eq!(parsed.discontinuity_sequence, 1);
        assert_eq!(parsed.target_duration, 2);
        assert!(!parsed.end_list);
        let uris: Vec<&str> = parsed.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, vec!["2.ts", "3.ts", "4.ts"]);
        assert_eq!(
            parsed
                .segments
                .iter()
                .map(|s| s.discontinuity)
                .collect::<Vec<_>>(),
            vec![false, true, false]
        );
        assert!(playlist
            .render()
            .contains("#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.000Z\n#EXTINF:2.002,\n2.ts\n"));
        let dated = parsed.segments.iter().map(|s| s.program_date_time);
        let ms: Vec<i64> = dated.flatten().map(|t| t.timestamp_millis()).collect();
        assert_eq!(
            ms,
            vec![1_714_564_804_000, 1_714_564_806_000, 1_714_564_808_000]
        );
    }

    #[test]
    fn target_duration_never_decreases() {
        let mut playlist = Playlist::new(2, 2);
        assert_eq!(playlist.target_duration(), 2);
        playlist.push(entry(0, 2.4, false));
        assert_eq!(playlist.target_duration(), 2);
        playlist.push(entry(1, 4.6, false));
        assert_eq!(playlist.target_duration(), 5);
        playlist.push(entry(2, 2.0, false));
        playlist.push(entry(3, 2.0, false));
        assert_eq!(playlist.target_duration(), 5);
        assert_eq!(parse(&playlist.render()).target_duration, 5);
    }

    #[test]
    fn ended_playlist_has_endlist() {
        let mut playlist = Playlist::new(5, 2);
        playlist.push(entry(0, 1.5, false));
        assert!(!playlist.render().contains("#EXT-X-ENDLIST"));
        playlist.set_ended(true);
        assert!(playlist.render().ends_with("#EXT-X-ENDLIST\n"));
        assert!(parse(&playlist.render()).end_list);
    }
}
