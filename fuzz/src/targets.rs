//! The body of every fuzz target, one function each. `fuzz_targets/<name>.rs` hands libFuzzer's
//! input to its function, and `tests/tests/fuzz_corpora.rs` includes this file to replay every
//! committed corpus on the stable compiler, so both run the same code. Only crates the tests
//! package depends on too may be used here.
//!
//! Nothing may panic on any input, and each body checks what it cheaply can besides: round
//! trips through the matching writer, outputs no larger than the input, values in their range.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Uri};
use business_server::protocol::{self, ClientMessage, ErrorCode, Incoming};
use media_core::aac::{self, AudioSpecificConfig};
use media_core::avc::{self, AvcConfig};
use media_core::flv::{self, FlvError, Reader, Tag, VideoPacket};
use media_core::fmp4::read::{self as fmp4_reader, Handler, InitInfo, TrackInfo};
use media_core::hls::ll::parse as ll_parse;
use media_core::rtmp::client::Goal;
use media_core::rtmp::command::Command;
use media_core::rtmp::{
    ChunkDecoder, ClientConfig, ClientSession, Limits, ServerConfig, ServerEvent, ServerSession,
};
use media_core::sei;
use media_core::token::{self, Action};
use media_core::ts::{self, Demuxer, Muxer, StreamKind};
use player_client::hls_playlist::{self, Parsed, MAX_DURATION};

/// A target's body: one input, checked.
pub type Body = fn(&[u8]);

/// Every target by name: `fuzz_targets/<name>.rs` runs it and `corpus/<name>/` feeds it.
pub const TARGETS: &[(&str, Body)] = &[
    ("rtmp_session", rtmp_session),
    ("flv_tag", flv_tag),
    ("avc_config", avc_config),
    ("aac_config", aac_config),
    ("ts_demux", ts_demux),
    ("hls_playlist", hls_playlist),
    ("business_message", business_message),
    ("edge_request", edge_request),
    ("signed_url", signed_url),
    ("fmp4_read", fmp4_read),
    ("llhls_playlist", llhls_playlist),
];

/// The RTMP chunk decoder and command decoder, through both session ends, on arbitrary bytes
/// delivered in pieces of the first byte's size. Requests are accepted as they come, so the
/// input reaches publish, play and media handling.
pub fn rtmp_session(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(split).max(1);
    let now = Instant::now();

    let mut server = ServerSession::new(ServerConfig::default());
    'server: for chunk in rest.chunks(piece) {
        if server.feed(now, chunk).is_err() {
            break;
        }
        while let Some(event) = server.poll_event() {
            let answered = match event {
                ServerEvent::Connect { .. } => server.accept_connect(),
                ServerEvent::Publish { stream_id, name } => server.accept_publish(stream_id, &name),
                ServerEvent::Play { stream_id, name } => server.accept_play(stream_id, &name),
                _ => Ok(()),
            };
            if answered.is_err() {
                break 'server;
            }
        }
        let _ = server.take_output();
    }

    let mut client = ClientSession::new(
        ClientConfig::new("live", "rtmp://127.0.0.1/live"),
        Goal::Play("cam".into()),
    );
    for chunk in rest.chunks(piece) {
        if client.feed(chunk).is_err() {
            break;
        }
        while client.poll_event().is_some() {}
        let _ = client.take_output();
    }

    let mut decoder = ChunkDecoder::new(Limits::default());
    decoder.push(rest);
    while let Ok(Some(m)) = decoder.next_message() {
        let _ = Command::decode(m.header.type_id, &m.payload, 16);
    }
}

