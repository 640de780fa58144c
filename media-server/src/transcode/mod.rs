//! Adaptive bitrate transcoding (feature `transcode`): a hub subscriber per source stream that
//! decodes its H.264 once, scales and encodes each ladder rung with libx264 on dedicated
//! threads, and publishes the renditions back into the hub as streams `{app}/{stream}_{name}`.
//!
//! The async side only forwards frames and follows the publish lifecycle; all media work runs
//! on `std::thread`s. A rendition's keyframes and timestamps are the source's, so HLS cuts
//! every rendition exactly where it cuts the source.

mod bitstream;
mod decoder;
mod ladder;
mod lag;
mod rendition;

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ffmpeg_next as ffmpeg;

use crate::config::TranscodeConfig;
use crate::hub::{Frame, Hub, NewStream};
use crate::metrics::Metrics;

pub use ladder::{is_rendition_key, plan, rendition_key, Planned};
pub use lag::LagMonitor;

/// Source frames queued for a pipeline before new ones are dropped up to the next keyframe.
const INPUT_QUEUE: usize = 1024;
/// How often a quiet stream is checked for a publisher that left.
const LIVENESS_CHECK: Duration = Duration::from_millis(250);

/// Registers with the hub at once, then starts a transcoder for every new stream of an app
/// with a ladder, until the hub is dropped.
pub fn run(
    hub: Hub,
    settings: TranscodeConfig,
    metrics: Arc<Metrics>,
) -> impl std::future::Future<Output = ()> {
    let mut new_streams = hub.new_streams();
    async move {
        if let Err(e) = ffmpeg::init() {
            tracing::error!("transcoding off: FFmpeg libraries failed to initialise: {e}");
            return;
        }
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
        let settings = Arc::new(settings);
        while let Some(new) = new_streams.recv().await {
            let app = new.stream.key().split('/').next().unwrap_or_default();
            let ladder = settings.ladder(app);
            if ladder.is_empty() || is_rendition_key(new.stream.key(), ladder) {
                continue;
            }
            tokio::spawn(supervise(
                hub.clone(),
                new,
                settings.clone(),
                metrics.clone(),
            ));
        }
    }
}

/// A running pipeline for one publish session of a source.
struct Running {
    epoch: u32,
    tx: SyncSender<Frame>,
    thread: JoinHandle<()>,
    /// Dropping video until the next keyframe after the queue overflowed.
    resync: bool,
}

impl Running {
    /// Queues a frame without waiting; false once the pipeline has ended by itself.
    fn feed(&mut self, frame: Frame, key: &str) -> bool {
        if self.resync {
            if frame.kind == crate::hub::FrameKind::Video && !frame.keyframe && !frame.header {
                return true;
            }
            self.resync = false;
        }
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::warn!(
                    stream = key,
                    "transcoder input full; skipping to the next keyframe"
                );
                self.resync = true;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Closes the input and waits, off the async workers, for the pipeline thread to end.
    async fn stop(self) {
        drop(self.tx);
        let thread = self.thread;
        while !thread.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if thread.join().is_err() {
            tracing::error!("transcoder pipeline thread panicked");
        }
        release_freed_memory().await;
    }
}

/// Hands memory freed by a finished pipeline (decoder and encoder frame pools, megabytes per
/// rendition, spread over the pipeline threads' malloc arenas) back to the operating system,
/// so a stream that ends leaves the process at its previous size.
/// Also run when a source stream is gone, for what its viewers and segments held.
async fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let _ = tokio::task::spawn_blocking(|| {
        // SAFETY: malloc_trim only walks glibc's own heaps; it takes no pointers from us.
        unsafe { libc::malloc_trim(0) }
    })
    .await;
}

