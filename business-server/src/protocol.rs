//! Versioned JSON wire protocol: client messages, room events, direct replies, error codes.
//!
//! Every message is a JSON object with a `type` field; `v` (protocol version) defaults
//! to [`VERSION`]. See `docs/PROTOCOL.md` for examples.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::gift::Rank;
use crate::sale::{Outcome, Phase, SaleState};

/// Protocol version spoken by this server.
pub const VERSION: u32 = 1;

/// Longest client-chosen `id` echoed back as `ref`.
pub const MAX_REF_LEN: usize = 64;

/// Stable error codes, sent as `{"type":"error","code":...}` or in HTTP error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message is not a JSON object with a string `type`.
    BadJson,
    /// `type` names no known client message.
    UnknownType,
    /// The message has a field its type does not define.
    UnknownField,
    /// A field is missing or has a bad value.
    InvalidField,
    /// `v` is not a supported protocol version.
    UnsupportedVersion,
    /// The message exceeds the size limit.
    MessageTooLarge,
    /// The JSON nests deeper than allowed.
    JsonTooDeep,
    /// Binary frames are not part of the protocol.
    BinaryUnsupported,
    /// Too many messages; `retry_after_ms` says when to try again.
    RateLimited,
    /// Anonymous viewers may read but not write.
    ReadOnly,
    /// The role of the token does not allow this.
    Forbidden,
    /// The room requires a token.
    TokenMissing,
    /// The token is malformed or its signature is wrong.
    TokenInvalid,
    /// The token has expired.
    TokenExpired,
    /// The token is for another room.
    TokenRoomMismatch,
    /// The admin key is missing or wrong.
    Unauthorized,
    /// The room name is not 1-64 characters of `[A-Za-z0-9_-]`.
    InvalidRoom,
    /// Too many connections from this IP address.
    TooManyConnections,
    /// The gift is not in the catalogue.
    UnknownGift,
    /// No sale has this id.
    UnknownSale,
    /// A sale with this id already exists.
    SaleExists,
    /// The store (Redis) failed; the request may be retried.
    StoreUnavailable,
    /// The member fell too far behind and was disconnected.
    Lagging,
    /// The server is shutting down.
    ShuttingDown,
}

impl ErrorCode {
    /// Every code, in declaration order (index = `self as usize`).
    pub const ALL: [ErrorCode; 24] = [
        Self::BadJson,
        Self::UnknownType,
        Self::UnknownField,
        Self::InvalidField,
        Self::UnsupportedVersion,
        Self::MessageTooLarge,
        Self::JsonTooDeep,
        Self::BinaryUnsupported,
        Self::RateLimited,
        Self::ReadOnly,
        Self::Forbidden,
        Self::TokenMissing,
        Self::TokenInvalid,
        Self::TokenExpired,
        Self::TokenRoomMismatch,
        Self::Unauthorized,
        Self::InvalidRoom,
        Self::TooManyConnections,
        Self::UnknownGift,
        Self::UnknownSale,
        Self::SaleExists,
        Self::StoreUnavailable,
        Self::Lagging,
        Self::ShuttingDown,
    ];

    /// The wire name, e.g. `"bad_json"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::UnknownType => "unknown_type",
            Self::UnknownField => "unknown_field",
            Self::InvalidField => "invalid_field",
            Self::UnsupportedVersion => "unsupported_version",
            Self::MessageTooLarge => "message_too_large",
            Self::JsonTooDeep => "json_too_deep",
            Self::BinaryUnsupported => "binary_unsupported",
            Self::RateLimited => "rate_limited",
            Self::ReadOnly => "read_only",
            Self::Forbidden => "forbidden",
            Self::TokenMissing => "token_missing",
            Self::TokenInvalid => "token_invalid",
            Self::TokenExpired => "token_expired",
            Self::TokenRoomMismatch => "token_room_mismatch",
            Self::Unauthorized => "unauthorized",
            Self::InvalidRoom => "invalid_room",
            Self::TooManyConnections => "too_many_connections",
            Self::UnknownGift => "unknown_gift",
            Self::UnknownSale => "unknown_sale",
            Self::SaleExists => "sale_exists",
            Self::StoreUnavailable => "store_unavailable",
            Self::Lagging => "lagging",
            Self::ShuttingDown => "shutting_down",
        }
    }
}

