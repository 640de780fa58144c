//! Counters exported at `/metrics` in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::pending::{Dropped, Priority};
use crate::protocol::ErrorCode;
use crate::sale::OutcomeKind;

/// All counters of one server instance.
#[derive(Default)]
pub struct Metrics {
    /// Open WebSocket connections.
    pub connections: AtomicI64,
    /// WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Upgrades refused because the IP had too many connections.
    pub connections_rejected: AtomicU64,
    /// Members that joined a room.
    pub joins: AtomicU64,
    /// Rooms with members on this instance.
    pub rooms: AtomicI64,
    /// Client messages received.
    pub messages_in: AtomicU64,
    /// Frames sent to members (batch copies plus direct replies).
    pub messages_out: AtomicU64,
    /// Events merged into batches.
    pub events: AtomicU64,
    /// Batches built (each serialized once).
    pub batches: AtomicU64,
    /// Bytes handed to member queues and sockets.
    pub bytes_out: AtomicU64,
    /// Batches a member missed because its queue was full.
    pub batches_missed: AtomicU64,
    /// Members disconnected for lagging.
    pub lagging_dropped: AtomicU64,
    /// WebSocket pings sent to members.
    pub pings: AtomicU64,
    /// Members closed because nothing, not even a pong, arrived for the idle deadline.
    pub idle_closed: AtomicU64,
    idempotency_keys: AtomicI64,
    events_dropped: [AtomicU64; Priority::ALL.len()],
    forgotten: [AtomicU64; Forgotten::ALL.len()],
    purchases: [AtomicU64; OutcomeKind::ALL.len()],
    errors: [AtomicU64; ErrorCode::ALL.len()],
    listener: net_guard::Stats,
}

impl Metrics {
    /// Counters that also show the HTTP listener's connection counters.
    pub fn new(listener: net_guard::Stats) -> Self {
        Self {
            listener,
            ..Self::default()
        }
    }
}

/// Writes a counter with one series per label value.
fn labelled<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: impl IntoIterator<Item = (&'a str, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (value, n) in series {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

/// Why the memory store forgot idempotency answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgotten {
    /// The answer outlived the TTL.
    Expired,
    /// The sale's book was full; refusals (`sold_out`, `limit_reached`) went first.
    Capacity,
}

impl Forgotten {
    /// All reasons (index = `self as usize`).
    pub const ALL: [Forgotten; 2] = [Self::Expired, Self::Capacity];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Capacity => "capacity",
        }
    }
}

impl Metrics {
    /// Counts room events dropped because a room's pending events were full.
    pub fn events_dropped(&self, dropped: Dropped) {
        for (counter, n) in self.events_dropped.iter().zip(dropped) {
            if n > 0 {
                counter.fetch_add(n, Relaxed);
            }
        }
    }

    /// Counts `n` idempotency answers newly remembered.
    pub fn remembered(&self, n: usize) {
        self.idempotency_keys
            .fetch_add(i64::try_from(n).unwrap_or(i64::MAX), Relaxed);
    }

    /// Counts `n` idempotency answers forgotten for `reason`.
    pub fn forgot(&self, reason: Forgotten, n: usize) {
        self.forgotten[reason as usize].fetch_add(n as u64, Relaxed);
        self.idempotency_keys
            .fetch_sub(i64::try_from(n).unwrap_or(i64::MAX), Relaxed);
    }

    /// Counts one purchase answer.
    pub fn purchase(&self, kind: OutcomeKind) {
        self.purchases[kind as usize].fetch_add(1, Relaxed);
    }

    /// Counts one error sent to a client.
    pub fn error(&self, code: ErrorCode) {
        self.errors[code as usize].fetch_add(1, Relaxed);
    }

    /// Adds `n` bytes in `frames` frames to the outgoing totals.
    pub fn sent(&self, frames: u64, bytes: u64) {
        self.messages_out.fetch_add(frames, Relaxed);
        self.bytes_out.fetch_add(bytes, Relaxed);
    }

