//! `onMetaData` arguments as the hub's stream metadata.

use media_core::rtmp::amf0::Amf0;
use rml_rtmp::sessions::StreamMetadata;

/// Reads the known fields of the first object or associative array in `values`.
pub fn stream_metadata(values: &[Amf0]) -> StreamMetadata {
    let mut m = StreamMetadata::new();
    let Some(props) = values
        .iter()
        .find(|v| matches!(v, Amf0::Object(_) | Amf0::EcmaArray(_)))
    else {
        return m;
    };
    let num = |k: &str| {
        props
            .get(k)
            .and_then(Amf0::as_f64)
            .filter(|n| n.is_finite())
    };
    // Saturating float-to-int casts: out-of-range values clamp instead of wrapping.
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
    m.encoder = props
        .get("encoder")
        .and_then(Amf0::as_str)
        .map(str::to_string);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ecma_arrays_and_ignores_junk() {
        let values = [Amf0::EcmaArray(vec![
            ("width".into(), Amf0::Number(640.0)),
            ("framerate".into(), Amf0::Number(f64::NAN)),
            ("encoder".into(), Amf0::str("obs")),
        ])];
        let m = stream_metadata(&values);
        assert_eq!(m.video_width, Some(640));
        assert_eq!(m.video_frame_rate, None);
        assert_eq!(m.encoder.as_deref(), Some("obs"));
        assert_eq!(stream_metadata(&[Amf0::Null]).video_width, None);
    }
}
