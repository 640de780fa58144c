//! A flash-sale pulse at the issue's scale: 10,000 purchase attempts spread over 1 s against
//! the business server. The report's arrival timeline keeps the pulse shape, and exactly the
//! stock is sold.

use loadgen::{run, RunOptions, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_purchases_in_one_second() {
    let server = livepulse_tests::start_business("pulse-secret", "pulse-admin").await;
    let addr = server.http_addr();
    let scenario = Scenario::from_toml(&format!(
        r#"
name = "flash-sale pulse"
duration = "6s"

[[workload]]
name = "buyers"
driver = {{ kind = "flash-sale", url = "http://{addr}", sale = "pulse", token_secret = "pulse-secret", create_stock = 1000, admin_key = "pulse-admin" }}
model = {{ kind = "pulse", count = 10000, window = "1s", at = "2s" }}
"#
    ))
    .expect("valid scenario");
    let report = run(&scenario, &RunOptions::default()).await.expect("run");
    let text = loadgen::text::render(&report);
    println!("{text}");
    let w = &report.workloads[0];
    assert_eq!(w.arrivals.started, 10_000, "{text}");
    assert_eq!(w.outcomes.get("success"), Some(&1000), "{text}");
    assert_eq!(w.outcomes.get("sold_out"), Some(&9000), "{text}");
    // The pulse occupies the ten 100 ms buckets from 2.0 s to 3.0 s, 1,000 starts each. A
    // busy machine starts some arrivals late, and the generator reports by how much: no start
    // is later than the pulse's max lag, so by the end of each bucket at least the starts due
    // one max lag earlier have happened, and none ever runs ahead of its time. The lag itself
    // must stay small, or the pulse lost its shape.
    let buckets = &w.arrivals_100ms;
    println!("arrivals per 100 ms: {buckets:?}");
    assert_eq!(buckets.iter().sum::<u64>(), 10_000);
    assert!(
        buckets[..20].iter().all(|&n| n == 0),
        "nothing before the pulse"
    );
    let max_lag_ms = w.pulses[0].max_lag_ms;
    assert!(
        max_lag_ms < 250.0,
        "pulse starts lagged {max_lag_ms} ms: {text}"
    );
    let behind = (max_lag_ms.ceil() as u64 + 1) * 10;
    let mut started = 0;
    for (i, &n) in buckets[20..30].iter().enumerate() {
        started += n;
        let due = 1000 * (i as u64 + 1);
        assert!(
            (due.saturating_sub(behind)..=due + 100).contains(&started),
            "by bucket {} {started} starts, {due} due, at most {behind} behind: {buckets:?}",
            20 + i
        );
    }
    let state: serde_json::Value = reqwest::get(format!("http://{addr}/api/v1/sales/pulse"))
        .await
        .expect("sale state")
        .json()
        .await
        .expect("json");
    assert_eq!(state["sold"], 1000, "{state}");
    server.shutdown().await;
}
