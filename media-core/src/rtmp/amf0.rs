//! AMF0 values: the encoding of RTMP commands and metadata, decoded with a nesting limit.

use thiserror::Error;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0A;
const DATE: u8 = 0x0B;
const LONG_STRING: u8 = 0x0C;

/// Why AMF0 data could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AmfError {
    /// The data ends inside a value.
    #[error("truncated AMF0 value")]
    Truncated,
    /// A type marker this decoder does not know.
    #[error("unsupported AMF0 marker 0x{0:02x}")]
    Marker(u8),
    /// Containers nest deeper than allowed.
    #[error("AMF nesting deeper than {0}")]
    TooDeep(usize),
}

/// One AMF0 value. Object properties keep their wire order.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0 {
    /// IEEE 754 double.
    Number(f64),
    /// Boolean.
    Boolean(bool),
    /// UTF-8 string (short or long on the wire).
    String(String),
    /// Anonymous object.
    Object(Vec<(String, Amf0)>),
    /// Null.
    Null,
    /// Undefined.
    Undefined,
    /// Associative array.
    EcmaArray(Vec<(String, Amf0)>),
    /// Dense array.
    StrictArray(Vec<Amf0>),
    /// Milliseconds since the Unix epoch (the time zone field is ignored).
    Date(f64),
}

impl Amf0 {
    /// A string value.
    pub fn str(s: &str) -> Self {
        Self::String(s.to_string())
    }

