//! Sharded runs: two shards of one open workload start at a shared wall-clock time, write JSON
//! reports, and `load merge` joins them exactly.

use std::time::{Duration, SystemTime};

use axum::routing::get;
use axum::Router;
use loadgen::cli::{parse_from, read_report};
use loadgen::histogram;
use loadgen::{run, RunOptions, Scenario, Shard};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_merge_into_one_run() {
    let addr = livepulse_tests::serve(Router::new().route("/", get(|| async { "ok" }))).await;

    let scenario = Scenario::from_toml(&format!(
        r#"
name = "sharded"
duration = "3s"
[[workload]]
name = "req"
driver = {{ kind = "http", url = "http://{addr}/" }}
model = {{ kind = "open", rate = 200 }}
thresholds = ["p99 < 1s"]
"#
    ))
    .expect("valid scenario");
    let start_at = SystemTime::now() + Duration::from_millis(500);
    let options = |index| RunOptions {
        shard: Shard { index, count: 2 },
        start_at: Some(start_at),
        live: false,
    };
    let (first, second) = (options(0), options(1));
    let (a, b) = tokio::join!(run(&scenario, &first), run(&scenario, &second));
    let (a, b) = (a.expect("shard 0"), b.expect("shard 1"));
    assert_eq!(a.workloads[0].arrivals.started, 300);
    assert_eq!(b.workloads[0].arrivals.started, 300);
    assert!(
        a.started_unix_ms.abs_diff(b.started_unix_ms) < 50,
        "shared start"
    );

    let dir = std::env::temp_dir().join(format!("livepulse-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let paths: Vec<_> = [&a, &b]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = dir.join(format!("shard{i}.json"));
            std::fs::write(&p, serde_json::to_vec(r).expect("json")).expect("write");
            p
        })
        .collect();
    let out = dir.join("merged.json");
    let html = dir.join("merged.html");
    let args = parse_from([
        "load",
        "merge",
        paths[0].to_str().expect("utf-8"),
        paths[1].to_str().expect("utf-8"),
        "--json",
        out.to_str().expect("utf-8"),
        "--html",
        html.to_str().expect("utf-8"),
        "--quiet",
    ])
    .expect("valid command line");
    assert!(
        loadgen::cli::run(args).await.expect("merge runs"),
        "thresholds hold"
    );
    let merged = read_report(&out).expect("merged report");
    let w = &merged.workloads[0];
    assert_eq!(merged.shards.len(), 2);
    assert_eq!(merged.generators.len(), 2);
    assert_eq!(w.arrivals.started, 600);
    // The two shards interleave into one evenly spread schedule: 20 starts per full 100 ms.
    let buckets = &w.arrivals_100ms;
    let full: Vec<u64> = buckets.iter().copied().filter(|&n| n > 0).collect();
    assert!(
        full[1..full.len() - 1]
            .iter()
            .all(|&n| (18..=22).contains(&n)),
        "{buckets:?}"
    );

    let mut expected =
        histogram::decode(&a.workloads[0].operations["request"].histogram, 3).expect("a");
    histogram::merge(
        &mut expected,
        &histogram::decode(&b.workloads[0].operations["request"].histogram, 3).expect("b"),
    );
    let got = &w.operations["request"];
    assert_eq!(got.count, expected.len());
    for q in [0.5, 0.9, 0.99, 0.999] {
        assert_eq!(
            got.percentile(q * 100.0).expect("decodes"),
            expected.value_at_quantile(q) as f64 / 1000.0
        );
    }
    assert!(std::fs::read_to_string(&html)
        .expect("html")
        .contains("\"scenario\":\"sharded\""));
    let _ = std::fs::remove_dir_all(&dir);
}
