//! A live test pattern encoded with libx264 through the system FFmpeg libraries (feature
//! `transcode`): any resolution, frame rate and bitrate, generated as it is published.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread;

use bytes::Bytes;
use ffmpeg_next as ffmpeg;
use media_core::avc::{self, AvcConfig};
use media_core::flv::{self, VideoPacket};
use media_core::rtmp::StreamMetadata;

use crate::source::{MediaSource, MediaTag, TagKind};

/// Frames the encoder thread may run ahead of the publisher.
const AHEAD: usize = 30;

/// What to encode: `WIDTHxHEIGHT@FPS` and a bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternSpec {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Target bitrate in bits per second.
    pub bitrate: u64,
}

impl PatternSpec {
    /// Parses `1280x720@30` and a bitrate such as `2500k` or `2M`.
    pub fn parse(size: &str, bitrate: &str) -> anyhow::Result<Self> {
        let bad = || anyhow::anyhow!("expected WIDTHxHEIGHT@FPS, e.g. 1280x720@30, got {size}");
        let (dims, fps) = size.split_once('@').ok_or_else(bad)?;
        let (w, h) = dims.split_once('x').ok_or_else(bad)?;
        let (width, height, fps): (u32, u32, u32) = (
            w.parse().map_err(|_| bad())?,
            h.parse().map_err(|_| bad())?,
            fps.parse().map_err(|_| bad())?,
        );
        if width == 0
            || height == 0
            || width % 2 == 1
            || height % 2 == 1
            || !(1..=120).contains(&fps)
        {
            return Err(bad());
        }
        let b = bitrate.to_ascii_lowercase();
        let (digits, scale) = match b.strip_suffix('k') {
            Some(d) => (d, 1_000),
            None => match b.strip_suffix('m') {
                Some(d) => (d, 1_000_000),
                None => (b.as_str(), 1),
            },
        };
        let bitrate = digits
            .parse::<u64>()
            .map_err(|_| anyhow::anyhow!("bad bitrate {bitrate}"))?
            * scale;
        Ok(Self {
            width,
            height,
            fps,
            bitrate,
        })
    }
}

/// Encoded pattern frames, produced on a dedicated thread.
pub struct PatternSource {
    header: MediaTag,
    metadata: StreamMetadata,
    frames: Receiver<anyhow::Result<MediaTag>>,
}

impl PatternSource {
    /// Starts the encoder thread and waits for its first keyframe (which yields the SPS/PPS).
    pub fn start(spec: PatternSpec) -> anyhow::Result<Self> {
        let (tx, rx) = sync_channel(AHEAD);
        let (cfg_tx, cfg_rx) = sync_channel(1);
        thread::Builder::new()
            .name("pattern-encoder".into())
            .spawn(move || {
                if let Err(e) = encode(spec, &tx, &cfg_tx) {
                    let _ = cfg_tx.try_send(Err(anyhow::anyhow!("{e}")));
                    let _ = tx.send(Err(e));
                }
            })?;
        let config: AvcConfig = cfg_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("pattern encoder stopped"))??;
        let mut metadata = StreamMetadata::new();
        metadata.video_width = Some(spec.width);
        metadata.video_height = Some(spec.height);
        metadata.video_frame_rate = Some(spec.fps as f32);
        metadata.video_codec_id = Some(u32::from(flv::CODEC_AVC));
        metadata.video_bitrate_kbps = Some((spec.bitrate / 1000) as u32);
        metadata.encoder = Some("livepulse pattern (libx264)".into());
        Ok(Self {
            header: MediaTag {
                kind: TagKind::Video,
                dts: 0,
                key: true,
                payload: Bytes::from(flv::avc_video_tag(
                    true,
                    VideoPacket::SequenceHeader,
                    0,
                    &config.to_bytes(),
                )),
            },
            metadata,
            frames: rx,
        })
    }
}

impl MediaSource for PatternSource {
    fn headers(&self) -> Vec<MediaTag> {
        vec![self.header.clone()]
    }

    fn metadata(&self) -> Option<StreamMetadata> {
        Some(self.metadata.clone())
    }

    /// Blocks only while the encoder, which runs ahead of real time, is behind.
    fn next_tag(&mut self) -> anyhow::Result<MediaTag> {
        self.frames
            .recv()
            .map_err(|_| anyhow::anyhow!("pattern encoder stopped"))?
    }

    fn next_keyframe(&mut self) -> anyhow::Result<MediaTag> {
        loop {
            let tag = self.next_tag()?;
            if tag.key {
                return Ok(tag);
            }
        }
    }
}

