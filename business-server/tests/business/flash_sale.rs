//! Flash sale under contention: 20,000 attempts, 5,000 users, stock 1,000, limit 1.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use business_server::auth::Role;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::common::{buy, instances, metric, token, Backend, Client, ADMIN, HEAVY};

const USERS: usize = 5_000;
const KEYS_PER_USER: usize = 2;
const TRIES_PER_KEY: usize = 2;
const STOCK: u64 = 1_000;
const IN_FLIGHT: usize = 256;

async fn create_sale(addr: SocketAddr, id: &str, stock: u64, start_at_ms: Option<u64>) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/sales"))
        .header("x-admin-key", ADMIN)
        .json(&json!({"id": id, "item": "phone", "stock": stock, "per_user_limit": 1, "start_at_ms": start_at_ms}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// Runs the contention scenario with requests spread round-robin over `addrs`.
async fn contention(addrs: Vec<SocketAddr>) {
    let sale = "drop1";
    let created = create_sale(addrs[0], sale, STOCK, None).await;
    assert_eq!(
        (created["remaining"].as_u64(), created["phase"].as_str()),
        (Some(STOCK), Some("open"))
    );

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()
        .unwrap();
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::with_capacity(USERS * KEYS_PER_USER * TRIES_PER_KEY);
    for u in 0..USERS {
        let user = format!("buyer{u}");
        let bearer = format!("Bearer {}", token(&user, "*", Role::Viewer));
        for k in 0..KEYS_PER_USER {
            for t in 0..TRIES_PER_KEY {
                let addr = addrs[(u + k + t) % addrs.len()];
                let (http, gate, bearer, user) =
                    (http.clone(), gate.clone(), bearer.clone(), user.clone());
                tasks.push(tokio::spawn(async move {
                    let _permit = gate.acquire_owned().await.unwrap();
                    let key = format!("{user}-k{k}");
                    let resp = http
                        .post(format!("http://{addr}/api/v1/sales/{sale}/purchase"))
                        .header("authorization", bearer)
                        .header("idempotency-key", &key)
                        .send()
                        .await
                        .expect("purchase request");
                    assert_eq!(resp.status(), 200);
                    let body: Value = resp.json().await.unwrap();
                    (user, key, body)
                }));
            }
        }
    }
    let mut answers: HashMap<(String, String), Vec<Value>> = HashMap::new();
    for t in tasks {
        let (user, key, body) = t.await.unwrap();
        answers.entry((user, key)).or_default().push(body);
    }
    assert_eq!(answers.len(), USERS * KEYS_PER_USER);

    let mut by_outcome: HashMap<String, u64> = HashMap::new();
    let mut per_user: HashMap<&str, u64> = HashMap::new();
    let mut orders = HashSet::new();
    for ((user, _), replies) in &answers {
        assert_eq!(replies.len(), TRIES_PER_KEY);
        assert!(
            replies.iter().all(|r| r == &replies[0]),
            "retries differ: {replies:?}"
        );
        let outcome = replies[0]["outcome"].as_str().unwrap().to_string();
        if outcome == "success" {
            *per_user.entry(user).or_default() += 1;
            assert!(orders.insert(replies[0]["order"].as_u64().unwrap()));
        }
        *by_outcome.entry(outcome).or_default() += 1;
    }
    let successes = by_outcome.get("success").copied().unwrap_or(0);
    eprintln!(
        "flash sale on {} instance(s): {} attempts, outcomes per idempotency key {by_outcome:?}",
        addrs.len(),
        USERS * KEYS_PER_USER * TRIES_PER_KEY
    );
    assert_eq!(successes, STOCK);
    assert!(
        per_user.values().all(|&n| n <= 1),
        "a user bought more than the limit"
    );
    assert_eq!(orders, (1..=STOCK).collect::<HashSet<_>>());

    let state: Value = reqwest::get(format!(
        "http://{}/api/v1/sales/{sale}",
        addrs[addrs.len() - 1]
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(state["sold"].as_u64(), Some(successes));
    assert_eq!(state["remaining"].as_u64(), Some(0));
    assert_eq!(state["phase"], "sold_out");
    assert_eq!(state["outcomes"]["success"].as_u64(), Some(successes));
    let distinct: u64 = by_outcome.values().sum();
    let counted = ["success", "sold_out", "limit_reached"]
        .iter()
        .map(|k| state["outcomes"][k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(counted, distinct);
    let mut answered = 0.0;
    for a in &addrs {
        answered += metric(*a, "business_purchases_total{outcome=\"success\"}").await;
    }
    assert_eq!(answered as u64, successes * TRIES_PER_KEY as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_flash_sale_never_oversells() {
    let _heavy = HEAVY.lock().await;
    let (servers, _) = instances(Backend::Memory, 1, |_| {}).await.unwrap();
    contention(servers.iter().map(|s| s.http_addr()).collect()).await;
    for s in servers {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_flash_sale_two_instances_never_oversell() {
    let _heavy = HEAVY.lock().await;
    let Some((servers, _redis)) = instances(Backend::Redis, 2, |_| {}).await else {
        return;
    };
    contention(servers.iter().map(|s| s.http_addr()).collect()).await;
    for s in servers {
        s.shutdown().await;
    }
}

/// Purchase over WebSocket, before and after the start time, on both backends.
async fn websocket_purchase(a: SocketAddr, b: SocketAddr) {
    let start = business_server::server::now_ms() + 1_500;
    create_sale(a, "ws1", 2, Some(start)).await;
    let mut x = Client::join(a, "shop", "x").await;
    let mut y = Client::join(b, "shop", "y").await;
    let mut z = Client::join(b, "shop", "z").await;
    x.send(json!({"type":"purchase","sale":"ws1","key":"x1","id":"q0"}))
        .await;
    let early = x.direct().await;
    assert_eq!(
        (early["outcome"].as_str(), early["ref"].as_str()),
        (Some("not_started"), Some("q0"))
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
    x.send(json!({"type":"purchase","sale":"ws1","key":"x1"}))
        .await;
    let first = x.direct().await;
    assert_eq!(first["type"], "purchase_result");
    assert_eq!(
        (first["outcome"].as_str(), first["order"].as_u64()),
        (Some("success"), Some(1))
    );
    x.send(json!({"type":"purchase","sale":"ws1","key":"x1"}))
        .await;
    assert_eq!(x.direct().await, first);
    x.send(json!({"type":"purchase","sale":"ws1","key":"x2"}))
        .await;
    assert_eq!(x.direct().await["outcome"], "limit_reached");
    y.send(json!({"type":"purchase","sale":"ws1","key":"y1"}))
        .await;
    assert_eq!(y.direct().await["outcome"], "success");
    z.send(json!({"type":"purchase","sale":"ws1","key":"z1"}))
        .await;
    assert_eq!(z.direct().await["outcome"], "sold_out");
    let mut anon = Client::connect(a, "shop", None).await;
    assert_eq!(anon.next().await["type"], "welcome");
    anon.send(json!({"type":"purchase","sale":"ws1","key":"a1"}))
        .await;
    assert_eq!(anon.direct().await["code"], "read_only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_websocket_purchase() {
    let (servers, _) = instances(Backend::Memory, 1, |_| {}).await.unwrap();
    let a = servers[0].http_addr();
    websocket_purchase(a, a).await;
    servers.into_iter().next().unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_websocket_purchase_across_instances() {
    let Some((servers, _redis)) = instances(Backend::Redis, 2, |_| {}).await else {
        return;
    };
    websocket_purchase(servers[0].http_addr(), servers[1].http_addr()).await;
    for s in servers {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_answers_expire_after_the_idempotency_ttl() {
    let Some((servers, redis)) =
        instances(Backend::Redis, 1, |c| c.idempotency_ttl_ms = 60_000).await
    else {
        return;
    };
    let redis = redis.expect("a Redis server");
    let addr = servers[0].http_addr();
    let created = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/sales"))
        .header("x-admin-key", ADMIN)
        .json(&json!({"id": "ttl1", "item": "phone", "stock": 3, "per_user_limit": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let first = buy(addr, "ttl1", "alice", "k1").await;
    assert_eq!(first["order"], 1);
    assert_eq!(buy(addr, "ttl1", "alice", "k1").await, first);

    let mut conn = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let answer = "lp:sale:{ttl1}:answer:alice\nk1";
    let ttl: i64 = redis::cmd("PTTL")
        .arg(answer)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=60_000).contains(&ttl), "answer PTTL {ttl}");
    // What Redis does when the TTL runs out: the key is gone and the next try decides anew.
    let _: () = redis::cmd("DEL")
        .arg(answer)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(buy(addr, "ttl1", "alice", "k1").await["order"], 2);
    assert_eq!(buy(addr, "ttl1", "alice", "k1").await["order"], 2);
    servers.into_iter().next().unwrap().shutdown().await;
}
