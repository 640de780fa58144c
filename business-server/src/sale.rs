//! Flash sales: specs, outcomes, and the lock-free in-memory book.
//!
//! Stock, the per-user limit and idempotency keys are decided together: the memory
//! book uses compare-and-swap on atomics; the Redis store runs one Lua script.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

/// Longest item name and idempotency key.
pub const MAX_TEXT: usize = 128;

/// A sale as created by an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleSpec {
    /// Sale id (`[A-Za-z0-9_-]`, 1-64).
    pub id: String,
    /// What is sold.
    pub item: String,
    /// Units for sale.
    pub stock: u64,
    /// Opening time, unix milliseconds.
    pub start_at_ms: u64,
    /// Most units one user may buy.
    pub per_user_limit: u32,
}

/// The answer to one purchase attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// One unit bought; `order` numbers successes 1..=stock.
    Success {
        /// Order number.
        order: u64,
    },
    /// No stock left.
    SoldOut,
    /// The user already bought `per_user_limit` units.
    LimitReached,
    /// The sale has not opened yet (not remembered: retry after opening).
    NotStarted,
}

/// Outcome without data, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// See [`Outcome::Success`].
    Success,
    /// See [`Outcome::SoldOut`].
    SoldOut,
    /// See [`Outcome::LimitReached`].
    LimitReached,
    /// See [`Outcome::NotStarted`].
    NotStarted,
}

impl OutcomeKind {
    /// All kinds (index = `self as usize`).
    pub const ALL: [OutcomeKind; 4] = [
        Self::Success,
        Self::SoldOut,
        Self::LimitReached,
        Self::NotStarted,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::SoldOut => "sold_out",
            Self::LimitReached => "limit_reached",
            Self::NotStarted => "not_started",
        }
    }
}

impl Outcome {
    /// The kind of this outcome.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Success { .. } => OutcomeKind::Success,
            Outcome::SoldOut => OutcomeKind::SoldOut,
            Outcome::LimitReached => OutcomeKind::LimitReached,
            Outcome::NotStarted => OutcomeKind::NotStarted,
        }
    }

    /// Compact form stored in Redis: `success:N`, `sold_out`, ...
    pub fn to_compact(&self) -> String {
        match self {
            Outcome::Success { order } => format!("success:{order}"),
            other => other.kind().as_str().to_string(),
        }
    }

    /// Parses [`Outcome::to_compact`].
    pub fn from_compact(s: &str) -> Option<Outcome> {
        match s {
            "sold_out" => Some(Outcome::SoldOut),
            "limit_reached" => Some(Outcome::LimitReached),
            "not_started" => Some(Outcome::NotStarted),
            _ => s
                .strip_prefix("success:")
                .and_then(|n| n.parse().ok())
                .map(|order| Outcome::Success { order }),
        }
    }
}

/// Distinct purchase attempts (idempotency keys) by final outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Successful keys.
    pub success: u64,
    /// Keys answered `sold_out`.
    pub sold_out: u64,
    /// Keys answered `limit_reached`.
    pub limit_reached: u64,
}

/// A sale with its live counters, as returned by `GET /api/v1/sales/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleState {
    /// The spec.
    #[serde(flatten)]
    pub spec: SaleSpec,
    /// Units sold.
    pub sold: u64,
    /// Units left.
    pub remaining: u64,
    /// Distinct attempts by outcome.
    pub outcomes: OutcomeCounts,
}

/// Phase of a sale at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not open yet.
    Scheduled,
    /// Open with stock left.
    Open,
    /// Everything sold.
    SoldOut,
}

impl SaleState {
    /// Phase at `now_ms`.
    pub fn phase(&self, now_ms: u64) -> Phase {
        if self.remaining == 0 {
            Phase::SoldOut
        } else if now_ms < self.spec.start_at_ms {
            Phase::Scheduled
        } else {
            Phase::Open
        }
    }
}

/// In-memory sale: stock and per-user counts by compare-and-swap, one answer per key.
pub struct MemorySale {
    spec: SaleSpec,
    remaining: AtomicU64,
    per_user: DashMap<String, Arc<AtomicU32>>,
    answers: DashMap<(String, String), Arc<OnceLock<Outcome>>>,
    counts: [AtomicU64; 3],
}

