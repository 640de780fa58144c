//! `http`: GET or POST a URL, like wrk; latency from the intended start.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::pool::{build_request, split_http_url, Pool};
use super::{timeout, Ctx};
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

fn valid_method(m: &str) -> bool {
    !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase())
}

impl HttpSpec {
    /// Checks the settings.
    pub fn check(&self) -> anyhow::Result<()> {
        split_http_url(&expand(&self.url, 0))?;
        anyhow::ensure!(valid_method(&self.method), "bad method {:?}", self.method);
        timeout(self.timeout_secs)?;
        for (k, v) in &self.headers {
            anyhow::ensure!(
                !k.contains([':', '\r', '\n']) && !v.contains(['\r', '\n']),
                "bad header {k:?}"
            );
        }
        Ok(())
    }
}

/// A ready `http` driver.
pub struct Requester {
    pool: Pool,
    spec: HttpSpec,
    headers: Vec<(String, String)>,
    /// The request bytes when the URL has no template.
    fixed: Option<Bytes>,
}

impl Requester {
    /// Prepares the pool and, for a fixed URL, the request bytes.
    pub fn new(spec: &HttpSpec) -> anyhow::Result<Self> {
        spec.check()?;
        let (authority, path) = split_http_url(&expand(&spec.url, 0))?;
        let headers: Vec<(String, String)> = spec.headers.clone().into_iter().collect();
        let body = spec.body.clone().unwrap_or_default();
        let fixed = (!spec.url.contains('{'))
            .then(|| build_request(&spec.method, &path, &authority, &headers, body.as_bytes()));
        Ok(Self {
            pool: Pool::new(authority, timeout(spec.timeout_secs)?),
            spec: spec.clone(),
            headers,
            fixed,
        })
    }

    fn request(&self, n: u64) -> Option<Bytes> {
        if let Some(r) = &self.fixed {
            return Some(r.clone());
        }
        let (_, path) = split_http_url(&expand(&self.spec.url, n)).ok()?;
        let body = self.spec.body.as_deref().unwrap_or("");
        Some(build_request(
            &self.spec.method,
            &path,
            self.pool.authority(),
            &self.headers,
            body.as_bytes(),
        ))
    }

    /// One request.
    pub async fn iterate(&self, ctx: &Ctx<'_>) {
        let Some(request) = self.request(ctx.index) else {
            return ctx.metrics.error("bad_url");
        };
        let conn = tokio::select! {
            c = ctx.prepared(self.pool.checkout()) => c,
            _ = ctx.stop.cancelled() => return ctx.metrics.error("cancelled"),
        };
        let result = match conn {
            Ok(conn) => tokio::select! {
                r = self.pool.send(conn, &request, false) => r,
                _ = ctx.stop.cancelled() => return ctx.metrics.error("cancelled"),
            },
            Err(f) => Err(f),
        };
        match result {
            Ok(answer) if answer.status >= 400 => {
                ctx.metrics.bytes(answer.len);
                ctx.metrics.error(&format!("http_{}", answer.status));
            }
            Ok(answer) => {
                let class = match answer.status / 100 {
                    1 => "1xx",
                    2 => "2xx",
                    _ => "3xx",
                };
                let latency = Instant::now().saturating_duration_since(ctx.intended);
                ctx.metrics.completed("request", latency, class, answer.len);
            }
            Err(f) => ctx.metrics.error(f.kind()),
        }
    }
}
