//! Flash sales: specs, outcomes, and the lock-free in-memory book.
//!
//! Stock, the per-user limit and idempotency keys are decided together: the memory
//! book uses compare-and-swap on atomics; the Redis store runs one Lua script.
//!
//! An answer is remembered for [`AnswerLimits::ttl_ms`] after the key's first attempt;
//! within that time a retry gets the same answer and never buys again. The memory book
//! also holds at most [`AnswerLimits::max_keys`] answers per sale: when full it forgets
//! expired answers, then `sold_out` and `limit_reached` ones (a fresh decision for such a
//! key can never be a sale: stock only shrinks and a user's count only grows once they
//! reach the limit), and refuses new keys if only sales and undecided keys remain.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::metrics::{Forgotten, Metrics};

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

/// How long purchase answers are remembered, and how many per sale in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerLimits {
    /// Milliseconds after a key's first attempt during which its answer is replayed.
    pub ttl_ms: u64,
    /// Most answers one in-memory sale remembers.
    pub max_keys: usize,
}

/// How long a prune that left the book nearly full keeps further prunes from running.
const PRUNE_BACKOFF_MS: u64 = 1000;

/// The book holds only sales and undecided keys up to its limit: a new key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the sale remembers {0} idempotency keys, its limit; retry later")]
pub struct AnswersFull(pub usize);

/// One idempotency key's answer, decided once.
struct Answer {
    first_ms: u64,
    outcome: OnceLock<Outcome>,
}

impl Answer {
    fn new(first_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            first_ms,
            outcome: OnceLock::new(),
        })
    }

    fn live(&self, now_ms: u64, ttl_ms: u64) -> bool {
        now_ms < self.first_ms.saturating_add(ttl_ms)
    }

    /// A decided answer other than a sale: forgetting it early can never sell twice.
    fn refusal(&self) -> bool {
        self.outcome
            .get()
            .is_some_and(|o| !matches!(o, Outcome::Success { .. }))
    }
}

/// In-memory sale: stock and per-user counts by compare-and-swap, one answer per key.
pub struct MemorySale {
    spec: SaleSpec,
    remaining: AtomicU64,
    per_user: DashMap<String, Arc<AtomicU32>>,
    answers: DashMap<(String, String), Arc<Answer>>,
    entries: AtomicUsize,
    /// Serializes prunes; holds the time before which a fruitless prune is not repeated.
    prune_gate: Mutex<u64>,
    limits: AnswerLimits,
    metrics: Arc<Metrics>,
    counts: [AtomicU64; 3],
}

