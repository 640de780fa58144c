//! Rooms end to end: chat, likes, gifts, leaderboard, online count, notices, tokens,
//! on the memory backend and across two instances sharing one Redis.

use std::net::SocketAddr;

use business_server::auth::Role;
use serde_json::{json, Value};

use crate::common::{instances, post_json, token, Backend, Client, ADMIN};

/// Runs the room scenario with members split over `a` and `b` (the same instance on
/// the memory backend, two instances on Redis).
async fn room_scenario(a: SocketAddr, b: SocketAddr) {
    let room = "stage";
    let mut alice = Client::join(a, room, "alice").await;
    let mut bob = Client::join(b, room, "bob").await;
    let mut carol = Client::connect(b, room, None).await;
    let welcome = carol.next().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["can_write"], false);
    assert_eq!(welcome["v"], 1);

    alice
        .send(json!({"type":"chat","text":"hello","color":"#ff0000","position":"top"}))
        .await;
    for member in [&mut alice, &mut bob, &mut carol] {
        let chat = member.until(|v| v["type"] == "chat").await;
        assert_eq!(chat["user"], "alice");
        assert_eq!(chat["text"], "hello");
        assert_eq!(chat["color"], "#ff0000");
        assert_eq!(chat["position"], "top");
    }

    alice.send(json!({"type":"like","count":3})).await;
    alice.send(json!({"type":"like","count":3})).await;
    bob.send(json!({"type":"like","count":4})).await;
    carol
        .until(|v| v["type"] == "likes" && v["total"] == 10)
        .await;

    bob.send(json!({"type":"gift","gift":"rocket","count":2}))
        .await;
    let gift = alice.until(|v| v["type"] == "gift").await;
    assert_eq!(
        (gift["user"].as_str(), gift["value"].as_u64()),
        (Some("bob"), Some(200))
    );
    let board = carol
        .until(|v| v["type"] == "leaderboard" && !v["top"].as_array().is_some_and(|t| t.is_empty()))
        .await;
    assert_eq!(board["top"][0], json!({"user":"bob","value":200}));

    carol
        .until(|v| v["type"] == "online" && v["count"] == 3)
        .await;

    let status = reqwest::Client::new()
        .post(format!("http://{b}/api/v1/rooms/{room}/notices"))
        .header("x-admin-key", ADMIN)
        .json(&json!({"text":"stream starts in 1 minute","level":"warning"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    let notice = alice.until(|v| v["type"] == "notice").await;
    assert_eq!(notice["level"], "warning");

    carol
        .send(json!({"type":"chat","text":"me too","id":"c1"}))
        .await;
    let err = carol.direct().await;
    assert_eq!(
        (err["code"].as_str(), err["ref"].as_str()),
        (Some("read_only"), Some("c1"))
    );

    bob.send(json!({"type":"notice","text":"hi all"})).await;
    assert_eq!(bob.direct().await["code"], "forbidden");
    let host_token = token("hank", room, Role::Host);
    let mut hank = Client::connect(a, room, Some(&host_token)).await;
    assert_eq!(hank.next().await["role"], "host");
    hank.send(json!({"type":"notice","text":"welcome everyone"}))
        .await;
    bob.until(|v| v["type"] == "notice" && v["text"] == "welcome everyone")
        .await;

    alice.send(json!({"type":"ping","id":"p1"})).await;
    let pong = alice.direct().await;
    assert_eq!(
        (pong["type"].as_str(), pong["ref"].as_str()),
        (Some("pong"), Some("p1"))
    );

    alice.send(json!({"type":"leave"})).await;
    assert_eq!(alice.closed().await.0, 1000);
    bob.until(|v| v["type"] == "leave" && v["user"] == "alice")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_room_chat_likes_gifts_online_notices() {
    let (servers, _) = instances(Backend::Memory, 1, |c| c.stats_interval_ms = 200)
        .await
        .unwrap();
    let a = servers[0].http_addr();
    room_scenario(a, a).await;
    for s in servers {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_instances_share_one_room() {
    let Some((servers, _redis)) = instances(Backend::Redis, 2, |c| c.stats_interval_ms = 200).await
    else {
        return;
    };
    assert_eq!(servers[0].backend(), "redis");
    room_scenario(servers[0].http_addr(), servers[1].http_addr()).await;
    for s in servers {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn tokens_are_issued_behind_the_admin_key() {
    let (servers, _) = instances(Backend::Memory, 1, |_| {}).await.unwrap();
    let addr = servers[0].http_addr();
    let url = format!("http://{addr}/api/v1/tokens");
    let body = json!({"user":"dora","room":"r1","role":"host","ttl_secs":60});
    let (status, err) = post_json(url.clone(), None, body.clone()).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, err) = post_json(url.clone(), Some("wrong"), body.clone()).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, err) = post_json(url.clone(), Some(ADMIN), json!({"user":"a b"})).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    let (status, err) = post_json(url.clone(), Some(ADMIN), json!({"user":"x","admin":true})).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("unknown_field"))
    );
    let (status, issued) = post_json(url, Some(ADMIN), body).await;
    assert_eq!(status, 200);
    let t = issued["token"].as_str().unwrap();
    let mut c = Client::connect(addr, "r1", Some(t)).await;
    let w = c.next().await;
    assert_eq!(
        (w["user"].as_str(), w["role"].as_str()),
        (Some("dora"), Some("host"))
    );
    let gifts: Value = reqwest::get(format!("http://{addr}/api/v1/gifts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(gifts.as_array().unwrap().iter().any(|g| g["id"] == "rose"));
    servers.into_iter().next().unwrap().shutdown().await;
}
