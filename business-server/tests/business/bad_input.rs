//! Bad input gets stable error codes; the server and the room stay healthy.

use business_server::auth::{Claims, Role, TokenSigner};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{instances, metric, token, ws_url, Backend, Client, ADMIN, SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_and_chat_flood_get_error_codes() {
    let (servers, _) = instances(Backend::Memory, 1, |c| {
        c.chat_per_sec = 0.5;
        c.chat_burst = 3;
    })
    .await
    .unwrap();
    let addr = servers[0].http_addr();
    let mut watcher = Client::join(addr, "arena", "watcher").await;
    let mut mallory = Client::join(addr, "arena", "mallory").await;

    let cases = [
        ("{not json".to_string(), "bad_json"),
        ("[1,2,3]".to_string(), "bad_json"),
        (r#"{"type":"dance"}"#.to_string(), "unknown_type"),
        (
            r#"{"type":"chat","text":"x","bold":true}"#.to_string(),
            "unknown_field",
        ),
        (r#"{"type":"chat","text":""}"#.to_string(), "invalid_field"),
        (
            r#"{"type":"chat","text":"x","color":"red"}"#.to_string(),
            "invalid_field",
        ),
        (
            r#"{"type":"chat","v":9,"text":"x"}"#.to_string(),
            "unsupported_version",
        ),
        (
            r#"{"type":"gift","gift":"yacht"}"#.to_string(),
            "unknown_gift",
        ),
        (
            r#"{"type":"purchase","sale":"nope","key":"k"}"#.to_string(),
            "unknown_sale",
        ),
        (
            format!(
                r#"{{"type":"chat","text":{}1{}}}"#,
                "[".repeat(40),
                "]".repeat(40)
            ),
            "json_too_deep",
        ),
        (
            format!(r#"{{"type":"chat","text":"{}"}}"#, "a".repeat(1024 * 1024)),
            "message_too_large",
        ),
    ];
    for (text, code) in cases {
        mallory.send_text(text).await;
        let err = mallory.direct().await;
        assert_eq!(err["type"], "error");
        assert_eq!(err["code"], code, "{err}");
        assert!(!err["message"].as_str().unwrap_or("").is_empty());
    }
    mallory
        .ws
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    assert_eq!(mallory.direct().await["code"], "binary_unsupported");

    for i in 0..20 {
        mallory
            .send(json!({"type":"chat","text":format!("flood {i}"),"id":format!("f{i}")}))
            .await;
    }
    let mut limited = 0;
    for _ in 0..17 {
        let err = mallory.direct().await;
        assert_eq!(err["code"], "rate_limited", "{err}");
        assert!(err["retry_after_ms"].as_u64().unwrap() > 0);
        limited += 1;
    }
    assert_eq!(limited, 17);
    for i in 0..3 {
        let chat = watcher.until(|v| v["type"] == "chat").await;
        assert_eq!(chat["text"], format!("flood {i}"));
    }

    watcher
        .send(json!({"type":"chat","text":"still here"}))
        .await;
    mallory
        .until(|v| v["type"] == "chat" && v["text"] == "still here")
        .await;
    mallory.send(json!({"type":"ping"})).await;
    assert_eq!(mallory.direct().await["type"], "pong");
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(metric(addr, "business_errors_total{code=\"rate_limited\"}").await >= 17.0);
    servers.into_iter().next().unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_foreign_tokens_are_refused() {
    let (servers, _) = instances(Backend::Memory, 1, |_| {}).await.unwrap();
    let addr = servers[0].http_addr();
    let claims = |exp| Claims {
        user: "eve".into(),
        room: "vault".into(),
        role: Role::Admin,
        exp,
    };
    let far = business_server::server::now_secs() + 600;
    let forged = TokenSigner::new(b"not-the-secret").issue(&claims(far));
    let expired = TokenSigner::new(SECRET.as_bytes()).issue(&claims(1000));
    let foreign = token("eve", "other-room", Role::Viewer);
    for (t, code, close) in [
        (forged.as_str(), "token_invalid", 4401),
        (expired.as_str(), "token_expired", 4401),
        (foreign.as_str(), "token_room_mismatch", 4403),
        ("garbage", "token_invalid", 4401),
    ] {
        let mut c = Client::connect(addr, "vault", Some(t)).await;
        let err = c.next().await;
        assert_eq!(err["code"], code, "{err}");
        assert_eq!(c.closed().await.0, close);
    }

    let status = reqwest::Client::new()
        .put(format!("http://{addr}/api/v1/rooms/vault/policy"))
        .header("x-admin-key", ADMIN)
        .json(&json!({"allow_anonymous": false}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let mut anon = Client::connect(addr, "vault", None).await;
    assert_eq!(anon.next().await["code"], "token_missing");
    assert_eq!(anon.closed().await.0, 4401);
    let mut anon_elsewhere = Client::connect(addr, "lobby", None).await;
    assert_eq!(anon_elsewhere.next().await["type"], "welcome");

    let bad_room = tokio_tungstenite::connect_async(ws_url(addr, "no%20spaces", None)).await;
    match bad_room {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    servers.into_iter().next().unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_and_frame_limits() {
    let (servers, _) = instances(Backend::Memory, 1, |c| {
        c.max_conns_per_ip = 2;
        c.max_frame_bytes = 64 * 1024;
    })
    .await
    .unwrap();
    let addr = servers[0].http_addr();
    let _a = Client::join(addr, "r", "a").await;
    let mut b = Client::join(addr, "r", "b").await;
    let t = token("c", "r", Role::Viewer);
    match tokio_tungstenite::connect_async(ws_url(addr, "r", Some(&t))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or(&[])).to_string();
            assert!(body.contains("too_many_connections"), "{body}");
        }
        other => panic!("expected HTTP 429, got {other:?}"),
    }
    // The server stops reading at the frame header, so the client may see the close
    // frame or, when unread bytes are still in flight, a reset.
    let sent = b.ws.send(Message::text("x".repeat(1024 * 1024))).await;
    if sent.is_ok() {
        let close = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while let Some(Ok(msg)) = b.ws.next().await {
                if let Message::Close(frame) = msg {
                    return frame;
                }
            }
            None
        })
        .await
        .expect("connection ends within 10 s");
        if let Some(f) = close {
            assert_eq!(
                (u16::from(f.code), f.reason.as_str()),
                (1009, "message_too_large")
            );
        }
    }
    let too_large = "business_errors_total{code=\"message_too_large\"}";
    assert_eq!(metric(addr, too_large).await, 1.0);
    let c = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if let Ok((ws, _)) = tokio_tungstenite::connect_async(ws_url(addr, "r", Some(&t))).await
            {
                return ws;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(c.is_ok(), "a slot frees up when a connection closes");
    servers.into_iter().next().unwrap().shutdown().await;
}