/// The input as an FLV file, whole and through the incremental reader in pieces of
/// 1 + the last byte; then each tag as the origin reads it (video and audio headers, sequence
/// headers, NALUs), and the input itself as one tag body.
pub fn flv_tag(data: &[u8]) {
    let whole = flv::parse_file(data);
    let piece = usize::from(data.last().copied().unwrap_or(0)) + 1;
    let mut reader = Reader::new();
    let mut tags = Vec::new();
    let mut failed = None;
    'feed: for chunk in data.chunks(piece) {
        reader.push(chunk);
        loop {
            match reader.next_tag() {
                Ok(Some(tag)) => tags.push(tag),
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break 'feed;
                }
            }
        }
    }
    let framing = tags.len() * (flv::TAG_HEADER_LEN + 4);
    let body_bytes: usize = tags.iter().map(|t| t.data.len()).sum();
    assert!(
        framing + body_bytes <= data.len(),
        "tags larger than the input"
    );
    match &whole {
        Ok(file_tags) => {
            assert_eq!(failed, None, "the reader fails where parse_file does not");
            assert_eq!(&tags, file_tags, "reading in pieces changes the tags");
            assert_eq!(reader.buffered(), 0);
            let mut out = bytes::BytesMut::from(&flv::file_header(true, true)[..]);
            for tag in file_tags {
                flv::write_tag(&mut out, tag.tag_type, tag.timestamp, &tag.data);
            }
            assert_eq!(
                flv::parse_file(&out).as_ref(),
                Ok(file_tags),
                "written tags read back differently"
            );
        }
        Err(FlvError::Truncated) => assert_eq!(failed, None),
        Err(e) => assert_eq!(
            failed.as_ref(),
            Some(e),
            "parse_file and the reader disagree"
        ),
    }
    let file_tags = whole.as_deref().unwrap_or(&tags);
    read_tags(file_tags);
    check_video(data);
    check_audio(data);
}

/// What the origin does with each tag: headers, then sequence headers and frames.
fn read_tags(tags: &[Tag]) {
    let mut nalu_length_size = 4;
    for tag in tags {
        match tag.tag_type {
            flv::TAG_VIDEO => {
                let Some(info) = check_video(&tag.data) else {
                    continue;
                };
                let body = flv::video_body(&tag.data);
                match info.packet {
                    VideoPacket::SequenceHeader => {
                        if let Ok(config) = AvcConfig::parse(body) {
                            nalu_length_size = config.nalu_length_size;
                            let _ = config.dimensions();
                        }
                    }
                    VideoPacket::Nalu if info.codec_id == flv::CODEC_AVC => {
                        check_avcc(body, nalu_length_size);
                    }
                    _ => {}
                }
            }
            flv::TAG_AUDIO if check_audio(&tag.data).is_some_and(|a| a.sequence_header) => {
                check_audio_config(flv::audio_body(&tag.data));
            }
            _ => {}
        }
    }
}

/// A video tag header read back from the header written for what it says.
fn check_video(data: &[u8]) -> Option<flv::VideoInfo> {
    let info = flv::parse_video(data).ok()?;
    if info.codec_id == flv::CODEC_AVC {
        assert!((-(1 << 23)..1 << 23).contains(&info.composition_time));
        let body = flv::video_body(data);
        let rebuilt = flv::avc_video_tag(info.keyframe, info.packet, info.composition_time, body);
        let again = flv::parse_video(&rebuilt).expect("a written video header parses");
        assert_eq!(
            (again.keyframe, again.packet, again.composition_time),
            (info.keyframe, info.packet, info.composition_time)
        );
        assert_eq!(flv::video_body(&rebuilt), body);
    } else {
        assert_eq!((info.packet, info.composition_time), (VideoPacket::Nalu, 0));
    }
    Some(info)
}

/// An audio tag header read back from the header written for what it says.
fn check_audio(data: &[u8]) -> Option<flv::AudioInfo> {
    let info = flv::parse_audio(data).ok()?;
    if info.sound_format == flv::SOUND_AAC {
        let body = flv::audio_body(data);
        let rebuilt = flv::aac_audio_tag(info.sequence_header, body);
        assert_eq!(flv::parse_audio(&rebuilt), Ok(info));
        assert_eq!(flv::audio_body(&rebuilt), body);
    } else {
        assert!(!info.sequence_header);
    }
    Some(info)
}

