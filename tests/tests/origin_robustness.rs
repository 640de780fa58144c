//! Origin behaviour that needs no external tools: GOP-cache startup, hostile RTMP input,
//! publish conflicts, republish continuity and 404s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use livepulse_tests::{get, push_sample, segment_uris, start_origin, wait_for};
use media_core::flv::{self, Reader, Tag, VideoPacket};
use media_server::config::OnConflict;
use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads an HTTP-FLV response tag by tag.
struct FlvViewer {
    response: reqwest::Response,
    reader: Reader,
}

impl FlvViewer {
    async fn open(url: &str) -> Self {
        let response = reqwest::get(url).await.expect("flv request");
        assert_eq!(response.status(), 200, "{url}");
        Self {
            response,
            reader: Reader::new(),
        }
    }

    async fn next_tag(&mut self) -> Option<Tag> {
        loop {
            if let Some(tag) = self.reader.next_tag().expect("valid FLV") {
                return Some(tag);
            }
            let chunk = self.response.chunk().await.ok()??;
            self.reader.push(&chunk);
        }
    }

    async fn next_media_video(&mut self) -> Option<(Tag, flv::VideoInfo)> {
        while let Some(tag) = self.next_tag().await {
            if tag.tag_type == flv::TAG_VIDEO {
                let info = flv::parse_video(&tag.data).expect("valid video tag");
                if info.packet == VideoPacket::Nalu {
                    return Some((tag, info));
                }
            }
        }
        None
    }
}

async fn wait_live(origin: &media_server::Running, key: &str) {
    let live = wait_for(Duration::from_secs(10), || async {
        origin
            .hub()
            .stats()
            .into_iter()
            .find(|s| s.key == key && s.live && s.gop_frames > 0)
    })
    .await;
    assert!(live.is_some(), "{key} never went live with a GOP");
}

#[tokio::test]
async fn flv_viewer_gets_a_keyframe_first_and_at_once() {
    let origin = start_origin(|_| {}).await;
    let (stop, _task) = push_sample(&format!("rtmp://{}/live/a", origin.rtmp_addr()));
    wait_live(&origin, "live/a").await;
    // Join in the middle of a GOP: the cached GOP holds its keyframe and at least 30 frames
    // after it (about 0.4 s of the sample's 2 s GOP), so the next keyframe is far off.
    let mid_gop = wait_for(Duration::from_secs(10), || async {
        origin
            .hub()
            .stats()
            .into_iter()
            .find(|s| s.key == "live/a" && s.live && s.gop_frames >= 30)
    })
    .await;
    assert!(
        mid_gop.is_some(),
        "the GOP cache never filled past its keyframe"
    );
    let url = format!("http://{}/live/a.flv", origin.http_addr());
    let started = Instant::now();
    let mut viewer = FlvViewer::open(&url).await;
    let (_, first) = viewer.next_media_video().await.expect("a video tag");
    let elapsed = started.elapsed();
    assert!(first.keyframe, "first video tag must be a keyframe");
    assert!(
        elapsed < Duration::from_millis(200),
        "first keyframe after {elapsed:?}"
    );
    println!("first keyframe over HTTP-FLV after {elapsed:?}");
    stop.cancel();
    origin.shutdown().await;
}

async fn rtmp_handshake(socket: &mut TcpStream) -> Vec<u8> {
    let mut hs = Handshake::new(PeerType::Client);
    socket
        .write_all(&hs.generate_outbound_p0_and_p1().expect("p0p1"))
        .await
        .expect("write");
    let mut buf = vec![0u8; 8192];
    loop {
        let n = socket.read(&mut buf).await.expect("read");
        assert!(n > 0, "server closed during handshake");
        match hs.process_bytes(&buf[..n]).expect("handshake") {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await.expect("write")
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket.write_all(&response_bytes).await.expect("write");
                return remaining_bytes;
            }
        }
    }
}

