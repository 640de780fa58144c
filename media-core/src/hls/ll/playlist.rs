//! Rendering the LL-HLS media playlist, full or as a delta update.
//!
//! Layout (draft-pantos-hls-rfc8216bis-16): the header tags (`EXT-X-VERSION`,
//! `EXT-X-TARGETDURATION`, `EXT-X-SERVER-CONTROL`, `EXT-X-PART-INF`, `EXT-X-MEDIA-SEQUENCE`,
//! `EXT-X-DISCONTINUITY-SEQUENCE` when not 0, `EXT-X-SKIP` in a delta update), then per segment
//! `EXT-X-DISCONTINUITY`, `EXT-X-MAP` where the init segment changes, `EXT-X-PROGRAM-DATE-TIME`,
//! its `EXT-X-PART` lines when it ends less than three target durations from the end of the
//! playlist (section 4.4.4.9), `EXTINF` and its URI; then the parts of the segment being
//! written, `EXT-X-PRELOAD-HINT` for the next part, and `EXT-X-RENDITION-REPORT` lines.
//! Durations are exact decimal microseconds.

use super::packager::{Part, Segment};
use super::request::Skip;
use super::{LlHlsConfig, PartId, VERSION};
use std::collections::VecDeque;
use std::fmt::Write;

/// `EXT-X-RENDITION-REPORT` of another rendition of the same content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// The other rendition's media playlist URI, relative to this playlist.
    pub uri: String,
    /// Media Sequence Number of its last segment (the one holding its last part).
    pub last_msn: u64,
    /// Index of its last part, if it has parts.
    pub last_part: Option<u64>,
}

/// The segment being written, when it has parts.
pub(super) struct OpenView<'a> {
    pub(super) pdt_ms: u64,
    pub(super) discontinuity: bool,
    pub(super) init_id: u64,
    pub(super) parts: &'a [Part],
}

/// What a playlist shows.
pub(super) struct View<'a> {
    pub(super) config: &'a LlHlsConfig,
    pub(super) segments: &'a VecDeque<Segment>,
    pub(super) open: Option<OpenView<'a>>,
    pub(super) discontinuity_sequence: u64,
    pub(super) hint: PartId,
}

/// Renders the playlist; see the module notes.
pub(super) fn render(view: &View<'_>, skip: Skip, reports: &[RenditionReport]) -> String {
    let config = view.config;
    let uris = &config.uris;
    let target_us = config.target_duration_us();
    let part_target_us = config.part_target_us();
    let can_skip_until_us = target_us.saturating_mul(6);
    let open_us: u64 = view
        .open
        .as_ref()
        .map_or(0, |o| o.parts.iter().map(|p| p.duration_us).sum());
    // Time from the end of each segment to the end of the playlist.
    let mut after_us = open_us;
    let mut ages = vec![0; view.segments.len()];
    for (age, segment) in ages.iter_mut().zip(view.segments).rev() {
        *age = after_us;
        after_us = after_us.saturating_add(segment.duration_us);
    }
    let skipped = match skip {
        Skip::No => 0,
        Skip::Yes | Skip::V2 => ages.iter().take_while(|&&a| a >= can_skip_until_us).count(),
    };

    let mut out = String::with_capacity(256 + 160 * view.segments.len());
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-TARGETDURATION:{}\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={},PART-HOLD-BACK={},\
         HOLD-BACK={}\n#EXT-X-PART-INF:PART-TARGET={}\n",
        config.target_duration,
        seconds(can_skip_until_us),
        seconds(part_target_us.saturating_mul(3)),
        seconds(target_us.saturating_mul(3)),
        seconds(part_target_us),
    );
    let first_msn = view
        .segments
        .front()
        .map_or(view.hint.msn, |segment| segment.msn);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
    if view.discontinuity_sequence > 0 {
        let sequence = view.discontinuity_sequence;
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{sequence}");
    }
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    let mut map = None;
    let mut header = |out: &mut String, discontinuity: bool, init_id: u64, pdt_ms: u64| {
        if discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if map != Some(init_id) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", uris.init(init_id));
            map = Some(init_id);
        }
        let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", date_time(pdt_ms));
    };
    let listed = view.segments.iter().zip(&ages).skip(skipped);
    for (segment, &age) in listed {
        header(
            &mut out,
            segment.discontinuity,
            segment.init_id,
            segment.program_date_time_ms,
        );
        if age < target_us.saturating_mul(3) {
            write_parts(&mut out, view.config, &segment.parts);
        }
        let _ = write!(
            out,
            "#EXTINF:{},\n{}\n",
            seconds(segment.duration_us),
            uris.segment(segment.msn)
        );
    }
    if let Some(open) = &view.open {
        header(&mut out, open.discontinuity, open.init_id, open.pdt_ms);
        write_parts(&mut out, view.config, open.parts);
    }
    let _ = writeln!(
        out,
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
        uris.part(view.hint)
    );
    for report in reports {
        let _ = write!(
            out,
            "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}",
            report.uri, report.last_msn
        );
        if let Some(part) = report.last_part {
            let _ = write!(out, ",LAST-PART={part}");
        }
        out.push('\n');
    }
    out
}

/// One `EXT-X-PART` line per part.
fn write_parts(out: &mut String, config: &LlHlsConfig, parts: &[Part]) {
    for part in parts {
        let _ = write!(
            out,
            "#EXT-X-PART:DURATION={},URI=\"{}\"",
            seconds(part.duration_us),
            config.uris.part(part.id())
        );
        if part.independent {
            out.push_str(",INDEPENDENT=YES");
        }
        out.push('\n');
    }
}

/// Microseconds as decimal seconds, exact, with at least three decimals: `2.000`, `0.334`,
/// `0.325079`.
pub(super) fn seconds(us: u64) -> String {
    let mut text = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
    while text.ends_with('0') && text.len() - text.find('.').unwrap_or(0) > 4 {
        text.pop();
    }
    text
}

/// Unix milliseconds as ISO 8601 UTC with milliseconds: `2024-05-01T12:00:00.123Z`.
pub(super) fn date_time(unix_ms: u64) -> String {
    i64::try_from(unix_ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
