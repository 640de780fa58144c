//! One rendition on its own thread: scale the shared decoded picture, encode it with libx264,
//! publish the result into the hub with the source's audio passed through.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;
use media_core::avc::AvcConfig;
use media_core::rtmp::StreamMetadata;

use super::bitstream::{self, split_annexb};
use super::ladder::Planned;
use crate::config::TranscodeConfig;
use crate::hub::{Frame, Publisher};
use crate::metrics::Metrics;

/// Work items a rendition may queue before the decoder waits for it.
const QUEUE: usize = 16;
/// Audio held back waiting for video before it is published anyway.
const MAX_PENDING_AUDIO: usize = 256;

/// What the decoder hands each rendition, in source order.
pub enum Work {
    /// A decoded picture shared by every rendition.
    Video {
        /// The picture.
        picture: Arc<ffmpeg::frame::Video>,
        /// Decode timestamp (ms) the rendition's frame gets.
        dts: u64,
        /// Presentation timestamp (ms).
        pts: u64,
        /// The source has a keyframe here; so will the rendition.
        keyframe: bool,
    },
    /// A source audio message, passed through unchanged.
    Audio(Frame),
}

/// The decoder's handle on a running rendition.
pub struct Rendition {
    /// What it produces.
    pub plan: Planned,
    /// Its queue; dropping it ends the rendition after it drains.
    pub tx: SyncSender<Work>,
    /// Its thread.
    pub thread: JoinHandle<()>,
}

/// Everything a rendition thread needs besides its queue.
pub struct Setup {
    /// What to produce.
    pub plan: Planned,
    /// Encoder settings.
    pub settings: Arc<TranscodeConfig>,
    /// Source frame rate.
    pub fps: f64,
    /// The rendition stream's publish handle.
    pub publisher: Publisher,
    /// Source metadata, adjusted for the rendition and published first.
    pub metadata: Option<Arc<StreamMetadata>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// Starts a rendition thread.
pub fn spawn(setup: Setup) -> std::io::Result<Rendition> {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let plan = setup.plan.clone();
    let thread = thread::Builder::new()
        .name(format!("tc-{}", plan.name))
        .spawn(move || {
            let key = setup.plan.key.clone();
            let metrics = setup.metrics.clone();
            metrics.transcode_renditions.inc();
            if let Err(e) = run(setup, &rx) {
                tracing::error!(stream = %key, "rendition stopped: {e}");
            }
            metrics.transcode_renditions.dec();
        })?;
    Ok(Rendition { plan, tx, thread })
}

fn open_encoder(setup: &Setup) -> Result<ffmpeg::encoder::Video, ffmpeg::Error> {
    let codec = ffmpeg::encoder::find_by_name("libx264").ok_or(ffmpeg::Error::EncoderNotFound)?;
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()?;
    let plan = &setup.plan;
    let s = &setup.settings;
    enc.set_width(plan.width);
    enc.set_height(plan.height);
    enc.set_format(Pixel::YUV420P);
    enc.set_time_base((1, 1000));
    let fps = (setup.fps * 1000.0).round().max(1.0) as i32;
    enc.set_frame_rate(Some((fps, 1000)));
    enc.set_bit_rate(plan.bitrate as usize);
    enc.set_max_b_frames(0);
    let kbps = plan.bitrate / 1000;
    let threads = if s.threads == 0 {
        "auto".to_string()
    } else {
        s.threads.to_string()
    };
    let mut options = ffmpeg::Dictionary::new();
    options.set("preset", &s.preset);
    options.set("profile", &s.profile);
    if !s.tune.is_empty() {
        options.set("tune", &s.tune);
    }
    options.set("forced-idr", "1");
    // Keyframes come only where the source has them; no B-frames, so output order is input
    // order and every frame keeps the source's timestamps.
    options.set(
        "x264-params",
        &format!(
            "keyint=infinite:scenecut=0:bframes=0:threads={threads}:vbv-maxrate={kbps}:vbv-bufsize={}",
            kbps * 2
        ),
    );
    enc.open_with(options)
}

/// The rendition's metadata: the source's with this rendition's picture and bitrate.
fn metadata(setup: &Setup) -> StreamMetadata {
    let mut meta = setup
        .metadata
        .as_deref()
        .cloned()
        .unwrap_or_else(StreamMetadata::new);
    meta.video_width = Some(setup.plan.width);
    meta.video_height = Some(setup.plan.height);
    meta.video_bitrate_kbps = Some((setup.plan.bitrate / 1000) as u32);
    meta.video_frame_rate = Some(setup.fps as f32);
    meta.encoder = Some("livepulse transcode (libx264)".into());
    meta
}

struct Output {
    publisher: Publisher,
    config: Option<AvcConfig>,
    /// (pts, dts) of frames sent to the encoder and not yet out of it.
    in_flight: VecDeque<(u64, u64)>,
    pending_audio: VecDeque<Frame>,
    metrics: Arc<Metrics>,
    key: String,
}

impl Output {
    fn audio(&mut self, frame: Frame) {
        if frame.header {
            self.push_audio(frame);
            return;
        }
        self.pending_audio.push_back(frame);
        while self.pending_audio.len() > MAX_PENDING_AUDIO {
            if let Some(f) = self.pending_audio.pop_front() {
                self.push_audio(f);
            }
        }
    }

