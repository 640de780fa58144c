//! nginx with the rtmp module, started on ephemeral loopback ports with a generated config.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{free_port, ChildGuard};

const MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// A running nginx-rtmp: RTMP ingest/play and HLS over HTTP.
pub struct NginxRtmp {
    _child: ChildGuard,
    dir: PathBuf,
    /// RTMP port.
    pub rtmp_port: u16,
    /// HTTP port serving `/hls/{stream}.m3u8`.
    pub http_port: u16,
}

impl Drop for NginxRtmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// True if nginx and its rtmp module are installed (same skip/fail rule as [`crate::require`]).
pub fn available() -> bool {
    if !crate::require("nginx") {
        return false;
    }
    if std::path::Path::new(MODULE).exists() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{MODULE} is required when CI=true (apt-get install libnginx-mod-rtmp)");
    }
    crate::skip(&format!(
        "{MODULE} missing (apt-get install libnginx-mod-rtmp)"
    ));
    false
}

/// Starts nginx-rtmp with HLS (1 s fragments) and waits until both ports accept connections.
pub fn start() -> NginxRtmp {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "livepulse-nginx-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir.join("hls")).expect("temp dir");
    // nginx workers drop privileges; let them write HLS files.
    for d in [dir.clone(), dir.join("hls")] {
        let _ = Command::new("chmod").arg("0777").arg(&d).status();
    }
    let (rtmp_port, http_port) = (free_port(), free_port());
    let d = dir.display();
    let conf = format!(
        "load_module {MODULE};
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
rtmp {{
  server {{
    listen 127.0.0.1:{rtmp_port};
    chunk_size 4096;
    application live {{
      live on;
      hls on;
      hls_path {d}/hls;
      hls_fragment 1s;
      hls_playlist_length 6s;
    }}
  }}
}}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:{http_port};
    location /hls/ {{
      alias {d}/hls/;
      types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
      add_header Cache-Control no-cache;
    }}
  }}
}}
"
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("write config");
    let child = Command::new("nginx")
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let nginx = NginxRtmp {
        _child: ChildGuard(child),
        dir,
        rtmp_port,
        http_port,
    };
    let start = Instant::now();
    for port in [rtmp_port, http_port] {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx did not open port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    nginx
}
