//! Single-flight per key: concurrent misses share one fetch; if it fails, exactly one
//! waiter becomes the next fetcher. Before leading a new fetch a caller looks, under the same
//! lock, for what a finished fetch left behind, so a fetch that ends between a caller's
//! lookup and its joining is never repeated.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

/// How a caller's answer came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This caller started the fetch that answered it.
    Leader,
    /// This caller waited on a fetch someone else started.
    Follower,
    /// A fetch finished just before this caller joined; it took what that fetch left.
    Settled,
}

type Outcome<V> = Option<Result<V, String>>;

/// A fetch under way: its id and where its outcome appears.
type Flight<V> = (u64, watch::Receiver<Outcome<V>>);

/// In-flight fetches by key. Fetches run in their own task, so a caller that goes
/// away does not cancel the fetch the others wait on.
pub struct SingleFlight<V> {
    inflight: Mutex<HashMap<String, Flight<V>>>,
    next_id: AtomicU64,
}

impl<V> Default for SingleFlight<V> {
    fn default() -> Self {
        Self {
            inflight: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }
}

/// Removes a finished (or panicked) fetch from the in-flight map.
struct Done<V> {
    flight: Arc<SingleFlight<V>>,
    key: String,
    id: u64,
}

impl<V> Drop for Done<V> {
    fn drop(&mut self) {
        let mut map = self.flight.inflight.lock();
        if map.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.key);
        }
    }
}

impl<V: Clone + Send + Sync + 'static> SingleFlight<V> {
    /// Number of keys with a fetch under way.
    pub fn in_flight(&self) -> usize {
        self.inflight.lock().len()
    }

    /// Returns the result of the fetch for `key`, starting it with `fetch` only if none is
    /// under way and `settled` (what a finished fetch leaves, such as a cached object) has
    /// nothing. A fetch's result must be where `settled` finds it before the fetch ends. After
    /// a failed fetch the first waiter to come back starts the next one; each caller takes
    /// part in at most `attempts` fetches.
    pub async fn run<S, F, Fut>(
        self: &Arc<Self>,
        key: &str,
        attempts: usize,
        settled: S,
        fetch: F,
    ) -> (Result<V, String>, Role)
    where
        S: Fn() -> Option<V>,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<V, String>> + Send + 'static,
    {
        let mut role = Role::Follower;
        let mut last = Err("no fetch attempted".to_string());
        for _ in 0..attempts.max(1) {
            let mut rx = {
                let mut map = self.inflight.lock();
                match map.get(key) {
                    Some((_, rx)) => rx.clone(),
                    None if let Some(v) = settled() => return (Ok(v), Role::Settled),
                    None => {
                        role = Role::Leader;
                        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                        let (tx, rx) = watch::channel(None);
                        map.insert(key.to_string(), (id, rx.clone()));
                        let done = Done {
                            flight: self.clone(),
                            key: key.to_string(),
                            id,
                        };
                        let fut = fetch();
                        tokio::spawn(async move {
                            let result = fut.await;
                            drop(done);
                            let _ = tx.send(Some(result));
                        });
                        rx
                    }
                }
            };
            last = match rx.wait_for(Option::is_some).await {
                Ok(v) => v.clone().unwrap_or_else(|| Err("fetch abandoned".into())),
                Err(_) => Err("fetch abandoned".into()),
            };
            if last.is_ok() {
                break;
            }
        }
        (last, role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// `n` concurrent callers of one key; `fetch` gets the number of fetches started before it.
    /// Returns every caller's result and how many fetches ran.
    async fn callers<Fut>(
        n: usize,
        fetch: impl Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    ) -> (Vec<(Result<u32, String>, Role)>, usize)
    where
        Fut: Future<Output = Result<u32, String>> + Send + 'static,
    {
        let flight = Arc::new(SingleFlight::<u32>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (flight, calls, fetch) = (flight.clone(), calls.clone(), fetch.clone());
                tokio::spawn(async move {
                    flight
                        .run(
                            "k",
                            3,
                            || None,
                            || fetch(calls.fetch_add(1, Ordering::SeqCst)),
                        )
                        .await
                })
            })
            .collect();
        let results = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.expect("caller task"))
            .collect();
        assert_eq!(flight.in_flight(), 0);
        (results, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_slow_fetch() {
        let (results, fetches) = callers(200, |_| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(7)
        })
        .await;
        assert_eq!(fetches, 1);
        let count = |role| results.iter().filter(|r| **r == (Ok(7), role)).count();
        assert_eq!((count(Role::Leader), count(Role::Follower)), (1, 199));
    }

    #[tokio::test]
    async fn a_failed_fetch_elects_one_new_fetcher() {
        let (results, fetches) = callers(200, |n| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if n == 0 {
                Err("origin down".into())
            } else {
                Ok(9)
            }
        })
        .await;
        assert_eq!(fetches, 2, "one retry, not one per waiter");
        assert!(results.iter().all(|(r, _)| *r == Ok(9)));
    }

    #[tokio::test]
    async fn a_panicking_fetch_does_not_wedge_the_key() {
        let flight = Arc::new(SingleFlight::<u32>::default());
        let boom = true;
        let (r, _) = flight
            .run(
                "k",
                1,
                || None,
                || async move {
                    if boom {
                        panic!("fetch bug");
                    }
                    Ok(0)
                },
            )
            .await;
        assert!(r.is_err());
        assert_eq!(flight.in_flight(), 0);
        let (r, role) = flight.run("k", 1, || None, || async { Ok(1) }).await;
        assert_eq!((r, role), (Ok(1), Role::Leader));
    }

    #[tokio::test]
    async fn a_caller_after_a_finished_fetch_takes_what_it_left() {
        let flight = Arc::new(SingleFlight::<u32>::default());
        let (r, role) = flight
            .run(
                "k",
                1,
                || Some(7),
                || async { panic!("no fetch when settled") },
            )
            .await;
        assert_eq!((r, role), (Ok(7), Role::Settled));
        assert_eq!(flight.in_flight(), 0);
    }
}
