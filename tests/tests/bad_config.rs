//! A server given a setting that makes no sense refuses to start, and its error names the
//! field; the business server also refuses the public demo secrets outside `livepulse demo`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use livepulse_tests::livepulse_bin;

/// Runs `livepulse args...`; returns (exit code, stderr) once it exits, or panics if it is
/// still running after 20 s (it started instead of refusing).
fn refused(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(livepulse_bin())
        .args(args)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("livepulse starts");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (status.code().unwrap_or(-1), err);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("livepulse {args:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_settings_fail_to_start_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("livepulse-bad-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let origin_toml = dir.join("origin.toml");
    std::fs::write(&origin_toml, "[hub]\nlinger_secs = -1.0\n").expect("write");
    let origin_toml = origin_toml.to_string_lossy().into_owned();
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "origin",
                "--rtmp",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--config",
                &origin_toml,
            ],
            "hub.linger_secs",
        ),
        (
            &[
                "edge",
                "--listen",
                "127.0.0.1:0",
                "--origin",
                "http://127.0.0.1:9",
                "--idle-timeout-secs=-1",
            ],
            "listener.idle_timeout_secs",
        ),
        (
            &["business", "--listen", "127.0.0.1:0", "--batch-ms", "0"],
            "business.batch_ms",
        ),
        (
            &[
                "business",
                "--listen",
                "127.0.0.1:0",
                "--admin-key",
                "livepulse-admin",
            ],
            "business.admin_key",
        ),
        (
            &[
                "business",
                "--listen",
                "127.0.0.1:0",
                "--token-secret",
                "livepulse-dev-secret",
            ],
            "business.token_secret",
        ),
    ];
    for (args, field) in cases {
        let (code, err) = refused(args);
        assert_ne!(code, 0, "{args:?}: {err}");
        assert_ne!(code, 101, "{args:?} panicked: {err}");
        assert!(err.contains(field), "{args:?} names {field}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
