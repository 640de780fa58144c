//! The HTML report in a real browser: headless Chromium loads the self-contained page from a
//! file (no network), runs its script, and the DOM it produces has every chart drawn and the
//! breached threshold flagged.

use std::process::Command;

use axum::routing::get;
use axum::Router;
use livepulse_tests::require;
use loadgen::{run, RunOptions, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_in_chromium() {
    if !require("chromium") {
        return;
    }
    let addr = livepulse_tests::serve(Router::new().route("/", get(|| async { "ok" }))).await;
    let scenario = Scenario::from_toml(&format!(
        r#"
name = "browser </script> check"
duration = "3s"
[[workload]]
name = "req"
driver = {{ kind = "http", url = "http://{addr}/" }}
model = {{ kind = "open", start_rate = 50, stages = [{{ target = 200, duration = "3s" }}] }}
thresholds = ["p99 < 1us", "error_rate < 1%"]
"#
    ))
    .expect("valid scenario");
    let report = run(&scenario, &RunOptions::default()).await.expect("run");
    assert!(!report.passed, "p99 < 1us cannot hold");

    let dir = std::env::temp_dir().join(format!("livepulse-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let page = dir.join("report.html");
    loadgen::cli::write_reports(&report, None, Some(&page)).expect("writes");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", dir.join("profile").display()),
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        dom.contains("data-rendered=\"true\""),
        "the report script ran to the end: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let charts = dom.matches("class=\"chart\"").count();
    assert!(charts >= 6, "{charts} charts drawn");
    assert!(
        dom.matches("<path d=\"M").count() >= 4,
        "line series have points"
    );
    assert!(dom.matches("<rect ").count() >= 10, "bar series have bars");
    assert!(
        dom.contains(">FAIL<") && dom.contains(">pass<"),
        "threshold verdicts shown"
    );
    assert!(
        dom.contains("browser &lt;/script&gt; check"),
        "title escaped, not executed"
    );
}
