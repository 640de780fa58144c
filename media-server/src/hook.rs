//! The `on_publish` HTTP hook (nginx-rtmp / SRS convention): a 2xx allows the publish.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

/// What the hook receives, as JSON.
#[derive(Debug, Serialize)]
pub struct PublishRequest<'a> {
    /// Always `on_publish`.
    pub action: &'static str,
    /// RTMP application.
    pub app: &'a str,
    /// Stream name without the query string.
    pub stream: &'a str,
    /// Query string after `?` in the stream name (tokens live here), without the `?`.
    pub query: &'a str,
    /// Publisher address.
    pub client: String,
}

/// Calls the hook; any transport error or non-2xx status refuses.
#[derive(Debug, Clone)]
pub struct PublishHook {
    url: String,
    client: reqwest::Client,
}

impl PublishHook {
    /// A hook posting to `url`, answering within three seconds.
    pub fn new(url: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap_or_default();
        Self { url, client }
    }

    /// Asks the hook; `Err` carries the refusal reason.
    pub async fn allow(
        &self,
        app: &str,
        stream: &str,
        query: &str,
        peer: SocketAddr,
    ) -> Result<(), String> {
        let body = PublishRequest {
            action: "on_publish",
            app,
            stream,
            query,
            client: peer.to_string(),
        };
        match self.client.post(&self.url).json(&body).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("on_publish hook answered {}", r.status())),
            Err(e) => Err(format!("on_publish hook failed: {e}")),
        }
    }
}
