//! One WebSocket member: authentication, join, the read/write loop, and leaving.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::api::ApiError;
use crate::auth::{valid_name, Role};
use crate::gift;
use net_guard::Permit;

use crate::limit::TokenBucket;
use crate::liveness::{Due, Liveness};
use crate::protocol::{
    self, valid_color, ChatIn, ClientMessage, Direct, ErrorCode, Event, ProtoError,
};
use crate::room::{self, Kick, MemberLink, Room};
use crate::sale::MAX_TEXT;
use crate::server::{now_ms, now_secs, AppState};

/// How long a close frame may take to reach a member before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Longest notice text.
const MAX_NOTICE_CHARS: usize = 500;
/// Most likes in one `like` message.
const MAX_LIKES: u32 = 100;

/// Close code for token problems.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code for a token valid for another room.
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// Close code for members dropped because they lagged.
pub const CLOSE_LAGGING: u16 = 4008;
/// Close code for members that sent nothing, not even a pong, for the idle deadline.
pub const CLOSE_IDLE: u16 = 4408;

/// Query of `/ws`.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    room: Option<String>,
    token: Option<String>,
}

/// Who is connected.
struct Identity {
    user: Arc<str>,
    role: Role,
    anonymous: bool,
}

enum Exit {
    Gone,
    Leave,
    Kicked(Kick),
    FrameTooLarge,
    Idle,
}

/// `GET /ws?room=R&token=T`: checks the room and the per-IP limit, then upgrades.
pub async fn upgrade(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let room = match q.room {
        Some(r) if valid_name(&r) => r,
        _ => {
            return ApiError::new(
                ErrorCode::InvalidRoom,
                "query parameter `room` must be 1-64 characters of [A-Za-z0-9_-]",
            )
            .into_response()
        }
    };
    let Ok(slot) = app.ips.admit(peer.ip()) else {
        app.metrics.connections_rejected.fetch_add(1, Relaxed);
        app.metrics.error(ErrorCode::TooManyConnections);
        return ApiError::new(
            ErrorCode::TooManyConnections,
            format!(
                "{} already has {} connections",
                peer.ip(),
                app.config.max_conns_per_ip
            ),
        )
        .into_response();
    };
    let c = &app.config;
    ws.read_buffer_size(c.read_buffer_bytes)
        .write_buffer_size(0)
        .max_message_size(c.max_frame_bytes)
        .max_frame_size(c.max_frame_bytes)
        .on_upgrade(move |socket| run(app, socket, room, q.token, slot))
}

struct Connected(Arc<AppState>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.metrics.connections.fetch_sub(1, Relaxed);
    }
}

async fn run(
    app: Arc<AppState>,
    mut socket: WebSocket,
    room_name: String,
    token: Option<String>,
    _slot: Permit,
) {
    app.metrics.connections.fetch_add(1, Relaxed);
    app.metrics.connections_total.fetch_add(1, Relaxed);
    let _connected = Connected(app.clone());
    let ident = match authenticate(&app, &room_name, token.as_deref()).await {
        Ok(i) => i,
        Err(e) => {
            let code = if e.code == ErrorCode::TokenRoomMismatch {
                CLOSE_FORBIDDEN
            } else {
                CLOSE_UNAUTHORIZED
            };
            app.metrics.error(e.code);
            let _ = socket
                .send(Message::Text(error_text(&e, None, None).into()))
                .await;
            close(socket, code, e.code.as_str()).await;
            return;
        }
    };
    let Some(m) = app.hub.join(&room_name) else {
        close(socket, 1001, ErrorCode::ShuttingDown.as_str()).await;
        return;
    };
    if m.created {
        tokio::spawn(room::run(
            app.hub.clone(),
            m.room.clone(),
            app.store.clone(),
            app.timing,
        ));
    }
    let welcome = Direct::Welcome {
        room: &room_name,
        user: &ident.user,
        role: ident.role.as_str(),
        can_write: !ident.anonymous,
        batch_ms: app.config.batch_ms,
    }
    .encode();
    let announce = app.config.presence_events && !ident.anonymous;
    if announce {
        publish(&app, &room_name, Event::Join { user: &ident.user }.encode()).await;
    }
    let mut member = Member {
        app: app.clone(),
        ident,
        room: m.room.clone(),
        bucket: TokenBucket::new(app.config.messages_burst, Instant::now()),
    };
    let exit = match send(&mut socket, &m.link, welcome.into()).await {
        Ok(()) => member.pump(&mut socket, m.rx, &m.link).await,
        Err(exit) => exit,
    };
    app.hub.leave(&m.room, m.id);
    if announce {
        let leave = Event::Leave {
            user: &member.ident.user,
        };
        publish(&app, &room_name, leave.encode()).await;
    }
    match exit {
        Exit::Gone => {}
        Exit::Leave => close(socket, 1000, "bye").await,
        Exit::FrameTooLarge => {
            app.metrics.error(ErrorCode::MessageTooLarge);
            close(socket, 1009, ErrorCode::MessageTooLarge.as_str()).await
        }
        Exit::Kicked(Kick::ShuttingDown) => {
            close(socket, 1001, ErrorCode::ShuttingDown.as_str()).await
        }
        Exit::Kicked(Kick::Lagging { missed }) => {
            let reason = format!("lagging: missed {missed} batches in a row");
            close(socket, CLOSE_LAGGING, &reason).await
        }
        Exit::Idle => {
            app.metrics.idle_closed.fetch_add(1, Relaxed);
            let reason = format!(
                "idle: nothing received for {} ms",
                app.config.idle_timeout_ms
            );
            close(socket, CLOSE_IDLE, &reason).await
        }
    }
}

