//! Admission: caps on open connections per listener and per client IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::Limits;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener has `max_connections` open.
    Full,
    /// The client's IP has `max_connections_per_ip` open.
    PerIp,
}

impl Refusal {
    /// The reason as a metric label and log word.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Full => "listener_full",
            Refusal::PerIp => "per_ip",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Full => "too many connections",
            Refusal::PerIp => "too many connections from this address",
        })
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// A listener's connection counters, registered into a server's Prometheus registry.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    open: Gauge,
    accepted: Counter,
    refused: Family<ReasonLabel, Counter>,
    timed_out: Counter,
}

impl Stats {
    /// Registers `connections_open`, `connections_accepted`, `connections_refused{reason}`
    /// and `connections_timed_out` (use a sub-registry labelled with the listener's name).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "connections_open",
            "Connections open now",
            self.open.clone(),
        );
        registry.register(
            "connections_accepted",
            "Connections admitted",
            self.accepted.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused by a connection cap",
            self.refused.clone(),
        );
        registry.register(
            "connections_timed_out",
            "Connections closed by the header or idle deadline",
            self.timed_out.clone(),
        );
    }

    /// The counters alone in the Prometheus text format, each name prefixed with `prefix`,
    /// for a server that writes its own page.
    pub fn render_text(&self, prefix: &str) -> String {
        let mut registry = Registry::with_prefix(prefix.to_string());
        self.register(&mut registry);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out.trim_end_matches("# EOF\n").to_string()
    }

    /// Connections open now.
    pub fn open(&self) -> i64 {
        self.open.get()
    }

    /// Connections admitted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.get()
    }

    /// Connections refused so far for `reason`.
    pub fn refused(&self, reason: Refusal) -> u64 {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.reason(),
            })
            .get()
    }

    /// Connections closed by a deadline so far.
    pub fn timed_out(&self) -> u64 {
        self.timed_out.get()
    }

    /// Counts a connection closed by a deadline.
    pub fn count_timeout(&self) {
        self.timed_out.inc();
    }
}

/// Admits connections to one listener under its caps; cheap to share.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    stats: Stats,
}

impl Admission {
    /// An admission for a listener with `limits`.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            per_ip: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        })
    }

    /// The listener's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The listener's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Admits a connection from `ip`, or says why not. The permit holds the connection's
    /// place until it is dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let mut per_ip = self.per_ip.lock();
        let open: usize = usize::try_from(self.stats.open.get()).unwrap_or(0);
        let refusal = if open >= self.limits.max_connections {
            Some(Refusal::Full)
        } else if per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_connections_per_ip {
            Some(Refusal::PerIp)
        } else {
            None
        };
        if let Some(r) = refusal {
            self.stats
                .refused
                .get_or_create(&ReasonLabel { reason: r.reason() })
                .inc();
            return Err(r);
        }
        *per_ip.entry(ip).or_insert(0) += 1;
        self.stats.open.inc();
        self.stats.accepted.inc();
        Ok(Permit {
            admission: self.clone(),
            ip,
        })
    }

    fn release(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock();
        if let Some(n) = per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
        self.stats.open.dec();
    }
}

/// One admitted connection's place; released on drop.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Permit {
    /// The listener's counters.
    pub fn stats(&self) -> &Stats {
        &self.admission.stats
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.release(self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_listener_and_per_ip() {
        let admission = Admission::new(Limits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Limits::default()
        });
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 1].into(), [127, 0, 0, 2].into());
        let a1 = admission.admit(a).unwrap();
        let _a2 = admission.admit(a).unwrap();
        assert_eq!(admission.admit(a).unwrap_err(), Refusal::PerIp);
        let _b1 = admission.admit(b).unwrap();
        assert_eq!(admission.admit(b).unwrap_err(), Refusal::Full);
        drop(a1);
        let _a3 = admission.admit(a).unwrap();
        let stats = admission.stats();
        assert_eq!((stats.open(), stats.accepted()), (3, 4));
        assert_eq!(stats.refused(Refusal::PerIp), 1);
        assert_eq!(stats.refused(Refusal::Full), 1);
        assert_eq!(admission.per_ip.lock().len(), 2);
    }

    #[test]
    fn the_per_ip_map_empties_as_connections_close() {
        let admission = Admission::new(Limits::default());
        let permits: Vec<_> = (0..100u8)
            .map(|i| admission.admit([10, 0, 0, i].into()).unwrap())
            .collect();
        assert_eq!(admission.per_ip.lock().len(), 100);
        drop(permits);
        assert!(admission.per_ip.lock().is_empty());
        assert_eq!(admission.stats().open(), 0);
    }
}
