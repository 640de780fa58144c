//! Players and the load generator never panic on what a server sends: absurd playlist numbers
//! and a segment that never ends fail the viewer with a clear error. `livepulse play` exits
//! non-zero saying why, and a `livepulse load` run against the same server completes and
//! counts the errors.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use livepulse_tests::{livepulse_exits, serve};
use loadgen::{run, RunOptions, Scenario};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A hostile playlist: its path, its text (`{endless}` stands for the never-ending segment's
/// URL), the error code a viewer ends with, and what the error message names.
struct Hostile {
    name: &'static str,
    playlist: &'static str,
    code: &'static str,
    names: &'static str,
}

const HOSTILE: &[Hostile] = &[
    Hostile {
        name: "absurd-extinf",
        playlist: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXTINF:999999999999999999999999999999999999999999999999,\n0.ts\n",
        code: "bad_playlist",
        names: "EXTINF",
    },
    Hostile {
        name: "nan-target",
        playlist: "#EXTM3U\n#EXT-X-TARGETDURATION:NaN\n#EXTINF:1,\n0.ts\n#EXT-X-ENDLIST\n",
        code: "bad_playlist",
        names: "EXT-X-TARGETDURATION",
    },
    Hostile {
        name: "negative-target",
        playlist: "#EXTM3U\n#EXT-X-TARGETDURATION:-2\n#EXTINF:1,\n0.ts\n#EXT-X-ENDLIST\n",
        code: "bad_playlist",
        names: "EXT-X-TARGETDURATION",
    },
    Hostile {
        name: "huge-target",
        playlist: "#EXTM3U\n#EXT-X-TARGETDURATION:18446744073709551615\n#EXTINF:1,\n0.ts\n",
        code: "bad_playlist",
        names: "EXT-X-TARGETDURATION",
    },
    Hostile {
        name: "last-sequence",
        playlist: "#EXTM3U\n#EXT-X-TARGETDURATION:1\n\
#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:1,\n0.ts\n",
        code: "bad_playlist",
        names: "EXT-X-MEDIA-SEQUENCE",
    },
    Hostile {
        name: "endless-segment",
        playlist: "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{endless}\n",
        code: "bad_segment",
        names: "segment",
    },
];

/// A server answering every request with a body that never ends (zeros until the reader
/// hangs up).
async fn endless_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                if socket.read(&mut request).await.is_err() {
                    return;
                }
                let head = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\n\r\n";
                if socket.write_all(head).await.is_err() {
                    return;
                }
                let zeros = vec![0u8; 64 * 1024];
                while socket.write_all(&zeros).await.is_ok() {}
            });
        }
    });
    addr
}

/// Serves every hostile playlist at `/{name}/live.m3u8`, with empty segments beside them.
async fn hostile_server() -> SocketAddr {
    let endless = format!("http://{}/endless.ts", endless_server().await);
    let app = Router::new()
        .route(
            "/{name}/live.m3u8",
            get(move |Path(name): Path<String>| {
                let endless = endless.clone();
                async move {
                    match HOSTILE.iter().find(|h| h.name == name) {
                        Some(h) => (StatusCode::OK, h.playlist.replace("{endless}", &endless)),
                        None => (StatusCode::NOT_FOUND, String::new()),
                    }
                }
            }),
        )
        .route("/{name}/{segment}", get(|| async { "" }));
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_exits_with_a_clear_error_on_hostile_playlists() {
    let addr = hostile_server().await;
    for h in HOSTILE {
        let url = format!("http://{addr}/{}/live.m3u8", h.name);
        let started = Instant::now();
        let exited = tokio::task::spawn_blocking(move || {
            livepulse_exits(&["play", &url], Duration::from_secs(60))
        })
        .await
        .expect("waits");
        let stderr = &exited.stderr;
        eprintln!(
            "{}: exit {:?} after {:?}\n{stderr}",
            h.name,
            exited.code,
            started.elapsed()
        );
        assert!(
            exited.code.is_some_and(|c| c != 0 && c != 101),
            "{}: exit {:?}: {stderr}",
            h.name,
            exited.code
        );
        assert!(!stderr.contains("panicked"), "{}: {stderr}", h.name);
        assert!(
            stderr.contains("is invalid") && stderr.contains(h.names),
            "{}: the error names {}: {stderr}",
            h.name,
            h.names
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_exits_non_zero_when_playback_never_starts() {
    // A live playlist whose segments all answer 404: the player skips them and waits for
    // more until its duration ends, without ever playing.
    let app = Router::new().route(
        "/live.m3u8",
        get(|| async {
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXTINF:2.0,\na.ts\n#EXTINF:2.0,\nb.ts\n"
        }),
    );
    let url = format!("http://{}/live.m3u8", serve(app).await);
    let exited = tokio::task::spawn_blocking(move || {
        livepulse_exits(&["play", &url, "--duration", "3s"], Duration::from_secs(30))
    })
    .await
    .expect("waits");
    let stderr = &exited.stderr;
    assert!(
        exited.code.is_some_and(|c| c != 0 && c != 101),
        "exit {:?}: {stderr}",
        exited.code
    );
    assert!(stderr.contains("playback never started"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_run_completes_and_counts_the_viewers_errors() {
    let addr = hostile_server().await;
    let mut toml = "name = \"hostile\"\nduration = \"3s\"\ngrace = \"2s\"\n".to_string();
    for h in HOSTILE {
        toml.push_str(&format!(
            "\n[[workload]]\nname = \"{name}\"\n\
driver = {{ kind = \"hls-play\", url = \"http://{addr}/{name}/live.m3u8\" }}\n\
model = {{ kind = \"closed\", users = 2 }}\n",
            name = h.name
        ));
    }
    let scenario = Scenario::from_toml(&toml).expect("valid scenario");
    let started = Instant::now();
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        run(&scenario, &RunOptions::default()),
    )
    .await
    .expect("the run ends")
    .expect("the run reports");
    let text = loadgen::text::render(&report);
    println!("{text}");
    assert!(started.elapsed() < Duration::from_secs(10), "{text}");
    for h in HOSTILE {
        let w = report
            .workloads
            .iter()
            .find(|w| w.name == h.name)
            .unwrap_or_else(|| panic!("workload {} in the report", h.name));
        assert!(
            w.errors.get(h.code).is_some_and(|&n| n >= 2),
            "{}: {:?}",
            h.name,
            w.errors
        );
        assert!(
            !w.errors.contains_key("panic"),
            "{}: {:?}",
            h.name,
            w.errors
        );
        let media = w.media.as_ref().expect("media metrics");
        assert!(media.sessions >= 2, "{}: {text}", h.name);
    }
}