/// Paints frame `n`: moving diagonal luma bands over slowly cycling chroma.
fn paint(frame: &mut ffmpeg::frame::Video, n: u64) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let stride = frame.stride(0);
    let y = frame.data_mut(0);
    for row in 0..h {
        for col in 0..w {
            y[row * stride + col] = ((row + col + n as usize * 4) % 220 + 16) as u8;
        }
    }
    for plane in 1..3 {
        let value = (128 + ((n as i64 * (plane as i64 * 2 + 1)) % 64 - 32)) as u8;
        frame.data_mut(plane).fill(value);
    }
}

fn encode(
    spec: PatternSpec,
    tx: &std::sync::mpsc::SyncSender<anyhow::Result<MediaTag>>,
    cfg_tx: &std::sync::mpsc::SyncSender<anyhow::Result<AvcConfig>>,
) -> anyhow::Result<()> {
    ffmpeg::init()?;
    let codec = ffmpeg::encoder::find_by_name("libx264")
        .ok_or_else(|| anyhow::anyhow!("libx264 is not available in the FFmpeg libraries"))?;
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()?;
    enc.set_width(spec.width);
    enc.set_height(spec.height);
    enc.set_format(ffmpeg::format::Pixel::YUV420P);
    enc.set_time_base((1, spec.fps as i32));
    enc.set_frame_rate(Some((spec.fps as i32, 1)));
    enc.set_bit_rate(spec.bitrate as usize);
    enc.set_max_bit_rate(spec.bitrate as usize);
    enc.set_gop(spec.fps * 2);
    enc.set_max_b_frames(0);
    let mut options = ffmpeg::Dictionary::new();
    options.set("preset", "veryfast");
    options.set("tune", "zerolatency");
    let mut encoder = enc.open_with(options)?;
    let mut frame =
        ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, spec.width, spec.height);
    let mut packet = ffmpeg::Packet::empty();
    let mut config_sent = false;
    for n in 0u64.. {
        paint(&mut frame, n);
        frame.set_pts(Some(n as i64));
        encoder.send_frame(&frame)?;
        while encoder.receive_packet(&mut packet).is_ok() {
            let Some(data) = packet.data() else { continue };
            let nalus = avc::annexb_nalus(data);
            if !config_sent {
                let sps: Vec<Bytes> = nalus
                    .iter()
                    .filter(|n| avc::nal_type(n) == avc::NAL_SPS)
                    .map(|n| Bytes::copy_from_slice(n))
                    .collect();
                let pps: Vec<Bytes> = nalus
                    .iter()
                    .filter(|n| avc::nal_type(n) == avc::NAL_PPS)
                    .map(|n| Bytes::copy_from_slice(n))
                    .collect();
                let Some(first) = sps.first() else { continue };
                let config = AvcConfig {
                    profile: first.get(1).copied().unwrap_or(100),
                    compatibility: first.get(2).copied().unwrap_or(0),
                    level: first.get(3).copied().unwrap_or(31),
                    nalu_length_size: 4,
                    sps,
                    pps,
                };
                if cfg_tx.send(Ok(config)).is_err() {
                    return Ok(());
                }
                config_sent = true;
            }
            let dts_ms =
                packet.dts().unwrap_or(n as i64).max(0) as u64 * 1000 / u64::from(spec.fps);
            let tag = MediaTag {
                kind: TagKind::Video,
                dts: dts_ms,
                key: packet.is_key(),
                payload: Bytes::from(flv::avc_video_tag(
                    packet.is_key(),
                    VideoPacket::Nalu,
                    0,
                    &avc::annexb_to_avcc(data),
                )),
            };
            if tx.send(Ok(tag)).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_size_rate_and_bitrate() {
        assert_eq!(
            PatternSpec::parse("1280x720@30", "2500k").expect("valid"),
            PatternSpec {
                width: 1280,
                height: 720,
                fps: 30,
                bitrate: 2_500_000
            }
        );
        assert_eq!(
            PatternSpec::parse("320x240@25", "1M")
                .expect("valid")
                .bitrate,
            1_000_000
        );
        assert!(PatternSpec::parse("1280x720", "1k").is_err());
        assert!(PatternSpec::parse("1281x720@30", "1k").is_err());
        assert!(PatternSpec::parse("1280x720@30", "fast").is_err());
    }

    #[test]
    fn encodes_a_keyframe_first_with_a_matching_sps() {
        let mut src = PatternSource::start(PatternSpec::parse("320x240@30", "300k").expect("spec"))
            .expect("libx264 encoder starts");
        let header = &src.headers()[0];
        let cfg = AvcConfig::parse(&header.payload[flv::VIDEO_HEADER_LEN..]).expect("avc config");
        assert_eq!(cfg.dimensions(), Some((320, 240)));
        let first = src.next_keyframe().expect("keyframe");
        assert!(first.key);
        let mut last = first.dts;
        for _ in 0..60 {
            let t = src.next_tag().expect("frame");
            assert!(t.dts > last, "dts {} after {last}", t.dts);
            last = t.dts;
        }
    }
}
