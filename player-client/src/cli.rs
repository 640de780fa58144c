//! The `play` command: play a URL, show a live line per second on a terminal, and print a
//! summary (human text on stderr, or JSON on stdout).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{play, PlayOptions, Progress, Protocol, Summary};

/// Arguments of `play`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlayArgs {
    /// What to play: rtmp://host/app/stream, http(s)://host/app/stream.m3u8 or .flv, or an
    /// LL-HLS playlist such as http(s)://host/app/stream/ll.m3u8.
    pub url: String,
    /// Stop after this long (e.g. 30s, 2m, 1m30s, 500ms); without it, play until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Print the summary as JSON on stdout instead of text on stderr.
    #[arg(long)]
    pub json: bool,
    /// Media to buffer before playback starts (0: start on the first keyframe or segment).
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    pub startup_buffer: Duration,
    /// Media to buffer before playback resumes after a stall.
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    pub rebuffer: Duration,
    /// Give up after the source has been unreachable this long.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub give_up_after: Duration,
}

/// Parses `500ms`, `30s`, `2m`, `1h` and sums like `1m30s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?}: missing unit (ms, s, m or h)"))?;
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?}: bad number {number:?}"))?;
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m or h)")),
        };
        total = Duration::try_from_secs_f64(value * scale)
            .ok()
            .and_then(|d| total.checked_add(d))
            .ok_or_else(|| format!("{text:?}: too long"))?;
        rest = tail;
    }
    if text.is_empty() {
        return Err("empty duration".to_string());
    }
    Ok(total)
}

