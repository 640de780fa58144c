//! A source's pipeline thread: decode the H.264 once, hand every picture to the rendition
//! threads, drop the lowest-priority rendition when the whole falls behind real time.

use std::collections::VecDeque;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use media_core::avc::{self, AvcConfig};
use media_core::flv::{self, VideoPacket};
use media_core::rtmp::StreamMetadata;

use super::ladder;
use super::lag::LagMonitor;
use super::rendition::{self, Rendition, Setup, Work};
use crate::config::{RenditionConfig, TranscodeConfig};
use crate::hub::{Frame, FrameKind, Hub};
use crate::metrics::Metrics;

/// Packets in a row, failed or swallowed without a picture, after which a source counts as
/// undecodable (far more than any decoder's reordering delay).
const MAX_WITHOUT_PICTURE: u32 = 60;
/// Source timestamps remembered for pictures still inside the decoder.
const MAX_IN_DECODER: usize = 64;
/// Frame rate assumed when neither metadata nor timestamps tell.
const DEFAULT_FPS: f64 = 30.0;

/// What one pipeline works on.
pub struct Source {
    /// The hub, where renditions are published.
    pub hub: Hub,
    /// Source stream key.
    pub key: String,
    /// The app's ladder.
    pub ladder: Vec<RenditionConfig>,
    /// Encoder settings.
    pub settings: Arc<TranscodeConfig>,
    /// Source metadata at the start of the publish.
    pub metadata: Option<Arc<StreamMetadata>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// Why a pipeline gave up on its source.
#[derive(Debug, thiserror::Error)]
enum Undecodable {
    #[error("video codec id {0} is not H.264")]
    Codec(u8),
    #[error("bad AVC sequence header: {0}")]
    Header(avc::AvcError),
    #[error("H.264 decoder: {0}")]
    Decoder(ffmpeg::Error),
    #[error("{0} packets in a row decoded to no picture")]
    NoPicture(u32),
}

/// Starts the pipeline thread; it ends after `rx` disconnects and its renditions drain.
pub fn spawn(source: Source, rx: Receiver<Frame>) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("tc-dec".into())
        .spawn(move || Pipeline::new(source).run(&rx))
}

struct Pipeline {
    source: Source,
    decoder: Option<ffmpeg::decoder::Video>,
    avc: Option<AvcConfig>,
    /// Source DTS of packets sent to the decoder, in decode order.
    dts_in: VecDeque<u64>,
    /// PTS of source keyframes sent to the decoder.
    key_pts: VecDeque<u64>,
    without_picture: u32,
    renditions: Option<Vec<Rendition>>,
    audio_header: Option<Frame>,
    first_dts: Option<u64>,
    last_dts: u64,
    packets: u64,
    lag: LagMonitor,
}

impl Pipeline {
    fn new(source: Source) -> Self {
        let max_lag = Duration::from_secs_f64(source.settings.max_lag_secs);
        Self {
            source,
            decoder: None,
            avc: None,
            dts_in: VecDeque::new(),
            key_pts: VecDeque::new(),
            without_picture: 0,
            renditions: None,
            audio_header: None,
            first_dts: None,
            last_dts: 0,
            packets: 0,
            lag: LagMonitor::new(max_lag),
        }
    }

    fn run(mut self, rx: &Receiver<Frame>) {
        let result = loop {
            let Ok(frame) = rx.recv() else {
                break self.flush();
            };
            let step = match frame.kind {
                FrameKind::Video => self.video(&frame),
                FrameKind::Audio => {
                    self.audio(frame);
                    Ok(())
                }
                FrameKind::Script => Ok(()),
            };
            if let Err(e) = step {
                break Err(e);
            }
            if self.renditions.as_ref().is_some_and(|r| r.is_empty()) {
                break Ok(());
            }
        };
        if let Err(e) = result {
            self.source.metrics.transcode_passthrough.inc();
            tracing::error!(
                stream = %self.source.key,
                "cannot transcode this source ({e}); serving it without renditions"
            );
        }
        self.stop_renditions();
    }

