//! The LL-HLS output: one packager task per stream, fed by the hub like any viewer. Each
//! batch of packager events (chunks of the part being filled included) wakes the requests held
//! on the stream and the responses streaming that part.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use media_core::flv::{self, VideoPacket};
use media_core::hls::ll::{Event, LlHlsConfig, LlHlsError, Packager, VideoFrame};

use super::store::{LlState, LlStore, LlStream, Wake};
use crate::hub::{Frame, FrameKind, Hub, NewStream};
use crate::metrics::Metrics;
use net_guard::unix_ms;

/// Registers with the hub at once, then starts a packager for every new stream until the hub
/// is dropped.
pub fn run(
    hub: &Hub,
    store: LlStore,
    config: LlHlsConfig,
    metrics: Arc<Metrics>,
) -> impl std::future::Future<Output = ()> {
    let mut new_streams = hub.new_streams();
    async move {
        while let Some(new) = new_streams.recv().await {
            tokio::spawn(package_stream(
                new,
                store.clone(),
                config.clone(),
                metrics.clone(),
            ));
        }
    }
}

/// Feeds one hub frame to the packager: sequence headers, AVC access units and raw AAC
/// frames; a new publish session restarts it (a discontinuity).
pub(super) fn feed(
    packager: &mut Packager,
    epoch: &mut Option<u32>,
    frame: &Frame,
    now_ms: u64,
) -> Result<(), LlHlsError> {
    if *epoch != Some(frame.epoch) {
        if epoch.is_some() {
            packager.restart()?;
        }
        *epoch = Some(frame.epoch);
    }
    let payload = &frame.payload;
    match frame.kind {
        FrameKind::Video => match flv::parse_video(payload) {
            Ok(info) if info.codec_id == flv::CODEC_AVC => {
                let body = payload.slice_ref(flv::video_body(payload));
                match info.packet {
                    VideoPacket::SequenceHeader => packager.set_avc_config(&body),
                    VideoPacket::Nalu => packager.push_video(
                        VideoFrame {
                            dts_ms: frame.dts,
                            cts_ms: frame.cts,
                            keyframe: frame.keyframe,
                            data: body,
                        },
                        now_ms,
                    ),
                    VideoPacket::EndOfSequence => Ok(()),
                }
            }
            _ => Ok(()),
        },
        FrameKind::Audio => match flv::parse_audio(payload) {
            Ok(info) if info.sound_format == flv::SOUND_AAC => {
                let body: Bytes = payload.slice_ref(flv::audio_body(payload));
                if info.sequence_header {
                    packager.set_aac_config(&body)
                } else {
                    packager.push_audio(frame.dts, body, now_ms)
                }
            }
            _ => Ok(()),
        },
        FrameKind::Script => Ok(()),
    }
}

/// Drains the packager's events, recording part completion times and counting; says whom
/// they wake: a chunk only the responses streaming its part, unless it starts the part.
pub(super) fn drain(state: &mut LlState, metrics: &Metrics, now_ms: u64) -> Wake {
    let mut wake = Wake::default();
    while let Some(event) = state.packager.poll_event() {
        match event {
            Event::Chunk { id, .. } => {
                wake.chunks = true;
                wake.events |= state.last_chunk.replace(id) != Some(id);
            }
            Event::Part(part) => {
                wake.events = true;
                metrics.llhls_parts.inc();
                state.record_part(part.id(), now_ms);
            }
            _ => wake.events = true,
        }
    }
    wake
}

/// One stream's packager task: until the hub ends the subscription.
async fn package_stream(
    NewStream { stream, mut sub }: NewStream,
    store: LlStore,
    config: LlHlsConfig,
    metrics: Arc<Metrics>,
) {
    let key = stream.key().to_string();
    let idle = Duration::from_secs(config.target_duration.saturating_mul(2));
    let packager = match Packager::new(config) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(stream = key, "LL-HLS packager not started: {e}");
            return;
        }
    };
    let out = Arc::new(LlStream::new(packager));
    store.insert(&key, out.clone());
    let mut epoch = None;
    let mut warned = false;
    loop {
        let frame = match tokio::time::timeout(idle, sub.recv()).await {
            Ok(Some(frame)) => Some(frame),
            Ok(None) => break,
            Err(_) if stream.is_live() => continue,
            Err(_) => None,
        };
        let now_ms = unix_ms();
        let woke = {
            let mut state = out.write();
            let cuts = state.packager.forced_cuts();
            // Without a frame the publisher left: finish the open part and segment.
            let result = match &frame {
                Some(frame) => feed(&mut state.packager, &mut epoch, frame, now_ms),
                None => state.packager.restart(),
            };
            if let Err(e) = result {
                tracing::debug!(stream = key, "LL-HLS packager skipped a frame: {e}");
            }
            let new_cuts = state.packager.forced_cuts().saturating_sub(cuts);
            if new_cuts > 0 {
                metrics.llhls_forced_cuts.inc_by(new_cuts);
                if !std::mem::replace(&mut warned, true) {
                    tracing::warn!(
                        stream = key,
                        "keyframe interval too long: LL-HLS segments are cut without a keyframe"
                    );
                }
            }
            drain(&mut state, &metrics, now_ms)
        };
        out.notify(woke);
    }
    // The subscription ended: finish the open part, so that a response streaming it ends with
    // its last chunk.
    {
        let mut state = out.write();
        if let Err(e) = state.packager.restart() {
            tracing::debug!(
                stream = key,
                "LL-HLS packager could not finish its part: {e}"
            );
        }
        drain(&mut state, &metrics, unix_ms());
    }
    out.close();
    store.remove(&key, &out);
}