async fn authenticate(
    app: &AppState,
    room: &str,
    token: Option<&str>,
) -> Result<Identity, ProtoError> {
    match token {
        Some(t) => {
            let claims = app.signer.verify(t, now_secs())?;
            if !claims.allows_room(room) {
                return Err(ProtoError::new(
                    ErrorCode::TokenRoomMismatch,
                    format!("token is for room `{}`, not `{room}`", claims.room),
                ));
            }
            Ok(Identity {
                user: claims.user.into(),
                role: claims.role,
                anonymous: false,
            })
        }
        None => {
            let allowed = app
                .store
                .allow_anonymous(room)
                .await
                .map_err(|e| ProtoError::new(ErrorCode::StoreUnavailable, e.to_string()))?
                .unwrap_or(app.config.allow_anonymous);
            if !allowed {
                return Err(ProtoError::new(
                    ErrorCode::TokenMissing,
                    format!("room `{room}` requires a token"),
                ));
            }
            Ok(Identity {
                user: format!("anon-{:012x}", rand::random::<u64>() >> 16).into(),
                role: Role::Viewer,
                anonymous: true,
            })
        }
    }
}

async fn publish(app: &AppState, room: &str, event: Arc<str>) {
    if let Err(e) = app.store.publish(room, event).await {
        tracing::warn!(room, error = %e, "event not published");
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_string()),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, socket.send(Message::Close(Some(frame)))).await;
}

/// Sends one text frame unless the member is kicked first.
async fn send(socket: &mut WebSocket, link: &MemberLink, text: Utf8Bytes) -> Result<(), Exit> {
    send_frame(socket, link, Message::Text(text)).await
}

/// Sends one frame unless the member is kicked first.
async fn send_frame(socket: &mut WebSocket, link: &MemberLink, frame: Message) -> Result<(), Exit> {
    tokio::select! {
        biased;
        kick = link.kicked() => Err(Exit::Kicked(kick)),
        sent = socket.send(frame) => sent.map_err(|_| Exit::Gone),
    }
}

fn error_text(e: &ProtoError, reference: Option<&str>, retry: Option<Duration>) -> String {
    Direct::Error {
        code: e.code.as_str(),
        message: &e.message,
        reference,
        retry_after_ms: retry.map(|d| d.as_millis() as u64 + 1),
    }
    .encode()
}

struct Member {
    app: Arc<AppState>,
    ident: Identity,
    room: Arc<Room>,
    bucket: TokenBucket,
}

/// A rejected message, with the wait a rate limit asks for.
struct Rejection(ProtoError, Option<Duration>);

impl From<ProtoError> for Rejection {
    fn from(e: ProtoError) -> Self {
        Rejection(e, None)
    }
}

fn reject<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, Rejection> {
    Err(ProtoError::new(code, message).into())
}

