//! `livepulse push`: publish the built-in sample or an FLV file until Ctrl-C.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::{Backoff, FlvLoop, MediaSource, PublishOptions, PublishStats, RtmpUrl};

/// Options of `livepulse push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Where to publish, `rtmp://host[:port]/app/stream`.
    pub url: String,
    /// FLV file to loop (H.264/AAC); the built-in sample when absent.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Do not stamp wall-clock time into the video.
    #[arg(long)]
    pub no_stamp: bool,
    /// Publish a live test pattern encoded with libx264 instead, e.g. `1280x720@30`.
    #[cfg(feature = "transcode")]
    #[arg(long, conflicts_with = "file")]
    pub pattern: Option<String>,
    /// Bitrate of the test pattern, e.g. `2500k`.
    #[cfg(feature = "transcode")]
    #[arg(long, default_value = "2500k", requires = "pattern")]
    pub bitrate: String,
}

/// The source the arguments name: a pattern, a file, or the built-in sample.
fn source(args: &PushArgs) -> anyhow::Result<Box<dyn MediaSource>> {
    #[cfg(feature = "transcode")]
    if let Some(size) = &args.pattern {
        let spec = crate::pattern::PatternSpec::parse(size, &args.bitrate)?;
        return Ok(Box::new(crate::pattern::PatternSource::start(spec)?));
    }
    Ok(Box::new(match &args.file {
        Some(path) => FlvLoop::from_bytes(
            &std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
        )?,
        None => FlvLoop::sample()?,
    }))
}

/// Publishes until Ctrl-C, reconnecting on failure, printing progress to a terminal.
pub async fn run(args: PushArgs) -> anyhow::Result<()> {
    let url = RtmpUrl::parse(&args.url)?;
    let mut source = source(&args)?;
    let options = PublishOptions {
        stamp: !args.no_stamp,
    };
    let stats = Arc::new(PublishStats::default());
    let stop = CancellationToken::new();
    let ctrl_c = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });
    let watched = stats.clone();
    let watching = stop.clone();
    let progress = tokio::spawn(async move {
        let tty = std::io::stderr().is_terminal();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        while !watching.is_cancelled() {
            tick.tick().await;
            if tty {
                let s = watched.snapshot();
                eprint!(
                    "\r{:?}: {} frames, {:.1} MB, {} reconnects   ",
                    s.state,
                    s.frames,
                    s.bytes as f64 / 1e6,
                    s.reconnects
                );
            }
        }
    });
    eprintln!("publishing to {} (Ctrl-C to stop)", args.url);
    crate::run(
        &url,
        source.as_mut(),
        &options,
        &Backoff::default(),
        &stop,
        &stats,
    )
    .await;
    progress.abort();
    let s = stats.snapshot();
    eprintln!(
        "\nstopped: {} frames, {} bytes, {} reconnects",
        s.frames, s.bytes, s.reconnects
    );
    Ok(())
}
