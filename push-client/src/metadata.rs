//! FLV `onMetaData` script bodies to the RTMP session's metadata type.

use media_core::rtmp::amf0::{self, Amf0};
use rml_rtmp::sessions::StreamMetadata;

/// Reads an FLV script tag body; `None` unless it is `onMetaData` with an object or array.
pub fn from_script(body: &[u8]) -> Option<StreamMetadata> {
    let values = amf0::decode_all(body, 8).ok()?;
    let mut it = values.into_iter();
    if it.next()?.as_str() != Some("onMetaData") {
        return None;
    }
    let props = it.next()?;
    let num = |k: &str| props.get(k).and_then(Amf0::as_f64);
    let mut m = StreamMetadata::new();
    m.video_width = num("width").map(|v| v as u32);
    m.video_height = num("height").map(|v| v as u32);
    m.video_codec_id = num("videocodecid").map(|v| v as u32);
    m.video_frame_rate = num("framerate").map(|v| v as f32);
    m.video_bitrate_kbps = num("videodatarate").map(|v| v as u32);
    m.audio_codec_id = num("audiocodecid").map(|v| v as u32);
    m.audio_bitrate_kbps = num("audiodatarate").map(|v| v as u32);
    m.audio_sample_rate = num("audiosamplerate").map(|v| v as u32);
    m.audio_channels = num("audiochannels").map(|v| v as u32);
    m.audio_is_stereo = match props.get("stereo") {
        Some(Amf0::Boolean(b)) => Some(*b),
        _ => None,
    };
    m.encoder = Some("livepulse".to_string());
    Some(m)
}

/// The session's metadata as the `onMetaData` argument RTMP carries.
pub fn to_amf(m: &StreamMetadata) -> Vec<Amf0> {
    let mut props = Vec::new();
    let mut num = |k: &str, v: Option<f64>| {
        if let Some(v) = v {
            props.push((k.to_string(), Amf0::Number(v)));
        }
    };
    num("width", m.video_width.map(f64::from));
    num("height", m.video_height.map(f64::from));
    num("videocodecid", m.video_codec_id.map(f64::from));
    num("framerate", m.video_frame_rate.map(f64::from));
    num("videodatarate", m.video_bitrate_kbps.map(f64::from));
    num("audiocodecid", m.audio_codec_id.map(f64::from));
    num("audiodatarate", m.audio_bitrate_kbps.map(f64::from));
    num("audiosamplerate", m.audio_sample_rate.map(f64::from));
    num("audiochannels", m.audio_channels.map(f64::from));
    if let Some(stereo) = m.audio_is_stereo {
        props.push(("stereo".into(), Amf0::Boolean(stereo)));
    }
    if let Some(encoder) = &m.encoder {
        props.push(("encoder".into(), Amf0::String(encoder.clone())));
    }
    vec![Amf0::EcmaArray(props)]
}
