//! Stream names become playlist lines and paths, so the origin refuses any name outside its
//! documented set: on publish, on play, and on every HTTP path.

use std::time::Duration;

use livepulse_tests::{get, push_sample, start_origin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_outside_the_allowed_set_are_refused() {
    let origin = start_origin(|_| {}).await;
    let rtmp = origin.rtmp_addr();
    for name in ["a\nb", "..", ".hidden", "a b", "a\u{7}b", &"x".repeat(129)] {
        let (stop, task) = push_sample(&format!("rtmp://{rtmp}/live/{name}"));
        let ended = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a refused publisher ends")
            .expect("task");
        let err = ended.expect_err("refused").to_string();
        assert!(err.contains("name"), "{name:?}: {err}");
        stop.cancel();
    }
    assert!(origin.hub().stats().is_empty(), "no stream was created");
    let http = origin.http_addr();
    for path in [
        "live/a%0Ab.m3u8",
        "live/a%0Ab.flv",
        "live/a%20b/master.m3u8",
        "li%0Ave/cam.m3u8",
        "live/%2Ehidden/0.ts",
    ] {
        let (status, body) = get(&format!("http://{http}/{path}")).await;
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
    }
    origin.shutdown().await;
}