    /// Publishes audio up to `dts` so the rendition stays interleaved like the source.
    fn release_audio(&mut self, dts: Option<u64>) {
        while self
            .pending_audio
            .front()
            .is_some_and(|f| dts.is_none_or(|d| f.dts <= d))
        {
            if let Some(f) = self.pending_audio.pop_front() {
                self.push_audio(f);
            }
        }
    }

    fn push_audio(&mut self, frame: Frame) {
        if let Err(e) = self.publisher.push_audio_at(frame.dts, frame.payload) {
            tracing::debug!(stream = %self.key, "audio not passed through: {e}");
        }
    }

    fn packet(&mut self, packet: &ffmpeg::Packet) {
        let Some(data) = packet.data() else {
            return;
        };
        let Some((pts, dts)) = self.in_flight.pop_front() else {
            return;
        };
        let au = split_annexb(data);
        if let Some(cfg) = au.config {
            if self.config.as_ref() != Some(&cfg) {
                let header = bitstream::sequence_header(&cfg);
                if let Err(e) = self.publisher.push_video_at(dts, header) {
                    tracing::debug!(stream = %self.key, "sequence header refused: {e}");
                }
                self.config = Some(cfg);
            }
        }
        if self.config.is_none() || au.avcc.is_empty() {
            return;
        }
        let cts = i32::try_from(pts.saturating_sub(dts)).unwrap_or(0);
        let body = bitstream::video_frame(packet.is_key(), cts, &au.avcc);
        if let Err(e) = self.publisher.push_video_at(dts, body) {
            tracing::debug!(stream = %self.key, "frame refused: {e}");
        }
        self.metrics.transcode_frames_encoded.inc();
        self.release_audio(Some(dts));
    }
}

fn run(setup: Setup, rx: &Receiver<Work>) -> Result<(), ffmpeg::Error> {
    let mut encoder = open_encoder(&setup)?;
    let meta = metadata(&setup);
    let Setup {
        plan,
        publisher,
        metrics,
        ..
    } = setup;
    let mut out = Output {
        publisher,
        config: None,
        in_flight: VecDeque::new(),
        pending_audio: VecDeque::new(),
        metrics,
        key: plan.key.clone(),
    };
    out.publisher.set_metadata(meta);
    let mut scaler: Option<(scaling::Context, (Pixel, u32, u32))> = None;
    let mut scaled = ffmpeg::frame::Video::new(Pixel::YUV420P, plan.width, plan.height);
    let mut packet = ffmpeg::Packet::empty();
    while let Ok(work) = rx.recv() {
        match work {
            Work::Audio(frame) => out.audio(frame),
            Work::Video {
                picture,
                dts,
                pts,
                keyframe,
            } => {
                let input = (picture.format(), picture.width(), picture.height());
                if scaler.as_ref().is_none_or(|(_, fmt)| *fmt != input) {
                    let ctx = scaling::Context::get(
                        input.0,
                        input.1,
                        input.2,
                        Pixel::YUV420P,
                        plan.width,
                        plan.height,
                        scaling::Flags::BICUBIC,
                    )?;
                    scaler = Some((ctx, input));
                }
                if let Some((ctx, _)) = scaler.as_mut() {
                    ctx.run(&picture, &mut scaled)?;
                }
                drop(picture);
                scaled.set_pts(i64::try_from(pts).ok());
                scaled.set_kind(if keyframe {
                    ffmpeg::picture::Type::I
                } else {
                    ffmpeg::picture::Type::None
                });
                out.in_flight.push_back((pts, dts));
                encoder.send_frame(&scaled)?;
                while encoder.receive_packet(&mut packet).is_ok() {
                    out.packet(&packet);
                }
            }
        }
    }
    encoder.send_eof()?;
    while encoder.receive_packet(&mut packet).is_ok() {
        out.packet(&packet);
    }
    out.release_audio(None);
    Ok(())
}