impl MemorySale {
    /// A sale with all stock remaining.
    pub fn new(spec: SaleSpec, limits: AnswerLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            remaining: AtomicU64::new(spec.stock),
            spec,
            per_user: DashMap::new(),
            answers: DashMap::new(),
            entries: AtomicUsize::new(0),
            prune_gate: Mutex::new(0),
            limits,
            metrics,
            counts: Default::default(),
        }
    }

    /// One purchase attempt at `now_ms`. The first attempt for (`user`, `key`) decides;
    /// retries within the TTL get the same outcome, even while the first is still deciding.
    pub fn purchase(&self, user: &str, key: &str, now_ms: u64) -> Result<Outcome, AnswersFull> {
        if now_ms < self.spec.start_at_ms {
            return Ok(Outcome::NotStarted);
        }
        let answer = match self.answer(user, key, now_ms) {
            Some(a) => a,
            None => {
                self.prune(now_ms);
                self.answer(user, key, now_ms)
                    .ok_or(AnswersFull(self.limits.max_keys))?
            }
        };
        Ok(answer
            .outcome
            .get_or_init(|| {
                let outcome = self.decide(user);
                let slot = match outcome.kind() {
                    OutcomeKind::Success => 0,
                    OutcomeKind::SoldOut => 1,
                    _ => 2,
                };
                self.counts[slot].fetch_add(1, SeqCst);
                outcome
            })
            .clone())
    }

    /// The live answer cell of a key, a fresh one replacing an expired one, or a new one
    /// if the book has room; `None` when it is full.
    fn answer(&self, user: &str, key: &str, now_ms: u64) -> Option<Arc<Answer>> {
        match self.answers.entry((user.to_string(), key.to_string())) {
            dashmap::Entry::Occupied(mut o) => {
                if !o.get().live(now_ms, self.limits.ttl_ms) {
                    o.insert(Answer::new(now_ms));
                    self.metrics.forgot(Forgotten::Expired, 1);
                    self.metrics.remembered(1);
                }
                Some(o.get().clone())
            }
            dashmap::Entry::Vacant(v) => {
                let max = self.limits.max_keys;
                self.entries
                    .fetch_update(SeqCst, SeqCst, |n| (n < max).then_some(n + 1))
                    .ok()?;
                self.metrics.remembered(1);
                Some(v.insert(Answer::new(now_ms)).clone())
            }
        }
    }

    /// Makes room in a full book: expired answers first, then refusals once the book is
    /// still above 90% full. A prune leaving it above 90% is not repeated for a second.
    fn prune(&self, now_ms: u64) {
        let mut gate = self.prune_gate.lock();
        let max = self.limits.max_keys;
        if self.entries.load(SeqCst) < max || now_ms < *gate {
            return;
        }
        let low_water = max - max / 10;
        self.forget(now_ms, false);
        if self.entries.load(SeqCst) >= low_water {
            self.forget(now_ms, true);
        }
        if self.entries.load(SeqCst) >= low_water {
            *gate = now_ms.saturating_add(PRUNE_BACKOFF_MS);
        }
    }

    /// Forgets answers expired at `now_ms` (periodic sweep).
    pub fn sweep(&self, now_ms: u64) {
        let _gate = self.prune_gate.lock();
        self.forget(now_ms, false);
    }

    /// Drops expired answers, or with `refusals` decided non-sale answers, and counts them.
    fn forget(&self, now_ms: u64, refusals: bool) {
        let ttl = self.limits.ttl_ms;
        let mut dropped = 0usize;
        self.answers.retain(|_, a| {
            let drop = if refusals {
                a.refusal()
            } else {
                !a.live(now_ms, ttl)
            };
            dropped += usize::from(drop);
            !drop
        });
        if dropped > 0 {
            self.entries.fetch_sub(dropped, SeqCst);
            let reason = if refusals {
                Forgotten::Capacity
            } else {
                Forgotten::Expired
            };
            self.metrics.forgot(reason, dropped);
        }
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

    const DAY_MS: u64 = 86_400_000;

    fn sale(stock: u64, limit: u32, ttl_ms: u64, max_keys: usize) -> (MemorySale, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let limits = AnswerLimits { ttl_ms, max_keys };
        (
            MemorySale::new(spec(stock, limit), limits, metrics.clone()),
            metrics,
        )
    }

    fn buy(s: &MemorySale, user: &str, key: &str, now_ms: u64) -> Outcome {
        s.purchase(user, key, now_ms).expect("the book has room")
    }

    fn metric(m: &Metrics, line: &str) -> bool {
        m.render("memory").lines().any(|l| l == line)
    }

    #[test]
    fn limits_stock_and_replays() {
        let (s, _) = sale(2, 1, DAY_MS, 100);
        assert_eq!(buy(&s, "a", "k", 999), Outcome::NotStarted);
        assert_eq!(buy(&s, "a", "k", 1000), Outcome::Success { order: 1 });
        assert_eq!(buy(&s, "a", "k", 1000), Outcome::Success { order: 1 });
        assert_eq!(buy(&s, "a", "k2", 1000), Outcome::LimitReached);
        assert_eq!(buy(&s, "b", "k", 1000), Outcome::Success { order: 2 });
        assert_eq!(buy(&s, "c", "k", 1000), Outcome::SoldOut);
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
    fn answers_are_replayed_within_the_ttl_only() {
        let (s, m) = sale(3, 3, 100, 100);
        assert_eq!(buy(&s, "a", "k", 1000), Outcome::Success { order: 1 });
        assert_eq!(buy(&s, "a", "k", 1099), Outcome::Success { order: 1 });
        assert_eq!(buy(&s, "a", "k", 1100), Outcome::Success { order: 2 });
        assert_eq!(buy(&s, "a", "k", 1199), Outcome::Success { order: 2 });
        assert_eq!(s.state().sold, 2);
        assert!(metric(&m, "business_idempotency_keys 1"));
        assert!(metric(
            &m,
            "business_idempotency_evicted_total{reason=\"expired\"} 1"
        ));
    }

    #[test]
    fn sweep_forgets_expired_answers() {
        let (s, m) = sale(10, 10, 100, 100);
        for k in ["k1", "k2", "k3"] {
            buy(&s, "a", k, 1000);
        }
        buy(&s, "a", "k4", 1050);
        s.sweep(1099);
        assert_eq!(s.answers.len(), 4);
        s.sweep(1100);
        assert_eq!(s.answers.len(), 1);
        assert!(metric(&m, "business_idempotency_keys 1"));
        assert!(metric(
            &m,
            "business_idempotency_evicted_total{reason=\"expired\"} 3"
        ));
    }

    #[test]
    fn a_full_book_forgets_refusals_before_sales() {
        let (s, m) = sale(2, 1, DAY_MS, 4);
        assert_eq!(buy(&s, "a", "k1", 1000), Outcome::Success { order: 1 });
        assert_eq!(buy(&s, "a", "k2", 1000), Outcome::LimitReached);
        assert_eq!(buy(&s, "b", "k1", 1000), Outcome::Success { order: 2 });
        assert_eq!(buy(&s, "c", "k1", 1000), Outcome::SoldOut);
        assert_eq!(buy(&s, "d", "k1", 1000), Outcome::SoldOut);
        assert_eq!(s.answers.len(), 3);
        assert!(metric(
            &m,
            "business_idempotency_evicted_total{reason=\"capacity\"} 2"
        ));
        assert_eq!(buy(&s, "a", "k1", 1000), Outcome::Success { order: 1 });
        assert_eq!(buy(&s, "b", "k1", 1000), Outcome::Success { order: 2 });
        assert_eq!(buy(&s, "a", "k2", 1000), Outcome::LimitReached);
        assert_eq!(s.state().sold, 2);
    }

    #[test]
    fn a_book_full_of_sales_refuses_new_keys_until_they_expire() {
        let (s, _) = sale(4, 1, 10_000, 2);
        assert_eq!(buy(&s, "a", "k", 1000), Outcome::Success { order: 1 });
        assert_eq!(buy(&s, "b", "k", 1000), Outcome::Success { order: 2 });
        assert_eq!(s.purchase("c", "k", 1000), Err(AnswersFull(2)));
        assert_eq!(s.purchase("c", "k", 1500), Err(AnswersFull(2)));
        assert_eq!(buy(&s, "a", "k", 1500), Outcome::Success { order: 1 });
        assert_eq!(buy(&s, "c", "k", 11_000), Outcome::Success { order: 3 });
        assert_eq!(buy(&s, "a", "k", 11_000), Outcome::LimitReached);
        assert_eq!(s.state().sold, 3);
    }

    #[test]
    fn never_oversells_under_threads() {
        let (s, m) = sale(100, 2, DAY_MS, 1000);
        let s = Arc::new(s);
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    (0..2000)
                        .filter(|i| {
                            let user = format!("u{}", i % 300);
                            matches!(
                                s.purchase(&user, &format!("{t}-{i}"), 5000),
                                Ok(Outcome::Success { .. })
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
        assert!(s.answers.len() <= 1000);
        assert!(metric(
            &m,
            &format!("business_idempotency_keys {}", s.answers.len())
        ));
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
