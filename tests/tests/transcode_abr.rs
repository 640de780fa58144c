#![cfg(feature = "transcode")]
//! Adaptive bitrate: the ffmpeg CLI publishes 1280x720, the origin transcodes a 720p/480p/360p
//! ladder. Renditions align with the source segment for segment, play without stalls, end
//! with their publisher and start again when it returns.

use std::collections::BTreeSet;
use std::time::Duration;

use livepulse_tests::{
    assert_starts_with_keyframe, ffmpeg_publish, ffprobe_streams, get, media_playlist, require,
    segment_uris, start_origin, threads_named, wait_for,
};
use media_server::config::RenditionConfig;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// The tests count transcoder threads in this process, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

const LADDER: [(&str, u32, u32, u32); 3] = [
    ("720p", 1280, 720, 2500),
    ("480p", 854, 480, 1200),
    ("360p", 640, 360, 600),
];
/// Thread name prefix of the transcoder's pipeline and rendition threads.
const THREADS: &str = "tc-";
/// One frame at the published 30 fps.
const FRAME_SECS: f64 = 1.0 / 30.0;

fn with_ladder(c: &mut media_server::Config) {
    let t = &mut c.transcode;
    t.preset = "ultrafast".into();
    // A loaded test machine must not make the transcoder drop renditions.
    t.max_lag_secs = 30.0;
    t.ladders.insert(
        "live".into(),
        LADDER
            .iter()
            .map(|&(name, _, height, kbps)| RenditionConfig {
                name: name.into(),
                height,
                width: None,
                video_kbps: kbps,
            })
            .collect(),
    );
    c.hls.window = 60;
}

async fn playlist(url: &str) -> Option<m3u8_rs::MediaPlaylist> {
    let (status, body) = get(url).await;
    (status == 200).then(|| media_playlist(&body))
}

