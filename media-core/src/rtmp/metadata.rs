//! Stream metadata (`onMetaData`): the fields players and outputs use, to and from AMF0.

use super::amf0::{self, Amf0};

/// The well-known `onMetaData` fields of a live stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamMetadata {
    /// Video width in pixels.
    pub video_width: Option<u32>,
    /// Video height in pixels.
    pub video_height: Option<u32>,
    /// FLV video codec id (7 for H.264).
    pub video_codec_id: Option<u32>,
    /// Frames per second.
    pub video_frame_rate: Option<f32>,
    /// Video bitrate in kbit/s.
    pub video_bitrate_kbps: Option<u32>,
    /// FLV sound format (10 for AAC).
    pub audio_codec_id: Option<u32>,
    /// Audio bitrate in kbit/s.
    pub audio_bitrate_kbps: Option<u32>,
    /// Audio sample rate in Hz.
    pub audio_sample_rate: Option<u32>,
    /// Audio channels.
    pub audio_channels: Option<u32>,
    /// Stereo audio.
    pub audio_is_stereo: Option<bool>,
    /// Encoder name.
    pub encoder: Option<String>,
}

impl StreamMetadata {
    /// No fields known.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the fields of the first object or associative array among `onMetaData`'s
    /// arguments; unknown, non-finite or mistyped fields stay unset.
    pub fn from_values(values: &[Amf0]) -> Self {
        let mut m = Self::new();
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
        // Float-to-int casts saturate: out-of-range values clamp instead of wrapping.
        let int = |k: &str| num(k).map(|v| v as u32);
        m.video_width = int("width");
        m.video_height = int("height");
        m.video_codec_id = int("videocodecid");
        m.video_frame_rate = num("framerate").map(|v| v as f32);
        m.video_bitrate_kbps = int("videodatarate");
        m.audio_codec_id = int("audiocodecid");
        m.audio_bitrate_kbps = int("audiodatarate");
        m.audio_sample_rate = int("audiosamplerate");
        m.audio_channels = int("audiochannels");
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

    /// Reads an FLV script tag body; `None` unless it is `onMetaData`.
    pub fn from_script(body: &[u8], max_depth: usize) -> Option<Self> {
        let values = amf0::decode_all(body, max_depth).ok()?;
        let (name, args) = values.split_first()?;
        (name.as_str() == Some("onMetaData")).then(|| Self::from_values(args))
    }

    /// The known fields as the associative array `onMetaData` carries.
    pub fn to_value(&self) -> Amf0 {
        let mut props = Vec::new();
        let mut num = |k: &str, v: Option<f64>| {
            if let Some(v) = v {
                props.push((k.to_string(), Amf0::Number(v)));
            }
        };
        num("width", self.video_width.map(f64::from));
        num("height", self.video_height.map(f64::from));
        num("videocodecid", self.video_codec_id.map(f64::from));
        num("framerate", self.video_frame_rate.map(f64::from));
        num("videodatarate", self.video_bitrate_kbps.map(f64::from));
        num("audiocodecid", self.audio_codec_id.map(f64::from));
        num("audiodatarate", self.audio_bitrate_kbps.map(f64::from));
        num("audiosamplerate", self.audio_sample_rate.map(f64::from));
        num("audiochannels", self.audio_channels.map(f64::from));
        if let Some(stereo) = self.audio_is_stereo {
            props.push(("stereo".into(), Amf0::Boolean(stereo)));
        }
        if let Some(encoder) = &self.encoder {
            props.push(("encoder".into(), Amf0::String(encoder.clone())));
        }
        Amf0::EcmaArray(props)
    }

    /// The body of an FLV script tag or RTMP data message: `"onMetaData"`, then the fields.
    pub fn script_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        amf0::encode_all(&[Amf0::str("onMetaData"), self.to_value()], &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_script_body() {
        let m = StreamMetadata {
            video_width: Some(640),
            video_frame_rate: Some(30.0),
            audio_is_stereo: Some(true),
            encoder: Some("x".into()),
            ..StreamMetadata::new()
        };
        assert_eq!(StreamMetadata::from_script(&m.script_body(), 4), Some(m));
        assert_eq!(StreamMetadata::from_script(b"\x02\x00\x01x", 4), None);
    }

    #[test]
    fn junk_fields_stay_unset() {
        let values = [Amf0::Object(vec![
            ("width".into(), Amf0::Number(-5.0)),
            ("framerate".into(), Amf0::Number(f64::NAN)),
            ("height".into(), Amf0::str("tall")),
        ])];
        let m = StreamMetadata::from_values(&values);
        assert_eq!(m.video_width, Some(0));
        assert_eq!(m.video_frame_rate, None);
        assert_eq!(m.video_height, None);
        assert_eq!(
            StreamMetadata::from_values(&[Amf0::Null]),
            StreamMetadata::new()
        );
    }
}