/// A rejected message: a stable code plus a human-readable reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ProtoError {
    /// Stable code.
    pub code: ErrorCode,
    /// Explanation for people.
    pub message: String,
}

impl ProtoError {
    /// Builds an error from a code and a reason.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Where a bullet-screen message should be drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Scrolls across the video (default).
    #[default]
    Scroll,
    /// Pinned at the top.
    Top,
    /// Pinned at the bottom.
    Bottom,
}

/// `chat`: a bullet-screen message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatIn {
    /// Text, 1..=max_chat_chars characters.
    pub text: String,
    /// `#rrggbb`; default white.
    #[serde(default)]
    pub color: Option<String>,
    /// Position hint.
    #[serde(default)]
    pub position: Position,
}

/// `like`: taps since the last like message (clients aggregate taps too).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LikeIn {
    /// 1..=100, default 1.
    #[serde(default = "one")]
    pub count: u32,
}

/// `gift`: send a catalogue gift.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiftIn {
    /// Catalogue id, e.g. `rose`.
    pub gift: String,
    /// 1..=99, default 1.
    #[serde(default = "one")]
    pub count: u32,
}

/// `purchase`: try to buy one unit in a flash sale.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseIn {
    /// Sale id.
    pub sale: String,
    /// Idempotency key: a retry with the same key gets the same answer.
    pub key: String,
}

/// `notice`: a system notice from a host or admin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeIn {
    /// Notice text.
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

fn one() -> u32 {
    1
}

/// A parsed client message.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// Bullet-screen chat.
    Chat(ChatIn),
    /// Aggregated likes.
    Like(LikeIn),
    /// Gift.
    Gift(GiftIn),
    /// Flash-sale purchase.
    Purchase(PurchaseIn),
    /// System notice (host/admin).
    Notice(NoticeIn),
    /// Liveness check, answered with `pong`.
    Ping,
    /// Leave the room and close.
    Leave,
}

/// A client message with its optional `id`, echoed as `ref` in replies.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// Client-chosen id.
    pub id: Option<String>,
    /// The message.
    pub message: ClientMessage,
}

/// Deepest nesting of objects/arrays in `text`, stopping early once past `limit`.
pub fn json_depth(text: &[u8], limit: usize) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in text {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if max > limit {
                        return max;
                    }
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses one client text message, enforcing depth, version and known fields.
pub fn parse(text: &str, max_depth: usize) -> Result<Incoming, ProtoError> {
    if json_depth(text.as_bytes(), max_depth) > max_depth {
        return Err(ProtoError::new(
            ErrorCode::JsonTooDeep,
            format!("JSON nests deeper than {max_depth} levels"),
        ));
    }
    let mut map = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(ProtoError::new(
                ErrorCode::BadJson,
                "expected a JSON object",
            ))
        }
        Err(e) => {
            return Err(ProtoError::new(
                ErrorCode::BadJson,
                format!("invalid JSON: {e}"),
            ))
        }
    };
    let id = match map.remove("id") {
        None => None,
        Some(Value::String(s)) if s.len() <= MAX_REF_LEN => Some(s),
        Some(_) => {
            return Err(ProtoError::new(
                ErrorCode::InvalidField,
                format!("id must be a string of at most {MAX_REF_LEN} bytes"),
            ))
        }
    };
    let fail = |e: ProtoError| ProtoError {
        message: match &id {
            Some(id) => format!("{} (id {id})", e.message),
            None => e.message,
        },
        code: e.code,
    };
    match map.remove("v") {
        None => {}
        Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
        Some(v) => {
            return Err(fail(ProtoError::new(
                ErrorCode::UnsupportedVersion,
                format!("protocol version {v} is not supported; this server speaks {VERSION}"),
            )))
        }
    }
    let ty = match map.remove("type") {
        Some(Value::String(t)) => t,
        _ => {
            return Err(fail(ProtoError::new(
                ErrorCode::BadJson,
                "missing string field `type`",
            )))
        }
    };
    let message = match ty.as_str() {
        "chat" => ClientMessage::Chat(fields(map).map_err(fail)?),
        "like" => ClientMessage::Like(fields(map).map_err(fail)?),
        "gift" => ClientMessage::Gift(fields(map).map_err(fail)?),
        "purchase" => ClientMessage::Purchase(fields(map).map_err(fail)?),
        "notice" => ClientMessage::Notice(fields(map).map_err(fail)?),
        "ping" => fields::<Empty>(map)
            .map(|_| ClientMessage::Ping)
            .map_err(fail)?,
        "leave" => fields::<Empty>(map)
            .map(|_| ClientMessage::Leave)
            .map_err(fail)?,
        other => {
            let mut shown: String = other.chars().take(32).collect();
            if shown.len() < other.len() {
                shown.push('…');
            }
            return Err(fail(ProtoError::new(
                ErrorCode::UnknownType,
                format!("unknown message type `{shown}`"),
            )));
        }
    };
    Ok(Incoming { id, message })
}

