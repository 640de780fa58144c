//! HTTP answers turned into retry decisions, shared by HLS and HTTP-FLV.

use reqwest::StatusCode;

use crate::error::{Failure, PlayErrorKind};

/// `None` for a success; a retryable failure for 404 (the stream may not exist yet), 408, 429
/// and 5xx; fatal for any other client error.
pub(crate) fn status_failure(url: &str, status: StatusCode) -> Option<Failure> {
    if status.is_success() {
        return None;
    }
    let code = status.as_u16();
    Some(match code {
        404 => Failure::retry("http_404", format!("{url} answered 404")),
        408 | 429 => Failure::retry("http_4xx", format!("{url} answered {status}")),
        500..=599 => Failure::retry("http_5xx", format!("{url} answered {status}")),
        _ => Failure::Fatal(PlayErrorKind::HttpStatus {
            url: url.to_string(),
            status: code,
        }),
    })
}

/// A request that got no answer.
pub(crate) fn request_failure(url: &str, e: &reqwest::Error) -> Failure {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "read"
    };
    let mut message = format!("{url}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    Failure::retry(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let u = "http://h/x";
        assert!(status_failure(u, StatusCode::OK).is_none());
        assert!(matches!(
            status_failure(u, StatusCode::NOT_FOUND),
            Some(Failure::Retry("http_404", _))
        ));
        assert!(matches!(
            status_failure(u, StatusCode::BAD_GATEWAY),
            Some(Failure::Retry("http_5xx", _))
        ));
        assert!(matches!(
            status_failure(u, StatusCode::FORBIDDEN),
            Some(Failure::Fatal(PlayErrorKind::HttpStatus {
                status: 403,
                ..
            }))
        ));
    }
}
