//! The load generator against someone else's stack: `rtmp-publish` into nginx-rtmp and
//! `hls-play` from its HLS output, in one scenario.

use livepulse_tests::nginx;
use loadgen::{run, RunOptions, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_and_hls_viewers_against_nginx_rtmp() {
    if !nginx::available() {
        return;
    }
    let nginx = nginx::start();
    let (rtmp, http) = (nginx.rtmp_port, nginx.http_port);
    let scenario = Scenario::from_toml(&format!(
        r#"
name = "nginx-rtmp"
duration = "14s"
grace = "2s"

[[workload]]
name = "publish"
driver = {{ kind = "rtmp-publish", url = "rtmp://127.0.0.1:{rtmp}/live/lg{{n}}" }}
model = {{ kind = "closed", users = 2 }}

[[workload]]
name = "hls"
start = "5s"
driver = {{ kind = "hls-play", url = "http://127.0.0.1:{http}/hls/lg{{n%2}}.m3u8" }}
model = {{ kind = "closed", users = 4 }}
thresholds = ["startup_failures == 0"]
"#
    ))
    .expect("valid scenario");
    let report = run(&scenario, &RunOptions::default()).await.expect("run");
    let text = loadgen::text::render(&report);
    println!("{text}");
    let publish = &report.workloads[0];
    assert_eq!(publish.operations["connect"].count, 2, "{text}");
    assert!(publish.errors.is_empty(), "{text}");
    let hls = &report.workloads[1];
    let media = hls.media.as_ref().expect("media metrics");
    assert_eq!(media.sessions, 4, "{text}");
    assert_eq!(hls.operations["startup"].count, 4, "{text}");
    assert!(
        media.latency_samples > 50,
        "SEI stamps survive nginx's remux: {text}"
    );
    assert!(hls.bytes > 200_000, "{text}");
    assert!(report.passed, "{text}");
}
