//! Command messages (`connect`, `createStream`, `publish`, `play`, `onStatus`, `_result`, ...)
//! and data messages, as AMF0.

use super::amf0::{self, Amf0, AmfError};
use super::{TYPE_AMF3_COMMAND, TYPE_AMF3_DATA};

/// One command: name, transaction id, command object, then further arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Command name.
    pub name: String,
    /// Transaction id (0 when no answer is expected).
    pub transaction: f64,
    /// The command object (often `Null`).
    pub object: Amf0,
    /// Remaining arguments.
    pub args: Vec<Amf0>,
}

/// The AMF0 part of a command or data message: AMF3 message types carry one leading byte.
fn amf0_body(type_id: u8, payload: &[u8]) -> &[u8] {
    match type_id {
        TYPE_AMF3_COMMAND | TYPE_AMF3_DATA => payload.get(1..).unwrap_or_default(),
        _ => payload,
    }
}

/// The arguments of an `onMetaData` data message, with or without the `@setDataFrame` a
/// publisher puts first; `None` for any other data message.
pub fn metadata_args(
    type_id: u8,
    payload: &[u8],
    max_depth: usize,
) -> Result<Option<Vec<Amf0>>, AmfError> {
    let mut values = amf0::decode_all(amf0_body(type_id, payload), max_depth)?.into_iter();
    let mut name = values.next();
    if name.as_ref().and_then(Amf0::as_str) == Some("@setDataFrame") {
        name = values.next();
    }
    Ok((name.as_ref().and_then(Amf0::as_str) == Some("onMetaData")).then(|| values.collect()))
}

impl Command {
    /// A command with the given parts.
    pub fn new(name: &str, transaction: f64, object: Amf0, args: Vec<Amf0>) -> Self {
        Self {
            name: name.to_string(),
            transaction,
            object,
            args,
        }
    }

    /// Decodes a command message body (type 20, or 17 with its leading byte).
    pub fn decode(type_id: u8, payload: &[u8], max_depth: usize) -> Result<Self, AmfError> {
        let mut values = amf0::decode_all(amf0_body(type_id, payload), max_depth)?.into_iter();
        let name = match values.next() {
            Some(Amf0::String(s)) => s,
            _ => return Err(AmfError::Truncated),
        };
        let transaction = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let object = values.next().unwrap_or(Amf0::Null);
        Ok(Self {
            name,
            transaction,
            object,
            args: values.collect(),
        })
    }

    /// The AMF0 command message body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        amf0::encode(&Amf0::String(self.name.clone()), &mut out);
        amf0::encode(&Amf0::Number(self.transaction), &mut out);
        amf0::encode(&self.object, &mut out);
        amf0::encode_all(&self.args, &mut out);
        out
    }

    /// The first argument as a string (stream names of `publish`, `play`, ...).
    pub fn arg_str(&self, i: usize) -> Option<&str> {
        self.args.get(i).and_then(Amf0::as_str)
    }
}

/// A status object: `{level, code, description}`.
pub fn status(level: &str, code: &str, description: &str) -> Amf0 {
    Amf0::object([
        ("level", Amf0::str(level)),
        ("code", Amf0::str(code)),
        ("description", Amf0::str(description)),
    ])
}

/// An `onStatus` command carrying a status object.
pub fn on_status(level: &str, code: &str, description: &str) -> Command {
    Command::new(
        "onStatus",
        0.0,
        Amf0::Null,
        vec![status(level, code, description)],
    )
}

/// `(level, code, description)` of a status object; missing fields are empty.
pub fn status_fields(info: Option<&Amf0>) -> (String, String, String) {
    let field = |k: &str| {
        info.and_then(|i| i.get(k))
            .and_then(Amf0::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (field("level"), field("code"), field("description"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        let c = Command::new(
            "publish",
            5.0,
            Amf0::Null,
            vec![Amf0::str("cam"), Amf0::str("live")],
        );
        assert_eq!(Command::decode(20, &c.encode(), 8), Ok(c.clone()));
        let mut amf3 = vec![0];
        amf3.extend(c.encode());
        assert_eq!(Command::decode(TYPE_AMF3_COMMAND, &amf3, 8), Ok(c));
    }

    #[test]
    fn a_command_needs_a_name() {
        let mut body = Vec::new();
        amf0::encode(&Amf0::Number(1.0), &mut body);
        assert!(Command::decode(20, &body, 8).is_err());
        assert!(Command::decode(20, &[], 8).is_err());
    }

    #[test]
    fn metadata_with_and_without_set_data_frame() {
        let mut body = Vec::new();
        amf0::encode_all(
            &[
                Amf0::str("@setDataFrame"),
                Amf0::str("onMetaData"),
                Amf0::Null,
            ],
            &mut body,
        );
        assert_eq!(metadata_args(18, &body, 4), Ok(Some(vec![Amf0::Null])));
        let mut plain = Vec::new();
        amf0::encode_all(&[Amf0::str("onMetaData")], &mut plain);
        assert_eq!(metadata_args(18, &plain, 4), Ok(Some(Vec::new())));
        let mut other = Vec::new();
        amf0::encode_all(&[Amf0::str("|RtmpSampleAccess")], &mut other);
        assert_eq!(metadata_args(18, &other, 4), Ok(None));
    }

    #[test]
    fn status_fields_read_back() {
        let c = on_status("error", "NetStream.Play.StreamNotFound", "no such stream");
        let (level, code, description) = status_fields(c.args.first());
        assert_eq!(level, "error");
        assert_eq!(code, "NetStream.Play.StreamNotFound");
        assert_eq!(description, "no such stream");
    }
}
