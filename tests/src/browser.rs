//! Headless Chromium under Debian's chromedriver, driven over WebDriver, for the tests of
//! the web pages and of hls.js playback.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WindowHandle;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

use crate::{free_port, wait_for, ChildGuard};

/// Headless flags, plus the ones that keep windows other than the current one
/// running at full speed (timers, rendering, video) as a person's open windows do.
const CHROME_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--mute-audio",
];

/// Chromium under chromedriver, with a fresh profile; both end when dropped.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    profile: PathBuf,
    _driver: ChildGuard,
}

impl Browser {
    /// Starts chromedriver on a free port and a Chromium session with `options` added to
    /// `goog:chromeOptions` (its `args` after the usual ones).
    pub async fn start(options: Value) -> Browser {
        let port = free_port();
        let driver = ChildGuard(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        let status = format!("http://127.0.0.1:{port}/status");
        let up = wait_for(Duration::from_secs(15), || async {
            let r = reqwest::get(&status).await.ok()?;
            let v: Value = r.json().await.ok()?;
            v["value"]["ready"].as_bool().filter(|ready| *ready)
        })
        .await;
        assert!(up.is_some(), "chromedriver answers on port {port}");
        let profile =
            std::env::temp_dir().join(format!("livepulse-web-{}-{port}", std::process::id()));
        let mut args: Vec<Value> = CHROME_ARGS.iter().map(|a| json!(a)).collect();
        args.push(json!(format!("--user-data-dir={}", profile.display())));
        let mut chrome = serde_json::Map::new();
        chrome.insert("binary".into(), json!(chromium_binary()));
        for (k, v) in options.as_object().into_iter().flatten() {
            match (k.as_str(), v.as_array()) {
                ("args", Some(more)) => args.extend(more.iter().cloned()),
                _ => {
                    chrome.insert(k.clone(), v.clone());
                }
            }
        }
        chrome.insert("args".into(), Value::Array(args));
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), Value::Object(chrome));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session starts");
        Browser {
            client,
            profile,
            _driver: driver,
        }
    }

    /// Opens `url` in a new window and returns it once the page script has started.
    pub async fn open(&self, url: &str) -> WindowHandle {
        let first = self.client.windows().await.expect("windows");
        let fresh = self.client.execute("return document.URL", vec![]).await;
        let handle = if first.len() == 1 && fresh.ok() == Some(json!("about:blank")) {
            first[0].clone()
        } else {
            let w = self.client.new_window(false).await.expect("new window");
            w.handle
        };
        self.client
            .switch_to_window(handle.clone())
            .await
            .expect("switch");
        self.client.goto(url).await.expect("page loads");
        self.until(
            &handle,
            "return !!window.livepulse",
            Duration::from_secs(10),
        )
        .await;
        handle
    }

    /// Runs `script` (a function body) in window `w` and returns its value.
    pub async fn js(&self, w: &WindowHandle, script: &str) -> Value {
        self.client
            .switch_to_window(w.clone())
            .await
            .expect("switch");
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` in window `w` every 100 ms until it returns something truthy.
    pub async fn until(&self, w: &WindowHandle, script: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let v = self.js(w, script).await;
            if truthy(&v) {
                return v;
            }
            assert!(
                start.elapsed() < timeout,
                "not within {timeout:?}: {script} (last: {v})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session and removes the profile.
    pub async fn close(self) {
        let _ = self.client.close().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn chromium_binary() -> String {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("chromium")
        .to_string()
}

/// JavaScript truthiness of a returned value.
pub fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
        && v.as_f64() != Some(0.0)
        && v.as_str() != Some("")
}
