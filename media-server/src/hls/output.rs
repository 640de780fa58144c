//! The HLS output: one segmenter task per stream, fed by the hub like any viewer.

use std::sync::Arc;
use std::time::Duration;

use media_core::aac::AudioSpecificConfig;
use media_core::avc::AvcConfig;
use media_core::flv::{self, VideoPacket};
use media_core::hls::{Segment, Segmenter, SegmenterConfig};
use parking_lot::RwLock;

use super::store::{HlsStore, HlsStream};
use crate::config::HlsConfig;
use crate::hub::{Frame, FrameKind, Hub, Protocol, Stream};
use crate::metrics::Metrics;

/// Starts a segmenter for every new stream until the hub is dropped.
pub async fn run(hub: Hub, store: HlsStore, config: HlsConfig, metrics: Arc<Metrics>) {
    let mut new_streams = hub.new_streams();
    loop {
        match new_streams.recv().await {
            Ok(stream) => {
                tokio::spawn(segment_stream(
                    hub.clone(),
                    stream,
                    store.clone(),
                    config.clone(),
                    metrics.clone(),
                ));
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("hls output missed {n} new streams");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

struct StreamSegmenter {
    config: HlsConfig,
    segmenter: Segmenter,
    avc: Option<AvcConfig>,
    aac: Option<AudioSpecificConfig>,
    epoch: Option<u32>,
    discontinuity: bool,
}

impl StreamSegmenter {
    fn new(config: HlsConfig) -> Self {
        Self {
            segmenter: Segmenter::new(segmenter_config(&config)),
            config,
            avc: None,
            aac: None,
            epoch: None,
            discontinuity: false,
        }
    }

    /// Restarts segmenting for a new publish session, keeping the known codec configs.
    fn restart(&mut self) -> Option<Segment> {
        let last = self.segmenter.flush();
        self.segmenter = Segmenter::new(segmenter_config(&self.config));
        if let Some(c) = &self.avc {
            self.segmenter.set_avc_config(c.clone());
        }
        if let Some(c) = self.aac {
            self.segmenter.set_aac_config(c);
        }
        self.discontinuity = true;
        last
    }

    fn push(&mut self, frame: &Frame) -> Vec<Segment> {
        let mut out = Vec::new();
        if self.epoch != Some(frame.epoch) {
            if self.epoch.is_some() {
                out.extend(self.restart());
            }
            self.epoch = Some(frame.epoch);
        }
        let result = match frame.kind {
            FrameKind::Video => match flv::parse_video(&frame.payload) {
                Ok(info) if info.codec_id == flv::CODEC_AVC => {
                    let body = flv::video_body(&frame.payload);
                    match info.packet {
                        VideoPacket::SequenceHeader => {
                            if let Ok(cfg) = AvcConfig::parse(body) {
                                self.avc = Some(cfg.clone());
                                self.segmenter.set_avc_config(cfg);
                            }
                            Ok(None)
                        }
                        VideoPacket::Nalu => self
                            .segmenter
                            .push_video(frame.dts, frame.cts, frame.keyframe, body)
                            .map_err(|e| e.to_string()),
                        VideoPacket::EndOfSequence => Ok(None),
                    }
                }
                _ => Ok(None),
            },
            FrameKind::Audio => match flv::parse_audio(&frame.payload) {
                Ok(info) if info.sound_format == flv::SOUND_AAC => {
                    let body = flv::audio_body(&frame.payload);
                    if info.sequence_header {
                        if let Ok(cfg) = AudioSpecificConfig::parse(body) {
                            self.aac = Some(cfg);
                            self.segmenter.set_aac_config(cfg);
                        }
                        Ok(None)
                    } else {
                        self.segmenter
                            .push_audio(frame.dts, body)
                            .map_err(|e| e.to_string())
                    }
                }
                _ => Ok(None),
            },
            FrameKind::Script => Ok(None),
        };
        match result {
            Ok(seg) => out.extend(seg),
            Err(e) => tracing::debug!("hls segmenter skipped a frame: {e}"),
        }
        out
    }
}

fn segmenter_config(config: &HlsConfig) -> SegmenterConfig {
    let target = Duration::from_secs_f64(config.target_duration_secs.max(0.1));
    SegmenterConfig {
        target_duration: target,
        max_segment_duration: target * 3,
    }
}

fn publish(
    out: &RwLock<HlsStream>,
    segs: Vec<Segment>,
    state: &mut StreamSegmenter,
    metrics: &Metrics,
) {
    for seg in segs {
        let discontinuity = std::mem::take(&mut state.discontinuity);
        metrics.hls_segments.inc();
        out.write().add(seg, discontinuity);
    }
}

async fn segment_stream(
    hub: Hub,
    stream: Arc<Stream>,
    store: HlsStore,
    config: HlsConfig,
    metrics: Arc<Metrics>,
) {
    let key = stream.key().to_string();
    let target = config.target_duration_secs.ceil().max(1.0) as u64;
    let out = store.create(&key, config.window, config.keep_extra, target);
    let idle = Duration::from_secs_f64(config.target_duration_secs.max(0.5) * 2.0);
    let mut sub = hub.subscribe_stream(stream.clone(), Protocol::Internal);
    let mut state = StreamSegmenter::new(config);
    loop {
        match tokio::time::timeout(idle, sub.recv()).await {
            Ok(Some(frame)) => {
                let segs = state.push(&frame);
                publish(&out, segs, &mut state, &metrics);
            }
            Ok(None) => break,
            Err(_) => {
                if !stream.is_live() {
                    let segs: Vec<Segment> = state.segmenter.flush().into_iter().collect();
                    publish(&out, segs, &mut state, &metrics);
                }
            }
        }
    }
    store.remove(&key);
}
