//! The limits of one listener, as they appear in each server's TOML.

use std::time::Duration;

use serde::Deserialize;

/// Caps and deadlines of one listener; a TOML section, or command-line flags.
#[derive(Debug, Clone, Deserialize, PartialEq, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most connections open at once on the listener.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most connections open at once from one client IP address.
    #[arg(long, default_value_t = 1_000)]
    pub max_connections_per_ip: usize,
    /// Seconds a client has to send a request's headers, from connecting or from the end of
    /// the previous response (HTTP only).
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout_secs: f64,
    /// Seconds a connection may go without moving a byte in either direction while
    /// something waits on it: an idle client, or a viewer that stopped reading.
    #[arg(long, default_value_t = 30.0)]
    pub idle_timeout_secs: f64,
}

impl Default for Limits {
    /// 10,000 connections, 1,000 per IP, 10 s for headers, 30 s idle.
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            header_timeout_secs: 10.0,
            idle_timeout_secs: 30.0,
        }
    }
}

/// Longest duration a server setting accepts: a day.
pub const MAX_SECS: f64 = 86_400.0;

/// A setting that makes no sense, naming its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct FieldError {
    /// The field, as in the config file.
    pub field: &'static str,
    /// What is wrong with its value.
    pub problem: String,
}

/// Checks that `field` is a positive, finite number of seconds, at most [`MAX_SECS`].
pub fn seconds(field: &'static str, value: f64) -> Result<(), FieldError> {
    if value.is_finite() && value > 0.0 && value <= MAX_SECS {
        return Ok(());
    }
    Err(FieldError {
        field,
        problem: format!("must be a positive number of seconds, at most {MAX_SECS}, got {value}"),
    })
}

/// Checks that `field` is not zero.
pub fn positive(field: &'static str, value: usize) -> Result<(), FieldError> {
    if value > 0 {
        return Ok(());
    }
    Err(FieldError {
        field,
        problem: "must be positive, got 0".into(),
    })
}

impl Limits {
    /// The defaults, except that one address may open as many connections as the whole
    /// listener: for servers whose clients all run on this machine (the demo, tests).
    pub fn one_machine() -> Self {
        let limits = Self::default();
        Self {
            max_connections_per_ip: limits.max_connections,
            ..limits
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), FieldError> {
        seconds("header_timeout_secs", self.header_timeout_secs)?;
        seconds("idle_timeout_secs", self.idle_timeout_secs)?;
        positive("max_connections", self.max_connections)?;
        positive("max_connections_per_ip", self.max_connections_per_ip)
    }

    /// The header-read deadline; call after [`Limits::validate`].
    pub fn header_timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.header_timeout_secs).unwrap_or(Duration::from_secs(10))
    }

    /// The idle deadline; call after [`Limits::validate`].
    pub fn idle_timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.idle_timeout_secs).unwrap_or(Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_field() {
        let bad = Limits {
            idle_timeout_secs: f64::NAN,
            ..Limits::default()
        };
        let err = bad.validate().unwrap_err();
        assert_eq!(err.field, "idle_timeout_secs", "{err}");
        let bad = Limits {
            max_connections_per_ip: 0,
            ..Limits::default()
        };
        let err = bad.validate().unwrap_err();
        assert_eq!(err.field, "max_connections_per_ip", "{err}");
        assert_eq!(Limits::default().validate(), Ok(()));
    }
}
