//! Waiting for the signal that stops a server.

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, the signal service managers and Kubernetes send,
/// so a server stops gracefully in both cases.
pub async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
