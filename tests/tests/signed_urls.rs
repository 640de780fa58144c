//! Signed URLs: an app that needs tokens refuses publishers and viewers whose token is
//! missing, expired or signed for something else, on the origin and on the edge, before any
//! media flows; a valid token plays, and the edge caches one copy for every token.

use std::time::Duration;

use livepulse_tests::{get, push_sample, start_origin, wait_for};
use media_core::token::{sign, Action};
use media_server::auth::AppAuth;
use net_guard::unix_secs;

const SECRET: &str = "paid-app-secret-0123";

fn token(action: Action, stream: &str, ttl: i64) -> String {
    let expires = (unix_secs() as i64 + ttl).max(0) as u64;
    sign(SECRET.as_bytes(), action, "paid", stream, expires)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_guard_publish_and_play_on_origin_and_edge() {
    let origin = start_origin(|c| {
        c.auth.insert(
            "paid".into(),
            AppAuth {
                secret: SECRET.into(),
                publish: true,
                play: true,
            },
        );
    })
    .await;
    let rtmp = origin.rtmp_addr();

    // Publishing: no token, an expired one, and one for playing are refused.
    for query in [
        String::new(),
        format!("?token={}", token(Action::Publish, "cam", -10)),
        format!("?token={}", token(Action::Play, "cam", 600)),
    ] {
        let (stop, task) = push_sample(&format!("rtmp://{rtmp}/paid/cam{query}"));
        let ended = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a refused publisher ends")
            .expect("task");
        assert!(ended.is_err(), "publish with {query:?} refused");
        stop.cancel();
    }
    assert!(
        origin.hub().get("paid/cam").is_none(),
        "no stream was created"
    );
    let publish = format!("?token={}", token(Action::Publish, "cam", 600));
    let (stop, _task) = push_sample(&format!("rtmp://{rtmp}/paid/cam{publish}"));
    let live = wait_for(Duration::from_secs(15), || async {
        origin.hub().get("paid/cam").filter(|s| s.is_live())
    })
    .await;
    assert!(live.is_some(), "a valid publish token publishes");

    let mut edge_config =
        cdn_edge::Config::ephemeral(vec![format!("http://{}", origin.http_addr())]);
    edge_config.auth = vec![("paid".into(), SECRET.into())];
    let edge = cdn_edge::Server::bind(edge_config)
        .await
        .expect("edge starts");

    for host in [origin.http_addr(), edge.http_addr()] {
        for (file, query, reason) in [
            ("cam.m3u8", String::new(), "token is required"),
            ("cam.flv", String::new(), "token is required"),
            ("cam/ll.m3u8", String::new(), "token is required"),
            ("cam/ll-master.m3u8", String::new(), "token is required"),
            (
                "cam.m3u8",
                format!("?token={}", token(Action::Play, "cam", -5)),
                "expired",
            ),
            (
                "cam.m3u8",
                format!("?token={}", token(Action::Play, "other", 60)),
                "signature",
            ),
            (
                "cam.m3u8",
                format!("?token={}", token(Action::Publish, "cam", 60)),
                "signature",
            ),
            ("cam.m3u8", "?token=garbage".to_string(), "malformed"),
        ] {
            let (status, body) = get(&format!("http://{host}/paid/{file}{query}")).await;
            let body = String::from_utf8_lossy(&body);
            assert_eq!(status, 403, "{host} {file}{query}: {body}");
            assert!(body.contains(reason), "{host} {file}{query}: {body}");
        }
        let play = format!("?token={}", token(Action::Play, "cam", 600));
        let (status, body) = get(&format!("http://{host}/paid/cam.m3u8{play}")).await;
        assert_eq!(status, 200, "{host}: a valid play token plays");
        let playlist = String::from_utf8_lossy(&body).into_owned();
        let segment = playlist
            .lines()
            .find(|l| l.ends_with(".ts"))
            .expect("a segment listed");
        let (status, _) = get(&format!("http://{host}/paid/{segment}")).await;
        assert_eq!(status, 200, "{host}: segments need no token");
    }

    // Two viewers with different tokens share one cached playlist at the edge.
    let first = format!("?token={}", token(Action::Play, "cam", 300));
    let second = format!("?token={}", token(Action::Play, "cam", 400));
    let url = |q: &str| format!("http://{}/paid/cam.m3u8{q}", edge.http_addr());
    let a = reqwest::get(url(&first)).await.expect("first");
    assert_eq!(a.status(), 200);
    let b = reqwest::get(url(&second)).await.expect("second");
    assert_eq!(b.status(), 200);
    assert_eq!(
        b.headers().get("x-cache").and_then(|v| v.to_str().ok()),
        Some("HIT"),
        "the token is not part of the cache key"
    );
    // Apps without a policy need no token.
    let (status, _) = get(&format!("http://{}/live/none.m3u8", origin.http_addr())).await;
    assert_eq!(status, 404);

    stop.cancel();
    edge.shutdown().await;
    origin.shutdown().await;
}