/// True if the server closes the connection within five seconds.
async fn closed_by_server(mut socket: TcpStream) -> bool {
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rtmp_input_closes_only_that_connection() {
    let origin = start_origin(|c| c.rtmp_limits.handshake_timeout_secs = 2.0).await;
    let rtmp_addr = origin.rtmp_addr();
    let (stop, publisher) = push_sample(&format!("rtmp://{rtmp_addr}/live/a"));
    wait_live(&origin, "live/a").await;

    let received = Arc::new(AtomicU64::new(0));
    let mut viewer = FlvViewer::open(&format!("http://{}/live/a.flv", origin.http_addr())).await;
    let counter = received.clone();
    let watcher = tokio::spawn(async move {
        while viewer.next_tag().await.is_some() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });

    // Random bytes instead of a handshake.
    let mut s = TcpStream::connect(rtmp_addr).await.expect("connect");
    let noise: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&[3]).await;
    let _ = s.write_all(&noise).await;
    assert!(
        closed_by_server(s).await,
        "random bytes: connection not closed"
    );

    // A truncated handshake, then silence.
    let mut s = TcpStream::connect(rtmp_addr).await.expect("connect");
    s.write_all(&[3, 0, 0, 0, 0]).await.expect("write");
    assert!(
        closed_by_server(s).await,
        "truncated handshake: connection not closed"
    );

    // A 2 GiB chunk size announcement.
    let mut s = TcpStream::connect(rtmp_addr).await.expect("connect");
    rtmp_handshake(&mut s).await;
    let mut serializer = ChunkSerializer::new();
    let packet = serializer
        .set_max_chunk_size(0x7FFF_FFFF, RtmpTimestamp::new(0))
        .expect("serializes");
    s.write_all(&packet.bytes).await.expect("write");
    assert!(
        closed_by_server(s).await,
        "2 GiB chunk size: connection not closed"
    );

    // An AMF command nested a hundred thousand objects deep.
    let mut s = TcpStream::connect(rtmp_addr).await.expect("connect");
    rtmp_handshake(&mut s).await;
    let deep = rml_rtmp::messages::MessagePayload {
        timestamp: RtmpTimestamp::new(0),
        message_stream_id: 0,
        type_id: 20,
        data: bytes::Bytes::from([0x03, 0x00, 0x01, b'k'].repeat(100_000)),
    };
    let packet = ChunkSerializer::new()
        .serialize(&deep, true, false)
        .expect("serializes");
    let _ = s.write_all(&packet.bytes).await;
    assert!(closed_by_server(s).await, "deep AMF: connection not closed");

    let before = received.load(Ordering::Relaxed);
    let flowing = wait_for(Duration::from_secs(1), || async {
        (received.load(Ordering::Relaxed) > before).then_some(())
    })
    .await;
    assert!(
        flowing.is_some(),
        "the live viewer stalled during the attacks"
    );
    assert!(!publisher.is_finished(), "the publisher was disconnected");
    let (status, metrics) = get(&format!("http://{}/metrics", origin.http_addr())).await;
    assert_eq!(status, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("livepulse_origin_rtmp_errors_total"),
        "{metrics}"
    );
    stop.cancel();
    watcher.abort();
    origin.shutdown().await;
}

#[tokio::test]
async fn second_publisher_is_refused_and_unknown_streams_are_404() {
    let origin = start_origin(|_| {}).await;
    let url = format!("rtmp://{}/live/a", origin.rtmp_addr());
    let (stop, _first) = push_sample(&url);
    wait_live(&origin, "live/a").await;
    let (_stop2, second) = push_sample(&url);
    let err = second
        .await
        .expect("task")
        .expect_err("second publisher must be refused");
    assert!(
        err.to_string().contains("BadName") || err.to_string().contains("refused"),
        "{err}"
    );

    let http = origin.http_addr();
    for path in [
        "live/none.m3u8",
        "live/none.flv",
        "live/none/0.ts",
        "live/a/999999.ts",
        "live/a.mp4",
    ] {
        let (status, _) = get(&format!("http://{http}/{path}")).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, body) = get(&format!("http://{http}/api/v1/streams")).await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let s = &json["streams"][0];
    assert_eq!(s["key"], "live/a");
    assert_eq!(s["video_codec"], "avc1.64001e");
    assert_eq!(s["width"], 640);
    assert_eq!(s["height"], 360);
    assert_eq!(s["audio_codec"], "mp4a.40.2");
    stop.cancel();
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republish_continues_flv_viewers_and_marks_hls_discontinuity() {
    let origin = start_origin(|_| {}).await;
    let url = format!("rtmp://{}/live/a", origin.rtmp_addr());
    let http = origin.http_addr();
    let (stop, task) = push_sample(&url);
    wait_live(&origin, "live/a").await;
    let mut viewer = FlvViewer::open(&format!("http://{http}/live/a.flv")).await;
    let (first, _) = viewer.next_media_video().await.expect("video");
    let segmented = wait_for(Duration::from_secs(10), || async {
        let (status, body) = get(&format!("http://{http}/live/a.m3u8")).await;
        let text = String::from_utf8_lossy(&body);
        (status == 200 && !segment_uris(&text, "").is_empty()).then_some(())
    })
    .await;
    assert!(segmented.is_some(), "the first publish made no HLS segment");

    stop.cancel();
    task.await
        .expect("task")
        .expect("first publish ran cleanly");
    // The first publisher left cleanly, so the key is freed as soon as the origin reads the
    // close: well before the 5 s publisher timeout could have freed it.
    let freed = wait_for(Duration::from_secs(2), || async {
        origin
            .hub()
            .get("live/a")
            .filter(|s| !s.is_live())
            .map(|_| ())
    })
    .await;
    assert!(freed.is_some(), "a clean leave frees the key at once");
    let (stop, task) = push_sample(&url);
    let republished = wait_for(Duration::from_secs(2), || async {
        origin
            .hub()
            .get("live/a")
            .filter(|s| s.is_live() && s.epoch() == 2)
    })
    .await;
    if task.is_finished() {
        panic!("republish must be accepted at once: {:?}", task.await);
    }
    assert!(republished.is_some(), "republish must be accepted at once");

    let mut last = first.timestamp;
    let mut epochs = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let (tag, _) = viewer.next_media_video().await.expect("viewer continues");
        assert!(
            tag.timestamp >= last,
            "FLV timestamp went back: {} after {last}",
            tag.timestamp
        );
        last = tag.timestamp;
        epochs += 1;
    }
    assert!(
        epochs > 60,
        "viewer received only {epochs} video tags across the republish"
    );

    let disc = wait_for(Duration::from_secs(8), || async {
        let (_, body) = get(&format!("http://{http}/live/a.m3u8")).await;
        String::from_utf8_lossy(&body)
            .contains("#EXT-X-DISCONTINUITY")
            .then_some(())
    })
    .await;
    assert!(disc.is_some(), "playlist never marked the republish");
    let stats = origin.hub().stats();
    assert_eq!(stats[0].publishes, 2);
    stop.cancel();
    origin.shutdown().await;
}