/// The input as an AVCDecoderConfigurationRecord, an SPS, an AVCC frame with each NALU length
/// size (with SEI stamps found and inserted) and an Annex B stream.
pub fn avc_config(data: &[u8]) {
    if let Ok(config) = AvcConfig::parse(data) {
        let bytes = config.to_bytes();
        assert!(bytes.len() <= data.len(), "the record grew when written");
        assert_eq!(AvcConfig::parse(&bytes).as_ref(), Ok(&config));
        assert!((1..=4).contains(&config.nalu_length_size));
        let _ = config.codec_string();
        let _ = config.dimensions();
        for sps in &config.sps {
            check_sps(sps);
        }
        let sets = config.annexb_parameter_sets();
        assert!(avc::annexb_nalus(&sets).len() <= config.sps.len() + config.pps.len() + sets.len());
    }
    check_sps(data);
    for size in 1..=4 {
        check_avcc(data, size);
    }
    check_annexb(data);
}

fn check_sps(nalu: &[u8]) {
    if let Ok(info) = avc::parse_sps(nalu) {
        assert!(
            info.fps.is_none_or(|f| f.is_finite() && f > 0.0),
            "{info:?}"
        );
    }
}

/// An AVCC frame: its NALUs fit in it, Annex B holds the same NALUs, and a stamp inserted
/// after the leading AUDs is the stamp found.
fn check_avcc(data: &[u8], size: u8) {
    let Ok(nalus) = avc::avcc_nalus(data, size) else {
        assert!(sei::insert_stamp(data, size, 1).is_err());
        assert_eq!(sei::find_stamp(data, size), None);
        assert!(!avc::is_keyframe_avcc(data, size));
        return;
    };
    let total: usize = nalus.iter().map(|n| n.len()).sum();
    assert!(total + nalus.len() * usize::from(size) <= data.len());
    assert_eq!(
        avc::is_keyframe_avcc(data, size),
        nalus.iter().any(|n| avc::nal_type(n) == avc::NAL_IDR)
    );
    let mut annexb = Vec::new();
    avc::avcc_to_annexb(data, size, &mut annexb).expect("a frame that splits converts");
    assert_eq!(annexb.len(), total + avc::START_CODE.len() * nalus.len());

    let micros = u64::from_be_bytes(std::array::from_fn(|i| data.get(i).copied().unwrap_or(0)));
    let stamped = sei::insert_stamp(data, size, micros).expect("a frame that splits takes a stamp");
    assert_eq!(sei::find_stamp(&stamped, size), Some(micros));
    let after = avc::avcc_nalus(&stamped, size).expect("a stamped frame splits");
    let at = nalus
        .iter()
        .take_while(|n| avc::nal_type(n) == avc::NAL_AUD)
        .count();
    assert_eq!(after.len(), nalus.len() + 1);
    assert_eq!(avc::nal_type(after[at]), avc::NAL_SEI);
    assert_eq!(&after[..at], &nalus[..at]);
    assert_eq!(&after[at + 1..], &nalus[at..]);
}

/// An Annex B stream: NALUs hold no start code and no trailing zero, and survive AVCC and back.
fn check_annexb(data: &[u8]) {
    let nalus = avc::annexb_nalus(data);
    let total: usize = nalus.iter().map(|n| n.len()).sum();
    assert!(total <= data.len());
    for nalu in &nalus {
        assert!(nalu.last().is_some_and(|&b| b != 0), "{nalu:?}");
        assert!(!nalu.windows(3).any(|w| w == [0, 0, 1]), "{nalu:?}");
    }
    let avcc = avc::annexb_to_avcc(data);
    assert_eq!(avc::avcc_nalus(&avcc, 4).as_ref(), Ok(&nalus));
    let mut back = Vec::new();
    avc::avcc_to_annexb(&avcc, 4, &mut back).expect("converted AVCC splits");
    assert_eq!(avc::annexb_nalus(&back), nalus);
}

