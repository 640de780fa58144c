//! The HLS output: one segmenter task per stream, fed by the hub like any viewer.

use std::sync::Arc;

use media_core::aac::AudioSpecificConfig;
use media_core::avc::AvcConfig;
use media_core::flv::{self, VideoPacket};
use media_core::hls::{Segment, Segmenter, SegmenterConfig};
use parking_lot::RwLock;

use super::store::{HlsStore, HlsStream};
use crate::config::HlsConfig;
use crate::hub::{Frame, FrameKind, Hub, NewStream};
use crate::metrics::Metrics;
use net_guard::unix_ms;

/// Registers with the hub at once, then starts a segmenter for every new stream until the
/// hub is dropped.
pub fn run(
    hub: &Hub,
    store: HlsStore,
    config: HlsConfig,
    metrics: Arc<Metrics>,
) -> impl std::future::Future<Output = ()> {
    let mut new_streams = hub.new_streams();
    async move {
        while let Some(new) = new_streams.recv().await {
            tokio::spawn(segment_stream(
                new,
                store.clone(),
                config.clone(),
                metrics.clone(),
            ));
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
    warned: bool,
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
            warned: false,
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
        last
    }

    /// Pairs a finished segment with whether it starts a new publish session.
    fn mark(&mut self, segment: Segment) -> (Segment, bool) {
        (segment, std::mem::take(&mut self.discontinuity))
    }

    /// Finishes the open segment (the publisher left).
    fn flush(&mut self) -> Option<(Segment, bool)> {
        let last = self.segmenter.flush()?;
        Some(self.mark(last))
    }

    /// Segments `frame` finished, each with whether a discontinuity precedes it: the last
    /// segment of a publish session keeps none, the first one of the next session has one.
    fn push(&mut self, frame: &Frame) -> Vec<(Segment, bool)> {
        let mut out = Vec::new();
        if self.epoch != Some(frame.epoch) {
            if self.epoch.is_some() {
                if let Some(last) = self.restart() {
                    out.push(self.mark(last));
                }
                self.discontinuity = true;
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
            Ok(Some(seg)) => out.push(self.mark(seg)),
            Ok(None) => {}
            Err(e) => tracing::debug!("hls segmenter skipped a frame: {e}"),
        }
        out
    }
}

fn segmenter_config(config: &HlsConfig) -> SegmenterConfig {
    SegmenterConfig {
        target_duration: config.target_duration(),
        max_segment_duration: config.max_segment_duration(),
        max_segment_bytes: config.max_segment_bytes,
    }
}

fn publish(
    key: &str,
    out: &RwLock<HlsStream>,
    segs: Vec<(Segment, bool)>,
    state: &mut StreamSegmenter,
    metrics: &Metrics,
) {
    for (seg, discontinuity) in segs {
        metrics.hls_segments.inc();
        if !seg.keyframe_start {
            metrics.hls_forced_cuts.inc();
            if !std::mem::replace(&mut state.warned, true) {
                tracing::warn!(
                    stream = key,
                    "keyframe interval too long: HLS segments are cut without a keyframe"
                );
            }
        }
        out.write().add(seg, discontinuity, unix_ms());
    }
}

async fn segment_stream(
    NewStream { stream, mut sub }: NewStream,
    store: HlsStore,
    config: HlsConfig,
    metrics: Arc<Metrics>,
) {
    let key = stream.key().to_string();
    let target = config.target_duration_secs.ceil().max(1.0) as u64;
    let claim = store.create(&key, config.window, config.keep_extra, target);
    let out = claim.state.clone();
    let idle = config.target_duration() * 2;
    let mut state = StreamSegmenter::new(config);
    loop {
        match tokio::time::timeout(idle, sub.recv()).await {
            Ok(Some(frame)) => {
                let segs = state.push(&frame);
                publish(&key, &out, segs, &mut state, &metrics);
            }
            Ok(None) => break,
            Err(_) => {
                if !stream.is_live() {
                    let segs: Vec<_> = state.flush().into_iter().collect();
                    publish(&key, &out, segs, &mut state, &metrics);
                }
            }
        }
    }
    store.remove(&key, &claim);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in sample's first `until_ms` as hub frames of publish session `epoch`, with
    /// timestamps from `base_ms`.
    fn frames(epoch: u32, base_ms: u64, until_ms: u32) -> Vec<Frame> {
        let tags = flv::parse_file(include_bytes!("../../../assets/sample.flv")).unwrap();
        tags.into_iter()
            .filter(|t| t.timestamp <= until_ms)
            .filter_map(|t| {
                let dts = base_ms + u64::from(t.timestamp);
                match t.tag_type {
                    flv::TAG_VIDEO => {
                        let info = flv::parse_video(&t.data).unwrap();
                        let header = info.packet == VideoPacket::SequenceHeader;
                        let kind = FrameKind::Video;
                        let cts = info.composition_time;
                        Some(Frame::new(
                            kind,
                            dts,
                            cts,
                            info.keyframe,
                            header,
                            epoch,
                            t.data,
                        ))
                    }
                    flv::TAG_AUDIO => {
                        let header = flv::parse_audio(&t.data).unwrap().sequence_header;
                        let kind = FrameKind::Audio;
                        Some(Frame::new(kind, dts, 0, false, header, epoch, t.data))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    #[test]
    fn the_discontinuity_goes_before_the_first_segment_of_the_new_session() {
        let mut state = StreamSegmenter::new(HlsConfig::default());
        let mut out = Vec::new();
        for f in frames(1, 0, 5_000).iter().chain(&frames(2, 10_000, 5_000)) {
            out.extend(state.push(f).into_iter().map(|(s, d)| (s.start_dts_ms, d)));
        }
        let first_of_second = out.iter().position(|&(start, _)| start >= 10_000).unwrap();
        let marked: Vec<usize> = (0..out.len()).filter(|&i| out[i].1).collect();
        assert_eq!(marked, [first_of_second], "{out:?}");
        assert!(
            first_of_second > 0,
            "the first session's last segment came first"
        );
    }
}
