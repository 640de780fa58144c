//! Origin media server.
