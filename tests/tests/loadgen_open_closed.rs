//! Coordinated omission: a server that handles one request at a time and sleeps 100 ms on every
//! 10th. A closed-model run (one user, back to back) stops sending while the server stalls, so
//! only the stalled requests look slow. An open-model run at a constant rate keeps arriving,
//! and because latency is measured from each request's intended start, the queue that builds
//! behind every stall shows in the percentiles.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use loadgen::histogram;
use loadgen::{run, RunOptions, Scenario};
use tokio::sync::Mutex;

async fn serial_server() -> std::net::SocketAddr {
    let count = Arc::new(Mutex::new(0u64));
    let app = Router::new().route(
        "/",
        get(move || {
            let count = count.clone();
            async move {
                let mut n = count.lock().await;
                *n += 1;
                if *n % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                "ok"
            }
        }),
    );
    livepulse_tests::serve(app).await
}

/// Share of samples at or above `ms`.
fn share_at_least(summary: &histogram::Summary, ms: u64) -> f64 {
    let h = histogram::decode(&summary.histogram, 3).expect("histogram");
    let slow: u64 = h
        .iter_recorded()
        .filter(|v| v.value_iterated_to() >= ms * 1000)
        .map(|v| v.count_at_value())
        .sum();
    slow as f64 / h.len() as f64
}

async fn measure(addr: std::net::SocketAddr, model: &str) -> histogram::Summary {
    let scenario = Scenario::from_toml(&format!(
        r#"
name = "co"
duration = "5s"
[[workload]]
name = "req"
driver = {{ kind = "http", url = "http://{addr}/" }}
model = {model}
"#
    ))
    .expect("valid scenario");
    let report = run(&scenario, &RunOptions::default()).await.expect("run");
    println!("{}", loadgen::text::render(&report));
    let w = &report.workloads[0];
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    w.operations["request"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_shows_the_queueing_a_closed_model_hides() {
    let addr = serial_server().await;
    let closed = measure(addr, r#"{ kind = "closed", users = 1 }"#).await;
    let open = measure(addr, r#"{ kind = "open", rate = 60 }"#).await;

    // Closed: one request in ten is slow and nothing else; the rest are fast.
    let closed_slow = share_at_least(&closed, 20);
    assert!(
        (0.08..=0.12).contains(&closed_slow),
        "closed model: {closed_slow:.3} of requests ≥ 20 ms"
    );
    assert!(closed.p99_ms >= 95.0 && closed.p99_ms < 150.0, "{closed:?}");
    assert!(closed.p50_ms < 10.0, "{closed:?}");

    // Open at 60/s: each 100 ms stall holds back the ~6 arrivals behind it, so far more than
    // one in ten requests waits, the median moves, and the tail includes stall plus queue.
    let open_slow = share_at_least(&open, 20);
    assert!(
        open_slow > 3.0 * closed_slow,
        "open model: {open_slow:.3} of requests ≥ 20 ms vs {closed_slow:.3} closed"
    );
    assert!(
        open.p90_ms > 40.0 && closed.p90_ms < 10.0,
        "open {open:?} closed {closed:?}"
    );
    // Both tails sit on the stall itself (one request in ten is the stalled one), so p99 is
    // about 100 ms in both; the open model never reports less.
    assert!(
        open.p99_ms >= 0.95 * closed.p99_ms,
        "open {open:?} closed {closed:?}"
    );
    assert!(
        open.mean_ms > 2.5 * closed.mean_ms,
        "open {open:?} closed {closed:?}"
    );
}
