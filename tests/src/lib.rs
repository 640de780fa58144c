//! Helpers shared by the end-to-end tests: external tools, origin startup, HTTP fetches.

pub mod browser;
pub mod nginx;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use push_client::{FlvLoop, RtmpUrl};
use tokio_util::sync::CancellationToken;

/// True if `bin` runs. Outside CI a missing tool skips the test with a printed reason;
/// with `CI=true` it is a failure.
pub fn require(bin: &str) -> bool {
    let found = Command::new(bin)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{bin} is required when CI=true but was not found on PATH");
        }
        skip(&format!(
            "{bin} not found on PATH (install it to run this test)"
        ));
    }
    found
}

/// Where skipped tests are listed until `zz_skipped_summary` prints them: next to the test
/// binaries, so every test binary of one `cargo test` run finds the same file.
pub fn skip_list() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("livepulse-skipped-tests.txt"))
}

/// Records that the running test skips itself for `reason`: printed at once past the test
/// harness's output capture, and listed again in one line at the end of the run.
pub fn skip(reason: &str) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let line = format!("{test}: {reason}");
    let _ = writeln!(std::io::stderr(), "skipping {line}");
    if let Some(path) = skip_list() {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// A child process killed when dropped.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for ChildGuard {
    /// Asks the process to stop (SIGTERM, so nginx's master also stops its workers), then
    /// kills it if it is still running after two seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the ffmpeg CLI publishing a `testsrc2` + `sine` H.264/AAC stream in real time.
pub fn ffmpeg_publish(url: &str, size: &str, gop: u32) -> ChildGuard {
    ffmpeg_publish_with_b_frames(url, size, gop, 0)
}

/// Like [`ffmpeg_publish`], with `b_frames` B-frames between references (0: low-latency
/// tuning, none).
pub fn ffmpeg_publish_with_b_frames(url: &str, size: &str, gop: u32, b_frames: u32) -> ChildGuard {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=30"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-c:v", "libx264", "-preset", "ultrafast"]);
    if b_frames == 0 {
        cmd.args(["-tune", "zerolatency"]);
    } else {
        cmd.args(["-bf", &b_frames.to_string()]);
    }
    let child = cmd
        .args(["-pix_fmt", "yuv420p", "-g", &gop.to_string(), "-keyint_min"])
        .arg(gop.to_string())
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv", url])
        .stdin(Stdio::null())
        .spawn()
        .expect("ffmpeg starts");
    ChildGuard(child)
}

/// Runs `ffmpeg -i url -t secs -f null -` and returns its error lines (empty on a clean decode).
/// The encoder time base follows the input's so the null muxer's frame-rate rounding of
/// millisecond timestamps is not mistaken for a decode error.
pub fn ffmpeg_decode_errors(url: &str, secs: u32) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-i",
            url,
        ])
        .args([
            "-t",
            &secs.to_string(),
            "-enc_time_base",
            "-1",
            "-f",
            "null",
            "-",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg runs");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect();
    if !out.status.success() {
        lines.push(format!("ffmpeg exited with {}", out.status));
    }
    lines
}

/// `ffprobe -show_streams` as JSON.
pub fn ffprobe_streams(url: &str) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-show_streams",
            "-of",
            "json",
            url,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe prints JSON")
}

