//! `flash-sale`: each arrival is one buyer making one purchase, over HTTP
//! (`POST /api/v1/sales/{sale}/purchase`) or over a WebSocket (`purchase` message). Latency is
//! measured from the intended start; outcomes (`success`, `sold_out`, …) are counted.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use super::pool::{build_request, split_http_url, Pool};
use super::token::Signer;
use super::ws::{connect, error_code};
use super::{timeout, Ctx};

/// How buyers reach the sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SaleVia {
    /// One HTTP request per purchase, on keep-alive connections.
    #[default]
    Http,
    /// A WebSocket per buyer: connect, `purchase`, wait for `purchase_result`.
    Ws,
}

/// Settings of the `flash-sale` driver.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlashSaleSpec {
    /// Business server base URL, e.g. `http://127.0.0.1:8090`.
    pub url: String,
    /// Sale id.
    pub sale: String,
    /// HTTP or WebSocket.
    #[serde(default)]
    pub via: SaleVia,
    /// Token secret; buyers get signed tokens.
    pub token_secret: String,
    /// Buyer `n` is user `{buyer_prefix}-n`; runs that must not share buyers use different
    /// prefixes (a repeated user and key gets the first answer again).
    #[serde(default = "buyer")]
    pub buyer_prefix: String,
    /// Room WebSocket buyers join.
    #[serde(default = "sale_room")]
    pub room: String,
    /// Create the sale with this stock before the run (needs `admin_key`).
    #[serde(default)]
    pub create_stock: Option<u64>,
    /// Admin key for creating the sale.
    #[serde(default)]
    pub admin_key: Option<String>,
    /// Per-request timeout in seconds.
    #[serde(default = "ten")]
    pub timeout_secs: f64,
}

fn buyer() -> String {
    "buyer".to_string()
}

fn sale_room() -> String {
    "sale".to_string()
}

fn ten() -> f64 {
    10.0
}

impl FlashSaleSpec {
    /// Checks the settings.
    pub fn check(&self) -> anyhow::Result<()> {
        split_http_url(&self.url)?;
        anyhow::ensure!(!self.sale.is_empty(), "sale must not be empty");
        anyhow::ensure!(
            self.create_stock.is_none() || self.admin_key.is_some(),
            "create_stock needs admin_key"
        );
        timeout(self.timeout_secs)?;
        Ok(())
    }
}

/// A ready `flash-sale` driver.
pub struct Buyer {
    spec: FlashSaleSpec,
    timeout: Duration,
    pool: Pool,
    purchase_path: String,
    ws_base: String,
    signer: Signer,
}

impl Buyer {
    /// Prepares the connection pool; the first shard creates the sale when asked to.
    pub async fn new(spec: &FlashSaleSpec, first_shard: bool) -> anyhow::Result<Self> {
        let (authority, base) = split_http_url(&spec.url)?;
        let base = base.trim_end_matches('/').to_string();
        let timeout = timeout(spec.timeout_secs)?;
        let buyer = Self {
            spec: spec.clone(),
            timeout,
            pool: Pool::new(authority.clone(), timeout),
            purchase_path: format!("{base}/api/v1/sales/{}/purchase", spec.sale),
            ws_base: format!("ws://{authority}{base}/ws"),
            signer: Signer::new(&spec.token_secret),
        };
        if let (Some(stock), Some(key), true) = (spec.create_stock, &spec.admin_key, first_shard) {
            buyer.create(&base, stock, key).await?;
        }
        Ok(buyer)
    }

