//! FLV `onMetaData` script bodies to the RTMP session's metadata type.

use rml_amf0::Amf0Value;
use rml_rtmp::sessions::StreamMetadata;

/// Reads an FLV script tag body; `None` unless it is `onMetaData` with an object or array.
pub fn from_script(body: &[u8]) -> Option<StreamMetadata> {
    let values = rml_amf0::deserialize(&mut &body[..]).ok()?;
    let mut it = values.into_iter();
    match it.next()? {
        Amf0Value::Utf8String(name) if name == "onMetaData" => {}
        _ => return None,
    }
    let props = match it.next()? {
        Amf0Value::Object(p) => p,
        _ => return None,
    };
    let num = |k: &str| match props.get(k) {
        Some(Amf0Value::Number(n)) => Some(*n),
        _ => None,
    };
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
        Some(Amf0Value::Boolean(b)) => Some(*b),
        _ => None,
    };
    m.encoder = Some("livepulse".to_string());
    Some(m)
}