/// The input as an AudioSpecificConfig and as a run of ADTS frames.
pub fn aac_config(data: &[u8]) {
    check_audio_config(data);
    if let Ok(frames) = aac::parse_adts(data) {
        let payload: usize = frames.iter().map(|(_, p)| p.len()).sum();
        assert!(payload + frames.len() * aac::ADTS_HEADER_LEN <= data.len());
        let mut rebuilt = Vec::new();
        for (config, payload) in &frames {
            assert_eq!(
                aac::SAMPLE_RATES.get(usize::from(config.sampling_index)),
                Some(&config.sample_rate)
            );
            rebuilt.extend_from_slice(&config.adts_header(payload.len()));
            rebuilt.extend_from_slice(payload);
        }
        assert_eq!(
            aac::parse_adts(&rebuilt),
            Ok(frames),
            "ADTS frames rewritten differ"
        );
    }
}

/// An AudioSpecificConfig: values in range, written back the same, and the ADTS header the
/// segmenter builds from it reads back.
fn check_audio_config(data: &[u8]) {
    let Ok(config) = AudioSpecificConfig::parse(data) else {
        return;
    };
    assert!((1..=30).contains(&config.object_type), "{config:?}");
    assert!(config.channels < 16);
    assert_eq!(
        aac::SAMPLE_RATES.get(usize::from(config.sampling_index)),
        Some(&config.sample_rate)
    );
    let frame_ms = config.frame_duration_ms();
    assert!(frame_ms.is_finite() && frame_ms > 0.0);
    let _ = config.codec_string();
    // With explicit SBR/PS signalling the core type is kept; written alone it would read as
    // a signalling type again, wanting the extension that is not written.
    if !matches!(config.object_type, 5 | 29) {
        assert_eq!(AudioSpecificConfig::parse(&config.to_bytes()), Ok(config));
    }
    let payload = &data[..data.len().min(0x1FFF - aac::ADTS_HEADER_LEN)];
    let mut frame = config.adts_header(payload.len()).to_vec();
    frame.extend_from_slice(payload);
    let frames = aac::parse_adts(&frame).expect("the segmenter's ADTS header parses");
    let [(adts, back)] = frames[..] else {
        panic!("one ADTS frame written, {} read", frames.len());
    };
    assert_eq!(back, payload);
    assert_eq!(
        (adts.sampling_index, adts.sample_rate, adts.channels),
        (
            config.sampling_index,
            config.sample_rate,
            config.channels & 0x07
        )
    );
    assert_eq!(adts.object_type, ((config.object_type - 1) & 0x03) + 1);
}

/// The input through the TS demuxer, whole and in pieces of 1 + 4 × the last byte, errors
/// skipped as a player skips them; then the input muxed as one video and one audio PES and
/// demuxed back.
pub fn ts_demux(data: &[u8]) {
    let piece = 1 + 4 * usize::from(data.last().copied().unwrap_or(0));
    demux_checked(data, data.len().max(1));
    demux_checked(data, piece);

    let mut muxer = Muxer::new(true, true);
    let mut stream = Vec::new();
    muxer.write_tables(&mut stream);
    let dts = data
        .iter()
        .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        & ts::TIMESTAMP_MASK;
    let pts = (dts + 3000) & ts::TIMESTAMP_MASK;
    let keyframe = data.len().is_multiple_of(2);
    muxer.write_video(&mut stream, dts, pts, keyframe, data);
    muxer.write_audio(&mut stream, pts, data);
    let mut demuxer = Demuxer::new();
    let mut packets = demuxer.push(&stream).expect("muxed TS demuxes");
    packets.extend(demuxer.flush());
    assert_eq!(demuxer.continuity_errors(), 0);
    // A video PES over 64 KiB has no length, so it ends only with the flush, after the audio.
    packets.sort_by_key(|p| p.kind != StreamKind::Video);
    let [video, audio] = &packets[..] else {
        panic!(
            "one video and one audio PES muxed, {} demuxed",
            packets.len()
        );
    };
    assert_eq!(video.kind, StreamKind::Video);
    assert_eq!(audio.kind, StreamKind::Audio);
    assert_eq!(
        (video.dts, video.pts, video.random_access),
        (dts, pts, keyframe)
    );
    let aud_len = if starts_with_aud(data) { 0 } else { 6 };
    assert_eq!(video.data.len(), aud_len + data.len());
    assert_eq!(&video.data[aud_len..], data);
    assert_eq!((audio.pts, audio.dts), (pts, pts));
    assert_eq!(audio.data, data);
}

