//! `http`: GET or POST a URL, like wrk; latency from the intended start.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use serde::{Deserialize, Serialize};

use super::pool::{split_http_url, Pool};
use super::Ctx;
use crate::template::expand;

/// Settings of the `http` driver.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// `http://` URL; `{n}` and `{n%K}` expand per iteration.
    pub url: String,
    /// Request method.
    #[serde(default = "get")]
    pub method: String,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Per-request timeout in seconds.
    #[serde(default = "ten")]
    pub timeout_secs: f64,
}

fn get() -> String {
    "GET".to_string()
}

fn ten() -> f64 {
    10.0
}

impl HttpSpec {
    /// Checks the settings.
    pub fn check(&self) -> anyhow::Result<()> {
        split_http_url(&expand(&self.url, 0))?;
        Method::from_bytes(self.method.as_bytes())
            .map_err(|_| anyhow::anyhow!("bad method {:?}", self.method))?;
        anyhow::ensure!(self.timeout_secs > 0.0, "timeout_secs must be positive");
        Ok(())
    }
}

/// A ready `http` driver.
pub struct Requester {
    pool: Pool,
    url: String,
    templated: bool,
    path: String,
    method: Method,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Requester {
    /// Prepares the pool.
    pub fn new(spec: &HttpSpec) -> anyhow::Result<Self> {
        let (authority, path) = split_http_url(&expand(&spec.url, 0))?;
        let method = Method::from_bytes(spec.method.as_bytes())
            .map_err(|_| anyhow::anyhow!("bad method {:?}", spec.method))?;
        Ok(Self {
            pool: Pool::new(authority, Duration::from_secs_f64(spec.timeout_secs)),
            url: spec.url.clone(),
            templated: spec.url.contains('{'),
            path,
            method,
            headers: spec.headers.clone().into_iter().collect(),
            body: Bytes::from(spec.body.clone().unwrap_or_default()),
        })
    }

    /// One request.
    pub async fn iterate(&self, ctx: &Ctx<'_>) {
        let path = if self.templated {
            match split_http_url(&expand(&self.url, ctx.index)) {
                Ok((_, p)) => p,
                Err(_) => return ctx.metrics.error("bad_url"),
            }
        } else {
            self.path.clone()
        };
        let conn = tokio::select! {
            c = self.pool.checkout() => c,
            _ = ctx.stop.cancelled() => return ctx.metrics.error("cancelled"),
        };
        ctx.go().await;
        let result = match conn {
            Ok(conn) => tokio::select! {
                r = self.pool.send(conn, &self.method, &path, &self.headers, &self.body, false) => r,
                _ = ctx.stop.cancelled() => return ctx.metrics.error("cancelled"),
            },
            Err(f) => Err(f),
        };
        match result {
            Ok(answer) => {
                let class = answer.status.as_u16() / 100;
                ctx.metrics.bytes(answer.len);
                if class >= 4 {
                    ctx.metrics
                        .error(&format!("http_{}", answer.status.as_u16()));
                } else {
                    ctx.metrics.outcome(&format!("{class}xx"));
                    ctx.metrics.record("request", Instant::now() - ctx.intended);
                }
            }
            Err(f) => ctx.metrics.error(f.kind()),
        }
    }
}