/// Follows one source stream: a pipeline per publish session, stopped when the publisher
/// leaves and started again when it returns.
async fn supervise(
    hub: Hub,
    NewStream { stream, mut sub }: NewStream,
    settings: Arc<TranscodeConfig>,
    metrics: Arc<Metrics>,
) {
    let key = stream.key().to_string();
    let app = key.split('/').next().unwrap_or_default().to_string();
    let mut running: Option<Running> = None;
    let mut done_epoch: Option<u32> = None;
    loop {
        match tokio::time::timeout(LIVENESS_CHECK, sub.recv()).await {
            Ok(Some(frame)) => {
                if running.as_ref().is_some_and(|r| r.epoch != frame.epoch) {
                    if let Some(r) = running.take() {
                        done_epoch = Some(r.epoch);
                        r.stop().await;
                    }
                }
                if running.is_none() && done_epoch != Some(frame.epoch) {
                    let source = decoder::Source {
                        hub: hub.clone(),
                        key: key.clone(),
                        ladder: settings.ladder(&app).to_vec(),
                        settings: settings.clone(),
                        metadata: stream.metadata(),
                        metrics: metrics.clone(),
                    };
                    let (tx, rx) = sync_channel(INPUT_QUEUE);
                    match decoder::spawn(source, rx) {
                        Ok(thread) => {
                            running = Some(Running {
                                epoch: frame.epoch,
                                tx,
                                thread,
                                resync: false,
                            })
                        }
                        Err(e) => {
                            tracing::error!(stream = %key, "transcoder thread not started: {e}");
                            done_epoch = Some(frame.epoch);
                        }
                    }
                }
                if let Some(r) = running.as_mut() {
                    if !r.feed(frame, &key) {
                        if let Some(r) = running.take() {
                            done_epoch = Some(r.epoch);
                            r.stop().await;
                        }
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {
                if !stream.is_live() {
                    if let Some(r) = running.take() {
                        tracing::info!(stream = %key, "publisher left; ending renditions");
                        done_epoch = Some(r.epoch);
                        r.stop().await;
                    }
                }
            }
        }
    }
    if let Some(r) = running.take() {
        r.stop().await;
    }
    release_freed_memory().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HubConfig, OnConflict, RenditionConfig};
    use crate::hub::Protocol;
    use bytes::Bytes;
    use media_core::avc::AvcConfig;
    use media_core::flv::{avc_video_tag, VideoPacket};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn undecodable_source_is_served_without_renditions() {
        let hub = Hub::new(HubConfig::default(), OnConflict::Refuse);
        let metrics = Arc::new(Metrics::default());
        let mut settings = TranscodeConfig::default();
        settings.ladders.insert(
            "live".into(),
            vec![RenditionConfig {
                name: "360p".into(),
                height: 360,
                width: None,
                video_kbps: 600,
            }],
        );
        let transcoder = tokio::spawn(run(hub.clone(), settings, metrics.clone()));

        let mut publisher = hub.publish("live/bad").expect("publish");
        let mut viewer = hub
            .subscribe("live/bad", Protocol::HttpFlv)
            .expect("stream exists");
        let config = AvcConfig {
            profile: 100,
            compatibility: 0,
            level: 31,
            nalu_length_size: 4,
            sps: vec![Bytes::from_static(&[0x67, 0xff, 0xff, 0xff, 0xff])],
            pps: vec![Bytes::from_static(&[0x68, 0xff])],
        };
        let header = avc_video_tag(true, VideoPacket::SequenceHeader, 0, &config.to_bytes());
        publisher
            .push_video(0, Bytes::from(header))
            .expect("header");
        for i in 0..150u32 {
            let garbage = [0, 0, 0, 5, 0x65, 0xde, 0xad, 0xbe, 0xef];
            let body = avc_video_tag(i % 30 == 0, VideoPacket::Nalu, 0, &garbage);
            publisher
                .push_video(i * 33, Bytes::from(body))
                .expect("frame");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let start = std::time::Instant::now();
        while metrics.transcode_passthrough.get() == 0 && start.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(metrics.transcode_passthrough.get(), 1);
        assert!(hub.get("live/bad_360p").is_none(), "no rendition stream");
        assert_eq!(metrics.transcode_renditions.get(), 0);
        // The source itself still reaches its viewers.
        let first = viewer.recv().await.expect("source frame");
        assert!(first.header);
        assert!(viewer.recv().await.is_some());
        transcoder.abort();
    }
}