/// Stream keys the stats API lists.
async fn api_keys(http: &str) -> BTreeSet<String> {
    let (_, body) = get(&format!("{http}/api/v1/streams")).await;
    let v: serde_json::Value = serde_json::from_slice(&body).expect("stats JSON");
    v["streams"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["key"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn rendition_keys(stream: &str) -> BTreeSet<String> {
    LADDER
        .iter()
        .map(|(name, ..)| format!("live/{stream}_{name}"))
        .collect()
}

async fn renditions_have_segments(http: &str, stream: &str, n: usize) -> bool {
    for (name, ..) in LADDER {
        let url = format!("{http}/live/{stream}_{name}.m3u8");
        if playlist(&url).await.is_none_or(|p| p.segments.len() < n) {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladder_is_aligned_with_the_source_probed_through_the_master_and_plays() {
    if !require("ffmpeg") || !require("ffprobe") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let origin = start_origin(with_ladder).await;
    let rtmp = format!("rtmp://{}/live/abr", origin.rtmp_addr());
    let http = format!("http://{}", origin.http_addr());
    let publisher = ffmpeg_publish(&rtmp, "1280x720", 30);

    let ready = wait_for(Duration::from_secs(30), || async {
        renditions_have_segments(&http, "abr", 2)
            .await
            .then_some(())
    })
    .await;
    assert!(ready.is_some(), "renditions never produced segments");

    // The master playlist lists the source and every rendition with real codec facts.
    let master_url = format!("{http}/live/abr/master.m3u8");
    let (status, body) = get(&master_url).await;
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body).to_string();
    let master = m3u8_rs::parse_master_playlist_res(&body).expect("a valid master playlist");
    assert_eq!(master.variants.len(), 4, "source + 3 renditions:\n{text}");
    for line in text.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF")) {
        for attr in [
            "BANDWIDTH=",
            "AVERAGE-BANDWIDTH=",
            "RESOLUTION=",
            "FRAME-RATE=30.000",
            "CODECS=\"avc1.",
            ",mp4a.40.2\"",
        ] {
            assert!(line.contains(attr), "{attr} missing in {line}");
        }
    }
    for (name, w, h, _) in LADDER {
        let v = master
            .variants
            .iter()
            .find(|v| v.uri == format!("../abr_{name}.m3u8"))
            .unwrap_or_else(|| panic!("{name} not in master:\n{text}"));
        let res = v.resolution.expect("resolution");
        assert_eq!((res.width, res.height), (u64::from(w), u64::from(h)));
        assert!(v.codecs.as_deref().is_some_and(|c| c.starts_with("avc1.")));
    }
    eprintln!("{text}");

    // The LL-HLS master lists the same variants, and each LL playlist reports its siblings.
    let (status, body) = get(&format!("{http}/live/abr/ll-master.m3u8")).await;
    assert_eq!(status, 200);
    let ll_master = m3u8_rs::parse_master_playlist_res(&body).expect("a valid LL master");
    let uris: BTreeSet<String> = ll_master.variants.iter().map(|v| v.uri.clone()).collect();
    let mut expected: BTreeSet<String> = LADDER
        .iter()
        .map(|(name, ..)| format!("../abr_{name}/ll.m3u8"))
        .collect();
    expected.insert("ll.m3u8".into());
    assert_eq!(uris, expected);
    let (status, body) = get(&format!("{http}/live/abr/ll.m3u8")).await;
    assert_eq!(status, 200);
    let reports: BTreeSet<String> = String::from_utf8_lossy(&body)
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-RENDITION-REPORT:URI=\""))
        .filter_map(|l| Some(l.split_once('"')?.0.to_string()))
        .collect();
    expected.remove("ll.m3u8");
    assert_eq!(reports, expected, "rendition reports of the source");

    // ffprobe through the master sees every rendition at its configured size.
    let probe = tokio::task::spawn_blocking({
        let url = master_url.clone();
        move || ffprobe_streams(&url)
    })
    .await
    .expect("probe task");
    let sizes: BTreeSet<(u64, u64)> = probe["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter(|s| s["codec_type"] == "video")
        .filter_map(|s| Some((s["width"].as_u64()?, s["height"].as_u64()?)))
        .collect();
    for (name, w, h, _) in LADDER {
        assert!(
            sizes.contains(&(u64::from(w), u64::from(h))),
            "ffprobe did not see {name} at {w}x{h}: {sizes:?}"
        );
    }

    // Every rendition plays for 20 s without a stall, over HLS and HTTP-FLV.
    let stop = CancellationToken::new();
    let mut players = tokio::task::JoinSet::new();
    for (name, ..) in LADDER {
        for ext in ["m3u8", "flv"] {
            let url = format!("{http}/live/abr_{name}.{ext}");
            let stop = stop.clone();
            players.spawn(async move {
                let options = player_client::PlayOptions {
                    duration: Some(Duration::from_secs(20)),
                    ..Default::default()
                };
                let summary = player_client::play(&url, &options, &stop, &mut |_| {}).await;
                (url, summary)
            });
        }
    }
    while let Some(joined) = players.join_next().await {
        let (url, summary) = joined.expect("player task");
        let s = summary.unwrap_or_else(|e| panic!("{url}: {e}"));
        eprintln!(
            "{url}: startup {:?} ms, stalls {}, played {:.1} s, {:.0} kbit/s",
            s.startup_ms, s.stalls, s.played_secs, s.bitrate_kbps
        );
        assert_eq!(s.stalls, 0, "{url} stalled: {s:?}");
        assert!(s.played_secs >= 15.0, "{url} played too little: {s:?}");
        assert!(s.video_frames > 0 && s.audio_frames > 0, "{url}: {s:?}");
    }

    // The publisher leaves; once the last segments are out, every playlist lists the same
    // sequence numbers with the same durations, and every segment starts with a keyframe.
    drop(publisher);
    let names: Vec<String> = std::iter::once("abr".to_string())
        .chain(LADDER.iter().map(|(name, ..)| format!("abr_{name}")))
        .collect();
    let ended = wait_for(Duration::from_secs(10), || async {
        let stats = origin.hub().stats();
        let none_live = names
            .iter()
            .all(|n| !stats.iter().any(|s| s.key == format!("live/{n}") && s.live));
        (none_live && threads_named(THREADS) == 0).then_some(())
    })
    .await;
    assert!(ended.is_some(), "the source or a rendition is still live");
    // No frame arrives any more; each stream's segmenter still holds its last, unfinished
    // segment and lists it once the stream has been idle for a while.
    let next_sequence = |p: &m3u8_rs::MediaPlaylist| p.media_sequence + p.segments.len() as u64;
    let mut held = Vec::new();
    for n in &names {
        let p = playlist(&format!("{http}/live/{n}.m3u8")).await;
        held.push(p.as_ref().map_or(0, next_sequence));
    }
    let last_out = wait_for(Duration::from_secs(15), || async {
        for (n, held) in names.iter().zip(&held) {
            let p = playlist(&format!("{http}/live/{n}.m3u8")).await?;
            if next_sequence(&p) <= *held {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(
        last_out.is_some(),
        "a stream's last segment never came out (next sequence numbers when it ended: {held:?})"
    );
    let source = playlist(&format!("{http}/live/abr.m3u8"))
        .await
        .expect("source playlist");
    let source_segs: Vec<(u64, f32)> = source
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| (source.media_sequence + i as u64, s.duration))
        .collect();
    assert!(source_segs.len() >= 15, "source segments: {source_segs:?}");
    for (name, ..) in LADDER {
        let url = format!("{http}/live/abr_{name}.m3u8");
        let p = playlist(&url).await.expect("rendition playlist");
        let segs: Vec<(u64, f32)> = p
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| (p.media_sequence + i as u64, s.duration))
            .collect();
        assert_eq!(
            segs.len(),
            source_segs.len(),
            "{name}: segment count\n{segs:?}\n{source_segs:?}"
        );
        for (r, s) in segs.iter().zip(&source_segs) {
            assert_eq!(r.0, s.0, "{name}: sequence numbers differ");
            assert!(
                f64::from((r.1 - s.1).abs()) <= FRAME_SECS + 1e-3,
                "{name}: segment {} lasts {} s, source {} s",
                r.0,
                r.1,
                s.1
            );
        }
        for uri in segment_uris(
            &String::from_utf8_lossy(&get(&url).await.1),
            &format!("{http}/live/"),
        ) {
            let (status, data) = get(&uri).await;
            assert_eq!(status, 200, "{uri}");
            assert_starts_with_keyframe(&uri, &data);
        }
        eprintln!(
            "{name}: {} segments aligned with the source (sequence {}..={})",
            segs.len(),
            segs[0].0,
            segs[segs.len() - 1].0
        );
    }
    origin.shutdown().await;
}

/// Anonymous resident memory (heap and stacks), without the library code pages that x264 and
/// libavcodec leave resident once used.
fn rss_kib() -> u64 {
    livepulse_tests::self_status_kib("RssAnon")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_publisher_ends_renditions_and_republishing_starts_them() {
    if !require("ffmpeg") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let idle = wait_for(Duration::from_secs(10), || async {
        (threads_named(THREADS) == 0).then_some(())
    })
    .await;
    assert!(idle.is_some(), "transcoder threads left by another test");
    let origin = start_origin(|c| {
        with_ladder(c);
        c.hub.linger_secs = 1.0;
    })
    .await;
    let rtmp = format!("rtmp://{}/live/cycle", origin.rtmp_addr());
    let http = format!("http://{}", origin.http_addr());
    let wanted = rendition_keys("cycle");
    let rss_before = rss_kib();
    let mut rss_after = Vec::new();

    for round in 1..=3 {
        let publisher = ffmpeg_publish(&rtmp, "1280x720", 30);
        let up = wait_for(Duration::from_secs(30), || async {
            (renditions_have_segments(&http, "cycle", 2).await
                && api_keys(&http).await.is_superset(&wanted))
            .then_some(())
        })
        .await;
        assert!(up.is_some(), "round {round}: renditions never came up");
        let running = threads_named(THREADS);
        assert!(
            running > LADDER.len(),
            "round {round}: {running} transcoder threads"
        );
        let (_, metrics) = get(&format!("{http}/metrics")).await;
        assert!(
            String::from_utf8_lossy(&metrics).contains("transcode_renditions 3"),
            "round {round}: renditions gauge"
        );

        drop(publisher);
        let ended = wait_for(Duration::from_secs(10), || async {
            (threads_named(THREADS) == 0).then_some(())
        })
        .await;
        assert!(ended.is_some(), "round {round}: transcoder threads remain");
        let gone = wait_for(Duration::from_secs(10), || async {
            api_keys(&http).await.is_disjoint(&wanted).then_some(())
        })
        .await;
        assert!(gone.is_some(), "round {round}: renditions still listed");
        let (_, metrics) = get(&format!("{http}/metrics")).await;
        assert!(String::from_utf8_lossy(&metrics).contains("transcode_renditions 0"));
        let (status, _) = get(&format!("{http}/live/cycle_720p.m3u8")).await;
        assert_eq!(
            status, 404,
            "round {round}: rendition playlist still served"
        );
        // The source itself goes after its linger time; then what it held is released too.
        let source_gone = wait_for(Duration::from_secs(10), || async {
            (get(&format!("{http}/live/cycle.m3u8")).await.0 == 404).then_some(())
        })
        .await;
        assert!(source_gone.is_some(), "round {round}: source still served");
        // Settled: the lowest reading over a second, after the stream's memory was handed back.
        let mut settled = u64::MAX;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            settled = settled.min(rss_kib());
        }
        rss_after.push(settled);
        eprintln!(
            "round {round}: {running} transcoder threads while live, 0 after; RSS {} MiB",
            rss_after[rss_after.len() - 1] / 1024
        );
    }
    // Pipelines hand their buffers back when they end: memory returns near the starting point
    // and does not climb cycle after cycle. (A leaked pipeline would keep tens of MiB: x264
    // and decoder frame pools for three renditions at up to 720p.) What stays is one-time
    // state (libav's tables, the HTTP and RTMP machinery) and allocator arenas of the threads.
    eprintln!("RSS before the first publish: {} MiB", rss_before / 1024);
    assert!(
        rss_after[2] <= rss_after[1] + 8 * 1024,
        "RSS grew from {} to {} KiB across the last publish cycle",
        rss_after[1],
        rss_after[2]
    );
    assert!(
        rss_after.iter().all(|&r| r <= rss_before + 32 * 1024),
        "RSS {rss_after:?} KiB after cycles, {rss_before} KiB before"
    );
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcoder_behind_real_time_drops_its_lowest_priority_rendition() {
    if !require("ffmpeg") {
        return;
    }
    let _serial = SERIAL.lock().await;
    // Any scheduling jitter counts as falling behind with a 1 ms allowance.
    let origin = start_origin(|c| {
        with_ladder(c);
        c.transcode.max_lag_secs = 0.001;
    })
    .await;
    let rtmp = format!("rtmp://{}/live/slow", origin.rtmp_addr());
    let http = format!("http://{}", origin.http_addr());
    let _publisher = ffmpeg_publish(&rtmp, "1280x720", 30);
    let dropped = wait_for(Duration::from_secs(30), || async {
        let (_, body) = get(&format!("{http}/metrics")).await;
        let text = String::from_utf8_lossy(&body).to_string();
        text.lines()
            .find(|l| {
                l.starts_with("livepulse_origin_transcode_renditions_dropped_total")
                    && l.contains("rendition=\"360p\"")
            })
            .map(str::to_string)
    })
    .await;
    let line = dropped.expect("the 360p rendition was never dropped");
    assert!(line.ends_with(" 1"), "{line}");
    let source = wait_for(Duration::from_secs(10), || async {
        let (status, body) = get(&format!("{http}/live/slow/master.m3u8")).await;
        let text = String::from_utf8_lossy(&body).to_string();
        (status == 200 && !text.contains("slow_360p")).then_some(())
    })
    .await;
    assert!(source.is_some(), "master still lists the dropped rendition");
    origin.shutdown().await;
}