/// Codec names, widths and heights of an ffprobe result, video first.
pub fn codecs(probe: &serde_json::Value) -> Vec<(String, Option<u64>, Option<u64>)> {
    probe["streams"]
        .as_array()
        .map(|streams| {
            streams
                .iter()
                .map(|s| {
                    (
                        s["codec_name"].as_str().unwrap_or_default().to_string(),
                        s["width"].as_u64(),
                        s["height"].as_u64(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A Prometheus text page, fetched.
pub async fn metrics_page(url: &str) -> String {
    let (status, body) = get(url).await;
    assert_eq!(status, 200, "{url}");
    String::from_utf8_lossy(&body).into_owned()
}

/// The value of metric `name` on a Prometheus text page, summed over the label sets that
/// contain `labels` (`""` for all); 0 if it is absent.
pub fn metric(text: &str, name: &str, labels: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']) && rest.contains(labels))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A `/proc/self/status` field in KiB (`VmRSS`, `RssAnon`, ...): memory of this test
/// process, where the servers under test run; 0 if it cannot be read.
pub fn self_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// An origin on ephemeral loopback ports with short HLS segments.
pub async fn start_origin(tweak: impl FnOnce(&mut media_server::Config)) -> media_server::Running {
    let mut config = media_server::Config::ephemeral();
    config.hls.target_duration_secs = 1.0;
    config.rtmp_listener = net_guard::Limits::one_machine();
    config.http_listener = net_guard::Limits::one_machine();
    tweak(&mut config);
    media_server::Server::bind(config)
        .await
        .expect("origin starts")
}

/// A TCP port free on loopback now, for a tool that must be told its port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An edge on an ephemeral loopback port in front of `origin`.
pub async fn start_edge(
    origin: &media_server::Running,
    tweak: impl FnOnce(&mut cdn_edge::Config),
) -> cdn_edge::Running {
    let mut config = cdn_edge::Config::ephemeral(vec![format!("http://{}", origin.http_addr())]);
    tweak(&mut config);
    cdn_edge::Server::bind(config).await.expect("edge starts")
}

/// Waits up to 15 s until `key` has a live publisher whose video codec is known.
pub async fn wait_publishing(origin: &media_server::Running, key: &str) -> bool {
    wait_for(Duration::from_secs(15), || async {
        origin
            .hub()
            .get(key)
            .filter(|s| s.is_live() && s.info().video_codec.is_some())
    })
    .await
    .is_some()
}

/// Publishes the built-in sample to `url` until the returned token is cancelled.
pub fn push_sample(
    url: &str,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let stop = CancellationToken::new();
    let url = RtmpUrl::parse(url).expect("valid url");
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let mut source = FlvLoop::sample()?;
        let stats = push_client::PublishStats::default();
        push_client::publish(&url, &mut source, &Default::default(), &token, &stats).await
    });
    (stop, task)
}

/// GETs a URL, returning status and body.
pub async fn get(url: &str) -> (u16, bytes::Bytes) {
    let r = reqwest::get(url).await.expect("request sent");
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap_or_default())
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(v) = check().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The segment URIs listed in a media playlist, resolved against `base` (`http://host/app/`).
pub fn segment_uris(playlist: &str, base: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| format!("{base}{l}"))
        .collect()
}

/// Sends `n` concurrent GETs and returns (status, X-Cache, body) for each.
pub async fn burst(url: &str, n: usize) -> Vec<(u16, String, bytes::Bytes)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(n)
        .build()
        .expect("client");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (client, url) = (client.clone(), url.to_string());
        tasks.spawn(async move {
            let r = client.get(&url).send().await.expect("edge answers");
            let status = r.status().as_u16();
            let x_cache = r
                .headers()
                .get("x-cache")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            (status, x_cache, r.bytes().await.expect("body"))
        });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        out.push(r.expect("request task"));
    }
    out
}

/// Threads of this process whose name starts with `prefix` (Linux `/proc/self/task`).
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|name| name.starts_with(prefix))
                })
                .count()
        })
        .unwrap_or(0)
}

/// The `livepulse` binary, built once per test process by the cargo running the tests
/// (`cargo build --bin livepulse`, nothing to do when it is up to date).
pub fn livepulse_bin() -> std::path::PathBuf {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate is in the workspace");
        let out = Command::new(cargo)
            .current_dir(workspace)
            .args(["build", "--quiet", "--message-format=json"])
            .args(["--package", "livepulse", "--bin", "livepulse"])
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(out.status.success(), "building livepulse failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["target"]["name"] == "livepulse")
            .find_map(|message| message["executable"].as_str().map(Into::into))
            .expect("cargo names the livepulse executable")
    })
    .clone()
}

/// What a `livepulse` command that ran to its end left behind.
pub struct Exited {
    /// Its exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Runs `livepulse args...` and waits for it to exit by itself, failing the test if it is
/// still running after `timeout` (it is killed then).
pub fn livepulse_exits(args: &[&str], timeout: Duration) -> Exited {
    use std::io::Read;
    let mut child = Command::new(livepulse_bin())
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("livepulse starts");
    // Read stderr meanwhile, so a chatty command never blocks on a full pipe.
    let mut pipe = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("livepulse {args:?} still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Exited {
        code: status.code(),
        stderr: reader.join().unwrap_or_default(),
    }
}

/// Serves `app` on an ephemeral loopback port for the rest of the test.
pub async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A business server on an ephemeral loopback port with the given token secret and admin key.
pub async fn start_business(token_secret: &str, admin_key: &str) -> business_server::Running {
    let config = business_server::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        token_secret: token_secret.into(),
        admin_key: admin_key.into(),
        listener: net_guard::Limits::one_machine(),
        ..business_server::Config::default()
    };
    business_server::Server::bind(config)
        .await
        .expect("business server starts")
}

/// The business server of `livepulse demo` on an ephemeral loopback port, showing `web`.
pub fn demo_business_config(web: business_server::config::WebPage) -> business_server::Config {
    business_server::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        listener: net_guard::Limits::one_machine(),
        web,
        ..business_server::Config::demo()
    }
}

/// Parses a media playlist, failing the test if it is not one.
pub fn media_playlist(body: &[u8]) -> m3u8_rs::MediaPlaylist {
    m3u8_rs::parse_media_playlist_res(body).expect("a valid media playlist")
}

/// Checks one TS segment starts (after PAT/PMT) with a random-access video PES holding an IDR.
pub fn assert_starts_with_keyframe(uri: &str, data: &[u8]) {
    use media_core::avc::{annexb_nalus, nal_type, NAL_IDR};
    use media_core::ts::{Demuxer, StreamKind};
    let mut demux = Demuxer::new();
    let mut packets = demux.push(data).expect("segment demuxes");
    packets.extend(demux.flush());
    let first_video = packets
        .iter()
        .find(|p| p.kind == StreamKind::Video)
        .unwrap_or_else(|| panic!("{uri}: no video"));
    assert!(
        first_video.random_access,
        "{uri}: first video PES not marked random access"
    );
    assert!(
        annexb_nalus(&first_video.data)
            .iter()
            .any(|n| nal_type(n) == NAL_IDR),
        "{uri}: first video frame has no IDR slice"
    );
}