/// The built-in sample's first `until_ms` as hub frames of publish session `epoch`, with
/// timestamps from `base_ms`.
#[cfg(test)]
pub(super) fn sample_frames(epoch: u32, base_ms: u64, until_ms: u32) -> Vec<Frame> {
    let tags = flv::parse_file(include_bytes!("../../../assets/sample.flv")).unwrap();
    tags.into_iter()
        .filter(|t| t.timestamp <= until_ms && t.tag_type != flv::TAG_SCRIPT)
        .map(|t| {
            let dts = base_ms + u64::from(t.timestamp);
            if t.tag_type == flv::TAG_VIDEO {
                let info = flv::parse_video(&t.data).unwrap();
                let header = info.packet == VideoPacket::SequenceHeader;
                let (cts, key) = (info.composition_time, info.keyframe);
                Frame::new(FrameKind::Video, dts, cts, key, header, epoch, t.data)
            } else {
                let header = flv::parse_audio(&t.data).unwrap().sequence_header;
                Frame::new(FrameKind::Audio, dts, 0, false, header, epoch, t.data)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_core::hls::ll::{PartId, Skip};

    #[test]
    fn held_requests_wake_per_part_and_streamed_parts_per_chunk() {
        let stream = LlStream::new(Packager::new(LlHlsConfig::default()).unwrap());
        let (mut events, mut chunks) = (stream.subscribe(), stream.subscribe_chunks());
        let metrics = Metrics::default();
        let mut epoch = None;
        let (mut event_wakes, mut chunk_wakes) = (0, 0);
        for frame in sample_frames(1, 0, 4_000) {
            let wake = {
                let mut state = stream.write();
                feed(&mut state.packager, &mut epoch, &frame, 1_000).unwrap();
                drain(&mut state, &metrics, 1_000)
            };
            stream.notify(wake);
            event_wakes += usize::from(events.has_changed().unwrap());
            chunk_wakes += usize::from(chunks.has_changed().unwrap());
            events.borrow_and_update();
            chunks.borrow_and_update();
        }
        let parts = usize::try_from(metrics.llhls_parts.get()).unwrap();
        // A part wakes held requests when it starts and when it ends (the segment's end and the
        // next part's start may come with the same frame); every chunk wakes the streams.
        assert!(parts > 10, "{parts}");
        assert!(
            event_wakes <= 2 * parts + 2,
            "{event_wakes} wakes for {parts} parts"
        );
        assert!(
            chunk_wakes > 4 * parts,
            "{chunk_wakes} chunk wakes for {parts} parts"
        );
    }

    #[test]
    fn viewers_are_estimated_from_one_reload_per_part() {
        let stream = LlStream::new(Packager::new(LlHlsConfig::default()).unwrap());
        let now = std::time::Instant::now();
        assert_eq!(stream.estimated_viewers(now), 0);
        // Five players reloading once per 334 ms part over the 2 s target duration.
        for _ in 0..30 {
            stream.record_poll(now);
        }
        assert_eq!(stream.estimated_viewers(now), 5);
    }

    #[test]
    fn a_playlist_is_rendered_once_per_change() {
        let stream = LlStream::new(Packager::new(LlHlsConfig::default()).unwrap());
        let metrics = Metrics::default();
        let mut epoch = None;
        let frames = sample_frames(1, 0, 3_000);
        let (first, rest) = frames.split_at(60);
        let mut feed_all = |frames: &[Frame]| {
            let mut state = stream.write();
            for frame in frames {
                feed(&mut state.packager, &mut epoch, frame, 1_000).unwrap();
            }
            drain(&mut state, &metrics, 1_000);
        };
        feed_all(first);
        let a = stream.playlist(Skip::No, &[]);
        let b = stream.playlist(Skip::No, &[]);
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same buffer, shared");
        let delta = stream.playlist(Skip::Yes, &[]);
        assert_eq!(stream.playlist(Skip::No, &[]).as_ptr(), a.as_ptr());
        assert_eq!(stream.playlist(Skip::Yes, &[]).as_ptr(), delta.as_ptr());
        feed_all(rest);
        let c = stream.playlist(Skip::No, &[]);
        assert_ne!(c, a, "rendered again after new parts");
        assert_eq!(c, stream.read().packager.render(Skip::No, &[]));
    }

    #[test]
    fn parts_are_dated_and_a_republish_is_a_discontinuity() {
        let packager = Packager::new(LlHlsConfig::default()).unwrap();
        let stream = LlStream::new(packager);
        let metrics = Metrics::default();
        let mut epoch = None;
        for (i, frame) in sample_frames(1, 0, 4_000)
            .iter()
            .chain(&sample_frames(2, 10_000, 4_000))
            .enumerate()
        {
            let mut state = stream.write();
            feed(&mut state.packager, &mut epoch, frame, 1_000 + i as u64).unwrap();
            drain(&mut state, &metrics, 1_000 + i as u64);
        }
        let state = stream.read();
        let edge = state.packager.live_edge();
        let last = edge.last_part.expect("parts were cut");
        assert!(state.completed_ms(last).is_some_and(|ms| ms > 1_000));
        assert!(state.completed_ms(PartId { msn: 0, part: 0 }).is_some());
        assert!(metrics.llhls_parts.get() > 10);
        let text = state.packager.render(Default::default(), &[]);
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    }
}