impl MemorySale {
    /// A sale with all stock remaining.
    pub fn new(spec: SaleSpec) -> Self {
        Self {
            remaining: AtomicU64::new(spec.stock),
            spec,
            per_user: DashMap::new(),
            answers: DashMap::new(),
            counts: Default::default(),
        }
    }

    /// One purchase attempt. The first attempt for (`user`, `key`) decides; retries with
    /// the same key get the same outcome, even while the first is still deciding.
    pub fn purchase(&self, user: &str, key: &str, now_ms: u64) -> Outcome {
        if now_ms < self.spec.start_at_ms {
            return Outcome::NotStarted;
        }
        let cell = self
            .answers
            .entry((user.to_string(), key.to_string()))
            .or_default()
            .clone();
        cell.get_or_init(|| {
            let outcome = self.decide(user);
            let slot = match outcome.kind() {
                OutcomeKind::Success => 0,
                OutcomeKind::SoldOut => 1,
                _ => 2,
            };
            self.counts[slot].fetch_add(1, SeqCst);
            outcome
        })
        .clone()
    }

    fn decide(&self, user: &str) -> Outcome {
        let bought = self.per_user.entry(user.to_string()).or_default().clone();
        let limit = self.spec.per_user_limit;
        if bought
            .fetch_update(SeqCst, SeqCst, |n| (n < limit).then_some(n + 1))
            .is_err()
        {
            return Outcome::LimitReached;
        }
        match self
            .remaining
            .fetch_update(SeqCst, SeqCst, |r| r.checked_sub(1))
        {
            Ok(before) => Outcome::Success {
                order: self.spec.stock - before + 1,
            },
            Err(_) => {
                bought.fetch_sub(1, SeqCst);
                Outcome::SoldOut
            }
        }
    }

    /// Current state.
    pub fn state(&self) -> SaleState {
        let remaining = self.remaining.load(SeqCst);
        SaleState {
            spec: self.spec.clone(),
            sold: self.spec.stock - remaining,
            remaining,
            outcomes: OutcomeCounts {
                success: self.counts[0].load(SeqCst),
                sold_out: self.counts[1].load(SeqCst),
                limit_reached: self.counts[2].load(SeqCst),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(stock: u64, limit: u32) -> SaleSpec {
        SaleSpec {
            id: "s".into(),
            item: "phone".into(),
            stock,
            start_at_ms: 1000,
            per_user_limit: limit,
        }
    }

    #[test]
    fn limits_stock_and_replays() {
        let s = MemorySale::new(spec(2, 1));
        assert_eq!(s.purchase("a", "k", 999), Outcome::NotStarted);
        assert_eq!(s.purchase("a", "k", 1000), Outcome::Success { order: 1 });
        assert_eq!(s.purchase("a", "k", 1000), Outcome::Success { order: 1 });
        assert_eq!(s.purchase("a", "k2", 1000), Outcome::LimitReached);
        assert_eq!(s.purchase("b", "k", 1000), Outcome::Success { order: 2 });
        assert_eq!(s.purchase("c", "k", 1000), Outcome::SoldOut);
        let st = s.state();
        assert_eq!((st.sold, st.remaining), (2, 0));
        assert_eq!(
            st.outcomes,
            OutcomeCounts {
                success: 2,
                sold_out: 1,
                limit_reached: 1
            }
        );
        assert_eq!(st.phase(2000), Phase::SoldOut);
    }

    #[test]
    fn never_oversells_under_threads() {
        let s = Arc::new(MemorySale::new(spec(100, 2)));
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    (0..2000)
                        .filter(|i| {
                            let user = format!("u{}", i % 300);
                            matches!(
                                s.purchase(&user, &format!("{t}-{i}"), 5000),
                                Outcome::Success { .. }
                            )
                        })
                        .count()
                })
            })
            .collect();
        let wins: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(wins, 100);
        assert_eq!(s.state().sold, 100);
        assert!(s.per_user.iter().all(|e| e.value().load(SeqCst) <= 2));
    }

    #[test]
    fn compact_round_trip() {
        for o in [
            Outcome::Success { order: 7 },
            Outcome::SoldOut,
            Outcome::LimitReached,
            Outcome::NotStarted,
        ] {
            assert_eq!(Outcome::from_compact(&o.to_compact()), Some(o));
        }
        assert_eq!(Outcome::from_compact("success:x"), None);
    }
}
