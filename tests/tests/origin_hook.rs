//! The `on_publish` HTTP hook decides who may publish.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use livepulse_tests::{push_sample, start_origin};

/// Hook calls seen, as (stream, query).
#[derive(Default)]
struct Calls(std::sync::Mutex<Vec<(String, String)>>);

#[tokio::test]
async fn hook_allows_and_refuses_publishes() {
    let calls = Arc::new(Calls::default());
    let seen = calls.clone();
    let app = Router::new().route(
        "/publish",
        post(move |Json(body): Json<serde_json::Value>| {
            let seen = seen.clone();
            async move {
                let stream = body["stream"].as_str().unwrap_or_default().to_string();
                let query = body["query"].as_str().unwrap_or_default().to_string();
                let allowed = body["action"] == "on_publish" && query == "token=good";
                if let Ok(mut calls) = seen.0.lock() {
                    calls.push((stream, query));
                }
                if allowed {
                    StatusCode::OK
                } else {
                    StatusCode::FORBIDDEN
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook_addr = listener.local_addr().expect("addr");
    let hook = tokio::spawn(async move { axum::serve(listener, app).await });

    let origin = start_origin(|c| c.on_publish = Some(format!("http://{hook_addr}/publish"))).await;
    let rtmp = origin.rtmp_addr();

    let (_stop, refused) = push_sample(&format!("rtmp://{rtmp}/live/cam?token=bad"));
    let err = tokio::time::timeout(Duration::from_secs(10), refused)
        .await
        .expect("refusal is prompt")
        .expect("task")
        .expect_err("a bad token is refused");
    assert!(err.to_string().contains("403"), "{err}");

    let (stop, allowed) = push_sample(&format!("rtmp://{rtmp}/live/cam?token=good"));
    let live = livepulse_tests::wait_for(Duration::from_secs(10), || async {
        origin.hub().get("live/cam").filter(|s| s.is_live())
    })
    .await;
    assert!(live.is_some(), "a good token is allowed");
    assert!(!allowed.is_finished());
    let calls = calls.0.lock().expect("lock").clone();
    assert_eq!(
        calls,
        vec![
            ("cam".to_string(), "token=bad".to_string()),
            ("cam".to_string(), "token=good".to_string())
        ]
    );
    stop.cancel();
    origin.shutdown().await;
    hook.abort();
}