/// Runs `play`: Ctrl-C or `--duration` ends it; a failed session, or one whose playback never
/// started, prints its summary and returns an error (so the command exits non-zero).
pub async fn run(args: PlayArgs) -> anyhow::Result<()> {
    let options = PlayOptions {
        duration: args.duration,
        startup_buffer: args.startup_buffer,
        rebuffer: args.rebuffer,
        give_up_after: args.give_up_after,
        ..PlayOptions::default()
    };
    let stop = CancellationToken::new();
    let on_ctrl_c = stop.clone();
    let signal = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    let tty = std::io::stderr().is_terminal();
    let mut live = |p: &Progress| {
        if tty {
            eprint!("\r\x1b[K{}", progress_line(p));
        }
    };
    let result = play(&args.url, &options, &stop, &mut live).await;
    signal.abort();
    if tty {
        eprintln!();
    }
    let (summary, error) = match result {
        Ok(summary) => (summary, None),
        Err(e) => (*e.summary, Some(e.kind)),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if error.is_none() || summary.bytes > 0 {
        eprint!("{}", human(&summary));
    }
    match error {
        Some(kind) => Err(kind.into()),
        None if summary.startup_ms.is_none() => Err(anyhow::anyhow!(
            "playback never started ({} bytes received)",
            summary.bytes
        )),
        None => Ok(()),
    }
}

/// The live line: state, buffer, bitrate and latency (marked while joining the live edge).
pub fn progress_line(p: &Progress) -> String {
    let latency = match (p.latency_ms, p.live_latency_ms) {
        (None, _) => "-".to_string(),
        (Some(ms), Some(_)) => format!("{ms:.0} ms"),
        (Some(ms), None) => format!("{ms:.0} ms (joining)"),
    };
    format!(
        "{:>6.1}s  {:<8} buffer {:>5} ms  {:>7.0} kbit/s  latency {latency}  stalls {}  reconnects {}",
        p.elapsed_secs,
        format!("{:?}", p.state).to_lowercase(),
        p.buffer_ms,
        p.bitrate_kbps,
        p.stalls,
        p.reconnects,
    )
}

/// The summary as text for people.
pub fn human(s: &Summary) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0} ms"));
    let mut out = String::new();
    let protocol = s.protocol.map_or("unknown protocol", |p| match p {
        Protocol::Hls => "HLS",
        Protocol::LlHls => "LL-HLS",
        Protocol::HttpFlv => "HTTP-FLV",
        Protocol::Rtmp => "RTMP",
    });
    let _ = writeln!(out, "played   {} ({protocol})", s.url);
    let _ = writeln!(
        out,
        "startup  {}   played {:.1} s of {:.1} s",
        ms(s.startup_ms),
        s.played_secs,
        s.elapsed_secs
    );
    let _ = writeln!(
        out,
        "stalls   {} ({:.0} ms, {:.2}/min)   reconnects {}",
        s.stalls, s.stall_ms, s.stalls_per_minute, s.reconnects
    );
    let _ = writeln!(
        out,
        "received {} bytes ({:.0} kbit/s), {} video + {} audio frames, first video keyframe: {}",
        s.bytes,
        s.bitrate_kbps,
        s.video_frames,
        s.audio_frames,
        s.first_video_keyframe
            .map_or("-", |k| if k { "yes" } else { "no" })
    );
    let _ = writeln!(
        out,
        "latency  p50 {}  p99 {}  max {}  ({} stamped frames)",
        ms(s.latency.p50_ms),
        ms(s.latency.p99_ms),
        ms(s.latency.max_ms),
        s.latency.samples
    );
    let _ = writeln!(
        out,
        "live     p50 {}  p99 {}  max {}  ({} stamped frames after catching up)",
        ms(s.live_latency.p50_ms),
        ms(s.live_latency.p99_ms),
        ms(s.live_latency.max_ms),
        s.live_latency.samples
    );
    match s.joins.as_slice() {
        [] if s.latency.samples > 0 => {
            let _ = writeln!(out, "join     never caught up with the live edge");
        }
        [] => {}
        [first, rest @ ..] => {
            let frames: u64 = s.joins.iter().map(|j| j.burst_frames).sum();
            let more = if rest.is_empty() {
                String::new()
            } else {
                let slowest = s.joins.iter().map(|j| j.catch_up_ms).fold(0.0, f64::max);
                format!(
                    " ({} joins, {frames} frames in all, slowest {slowest:.0} ms)",
                    s.joins.len()
                )
            };
            let _ = writeln!(
                out,
                "join     {} frames before catching up with the live edge, in {:.0} ms{more}",
                first.burst_frames, first.catch_up_ms
            );
        }
    }
    let _ = writeln!(
        out,
        "checks   DTS backwards video {} audio {}, discontinuities {}",
        s.dts_backwards.video, s.dts_backwards.audio, s.discontinuities
    );
    if let Some(r) = &s.llhls {
        let _ = writeln!(
            out,
            "requests {} playlists ({} blocking), {} parts ({} preload hints), {} init segments",
            r.playlists, r.blocking_playlists, r.parts, r.hinted_parts, r.inits
        );
    }
    if !s.errors.is_empty() {
        let errors: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "errors   {}", errors.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Join, LatencySummary, PerTrack, PlayState};

    #[test]
    fn durations() {
        let ok = |t: &str| parse_duration(t).expect(t);
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("10"), Duration::from_secs(10));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("1e19s1e19s").is_err());
    }

    #[test]
    fn args_parse_with_clap() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            play: PlayArgs,
        }
        let cli = Cli::try_parse_from(["x", "rtmp://h/a/b", "--duration", "30s", "--json"])
            .expect("valid arguments");
        assert_eq!(cli.play.duration, Some(Duration::from_secs(30)));
        assert!(cli.play.json);
        assert_eq!(cli.play.rebuffer, Duration::from_millis(500));
    }

    #[test]
    fn text_output() {
        let line = progress_line(&Progress {
            elapsed_secs: 3.0,
            state: PlayState::Playing,
            buffer_ms: 1200,
            bitrate_kbps: 845.0,
            latency_ms: Some(42.4),
            live_latency_ms: None,
            stalls: 0,
            reconnects: 1,
        });
        assert!(line.contains("playing") && line.contains("1200 ms") && line.contains("42 ms"));
        assert!(line.contains("(joining)"), "{line}");
        let summary = Summary {
            url: "rtmp://h/a/b".into(),
            protocol: Some(Protocol::Rtmp),
            startup_ms: Some(12.0),
            stalls: 1,
            stall_ms: 500.0,
            stalls_per_minute: 2.0,
            played_secs: 29.5,
            elapsed_secs: 30.0,
            bytes: 1000,
            bitrate_kbps: 0.3,
            video_frames: 900,
            audio_frames: 1300,
            first_video_keyframe: Some(true),
            dts_backwards: PerTrack::default(),
            discontinuities: 0,
            reconnects: 0,
            latency: LatencySummary::default(),
            live_latency: LatencySummary::default(),
            joins: vec![Join {
                caught_up_secs: 0.4,
                burst_frames: 95,
                catch_up_ms: 3.2,
            }],
            errors: [("closed".to_string(), 1)].into(),
            llhls: Some(crate::LlHlsRequests {
                playlists: 62,
                blocking_playlists: 61,
                parts: 67,
                hinted_parts: 61,
                inits: 1,
            }),
            latency_histogram: crate::latency::Latency::new().histogram().clone(),
            live_latency_histogram: crate::latency::Latency::new().histogram().clone(),
        };
        let text = human(&summary);
        assert!(text.contains("(RTMP)"), "{text}");
        assert!(text.contains("startup  12 ms"), "{text}");
        assert!(text.contains("errors   closed 1"), "{text}");
        assert!(text.contains("p50 -"), "{text}");
        assert!(
            text.contains("requests 62 playlists (61 blocking), 67 parts (61 preload hints)"),
            "{text}"
        );
        assert!(
            text.contains("join     95 frames before catching up with the live edge, in 3 ms"),
            "{text}"
        );
    }
}
