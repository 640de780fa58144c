//! `rtmp://host[:port]/app/stream[?query]` URLs.

/// A parsed RTMP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `host:port` to connect to (port 1935 when absent).
    pub addr: String,
    /// Application name.
    pub app: String,
    /// Stream key, including any query string.
    pub stream: String,
}

impl RtmpUrl {
    /// Parses an RTMP URL.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("rtmp://")
            .ok_or_else(|| anyhow::anyhow!("not an rtmp:// URL: {url}"))?;
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("missing /app/stream in {url}"))?;
        let (app, stream) = path
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("missing stream name in {url}"))?;
        if host.is_empty() || app.is_empty() || stream.is_empty() {
            anyhow::bail!("incomplete RTMP URL: {url}");
        }
        let addr = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:1935")
        };
        Ok(Self {
            addr,
            app: app.to_string(),
            stream: stream.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_port() {
        let u = RtmpUrl::parse("rtmp://127.0.0.1:1936/live/cam?token=1").expect("valid");
        assert_eq!(u.addr, "127.0.0.1:1936");
        assert_eq!(u.app, "live");
        assert_eq!(u.stream, "cam?token=1");
        assert_eq!(
            RtmpUrl::parse("rtmp://h/a/b").expect("valid").addr,
            "h:1935"
        );
        assert!(RtmpUrl::parse("http://h/a/b").is_err());
        assert!(RtmpUrl::parse("rtmp://h/a").is_err());
    }
}
