//! `ws-chat`: N members in M rooms, some sending at a rate; each message carries the sender's
//! wall clock (`lp:<unix µs>`), and receivers record sender-to-receiver latency. Works against
//! any WebSocket endpoint that relays text: the stamp is searched for in every text frame.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use super::token::Signer;
use super::ws::{check_url, connect, error_code};
use super::Ctx;
use crate::template::expand;

/// The marker in front of a stamp.
const MARK: &str = "lp:";

/// Settings of the `ws-chat` driver.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WsChatSpec {
    /// `ws://` URL; `{room}`, `{token}`, `{user}` and `{n}` expand per member.
    #[serde(default = "business_url")]
    pub url: String,
    /// Members are spread over this many rooms (`room-0` …).
    #[serde(default = "one")]
    pub rooms: u64,
    /// Members that send (the first `senders` by index); the rest only listen.
    #[serde(default)]
    pub senders: Option<u64>,
    /// Messages per second each sender sends.
    #[serde(default = "one_f")]
    pub send_rate: f64,
    /// Message template; `{stamp}` becomes `lp:<unix µs>`.
    #[serde(default = "business_chat")]
    pub message: String,
    /// Business-server token secret: members get signed tokens for their room.
    #[serde(default)]
    pub token_secret: Option<String>,
}

fn business_url() -> String {
    "ws://127.0.0.1:8090/ws?room={room}&token={token}".to_string()
}

fn business_chat() -> String {
    r#"{"type":"chat","text":"{stamp}"}"#.to_string()
}

fn one() -> u64 {
    1
}

fn one_f() -> f64 {
    1.0
}

impl WsChatSpec {
    /// Checks the settings.
    pub fn check(&self) -> anyhow::Result<()> {
        check_url(&self.url)?;
        anyhow::ensure!(self.rooms > 0, "rooms must be positive");
        anyhow::ensure!(
            self.send_rate.is_finite() && self.send_rate >= 0.0,
            "send_rate must be a number of messages per second, got {}",
            self.send_rate
        );
        anyhow::ensure!(
            self.message.contains("{stamp}"),
            "message must contain {{stamp}}"
        );
        Ok(())
    }
}

/// A ready `ws-chat` driver.
pub struct Chat {
    spec: WsChatSpec,
    signer: Option<Signer>,
}

impl Chat {
    /// Prepares token signing.
    pub fn new(spec: &WsChatSpec) -> anyhow::Result<Self> {
        Ok(Self {
            spec: spec.clone(),
            signer: spec.token_secret.as_deref().map(Signer::new),
        })
    }

    fn url(&self, n: u64) -> String {
        let room = format!("room-{}", n % self.spec.rooms);
        let user = format!("lg-{n}");
        let token = self
            .signer
            .as_ref()
            .map(|s| s.token(&user, &room))
            .unwrap_or_default();
        expand(&self.spec.url, n)
            .replace("{room}", &room)
            .replace("{user}", &user)
            .replace("{token}", &token)
    }

    /// One member session until the workload ends.
    pub async fn iterate(&self, ctx: &Ctx<'_>) {
        ctx.go().await;
        let m = ctx.metrics;
        // Boxed: the handshake's state is large and only needed until connected, while the
        // rest of this future lives as long as the member does.
        let connecting = Box::pin(connect(self.url(ctx.index)));
        let mut ws = tokio::select! {
            r = connecting => match r {
                Ok(ws) => ws,
                Err(kind) => return m.error(kind),
            },
            _ = ctx.stop.cancelled() => return,
        };
        m.record(
            "connect",
            Instant::now().saturating_duration_since(ctx.intended),
        );
        let sends = self.spec.senders.is_none_or(|s| ctx.index < s) && self.spec.send_rate > 0.0;
        let period = Duration::from_secs_f64(1.0 / self.spec.send_rate.max(1e-3));
        // Senders start at a random phase so a room's messages are spread, not synchronized.
        let phase = period.mul_f64((ctx.index % 97) as f64 / 97.0);
        let mut next_send = tokio::time::Instant::now() + phase;
        let end = tokio::time::Instant::from(ctx.end);
        loop {
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        m.received("deliver", &latencies(&text), text.len() as u64);
                        if let Some(code) = error_code(&text) {
                            m.error(&format!("server_{code}"));
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map_or(1005, |f| u16::from(f.code));
                        return m.error(&format!("closed_{code}"));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return m.error("disconnected"),
                },
                _ = tokio::time::sleep_until(next_send), if sends => {
                    next_send += period;
                    let stamp = format!("{MARK}{}", player_client::latency::unix_micros());
                    let text = self.spec.message.replace("{stamp}", &stamp);
                    if ws.send(Message::text(text)).await.is_err() {
                        return m.error("send");
                    }
                    m.outcome("sent");
                }
                _ = tokio::time::sleep_until(end) => break,
                _ = ctx.stop.cancelled() => break,
            }
        }
        let _ = ws.close(None).await;
    }
}

/// Sender-to-receiver latency of every stamp in `text`, in microseconds.
fn latencies(text: &str) -> Vec<u64> {
    let now = player_client::latency::unix_micros();
    text.match_indices(MARK)
        .filter_map(|(i, _)| {
            let digits = &text[i + MARK.len()..];
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            digits[..end].parse::<u64>().ok()
        })
        .map(|stamp| now.saturating_sub(stamp))
        .collect()
}
