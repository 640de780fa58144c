//! Stream metadata as AMF0 `onMetaData`, the script message FLV viewers expect first.

use std::collections::HashMap;

use bytes::Bytes;
use rml_amf0::Amf0Value;
use rml_rtmp::sessions::StreamMetadata;

/// Encodes metadata as the body of an FLV script tag (`"onMetaData"`, object).
pub fn on_metadata_body(meta: &StreamMetadata) -> Bytes {
    let mut props = HashMap::new();
    let mut num = |name: &str, v: Option<f64>| {
        if let Some(v) = v {
            props.insert(name.to_string(), Amf0Value::Number(v));
        }
    };
    num("width", meta.video_width.map(f64::from));
    num("height", meta.video_height.map(f64::from));
    num("videocodecid", meta.video_codec_id.map(f64::from));
    num("videodatarate", meta.video_bitrate_kbps.map(f64::from));
    num("framerate", meta.video_frame_rate.map(f64::from));
    num("audiocodecid", meta.audio_codec_id.map(f64::from));
    num("audiodatarate", meta.audio_bitrate_kbps.map(f64::from));
    num("audiosamplerate", meta.audio_sample_rate.map(f64::from));
    num("audiochannels", meta.audio_channels.map(f64::from));
    if let Some(stereo) = meta.audio_is_stereo {
        props.insert("stereo".to_string(), Amf0Value::Boolean(stereo));
    }
    if let Some(encoder) = &meta.encoder {
        props.insert(
            "encoder".to_string(),
            Amf0Value::Utf8String(encoder.clone()),
        );
    }
    let values = vec![
        Amf0Value::Utf8String("onMetaData".to_string()),
        Amf0Value::Object(props),
    ];
    // Serializing numbers, strings and a flat object cannot fail.
    Bytes::from(rml_amf0::serialize(&values).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_amf0() {
        let mut meta = StreamMetadata::new();
        meta.video_width = Some(640);
        meta.encoder = Some("x".into());
        let body = on_metadata_body(&meta);
        let values = rml_amf0::deserialize(&mut &body[..]).expect("valid amf0");
        assert_eq!(values[0], Amf0Value::Utf8String("onMetaData".into()));
        let Amf0Value::Object(props) = &values[1] else {
            panic!("object expected")
        };
        assert_eq!(props.get("width"), Some(&Amf0Value::Number(640.0)));
    }
}