/// Whether the muxer sees an access unit delimiter first (then it adds none).
fn starts_with_aud(annexb: &[u8]) -> bool {
    let rest = annexb
        .strip_prefix(&[0, 0, 0, 1][..])
        .or_else(|| annexb.strip_prefix(&[0, 0, 1][..]));
    rest.and_then(|r| r.first())
        .is_some_and(|&b| avc::nal_type(&[b]) == avc::NAL_AUD)
}

/// Demuxes `data` fed in `piece`-byte pushes, going on after errors, and checks the packets.
fn demux_checked(data: &[u8], piece: usize) {
    let mut demuxer = Demuxer::new();
    let mut packets = Vec::new();
    for chunk in data.chunks(piece) {
        let mut next = chunk;
        // An error drops one unit; the bytes after it wait for the next push.
        while let Err(_skipped) = demuxer.push(next).map(|p| packets.extend(p)) {
            next = &[];
        }
    }
    packets.extend(demuxer.flush());
    let payload: usize = packets.iter().map(|p| p.data.len()).sum();
    assert!(
        payload <= data.len(),
        "{payload} PES bytes from {} bytes",
        data.len()
    );
    assert!(demuxer.continuity_errors() <= (data.len() / ts::PACKET_SIZE) as u64);
    for p in &packets {
        assert!(p.pts <= ts::TIMESTAMP_MASK && p.dts <= ts::TIMESTAMP_MASK);
    }
}

/// The player's playlist parser: what it accepts is in range and resolved.
pub fn hls_playlist(data: &[u8]) {
    const BASE: &str = "http://127.0.0.1:8080/live/cam.m3u8?token=t";
    let lines = data.split(|&b| b == b'\n').count();
    match hls_playlist::parse(BASE, data) {
        Ok(Parsed::Media(list)) => {
            assert!(list.target >= Duration::from_millis(100) && list.target <= MAX_DURATION);
            assert!(list.segments.len() <= lines);
            for s in &list.segments {
                assert!(!s.duration.is_zero() && s.duration <= MAX_DURATION, "{s:?}");
                assert!(s.seq < u64::MAX);
                assert!(reqwest::Url::parse(&s.url).is_ok(), "{s:?}");
            }
            for pair in list.segments.windows(2) {
                assert_eq!(pair[0].seq + 1, pair[1].seq);
            }
        }
        Ok(Parsed::Master(url)) => assert!(reqwest::Url::parse(&url).is_ok(), "{url}"),
        Err(_) => {}
    }
}

/// The business server's limits (defaults, as a server started without options has them).
fn business_limits() -> (usize, usize) {
    static LIMITS: OnceLock<(usize, usize)> = OnceLock::new();
    *LIMITS.get_or_init(|| {
        let config = business_server::Config::default();
        (config.max_message_bytes, config.max_json_depth)
    })
}

/// A WebSocket text frame as the business server decodes it: within the size limit it is
/// parsed under the depth limit, and an accepted message written back parses the same.
pub fn business_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (max_bytes, max_depth) = business_limits();
    if text.len() > max_bytes {
        return;
    }
    let depth = protocol::json_depth(data, usize::MAX);
    let brackets = data.iter().filter(|&&b| b == b'{' || b == b'[').count();
    assert!(depth <= brackets);
    match protocol::parse(text, max_depth) {
        Ok(incoming) => {
            assert!(depth <= max_depth, "accepted at depth {depth}");
            if let Some(id) = &incoming.id {
                assert!(id.len() <= protocol::MAX_REF_LEN);
            }
            let written = write_message(&incoming).to_string();
            assert_eq!(
                protocol::parse(&written, max_depth).as_ref(),
                Ok(&incoming),
                "{written}"
            );
        }
        Err(e) => {
            assert_eq!(e.code == ErrorCode::JsonTooDeep, depth > max_depth, "{e}");
            assert!(e.message.len() <= 2 * text.len() + 512, "{e}");
        }
    }
}