    fn audio(&mut self, frame: Frame) {
        if frame.header {
            self.audio_header = Some(frame.clone());
        }
        self.send_all(|| Work::Audio(frame.clone()));
    }

    fn video(&mut self, frame: &Frame) -> Result<(), Undecodable> {
        let Ok(info) = flv::parse_video(&frame.payload) else {
            return Ok(());
        };
        if info.codec_id != flv::CODEC_AVC {
            return Err(Undecodable::Codec(info.codec_id));
        }
        let body = flv::video_body(&frame.payload);
        match info.packet {
            VideoPacket::SequenceHeader => {
                let cfg = AvcConfig::parse(body).map_err(Undecodable::Header)?;
                if self.avc.as_ref() != Some(&cfg) {
                    self.decoder = Some(open_decoder().map_err(Undecodable::Decoder)?);
                    self.avc = Some(cfg);
                    self.dts_in.clear();
                    self.key_pts.clear();
                }
                Ok(())
            }
            VideoPacket::Nalu => self.decode(frame, body),
            VideoPacket::EndOfSequence => Ok(()),
        }
    }

    fn decode(&mut self, frame: &Frame, body: &[u8]) -> Result<(), Undecodable> {
        let (Some(cfg), Some(decoder)) = (&self.avc, self.decoder.as_mut()) else {
            return Ok(());
        };
        let mut annexb = Vec::with_capacity(body.len() + 64);
        if frame.keyframe {
            annexb.extend_from_slice(&cfg.annexb_parameter_sets());
        }
        if avc::avcc_to_annexb(body, cfg.nalu_length_size, &mut annexb).is_err() {
            return self.failed();
        }
        let pts = frame.dts.saturating_add_signed(i64::from(frame.cts));
        let mut packet = ffmpeg::Packet::copy(&annexb);
        packet.set_dts(i64::try_from(frame.dts).ok());
        packet.set_pts(i64::try_from(pts).ok());
        if frame.keyframe {
            packet.set_flags(ffmpeg::packet::Flags::KEY);
        }
        if decoder.send_packet(&packet).is_err() {
            return self.failed();
        }
        self.dts_in.push_back(frame.dts);
        if frame.keyframe {
            self.key_pts.push_back(pts);
        }
        while self.dts_in.len() > MAX_IN_DECODER {
            self.dts_in.pop_front();
        }
        while self.key_pts.len() > MAX_IN_DECODER {
            self.key_pts.pop_front();
        }
        self.first_dts.get_or_insert(frame.dts);
        self.last_dts = frame.dts;
        self.packets += 1;
        if self.drain() == 0 {
            self.failed()?;
        } else {
            self.without_picture = 0;
        }
        if let Some(behind) = self.lag.observe(Instant::now(), frame.dts) {
            self.drop_lowest(behind);
        }
        Ok(())
    }

    fn failed(&mut self) -> Result<(), Undecodable> {
        self.without_picture += 1;
        if self.without_picture >= MAX_WITHOUT_PICTURE {
            return Err(Undecodable::NoPicture(self.without_picture));
        }
        Ok(())
    }

