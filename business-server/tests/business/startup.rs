//! Starting a server: secrets are never the public demo ones outside `livepulse demo`.

use business_server::config::{DEMO_ADMIN_KEY, DEMO_TOKEN_SECRET};
use business_server::{Config, Server};
use serde_json::json;

use crate::common::config;

async fn issue_token(addr: std::net::SocketAddr, admin_key: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/tokens"))
        .header("x-admin-key", admin_key)
        .json(&json!({"user": "dora"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn demo_secrets_are_refused_outside_demo_mode() {
    for (field, admin_key, token_secret) in [
        ("admin_key", DEMO_ADMIN_KEY, "s3cret"),
        ("token_secret", "k3y", DEMO_TOKEN_SECRET),
    ] {
        let c = Config {
            admin_key: admin_key.into(),
            token_secret: token_secret.into(),
            ..config(None)
        };
        let e = Server::bind(c)
            .await
            .err()
            .expect("the server refuses to start");
        assert!(
            e.to_string()
                .starts_with(&format!("business.{field} is the public demo")),
            "{e}"
        );
    }
    let demo = Server::bind(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::demo()
    })
    .await
    .expect("demo mode keeps the demo secrets");
    assert!(demo.generated_secrets().is_empty());
    assert_eq!(issue_token(demo.http_addr(), DEMO_ADMIN_KEY).await, 200);
    demo.shutdown().await;
}

#[tokio::test]
async fn missing_secrets_are_generated_once_at_start() {
    let running = Server::bind(Config {
        admin_key: String::new(),
        token_secret: String::new(),
        ..config(None)
    })
    .await
    .expect("starts with generated secrets");
    let generated = running.generated_secrets().to_vec();
    assert_eq!(
        generated.iter().map(|g| g.flag).collect::<Vec<_>>(),
        ["--admin-key", "--token-secret"]
    );
    let admin = &generated[0].value;
    assert_ne!(admin, DEMO_ADMIN_KEY);
    assert_eq!(issue_token(running.http_addr(), admin).await, 200);
    assert_eq!(issue_token(running.http_addr(), DEMO_ADMIN_KEY).await, 401);
    running.shutdown().await;
}