/// The JSON a client would send for `incoming`.
fn write_message(incoming: &Incoming) -> serde_json::Value {
    use serde_json::json;
    let mut value = match &incoming.message {
        ClientMessage::Chat(chat) => {
            let mut v = json!({"type": "chat", "text": chat.text, "position": chat.position});
            if let Some(color) = &chat.color {
                v["color"] = json!(color);
            }
            v
        }
        ClientMessage::Like(like) => json!({"type": "like", "count": like.count}),
        ClientMessage::Gift(gift) => {
            json!({"type": "gift", "gift": gift.gift, "count": gift.count})
        }
        ClientMessage::Purchase(p) => json!({"type": "purchase", "sale": p.sale, "key": p.key}),
        ClientMessage::Notice(notice) => json!({"type": "notice", "text": notice.text}),
        ClientMessage::Ping => json!({"type": "ping"}),
        ClientMessage::Leave => json!({"type": "leave"}),
    };
    if let Some(id) = &incoming.id {
        value["id"] = json!(id);
    }
    value
}

/// The edge's request handling before any fetch: the input is lines of a request target,
/// a `Range` header, comma-separated cache-key parameters and a body length.
pub fn edge_request(data: &[u8]) {
    let mut lines = data.splitn(4, |&b| b == b'\n');
    let target = lines.next().unwrap_or_default();
    let range = lines.next();
    let params: Vec<String> = lines
        .next()
        .map(|p| {
            String::from_utf8_lossy(p)
                .split(',')
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let len = lines
        .next()
        .and_then(|l| std::str::from_utf8(l).ok()?.trim().parse::<usize>().ok())
        .unwrap_or(data.len());

    if let Ok(uri) = Uri::try_from(target) {
        let path = uri.path();
        let dotted = path.split('/').any(is_dot_segment);
        assert_eq!(cdn_edge::http::has_dot_segment(path), dotted, "{path:?}");
        let key = cdn_edge::http::cache_key(&uri, &params);
        let (key_path, key_query) = key.split_once('?').unwrap_or((&key, ""));
        assert_eq!(key_path, path, "the cache key changes the path");
        let query = uri.query().unwrap_or_default();
        assert!(key_query.len() <= query.len());
        for pair in key_query.split('&').filter(|p| !p.is_empty()) {
            let name = pair.split('=').next().unwrap_or_default();
            assert!(params.iter().any(|p| p == name), "{pair:?} kept in {key:?}");
            assert!(
                query.split('&').any(|q| q == pair),
                "{pair:?} not asked for"
            );
        }
        if params.is_empty() {
            assert_eq!(key, path);
        }
    }

    assert_eq!(cdn_edge::http::byte_range(None, len), None);
    if let Some(value) = range.and_then(|r| HeaderValue::from_bytes(r).ok()) {
        if let Some(Ok((start, end))) = cdn_edge::http::byte_range(Some(&value), len) {
            assert!(
                start <= end && end < len,
                "{value:?} of {len}: {start}-{end}"
            );
        }
    }
}

/// `.` or `..`, each dot possibly written `%2e` or `%2E`.
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        rest = match rest {
            [b'.', tail @ ..] => tail,
            [b'%', b'2', b'e' | b'E', tail @ ..] => tail,
            _ => return false,
        };
        dots += 1;
    }
    (1..=2).contains(&dots)
}

