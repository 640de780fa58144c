//! Bounds AMF0 nesting before the recursive AMF decoder sees a message.
//!
//! The AMF decoder used by the RTMP session recurses once per nested object, so a peer
//! could send millions of nested markers and overflow the stack. This iterative scan
//! rejects such messages first; it only tracks structure and leaves decoding to the session.

/// A message nests deeper than allowed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("AMF nesting deeper than {0}")]
pub struct TooDeep(pub usize);

enum Container {
    Object,
    Array(u32),
}

fn be_u16(data: &[u8], at: usize) -> Option<usize> {
    let b = data.get(at..at + 2)?;
    Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
}

fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Checks that AMF0 values in `data` nest at most `max_depth` containers deep.
/// Truncated or unknown data ends the scan without error: the decoder reports those.
pub fn check(data: &[u8], max_depth: usize) -> Result<(), TooDeep> {
    let mut stack: Vec<Container> = Vec::new();
    let mut i = 0usize;
    loop {
        match stack.last_mut() {
            Some(Container::Object) => {
                let Some(name_len) = be_u16(data, i) else {
                    return Ok(());
                };
                if name_len == 0 && data.get(i + 2) == Some(&0x09) {
                    i += 3;
                    stack.pop();
                    continue;
                }
                i += 2 + name_len;
            }
            Some(Container::Array(0)) => {
                stack.pop();
                continue;
            }
            Some(Container::Array(n)) => *n -= 1,
            None if i >= data.len() => return Ok(()),
            None => {}
        }
        let Some(&marker) = data.get(i) else {
            return Ok(());
        };
        i += 1;
        match marker {
            0x00 => i += 8,
            0x01 => i += 1,
            0x02 => match be_u16(data, i) {
                Some(n) => i += 2 + n,
                None => return Ok(()),
            },
            0x03 => stack.push(Container::Object),
            0x05 | 0x06 => {}
            0x08 => {
                i += 4;
                stack.push(Container::Object);
            }
            0x0A => match be_u32(data, i) {
                Some(n) => {
                    i += 4;
                    stack.push(Container::Array(n));
                }
                None => return Ok(()),
            },
            0x0B => i += 10,
            0x0C => match be_u32(data, i) {
                Some(n) => i += 4 + n as usize,
                None => return Ok(()),
            },
            _ => return Ok(()),
        }
        if stack.len() > max_depth {
            return Err(TooDeep(max_depth));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rml_amf0::Amf0Value;
    use std::collections::HashMap;

    fn nested(depth: usize) -> Vec<u8> {
        let mut v = Amf0Value::Number(1.0);
        for _ in 0..depth {
            v = Amf0Value::Object(HashMap::from([("k".to_string(), v)]));
        }
        rml_amf0::serialize(&vec![Amf0Value::Utf8String("connect".into()), v]).expect("encodes")
    }

    #[test]
    fn accepts_shallow_and_rejects_deep() {
        assert_eq!(check(&nested(3), 4), Ok(()));
        assert_eq!(check(&nested(5), 4), Err(TooDeep(4)));
    }

    #[test]
    fn million_nested_objects_rejected_without_recursion() {
        let data = [0x03, 0x00, 0x01, b'k'].repeat(1_000_000);
        assert_eq!(check(&data, 16), Err(TooDeep(16)));
    }

    #[test]
    fn nested_strict_arrays_counted() {
        let mut data = Vec::new();
        for _ in 0..10 {
            data.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
        }
        data.push(0x05);
        assert_eq!(check(&data, 9), Err(TooDeep(9)));
        assert_eq!(check(&data, 10), Ok(()));
    }

    #[test]
    fn garbage_and_truncation_are_left_to_the_decoder() {
        assert_eq!(check(&[0xFF, 0x03], 1), Ok(()));
        assert_eq!(check(&[0x02, 0xFF], 1), Ok(()));
        assert_eq!(check(&[], 1), Ok(()));
    }
}
