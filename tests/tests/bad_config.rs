//! A server given a setting that makes no sense refuses to start, and its error names the
//! field; the business server also refuses the public demo secrets outside `livepulse demo`.

use std::time::Duration;

use livepulse_tests::{livepulse_exits, Exited};

#[test]
fn bad_settings_fail_to_start_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("livepulse-bad-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let origin_toml = dir.join("origin.toml");
    std::fs::write(&origin_toml, "[hub]\nlinger_secs = -1.0\n").expect("write");
    let origin_toml = origin_toml.to_string_lossy().into_owned();
    let llhls_toml = dir.join("llhls.toml");
    std::fs::write(&llhls_toml, "[llhls]\npart_target_ms = 600\n").expect("write");
    let llhls_toml = llhls_toml.to_string_lossy().into_owned();
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "origin",
                "--rtmp",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--config",
                &llhls_toml,
            ],
            "llhls.part_target_ms",
        ),
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
        let Exited { code, stderr: err } = livepulse_exits(args, Duration::from_secs(20));
        assert!(
            code.is_some_and(|c| c != 0 && c != 101),
            "{args:?}: {code:?} {err}"
        );
        assert!(err.contains(field), "{args:?} names {field}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