/// Signed URLs: the input is a request target (`path?query`). Nothing panics on any path or
/// token; a token is accepted only when its signature is the one for its own deadline (in
/// either hex case); a freshly signed token always is; and a path signed as the edge signs its
/// origin fetch passes the check of the same path.
pub fn signed_url(data: &[u8]) {
    const SECRET: &str = "fuzz-app-secret-0123";
    const NOW: u64 = 1_000_000_000;
    let text = String::from_utf8_lossy(data);
    let (path, query) = text.split_once('?').unwrap_or((&text, ""));
    let Some((app, stream)) = token::play_target(path) else {
        return;
    };
    assert!(!app.contains('/') && !stream.contains('/'), "{path:?}");
    let given = token::from_query(query);
    for action in [Action::Play, Action::Publish] {
        if token::verify(SECRET.as_bytes(), action, app, stream, given, NOW).is_ok() {
            let given = given.unwrap_or_default();
            let (expires, signature) = given.split_once('-').unwrap_or_default();
            let expires: u64 = expires.parse().unwrap_or_default();
            let expected = token::sign(SECRET.as_bytes(), action, app, stream, expires);
            let (_, expected) = expected.split_once('-').unwrap_or_default();
            assert_eq!(
                signature.to_ascii_lowercase(),
                expected,
                "{given:?} accepted"
            );
            assert!(expires >= NOW, "{given:?} accepted after its deadline");
        }
        let fresh = token::sign(SECRET.as_bytes(), action, app, stream, NOW + 60);
        let checked = token::verify(SECRET.as_bytes(), action, app, stream, Some(&fresh), NOW);
        assert_eq!(checked, Ok(()), "{fresh:?} for {app}/{stream}");
    }
    let app_policy = token::AppPolicy {
        secret: SECRET.to_string(),
        publish: false,
        play: true,
    };
    let policy = token::Policy::new([(app.to_string(), app_policy)]);
    let _ = policy.check_play_path(path, query, NOW);
    if given.is_none() {
        let upstream = policy.sign_play_path(&text, NOW + 60);
        let (upstream_path, upstream_query) = upstream.split_once('?').unwrap_or_default();
        assert_eq!(upstream_path, path);
        assert_eq!(
            policy.check_play_path(upstream_path, upstream_query, NOW),
            Ok(()),
            "{upstream:?}"
        );
    }
}

/// The fMP4 reader: the input as an init segment, and its fragments read with the tracks of a
/// fixed init segment (H.264 track 1 at 90 kHz, AAC track 2 at 44.1 kHz) and with the tracks
/// the input declares itself. Tracks and samples stay within their caps, every sample belongs
/// to a declared track and its data lies within the input.
pub fn fmp4_read(data: &[u8]) {
    let track = |id, timescale, handler, nalu_length_size| TrackInfo {
        id,
        timescale,
        handler,
        nalu_length_size,
        defaults: Default::default(),
    };
    let fixed = InitInfo {
        tracks: vec![
            track(1, 90_000, Handler::Video, Some(4)),
            track(2, 44_100, Handler::Audio, None),
        ],
    };
    let own = fmp4_reader::read_init(data).ok();
    if let Some(init) = &own {
        assert!(init.tracks.len() <= fmp4_reader::MAX_TRACKS);
        assert!(init.tracks.iter().all(|t| t.timescale > 0));
    }
    for init in [Some(&fixed), own.as_ref()].into_iter().flatten() {
        let Ok(samples) = fmp4_reader::read_samples(data, init) else {
            continue;
        };
        assert!(samples.len() <= fmp4_reader::MAX_SAMPLES);
        for s in &samples {
            let track = init.track(s.track_id).expect("a declared track");
            assert!(s.data.len() <= data.len());
            assert!(
                track.duration(s.decode_time).as_millis()
                    >= u128::from(track.millis(s.decode_time))
            );
        }
    }
}

/// The LL-HLS media playlist reader, strict and lenient, on the input as text: Media Sequence
/// Numbers count up from the first listed segment, and the segment being written (if any)
/// follows the last complete one.
pub fn llhls_playlist(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for parsed in [ll_parse::parse(&text), ll_parse::parse_lenient(&text)] {
        let Ok(p) = parsed else {
            continue;
        };
        for pair in p.segments.windows(2) {
            assert!(pair[1].msn == pair[0].msn.saturating_add(1), "{pair:?}");
        }
        if let Some(open) = &p.open {
            assert_eq!(open.msn, p.open_msn());
            assert!(!open.parts.is_empty());
        }
    }
}