fn fields<T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, ProtoError> {
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        let msg = e.to_string();
        let code = if msg.starts_with("unknown field") {
            ErrorCode::UnknownField
        } else {
            ErrorCode::InvalidField
        };
        ProtoError::new(code, msg)
    })
}

/// Checks a `#rrggbb` color.
pub fn valid_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Room events: merged into `batch` messages shared by every member of a room.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event<'a> {
    /// A named user joined.
    Join {
        /// User id.
        user: &'a str,
    },
    /// A named user left.
    Leave {
        /// User id.
        user: &'a str,
    },
    /// Bullet-screen message.
    Chat {
        /// Sender.
        user: &'a str,
        /// Text.
        text: &'a str,
        /// `#rrggbb`.
        color: &'a str,
        /// Position hint.
        position: Position,
        /// Server time, unix milliseconds.
        ts: u64,
    },
    /// Likes aggregated over one tick of one instance.
    Likes {
        /// Likes in this tick.
        delta: u64,
        /// Room total.
        total: u64,
    },
    /// A gift was sent.
    Gift {
        /// Sender.
        user: &'a str,
        /// Catalogue id.
        gift: &'a str,
        /// Units.
        count: u32,
        /// Total value (price × count).
        value: u64,
    },
    /// Online members across all instances (periodic).
    Online {
        /// Count.
        count: u64,
    },
    /// Top gift senders of the room, when it changed.
    Leaderboard {
        /// Highest first.
        top: &'a [Rank],
    },
    /// System notice.
    Notice {
        /// Text.
        text: &'a str,
        /// `info` or `warning`.
        level: &'a str,
    },
    /// The room's flash sale: when announced, and when its remaining stock changed.
    Sale {
        /// Spec and counters.
        #[serde(flatten)]
        sale: &'a SaleState,
        /// Phase when sent.
        phase: Phase,
    },
}

impl Event<'_> {
    /// Serializes the event once, to be shared by every batch that carries it.
    pub fn encode(&self) -> std::sync::Arc<str> {
        serde_json::to_string(self)
            .unwrap_or_else(|_| String::from("{}"))
            .into()
    }
}

/// Messages sent to one member only.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Direct<'a> {
    /// First message after connecting.
    Welcome {
        /// Room.
        room: &'a str,
        /// User id (`anon-…` for anonymous viewers).
        user: &'a str,
        /// `viewer`, `host` or `admin`.
        role: &'a str,
        /// Whether the member may write (chat, like, gift, purchase).
        can_write: bool,
        /// Batch tick in milliseconds.
        batch_ms: u64,
    },
    /// A rejected message or connection.
    Error {
        /// Stable code.
        code: &'a str,
        /// Explanation.
        message: &'a str,
        /// The `id` of the message this answers.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        /// When a rate limit allows the next message.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Answer to `purchase`.
    PurchaseResult {
        /// Sale id.
        sale: &'a str,
        /// Idempotency key.
        key: &'a str,
        /// Outcome.
        #[serde(flatten)]
        outcome: &'a Outcome,
        /// The `id` of the message this answers.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
    },
    /// Answer to `ping`.
    Pong {
        /// The `id` of the ping.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
    },
}

