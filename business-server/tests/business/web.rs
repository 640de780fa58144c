//! The web page's routes: embedded pages, the page settings, demo tokens only when enabled,
//! and flash sales announced in a room with their stock pushed to its members.

use std::net::SocketAddr;

use serde_json::{json, Value};

use crate::common::{buy, instances, post_json, Backend, Client, ADMIN};

async fn post(addr: SocketAddr, path: &str, admin: Option<&str>, body: Value) -> (u16, Value) {
    post_json(format!("http://{addr}{path}"), admin, body).await
}

#[tokio::test]
async fn pages_and_settings_are_served_and_demo_tokens_only_when_enabled() {
    let (servers, _) = instances(Backend::Memory, 1, |c| c.web.room = "stage".into())
        .await
        .unwrap();
    let addr = servers[0].http_addr();
    for (path, kind) in [
        ("/", "text/html"),
        ("/host", "text/html"),
        ("/assets/viewer.js", "text/javascript"),
        ("/assets/vendor/hls.min.js", "text/javascript"),
        ("/assets/vendor/mpegts.js", "text/javascript"),
    ] {
        let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let etag = h["etag"].clone();
        if kind == "text/html" {
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("script-src 'self'"), "{csp}");
        }
        let again = reqwest::Client::new()
            .get(format!("http://{addr}{path}"))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    let missing = reqwest::get(format!("http://{addr}/assets/../Cargo.toml"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let cfg: Value = reqwest::get(format!("http://{addr}/api/v1/web-config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["room"], "stage");
    assert_eq!(cfg["hls"], "http://{host}:8081/live/demo.m3u8");
    assert_eq!(
        (cfg["demo_tokens"].as_bool(), cfg["demo_host"].as_bool()),
        (Some(false), Some(false))
    );
    let (status, _) = post(addr, "/api/v1/demo/token", None, json!({})).await;
    assert_eq!(status, 404, "no demo tokens unless enabled");
    for s in servers {
        s.shutdown().await;
    }

    let (servers, _) = instances(Backend::Memory, 1, |c| c.demo_tokens = true)
        .await
        .unwrap();
    let addr = servers[0].http_addr();
    let (status, t) = post(addr, "/api/v1/demo/token", None, json!({"user": "alice"})).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        (t["user"].as_str(), t["room"].as_str(), t["role"].as_str()),
        (Some("alice"), Some("demo"), Some("viewer"))
    );
    assert!(t.get("admin_key").is_none());
    let mut alice = Client::connect(addr, "demo", t["token"].as_str()).await;
    assert_eq!(alice.next().await["can_write"], true);
    let (status, guest) = post(addr, "/api/v1/demo/token", None, json!({})).await;
    assert_eq!(status, 200);
    assert!(
        guest["user"].as_str().unwrap().starts_with("guest-"),
        "{guest}"
    );
    for (body, code) in [
        (json!({"role": "host"}), 403),
        (json!({"role": "admin"}), 403),
        (json!({"user": "no spaces"}), 400),
        (json!({"user": "a", "room": "x"}), 400),
    ] {
        let (status, _) = post(addr, "/api/v1/demo/token", None, body.clone()).await;
        assert_eq!(status, code, "{body}");
    }
    for s in servers {
        s.shutdown().await;
    }
}

/// Creates a sale for room `stage` on `a`, buys it out on `a`, and checks a member on `b`
/// hears of the sale and of its stock running out.
async fn sale_scenario(addr: SocketAddr, b: SocketAddr) {
    let mut alice = Client::join(b, "stage", "alice").await;
    let (status, _) = post(
        addr,
        "/api/v1/sales",
        Some(ADMIN),
        json!({"id": "drop1", "item": "phone", "stock": 2, "room": "bad room"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, created) = post(
        addr,
        "/api/v1/sales",
        Some(ADMIN),
        json!({"id": "drop1", "item": "phone", "stock": 2, "room": "stage"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let sale = alice.until(|v| v["type"] == "sale").await;
    assert_eq!(
        (
            sale["id"].as_str(),
            sale["remaining"].as_u64(),
            sale["phase"].as_str()
        ),
        (Some("drop1"), Some(2), Some("open"))
    );
    let info: Value = reqwest::get(format!("http://{addr}/api/v1/rooms/stage"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sale"]["id"], "drop1");

    for user in ["bob", "carol", "dave"] {
        buy(addr, "drop1", user, &format!("{user}-1")).await;
    }
    let sold_out = alice
        .until(|v| v["type"] == "sale" && v["remaining"] == 0)
        .await;
    assert_eq!(sold_out["phase"], "sold_out");
    assert_eq!(sold_out["outcomes"]["sold_out"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_announced_in_a_room_pushes_its_stock_to_members() {
    let (servers, _) = instances(Backend::Memory, 1, |_| {}).await.unwrap();
    let a = servers[0].http_addr();
    sale_scenario(a, a).await;
    for s in servers {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_instances_push_the_stock_of_a_sale_announced_on_another() {
    let Some((servers, _redis)) = instances(Backend::Redis, 2, |c| c.stats_interval_ms = 200).await
    else {
        return;
    };
    sale_scenario(servers[0].http_addr(), servers[1].http_addr()).await;
    for s in servers {
        s.shutdown().await;
    }
}
