//! WebSocket connections with small buffers, so tens of thousands of idle members fit in
//! little memory.

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// Read buffer per connection; messages larger than it are still read, in several steps.
const READ_BUFFER: usize = 1024;

/// Opens `url` (`ws://host:port/path?query`) and completes the upgrade.
pub async fn connect(url: String) -> Result<Ws, &'static str> {
    let parsed = url::Url::parse(&url).map_err(|_| "bad_url")?;
    if parsed.scheme() != "ws" {
        return Err("bad_url");
    }
    let host = parsed.host_str().ok_or("bad_url")?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|_| "connect")?;
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(_) => "upgrade_refused",
            _ => "handshake",
        })?;
    Ok(ws)
}

/// Checks that `url` is a `ws://` URL.
pub fn check_url(url: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("bad URL {url:?}: {e}"))?;
    anyhow::ensure!(
        parsed.scheme() == "ws",
        "{url:?}: only ws:// URLs are supported"
    );
    Ok(())
}

/// The `code` of a business-server `{"type":"error",…}` message, if `text` is one.
pub fn error_code(text: &str) -> Option<String> {
    if !text.contains("\"error\"") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    (v.get("type")?.as_str()? == "error").then(|| {
        v.get("code")
            .and_then(|c| c.as_str())
            .unwrap_or("error")
            .to_string()
    })
}