#[tokio::test]
async fn takeover_policy_replaces_the_live_publisher() {
    let origin = start_origin(|c| c.on_conflict = OnConflict::Takeover).await;
    let url = format!("rtmp://{}/live/a", origin.rtmp_addr());
    let (_stop1, first) = push_sample(&url);
    wait_live(&origin, "live/a").await;
    let (stop2, second) = push_sample(&url);
    let ended = tokio::time::timeout(Duration::from_secs(5), first).await;
    assert!(ended.is_ok(), "the replaced publisher was not disconnected");
    assert!(!second.is_finished(), "the newcomer must stay live");
    stop2.cancel();
    origin.shutdown().await;
}

/// Sends one AMF0 command on message stream `stream_id`.
async fn send_command(s: &mut TcpStream, stream_id: u32, c: &media_core::rtmp::command::Command) {
    let header = media_core::rtmp::MessageHeader {
        type_id: media_core::rtmp::TYPE_AMF0_COMMAND,
        stream_id,
        timestamp: 0,
    };
    let bytes = media_core::rtmp::ChunkEncoder::default().to_bytes(3, &header, &c.encode());
    s.write_all(&bytes).await.expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_on_another_message_stream_gets_its_own_encoding() {
    use media_core::rtmp::amf0::Amf0;
    use media_core::rtmp::command::Command;
    use media_core::rtmp::{ChunkDecoder, Limits, TYPE_SET_CHUNK_SIZE, TYPE_VIDEO};

    let origin = start_origin(|_| {}).await;
    let rtmp = origin.rtmp_addr();
    let (stop, _publisher) = push_sample(&format!("rtmp://{rtmp}/live/a"));
    wait_live(&origin, "live/a").await;

    let mut s = TcpStream::connect(rtmp).await.expect("connect");
    rtmp_handshake(&mut s).await;
    let app = Amf0::object([("app", Amf0::str("live"))]);
    send_command(&mut s, 0, &Command::new("connect", 1.0, app, Vec::new())).await;
    // Two streams; play on the second, which the shared wire form does not use.
    for t in [2.0, 3.0] {
        send_command(
            &mut s,
            0,
            &Command::new("createStream", t, Amf0::Null, Vec::new()),
        )
        .await;
    }
    let play = Command::new("play", 4.0, Amf0::Null, vec![Amf0::str("a")]);
    send_command(&mut s, 2, &play).await;

    let mut dec = ChunkDecoder::new(Limits::default());
    let mut buf = vec![0u8; 65536];
    let mut video_on_2 = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while video_on_2 < 30 && Instant::now() < deadline {
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("data in time")
            .expect("read");
        assert!(n > 0, "server closed");
        dec.push(&buf[..n]);
        while let Some(m) = dec.next_message().expect("valid chunks") {
            match m.header.type_id {
                TYPE_SET_CHUNK_SIZE => {
                    let size = u32::from_be_bytes([
                        m.payload[0],
                        m.payload[1],
                        m.payload[2],
                        m.payload[3],
                    ]);
                    dec.set_chunk_size(size).expect("valid size");
                }
                TYPE_VIDEO => {
                    assert_eq!(m.header.stream_id, 2, "video on the stream that played");
                    video_on_2 += 1;
                }
                _ => {}
            }
        }
    }
    assert!(video_on_2 >= 30, "only {video_on_2} video messages");
    let (_, metrics) = get(&format!("http://{}/metrics", origin.http_addr())).await;
    let metrics = String::from_utf8_lossy(&metrics);
    let fallbacks = metrics
        .lines()
        .find_map(|l| l.strip_prefix("livepulse_origin_rtmp_wire_fallbacks_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("fallback counter");
    assert!(fallbacks >= 30, "{fallbacks} fallbacks counted");
    stop.cancel();
    origin.shutdown().await;
}