    /// An object from `(name, value)` pairs.
    pub fn object<'a>(props: impl IntoIterator<Item = (&'a str, Amf0)>) -> Self {
        Self::Object(props.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// The string inside, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// A property of an object or associative array.
    pub fn get(&self, key: &str) -> Option<&Amf0> {
        match self {
            Self::Object(p) | Self::EcmaArray(p) => {
                p.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

/// Decodes every value in `data`; containers may nest at most `max_depth` deep.
pub fn decode_all(data: &[u8], max_depth: usize) -> Result<Vec<Amf0>, AmfError> {
    let mut r = Reader {
        data,
        at: 0,
        max_depth,
    };
    let mut out = Vec::new();
    while r.at < data.len() {
        out.push(r.value(0)?);
    }
    Ok(out)
}

/// Appends the encoding of `values`.
pub fn encode_all(values: &[Amf0], out: &mut Vec<u8>) {
    for v in values {
        encode(v, out);
    }
}

/// Appends the encoding of one value.
pub fn encode(value: &Amf0, out: &mut Vec<u8>) {
    match value {
        Amf0::Number(n) => {
            out.push(NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf0::Boolean(b) => out.extend_from_slice(&[BOOLEAN, u8::from(*b)]),
        Amf0::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.push(STRING);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Err(_) => {
                out.push(LONG_STRING);
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        },
        Amf0::Object(props) => {
            out.push(OBJECT);
            encode_props(props, out);
        }
        Amf0::Null => out.push(NULL),
        Amf0::Undefined => out.push(UNDEFINED),
        Amf0::EcmaArray(props) => {
            out.push(ECMA_ARRAY);
            out.extend_from_slice(&(props.len() as u32).to_be_bytes());
            encode_props(props, out);
        }
        Amf0::StrictArray(items) => {
            out.push(STRICT_ARRAY);
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for v in items {
                encode(v, out);
            }
        }
        Amf0::Date(ms) => {
            out.push(DATE);
            out.extend_from_slice(&ms.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
    }
}

fn encode_props(props: &[(String, Amf0)], out: &mut Vec<u8>) {
    for (k, v) in props {
        // Property names longer than a short string allows are cut; no real name is.
        let name = &k.as_bytes()[..k.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        encode(v, out);
    }
    out.extend_from_slice(&[0, 0, OBJECT_END]);
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    max_depth: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], AmfError> {
        let end = self.at.checked_add(n).ok_or(AmfError::Truncated)?;
        let bytes = self.data.get(self.at..end).ok_or(AmfError::Truncated)?;
        self.at = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, AmfError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, AmfError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Result<u32, AmfError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, AmfError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn string(&mut self, len: usize) -> Result<String, AmfError> {
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    /// The nesting level of a container opened inside one at `depth`.
    fn enter(&self, depth: usize) -> Result<usize, AmfError> {
        if depth >= self.max_depth {
            return Err(AmfError::TooDeep(self.max_depth));
        }
        Ok(depth + 1)
    }

    /// One value at nesting level `depth` (0 for top-level values).
    fn value(&mut self, depth: usize) -> Result<Amf0, AmfError> {
        let marker = self.u8()?;
        Ok(match marker {
            NUMBER => Amf0::Number(self.f64()?),
            BOOLEAN => Amf0::Boolean(self.u8()? != 0),
            STRING => {
                let n = self.u16()?;
                Amf0::String(self.string(n)?)
            }
            LONG_STRING => {
                let n = self.u32()? as usize;
                Amf0::String(self.string(n)?)
            }
            OBJECT => Amf0::Object(self.props(depth)?),
            NULL => Amf0::Null,
            UNDEFINED => Amf0::Undefined,
            ECMA_ARRAY => {
                self.u32()?;
                Amf0::EcmaArray(self.props(depth)?)
            }
            STRICT_ARRAY => {
                let inner = self.enter(depth)?;
                let n = self.u32()?;
                // Every element takes at least one byte, so the count cannot outrun the data.
                let mut items = Vec::with_capacity((n as usize).min(self.data.len() - self.at));
                for _ in 0..n {
                    items.push(self.value(inner)?);
                }
                Amf0::StrictArray(items)
            }
            DATE => {
                let ms = self.f64()?;
                self.take(2)?;
                Amf0::Date(ms)
            }
            m => return Err(AmfError::Marker(m)),
        })
    }

    fn props(&mut self, depth: usize) -> Result<Vec<(String, Amf0)>, AmfError> {
        let inner = self.enter(depth)?;
        let mut props = Vec::new();
        loop {
            let n = self.u16()?;
            if n == 0 {
                // An empty name followed by the end marker closes the object; some encoders
                // omit the marker at the very end of a message.
                match self.data.get(self.at) {
                    Some(&OBJECT_END) => {
                        self.at += 1;
                        return Ok(props);
                    }
                    None => return Ok(props),
                    Some(_) => {}
                }
            }
            let name = self.string(n)?;
            let value = self.value(inner)?;
            props.push((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: Vec<Amf0>) {
        let mut out = Vec::new();
        encode_all(&values, &mut out);
        assert_eq!(decode_all(&out, 16).expect("decodes"), values);
    }

    #[test]
    fn round_trips_every_type() {
        round_trip(vec![
            Amf0::str("connect"),
            Amf0::Number(1.0),
            Amf0::object([
                ("app", Amf0::str("live")),
                ("fpad", Amf0::Boolean(false)),
                ("n", Amf0::Null),
            ]),
            Amf0::Undefined,
            Amf0::EcmaArray(vec![("width".into(), Amf0::Number(640.0))]),
            Amf0::StrictArray(vec![Amf0::Number(1.0), Amf0::str("x")]),
            Amf0::Date(1.5e12),
            Amf0::String("l".repeat(70_000)),
        ]);
    }

    #[test]
    fn known_bytes_of_a_connect_command() {
        let mut out = Vec::new();
        encode_all(
            &[
                Amf0::str("connect"),
                Amf0::Number(1.0),
                Amf0::object([("app", Amf0::str("live"))]),
            ],
            &mut out,
        );
        let mut want = vec![0x02, 0x00, 0x07];
        want.extend_from_slice(b"connect");
        want.push(0x00);
        want.extend_from_slice(&1.0f64.to_be_bytes());
        want.extend_from_slice(&[0x03, 0x00, 0x03]);
        want.extend_from_slice(b"app");
        want.extend_from_slice(&[0x02, 0x00, 0x04]);
        want.extend_from_slice(b"live");
        want.extend_from_slice(&[0x00, 0x00, 0x09]);
        assert_eq!(out, want);
    }

    #[test]
    fn nesting_is_bounded_without_deep_recursion() {
        let deep = [OBJECT, 0x00, 0x01, b'k'].repeat(100_000);
        assert_eq!(decode_all(&deep, 16), Err(AmfError::TooDeep(16)));
        let arrays = [STRICT_ARRAY, 0, 0, 0, 1].repeat(100_000);
        assert_eq!(decode_all(&arrays, 16), Err(AmfError::TooDeep(16)));
        let mut ok = Vec::new();
        let mut v = Amf0::Number(1.0);
        for _ in 0..16 {
            v = Amf0::object([("k", v)]);
        }
        encode(&v, &mut ok);
        assert!(decode_all(&ok, 16).is_ok());
        assert_eq!(decode_all(&ok, 15), Err(AmfError::TooDeep(15)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(decode_all(&[0x02, 0xFF], 4), Err(AmfError::Truncated));
        assert_eq!(decode_all(&[0x0D], 4), Err(AmfError::Marker(0x0D)));
        assert_eq!(
            decode_all(&[STRICT_ARRAY, 0xFF, 0xFF, 0xFF, 0xFF], 4),
            Err(AmfError::Truncated)
        );
        assert_eq!(
            decode_all(&[LONG_STRING, 0xFF, 0xFF, 0xFF, 0xFF], 4),
            Err(AmfError::Truncated)
        );
    }
}