impl Member {
    async fn pump(
        &mut self,
        socket: &mut WebSocket,
        mut rx: mpsc::Receiver<Utf8Bytes>,
        link: &MemberLink,
    ) -> Exit {
        let c = &self.app.config;
        let mut live = Liveness::new(
            Instant::now(),
            Duration::from_millis(c.ping_interval_ms),
            Duration::from_millis(c.idle_timeout_ms),
        );
        let timer = tokio::time::sleep_until(live.deadline().into());
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                kick = link.kicked() => return Exit::Kicked(kick),
                batch = rx.recv() => match batch {
                    Some(batch) => {
                        if let Err(exit) = send(socket, link, batch).await {
                            return exit;
                        }
                    }
                    None => return link.reason().map_or(Exit::Gone, Exit::Kicked),
                },
                incoming = socket.recv() => {
                    live.heard(Instant::now());
                    let text = match incoming {
                        None => return Exit::Gone,
                        Some(Err(e)) => {
                            return match e.into_inner().downcast_ref::<tungstenite::Error>() {
                                Some(tungstenite::Error::Capacity(_)) => Exit::FrameTooLarge,
                                _ => Exit::Gone,
                            };
                        }
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Binary(_))) => {
                            let e = ProtoError::new(
                                ErrorCode::BinaryUnsupported,
                                "binary frames are not part of the protocol; send JSON text",
                            );
                            if let Err(exit) = self.reply_error(socket, link, &e, None, None).await {
                                return exit;
                            }
                            continue;
                        }
                        Some(Ok(Message::Close(_))) => return Exit::Gone,
                        Some(Ok(_)) => continue,
                    };
                    self.app.metrics.messages_in.fetch_add(1, Relaxed);
                    if let Err(exit) = self.on_text(socket, link, text.as_str()).await {
                        return exit;
                    }
                }
                () = &mut timer => {
                    match live.poll(Instant::now()) {
                        Some(Due::Idle) => return Exit::Idle,
                        Some(Due::Ping) => {
                            self.app.metrics.pings.fetch_add(1, Relaxed);
                            let ping = Message::Ping(axum::body::Bytes::new());
                            if let Err(exit) = send_frame(socket, link, ping).await {
                                return exit;
                            }
                        }
                        None => {}
                    }
                    timer.as_mut().reset(live.deadline().into());
                }
            }
        }
    }

    async fn reply(
        &self,
        socket: &mut WebSocket,
        link: &MemberLink,
        text: String,
    ) -> Result<(), Exit> {
        self.app.metrics.sent(1, text.len() as u64);
        send(socket, link, text.into()).await
    }

    async fn reply_error(
        &self,
        socket: &mut WebSocket,
        link: &MemberLink,
        e: &ProtoError,
        reference: Option<&str>,
        retry: Option<Duration>,
    ) -> Result<(), Exit> {
        self.app.metrics.error(e.code);
        self.reply(socket, link, error_text(e, reference, retry))
            .await
    }

    async fn on_text(
        &mut self,
        socket: &mut WebSocket,
        link: &MemberLink,
        text: &str,
    ) -> Result<(), Exit> {
        let limit = self.app.config.max_message_bytes;
        if text.len() > limit {
            let e = ProtoError::new(
                ErrorCode::MessageTooLarge,
                format!("message is {} bytes; the limit is {limit}", text.len()),
            );
            return self.reply_error(socket, link, &e, None, None).await;
        }
        if let Err(wait) = self.bucket.take(
            self.app.config.messages_per_sec,
            self.app.config.messages_burst,
            Instant::now(),
        ) {
            let e = ProtoError::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {} messages per second on this connection",
                    self.app.config.messages_per_sec
                ),
            );
            return self.reply_error(socket, link, &e, None, Some(wait)).await;
        }
        let incoming = match protocol::parse(text, self.app.config.max_json_depth) {
            Ok(m) => m,
            Err(e) => return self.reply_error(socket, link, &e, None, None).await,
        };
        let reference = incoming.id.as_deref();
        match self.dispatch(incoming.message).await {
            Ok(Reply::None) => Ok(()),
            Ok(Reply::Leave) => Err(Exit::Leave),
            Ok(Reply::Pong) => {
                let pong = Direct::Pong { reference }.encode();
                self.reply(socket, link, pong).await
            }
            Ok(Reply::Purchase { sale, key, outcome }) => {
                let text = Direct::PurchaseResult {
                    sale: &sale,
                    key: &key,
                    outcome: &outcome,
                    reference,
                }
                .encode();
                self.reply(socket, link, text).await
            }
            Err(Rejection(e, wait)) => self.reply_error(socket, link, &e, reference, wait).await,
        }
    }

    fn require_write(&self) -> Result<(), Rejection> {
        if self.ident.anonymous {
            return reject(
                ErrorCode::ReadOnly,
                "anonymous viewers may read but not write; connect with a token",
            );
        }
        Ok(())
    }

    async fn dispatch(&mut self, message: ClientMessage) -> Result<Reply, Rejection> {
        let app = self.app.clone();
        let room = self.room.name();
        let store_err = |e: crate::store::StoreError| {
            Rejection(
                ProtoError::new(ErrorCode::StoreUnavailable, e.to_string()),
                None,
            )
        };
        match message {
            ClientMessage::Ping => Ok(Reply::Pong),
            ClientMessage::Leave => Ok(Reply::Leave),
            ClientMessage::Chat(chat) => {
                self.require_write()?;
                let (text, color) = self.check_chat(&chat)?;
                if let Err(wait) = app.chat_rates.check(&self.ident.user, Instant::now()) {
                    return Err(Rejection(
                        ProtoError::new(
                            ErrorCode::RateLimited,
                            format!(
                                "chat is limited to {} messages per second per user (burst {})",
                                app.config.chat_per_sec, app.config.chat_burst
                            ),
                        ),
                        Some(wait),
                    ));
                }
                let event = Event::Chat {
                    user: &self.ident.user,
                    text,
                    color,
                    position: chat.position,
                    ts: now_ms(),
                };
                app.store
                    .publish(room, event.encode())
                    .await
                    .map_err(store_err)?;
                Ok(Reply::None)
            }
            ClientMessage::Like(like) => {
                self.require_write()?;
                if !(1..=MAX_LIKES).contains(&like.count) {
                    return reject(
                        ErrorCode::InvalidField,
                        format!("count must be 1..={MAX_LIKES}"),
                    );
                }
                self.room.like(u64::from(like.count));
                Ok(Reply::None)
            }
            ClientMessage::Gift(g) => {
                self.require_write()?;
                let Some(item) = gift::find(&g.gift) else {
                    return reject(
                        ErrorCode::UnknownGift,
                        format!("no gift `{}` in the catalogue", short(&g.gift)),
                    );
                };
                if !(1..=gift::MAX_COUNT).contains(&g.count) {
                    return reject(
                        ErrorCode::InvalidField,
                        format!("count must be 1..={}", gift::MAX_COUNT),
                    );
                }
                let value = item.price * u64::from(g.count);
                app.store
                    .add_gift(room, &self.ident.user, value)
                    .await
                    .map_err(store_err)?;
                let event = Event::Gift {
                    user: &self.ident.user,
                    gift: item.id,
                    count: g.count,
                    value,
                };
                app.store
                    .publish(room, event.encode())
                    .await
                    .map_err(store_err)?;
                Ok(Reply::None)
            }
            ClientMessage::Purchase(p) => {
                self.require_write()?;
                if !valid_name(&p.sale) {
                    return reject(
                        ErrorCode::InvalidField,
                        "sale must be 1-64 characters of [A-Za-z0-9_-]",
                    );
                }
                if p.key.is_empty() || p.key.len() > MAX_TEXT {
                    return reject(
                        ErrorCode::InvalidField,
                        format!("key must be 1..={MAX_TEXT} bytes"),
                    );
                }
                let outcome = app
                    .store
                    .purchase(&p.sale, &self.ident.user, &p.key, now_ms())
                    .await
                    .map_err(store_err)?;
                let Some(outcome) = outcome else {
                    return reject(ErrorCode::UnknownSale, format!("no sale `{}`", p.sale));
                };
                app.metrics.purchase(outcome.kind());
                Ok(Reply::Purchase {
                    sale: p.sale,
                    key: p.key,
                    outcome,
                })
            }
            ClientMessage::Notice(n) => {
                self.require_write()?;
                if !self.ident.role.may_post_notices() {
                    return reject(
                        ErrorCode::Forbidden,
                        "only hosts and admins may post notices",
                    );
                }
                let text = n.text.trim();
                if text.is_empty() || text.chars().count() > MAX_NOTICE_CHARS {
                    return reject(
                        ErrorCode::InvalidField,
                        format!("text must be 1..={MAX_NOTICE_CHARS} characters"),
                    );
                }
                let event = Event::Notice {
                    text,
                    level: "info",
                };
                app.store
                    .publish(room, event.encode())
                    .await
                    .map_err(store_err)?;
                Ok(Reply::None)
            }
        }
    }

    fn check_chat<'a>(&self, chat: &'a ChatIn) -> Result<(&'a str, &'a str), Rejection> {
        let max = self.app.config.max_chat_chars;
        let text = chat.text.trim();
        if text.is_empty() || text.chars().count() > max {
            return reject(
                ErrorCode::InvalidField,
                format!("text must be 1..={max} characters"),
            );
        }
        if text.chars().any(char::is_control) {
            return reject(
                ErrorCode::InvalidField,
                "text must not contain control characters",
            );
        }
        let color = chat.color.as_deref().unwrap_or("#ffffff");
        if !valid_color(color) {
            return reject(ErrorCode::InvalidField, "color must be #rrggbb");
        }
        Ok((text, color))
    }
}

enum Reply {
    None,
    Leave,
    Pong,
    Purchase {
        sale: String,
        key: String,
        outcome: crate::sale::Outcome,
    },
}

fn short(s: &str) -> String {
    s.chars().take(32).collect()
}