    /// Hands every picture the decoder has ready to the renditions; returns how many.
    fn drain(&mut self) -> usize {
        let mut pictures = 0;
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return pictures;
            };
            let mut picture = ffmpeg::frame::Video::empty();
            if decoder.receive_frame(&mut picture).is_err() {
                return pictures;
            }
            pictures += 1;
            let Some(pts) = picture
                .timestamp()
                .or(picture.pts())
                .and_then(|p| u64::try_from(p).ok())
            else {
                continue;
            };
            let dts = self.dts_in.pop_front().map_or(pts, |d| d.min(pts));
            while self.key_pts.front().is_some_and(|&k| k < pts) {
                self.key_pts.pop_front();
            }
            let keyframe = self.key_pts.front() == Some(&pts);
            if keyframe {
                self.key_pts.pop_front();
            }
            if self.renditions.is_none() {
                self.start_renditions(picture.width(), picture.height());
            }
            let picture = Arc::new(picture);
            self.send_all(|| Work::Video {
                picture: picture.clone(),
                dts,
                pts,
                keyframe,
            });
        }
    }

    /// Sends to every rendition in order, forgetting any whose thread has ended.
    fn send_all(&mut self, work: impl Fn() -> Work) {
        if let Some(renditions) = self.renditions.as_mut() {
            renditions.retain(|r| r.tx.send(work()).is_ok());
        }
    }

    fn fps(&self) -> f64 {
        let from_meta = self
            .source
            .metadata
            .as_ref()
            .and_then(|m| m.video_frame_rate)
            .map(f64::from)
            .filter(|f| *f > 0.0);
        let from_timestamps = self.first_dts.and_then(|first| {
            let span = self.last_dts.saturating_sub(first);
            (self.packets > 1 && span > 0).then(|| (self.packets - 1) as f64 * 1000.0 / span as f64)
        });
        from_meta.or(from_timestamps).unwrap_or(DEFAULT_FPS)
    }

    fn start_renditions(&mut self, width: u32, height: u32) {
        let src = &self.source;
        let planned = ladder::plan(&src.key, &src.ladder, width, height);
        if planned.len() < src.ladder.len() {
            tracing::info!(
                stream = %src.key,
                "{} of {} renditions are larger than the {width}x{height} source and skipped",
                src.ladder.len() - planned.len(),
                src.ladder.len()
            );
        }
        let fps = self.fps();
        let mut started = Vec::new();
        for plan in planned {
            let publisher = match src.hub.publish(&plan.key) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(stream = %src.key, rendition = %plan.name, "not started: {e}");
                    continue;
                }
            };
            let setup = Setup {
                plan: plan.clone(),
                settings: src.settings.clone(),
                fps,
                publisher,
                metadata: src.metadata.clone(),
                metrics: src.metrics.clone(),
            };
            match rendition::spawn(setup) {
                Ok(r) => {
                    if let Some(h) = &self.audio_header {
                        let _ = r.tx.send(Work::Audio(h.clone()));
                    }
                    started.push(r);
                }
                Err(e) => tracing::error!(rendition = %plan.key, "thread not started: {e}"),
            }
        }
        tracing::info!(
            stream = %src.key,
            renditions = ?started.iter().map(|r| r.plan.name.as_str()).collect::<Vec<_>>(),
            "transcoding {width}x{height} at {fps:.2} fps"
        );
        self.renditions = Some(started);
    }

    fn drop_lowest(&mut self, behind: f64) {
        let Some(r) = self.renditions.as_mut().and_then(Vec::pop) else {
            return;
        };
        tracing::warn!(
            stream = %self.source.key,
            rendition = %r.plan.name,
            behind_secs = format!("{behind:.1}"),
            "transcoder fell behind real time; dropping its lowest-priority rendition"
        );
        self.source.metrics.rendition_dropped(&r.plan.name);
        finish(r);
    }

    /// Drains the decoder into the renditions at the end of the publish.
    fn flush(&mut self) -> Result<(), Undecodable> {
        if let Some(decoder) = self.decoder.as_mut() {
            if decoder.send_eof().is_ok() {
                self.drain();
            }
        }
        Ok(())
    }

    fn stop_renditions(&mut self) {
        for r in self.renditions.take().unwrap_or_default() {
            finish(r);
        }
    }
}

/// Closes a rendition's queue and waits for it to encode what it has and end.
fn finish(r: Rendition) {
    drop(r.tx);
    if r.thread.join().is_err() {
        tracing::error!(rendition = %r.plan.key, "rendition thread panicked");
    }
}

fn open_decoder() -> Result<ffmpeg::decoder::Video, ffmpeg::Error> {
    let codec =
        ffmpeg::decoder::find(ffmpeg::codec::Id::H264).ok_or(ffmpeg::Error::DecoderNotFound)?;
    let mut ctx = ffmpeg::codec::context::Context::new_with_codec(codec);
    ctx.set_threading(ffmpeg::threading::Config::count(1));
    ctx.decoder().video()
}