    /// Renders the Prometheus text exposition.
    pub fn render(&self, backend: &str) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        };
        let _ = writeln!(
            out,
            "# HELP business_info Store backend of this instance.\n# TYPE business_info gauge\nbusiness_info{{backend=\"{backend}\"}} 1"
        );
        gauge(
            &mut out,
            "business_connections",
            "Open WebSocket connections.",
            self.connections.load(Relaxed),
        );
        gauge(
            &mut out,
            "business_rooms",
            "Rooms with members on this instance.",
            self.rooms.load(Relaxed),
        );
        counter(
            &mut out,
            "business_connections_total",
            "WebSocket connections accepted.",
            &self.connections_total,
        );
        counter(
            &mut out,
            "business_connections_rejected_total",
            "Connections refused by the per-IP limit.",
            &self.connections_rejected,
        );
        counter(&mut out, "business_joins_total", "Room joins.", &self.joins);
        counter(
            &mut out,
            "business_messages_in_total",
            "Client messages received.",
            &self.messages_in,
        );
        counter(
            &mut out,
            "business_messages_out_total",
            "Frames sent to members.",
            &self.messages_out,
        );
        counter(
            &mut out,
            "business_events_total",
            "Events merged into batches.",
            &self.events,
        );
        counter(
            &mut out,
            "business_batches_total",
            "Batches built and serialized once.",
            &self.batches,
        );
        counter(
            &mut out,
            "business_bytes_out_total",
            "Bytes sent to members.",
            &self.bytes_out,
        );
        counter(
            &mut out,
            "business_batches_missed_total",
            "Batches missed by members with a full queue.",
            &self.batches_missed,
        );
        counter(
            &mut out,
            "business_lagging_dropped_total",
            "Members disconnected for lagging.",
            &self.lagging_dropped,
        );
        counter(
            &mut out,
            "business_pings_total",
            "WebSocket pings sent to members.",
            &self.pings,
        );
        counter(
            &mut out,
            "business_idle_closed_total",
            "Members closed after the idle deadline without a pong or message.",
            &self.idle_closed,
        );
        labelled(
            &mut out,
            "business_events_dropped_total",
            "Room events dropped because the room's pending events were full, by priority.",
            "priority",
            Priority::ALL.map(|p| (p.as_str(), self.events_dropped[p as usize].load(Relaxed))),
        );
        gauge(
            &mut out,
            "business_idempotency_keys",
            "Idempotency answers remembered (memory store).",
            self.idempotency_keys.load(Relaxed),
        );
        labelled(
            &mut out,
            "business_idempotency_evicted_total",
            "Idempotency answers forgotten by the memory store, by reason.",
            "reason",
            Forgotten::ALL.map(|reason| {
                (
                    reason.as_str(),
                    self.forgotten[reason as usize].load(Relaxed),
                )
            }),
        );
        labelled(
            &mut out,
            "business_purchases_total",
            "Purchase answers by outcome.",
            "outcome",
            OutcomeKind::ALL
                .map(|kind| (kind.as_str(), self.purchases[kind as usize].load(Relaxed))),
        );
        labelled(
            &mut out,
            "business_errors_total",
            "Errors sent to clients by code.",
            "code",
            ErrorCode::ALL.map(|code| (code.as_str(), self.errors[code as usize].load(Relaxed))),
        );
        out.push_str(&self.listener.render_text("business"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::default();
        m.purchase(OutcomeKind::SoldOut);
        m.error(ErrorCode::RateLimited);
        m.sent(3, 30);
        m.remembered(3);
        m.forgot(Forgotten::Capacity, 2);
        let text = m.render("memory");
        assert!(text.contains("business_idempotency_keys 1\n"));
        assert!(text.contains("business_idempotency_evicted_total{reason=\"capacity\"} 2"));
        assert!(text.contains("business_idempotency_evicted_total{reason=\"expired\"} 0"));
        assert!(text.contains("business_purchases_total{outcome=\"sold_out\"} 1"));
        assert!(text.contains("business_errors_total{code=\"rate_limited\"} 1"));
        assert!(text.contains("business_bytes_out_total 30"));
        assert!(text.contains("business_info{backend=\"memory\"} 1"));
    }
}
