//! The origins: fetches with failover on connect errors and 5xx, plus health checks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use media_core::token::Policy;
use reqwest::header;

use crate::metrics::Metrics;

/// How long a token the edge signs for an origin fetch stays valid.
const ORIGIN_TOKEN_SECS: u64 = 60;

/// Largest `Age` taken from an origin (a year); larger values are clamped.
const MAX_AGE_SECS: u64 = 365 * 86_400;

/// One origin answer whose body is still to be read.
#[derive(Debug)]
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// Content-Type, if any.
    pub content_type: Option<String>,
    /// Cache-Control, if any.
    pub cache_control: Option<String>,
    /// Content-Length, if any.
    pub content_length: Option<u64>,
    /// The `Age` the origin or a parent cache sent; 0 if absent or malformed.
    pub age: Duration,
    /// The response, for its body.
    pub response: reqwest::Response,
}

struct Origin {
    base: String,
    healthy: AtomicBool,
}

/// The configured origins, in order of preference.
pub struct Upstream {
    origins: Vec<Origin>,
    client: reqwest::Client,
    stream_client: reqwest::Client,
    metrics: Arc<Metrics>,
    auth: Arc<Policy>,
}

impl Upstream {
    /// Origins from base URLs such as `http://127.0.0.1:8080`; all start healthy.
    pub fn new(bases: &[String], metrics: Arc<Metrics>, auth: Arc<Policy>) -> anyhow::Result<Self> {
        anyhow::ensure!(!bases.is_empty(), "at least one origin is required");
        let origins = bases
            .iter()
            .map(|b| {
                let url = reqwest::Url::parse(b)
                    .map_err(|e| anyhow::anyhow!("origin {b:?} is not a URL: {e}"))?;
                anyhow::ensure!(
                    matches!(url.scheme(), "http" | "https"),
                    "origin {b:?} is not http(s)"
                );
                Ok(Origin {
                    base: b.trim_end_matches('/').to_string(),
                    healthy: AtomicBool::new(true),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(15))
            .tcp_nodelay(true)
            .build()?;
        let stream_client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .read_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            origins,
            client,
            stream_client,
            metrics,
            auth,
        })
    }

    /// `path_and_query` with the play token the origin wants for it, if any: the edge signs
    /// its own, valid for [`ORIGIN_TOKEN_SECS`], so viewers' tokens stay out of the cache key.
    fn signed(&self, path_and_query: &str) -> String {
        let expires = net_guard::unix_secs().saturating_add(ORIGIN_TOKEN_SECS);
        self.auth.sign_play_path(path_and_query, expires)
    }

    /// Healthy origins first, each group in configured order; health is read once, so an
    /// origin that fails during the walk is not tried a second time.
    fn preference(&self) -> Vec<&Origin> {
        let (mut order, unhealthy): (Vec<_>, Vec<_>) = self
            .origins
            .iter()
            .partition(|o| o.healthy.load(Ordering::Relaxed));
        order.extend(unhealthy);
        order
    }

    /// GETs `path_and_query` from the first origin that connects and answers below 500;
    /// an error if every origin fails to connect or answers 5xx.
    ///
    /// A request the origin holds (an LL-HLS blocking playlist request) passes `held` with the
    /// longest wait for its answer instead of the usual timeout, and takes a `503` as the
    /// answer: the origin held it as long as the spec allows, another origin would do the same.
    pub async fn fetch(
        &self,
        path_and_query: &str,
        held: Option<Duration>,
    ) -> Result<Fetched, String> {
        let mut last_err = String::from("no origin configured");
        for origin in self.preference() {
            let url = format!("{}{}", origin.base, self.signed(path_and_query));
            self.metrics.back_origin_requests.inc();
            match self.get(&url, held).await {
                Ok(f) if f.status < 500 || (held.is_some() && f.status == 503) => {
                    origin.healthy.store(true, Ordering::Relaxed);
                    return Ok(f);
                }
                Ok(f) => last_err = format!("{url}: status {}", f.status),
                Err(e) => last_err = format!("{url}: {e}"),
            }
            tracing::warn!("origin failed, failing over: {last_err}");
            origin.healthy.store(false, Ordering::Relaxed);
        }
        Err(last_err)
    }

    /// Opens a long-lived GET (HTTP-FLV) on the first origin that connects and answers
    /// below 500; the body is left to the caller.
    pub async fn open(&self, path: &str) -> Result<reqwest::Response, String> {
        let mut last_err = String::from("no origin configured");
        for origin in self.preference() {
            let url = format!("{}{}", origin.base, self.signed(path));
            self.metrics.back_origin_requests.inc();
            match self.stream_client.get(&url).send().await {
                Ok(r) if r.status().as_u16() < 500 => {
                    origin.healthy.store(true, Ordering::Relaxed);
                    return Ok(r);
                }
                Ok(r) => last_err = format!("{url}: {}", r.status()),
                Err(e) => last_err = format!("{url}: {e}"),
            }
            tracing::warn!("origin stream failed, failing over: {last_err}");
            origin.healthy.store(false, Ordering::Relaxed);
        }
        Err(last_err)
    }

    async fn get(&self, url: &str, timeout: Option<Duration>) -> Result<Fetched, reqwest::Error> {
        let mut request = self.client.get(url);
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        let response = request.send().await?;
        let text = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(Fetched {
            status: response.status().as_u16(),
            content_type: text(header::CONTENT_TYPE),
            cache_control: text(header::CACHE_CONTROL),
            content_length: response.content_length(),
            age: text(header::AGE)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(Duration::ZERO, |s| Duration::from_secs(s.min(MAX_AGE_SECS))),
            response,
        })
    }

    /// Marks each origin healthy if it answers `/` below 500, unhealthy otherwise.
    pub async fn check_health(&self) {
        for origin in &self.origins {
            let up = self
                .client
                .get(format!("{}/", origin.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() < 500);
            origin.healthy.store(up, Ordering::Relaxed);
        }
    }

    /// Origin base URLs with their health, for the cache summary.
    pub fn health(&self) -> Vec<(String, bool)> {
        self.origins
            .iter()
            .map(|o| (o.base.clone(), o.healthy.load(Ordering::Relaxed)))
            .collect()
    }
}