#[derive(Serialize)]
struct Versioned<'a, T> {
    #[serde(flatten)]
    msg: &'a T,
    v: u32,
}

impl Direct<'_> {
    /// JSON text with the protocol version.
    pub fn encode(&self) -> String {
        serde_json::to_string(&Versioned {
            msg: self,
            v: VERSION,
        })
        .unwrap_or_else(|_| String::from("{}"))
    }
}

/// Assembles a `batch` message from already-encoded events without re-serializing them.
pub fn encode_batch(room: &str, seq: u64, events: &[std::sync::Arc<str>]) -> String {
    let body: usize = events.iter().map(|e| e.len() + 1).sum();
    let mut out = String::with_capacity(body + room.len() + 64);
    out.push_str(r#"{"type":"batch","v":1,"room":"#);
    out.push_str(&serde_json::to_string(room).unwrap_or_default());
    out.push_str(r#","seq":"#);
    out.push_str(&seq.to_string());
    out.push_str(r#","events":["#);
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(e);
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ErrorCode {
        parse(text, 8).unwrap_err().code
    }

    #[test]
    fn parses_chat_with_defaults_and_ref() {
        let m = parse(r#"{"type":"chat","v":1,"id":"a1","text":"hi"}"#, 8).unwrap();
        assert_eq!(m.id.as_deref(), Some("a1"));
        match m.message {
            ClientMessage::Chat(c) => {
                assert_eq!(c.text, "hi");
                assert_eq!(c.position, Position::Scroll);
                assert!(c.color.is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            parse(r#"{"type":"like"}"#, 8).unwrap().message,
            ClientMessage::Like(LikeIn { count: 1 })
        );
        assert_eq!(
            parse(r#"{"type":"ping"}"#, 8).unwrap().message,
            ClientMessage::Ping
        );
    }

    #[test]
    fn rejects_bad_input_with_stable_codes() {
        assert_eq!(code("{not json"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code(r#"{"text":"x"}"#), ErrorCode::BadJson);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"chat","text":"x","bold":true}"#),
            ErrorCode::UnknownField
        );
        assert_eq!(code(r#"{"type":"ping","x":1}"#), ErrorCode::UnknownField);
        assert_eq!(code(r#"{"type":"chat"}"#), ErrorCode::InvalidField);
        assert_eq!(
            code(r#"{"type":"like","count":"many"}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"chat","v":2,"text":"x"}"#),
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(code(r#"{"type":"ping","id":5}"#), ErrorCode::InvalidField);
        let deep = format!("{}{}", "[".repeat(20), "]".repeat(20));
        assert_eq!(
            code(&format!(r#"{{"type":"chat","text":{deep}}}"#)),
            ErrorCode::JsonTooDeep
        );
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a":"[[[{{{\"]]"}"#, 8), 1);
        assert_eq!(json_depth(br#"{"a":[{"b":[]}]}"#, 8), 4);
    }

    #[test]
    fn batch_embeds_events_verbatim() {
        let ev = Event::Online { count: 3 }.encode();
        let b = encode_batch("r1", 7, &[ev.clone(), ev]);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["type"], "batch");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["events"][1]["type"], "online");
        assert_eq!(v["events"][1]["count"], 3);
    }

    #[test]
    fn direct_messages_carry_the_version() {
        let s = Direct::Pong {
            reference: Some("x"),
        }
        .encode();
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["type"], "pong");
        assert_eq!(v["v"], 1);
        assert_eq!(v["ref"], "x");
    }

    #[test]
    fn colors() {
        assert!(valid_color("#00ffAA"));
        assert!(!valid_color("red"));
        assert!(!valid_color("#12345"));
    }
}