    async fn create(&self, base: &str, stock: u64, admin_key: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({"id": self.spec.sale, "item": "load", "stock": stock});
        let headers = [
            ("x-admin-key".to_string(), admin_key.to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        let conn = self
            .pool
            .checkout()
            .await
            .map_err(|f| anyhow::anyhow!("connecting to {}: {}", self.spec.url, f.kind()))?;
        let request = build_request(
            "POST",
            &format!("{base}/api/v1/sales"),
            self.pool.authority(),
            &headers,
            body.to_string().as_bytes(),
        );
        let answer = self
            .pool
            .send(conn, &request, true)
            .await
            .map_err(|f| anyhow::anyhow!("creating sale {}: {}", self.spec.sale, f.kind()))?;
        anyhow::ensure!(
            (200..300).contains(&answer.status),
            "creating sale {}: HTTP {} {}",
            self.spec.sale,
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        Ok(())
    }

    /// One purchase by buyer `ctx.index`.
    pub async fn iterate(&self, ctx: &Ctx<'_>) {
        let user = format!("{}-{}", self.spec.buyer_prefix, ctx.index);
        let outcome = tokio::select! {
            o = async {
                match self.spec.via {
                    SaleVia::Http => self.over_http(ctx, &user).await,
                    SaleVia::Ws => self.over_ws(ctx, &user).await,
                }
            } => o,
            _ = ctx.stop.cancelled() => Err("cancelled".to_string()),
        };
        match outcome {
            Ok(outcome) => {
                ctx.metrics.outcome(&outcome);
                ctx.metrics.record(
                    "purchase",
                    Instant::now().saturating_duration_since(ctx.intended),
                );
            }
            Err(kind) => ctx.metrics.error(&kind),
        }
    }

    async fn over_http(&self, ctx: &Ctx<'_>, user: &str) -> Result<String, String> {
        let headers = [
            (
                "authorization".to_string(),
                format!("Bearer {}", self.signer.token(user, "*")),
            ),
            ("idempotency-key".to_string(), format!("{user}-1")),
        ];
        let request = build_request(
            "POST",
            &self.purchase_path,
            self.pool.authority(),
            &headers,
            b"",
        );
        let conn = ctx.prepared(self.pool.checkout()).await;
        let answer = self
            .pool
            .send(conn.map_err(|f| f.kind().to_string())?, &request, true)
            .await
            .map_err(|f| f.kind().to_string())?;
        ctx.metrics.bytes(answer.len);
        let v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        if !(200..300).contains(&answer.status) {
            let code = v
                .pointer("/error/code")
                .and_then(|c| c.as_str())
                .map_or_else(|| format!("http_{}", answer.status), str::to_string);
            return Err(code);
        }
        v.get("outcome")
            .and_then(|o| o.as_str())
            .map(str::to_string)
            .ok_or_else(|| "bad_answer".to_string())
    }

    async fn over_ws(&self, ctx: &Ctx<'_>, user: &str) -> Result<String, String> {
        let token = self.signer.token(user, &self.spec.room);
        let url = format!("{}?room={}&token={token}", self.ws_base, self.spec.room);
        let (ws, connect_time) = ctx
            .prepared(async {
                let connecting = Instant::now();
                (Box::pin(connect(url)).await, connecting.elapsed())
            })
            .await;
        let mut ws = ws.map_err(str::to_string)?;
        ctx.metrics.record("connect", connect_time);
        let request = serde_json::json!({
            "type": "purchase", "id": "p", "sale": self.spec.sale, "key": format!("{user}-1")
        });
        ws.send(Message::text(request.to_string()))
            .await
            .map_err(|_| "send".to_string())?;
        let result = tokio::time::timeout(self.timeout, async {
            while let Some(msg) = ws.next().await {
                let Ok(Message::Text(text)) = msg else {
                    continue;
                };
                if let Some(code) = error_code(&text) {
                    return Err(code);
                }
                if !text.contains("purchase_result") {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if v.get("type").and_then(|t| t.as_str()) == Some("purchase_result") {
                    return v
                        .get("outcome")
                        .and_then(|o| o.as_str())
                        .map(str::to_string)
                        .ok_or_else(|| "bad_answer".to_string());
                }
            }
            Err("disconnected".to_string())
        })
        .await
        .unwrap_or_else(|_| Err("timeout".to_string()));
        let _ = ws.close(None).await;
        result
    }
}
