//! A publisher's handle: turns RTMP messages into frames on the stream's timeline.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use media_core::aac::AudioSpecificConfig;
use media_core::avc::AvcConfig;
use media_core::flv::{self, VideoPacket};
use media_core::rtmp::StreamMetadata;
use media_core::timestamp::Unwrapper;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::frame::{Frame, FrameKind};
use super::stream::Stream;

/// Gap put between the last frame of a previous publisher and the first of the next.
const REPUBLISH_GAP_MS: u64 = 40;

/// Why a message could not enter the hub.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The FLV audio/video header is malformed.
    #[error("malformed media message: {0}")]
    Malformed(#[from] flv::FlvError),
}

/// Exclusive right to publish on a stream key; dropping it ends the publish.
#[derive(Debug)]
pub struct Publisher {
    stream: Arc<Stream>,
    epoch: u32,
    cancel: CancellationToken,
    unwrapper: Unwrapper,
    base: u64,
    offset: Option<i64>,
}

impl Publisher {
    pub(crate) fn new(
        stream: Arc<Stream>,
        epoch: u32,
        cancel: CancellationToken,
        base: u64,
    ) -> Self {
        Self {
            stream,
            epoch,
            cancel,
            unwrapper: Unwrapper::new(),
            base,
            offset: None,
        }
    }

    /// The stream key.
    pub fn key(&self) -> &str {
        self.stream.key()
    }

    /// Resolves when another publisher took this key over or the hub evicted this one. The
    /// future owns its token, so a connection can keep it across loop iterations.
    pub fn kicked(&self) -> WaitForCancellationFutureOwned {
        self.cancel.clone().cancelled_owned()
    }

    /// Records new metadata and forwards it to viewers as a script frame.
    pub fn set_metadata(&mut self, meta: StreamMetadata) {
        let payload = Bytes::from(meta.script_body());
        let mut state = self.stream.state.lock();
        if state.epoch != self.epoch {
            return;
        }
        let dts = state.last_dts.unwrap_or(self.base);
        let frame = Frame::new(FrameKind::Script, dts, 0, false, false, self.epoch, payload);
        state.metadata = Some(Arc::new(meta));
        state.dispatch(Instant::now(), frame);
    }

    /// Pushes one RTMP video message; returns the number of viewer drops it caused.
    pub fn push_video(&mut self, timestamp: u32, payload: Bytes) -> Result<u64, MediaError> {
        let dts = self.dts(timestamp);
        self.push_video_at(dts, payload)
    }

    /// Pushes one video message whose `dts` is already on the hub's timeline, for streams
    /// derived from another stream (so both share timestamps exactly).
    pub fn push_video_at(&mut self, dts: u64, payload: Bytes) -> Result<u64, MediaError> {
        let info = flv::parse_video(&payload)?;
        let header = info.packet == VideoPacket::SequenceHeader;
        let frame = Frame::new(
            FrameKind::Video,
            dts,
            info.composition_time,
            info.keyframe,
            header,
            self.epoch,
            payload,
        );
        Ok(self.dispatch(frame))
    }

    /// Pushes one RTMP audio message; returns the number of viewer drops it caused.
    pub fn push_audio(&mut self, timestamp: u32, payload: Bytes) -> Result<u64, MediaError> {
        let dts = self.dts(timestamp);
        self.push_audio_at(dts, payload)
    }

    /// Pushes one audio message whose `dts` is already on the hub's timeline.
    pub fn push_audio_at(&mut self, dts: u64, payload: Bytes) -> Result<u64, MediaError> {
        let info = flv::parse_audio(&payload)?;
        let header = info.sound_format == flv::SOUND_AAC && info.sequence_header;
        let frame = Frame::new(FrameKind::Audio, dts, 0, false, header, self.epoch, payload);
        Ok(self.dispatch(frame))
    }

    fn dts(&mut self, timestamp: u32) -> u64 {
        let ts = self.unwrapper.unwrap(timestamp) as i64;
        let offset = *self.offset.get_or_insert(self.base as i64 - ts);
        (ts + offset).max(0) as u64
    }

    fn dispatch(&mut self, frame: Frame) -> u64 {
        let now = Instant::now();
        let mut state = self.stream.state.lock();
        if state.epoch != self.epoch {
            return 0;
        }
        if let Some(p) = state.publisher.as_mut() {
            p.last_media = now;
        }
        if frame.header {
            learn_codec(&mut state.info, &frame);
        }
        let dropped = state.dispatch(now, frame);
        drop(state);
        self.stream.count(dropped);
        dropped
    }
}

/// Fills codec facts from a sequence header; unparseable headers leave them unknown.
fn learn_codec(info: &mut super::stream::MediaInfo, frame: &Frame) {
    match frame.kind {
        FrameKind::Video => {
            if let Ok(cfg) = AvcConfig::parse(flv::video_body(&frame.payload)) {
                info.video_codec = Some(cfg.codec_string());
                if let Some((w, h)) = cfg.dimensions() {
                    info.width = Some(w);
                    info.height = Some(h);
                }
            }
        }
        FrameKind::Audio => {
            if let Ok(cfg) = AudioSpecificConfig::parse(flv::audio_body(&frame.payload)) {
                info.audio_codec = Some(cfg.codec_string());
                info.sample_rate = Some(cfg.sample_rate);
                info.channels = Some(cfg.channels);
            }
        }
        FrameKind::Script => {}
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let mut state = self.stream.state.lock();
        if state
            .publisher
            .as_ref()
            .is_some_and(|p| p.epoch == self.epoch)
        {
            state.publisher = None;
            state.idle_since = Some(Instant::now());
        }
    }
}

/// Timeline base for a new publisher: just after the previous one's last frame.
pub(crate) fn next_base(last_dts: Option<u64>) -> u64 {
    last_dts.map_or(0, |d| d + REPUBLISH_GAP_MS)
}
