//! Our RTMP chunk layer against sessions recorded from ffmpeg and nginx-rtmp
//! (`tests/fixtures/rtmp`, re-recorded by `record.sh` there). Every message decodes exactly as
//! rml_rtmp, an independent implementation, decodes it; our encoder's bytes decode back the
//! same through rml_rtmp; and both session ends follow the recorded sessions to their media.

use std::time::Instant;

use media_core::flv;
use media_core::rtmp::client::Goal;
use media_core::rtmp::{
    ChunkDecoder, ChunkEncoder, ClientConfig, ClientEvent, ClientSession, Limits, MediaKind,
    MessageHeader, ServerConfig, ServerEvent, ServerSession, TYPE_SET_CHUNK_SIZE,
};
use rml_rtmp::chunk_io::ChunkDeserializer;

const FFMPEG_PUBLISH: &[u8] = include_bytes!("../fixtures/rtmp/ffmpeg-publish.c2s");
const NGINX_PLAY: &[u8] = include_bytes!("../fixtures/rtmp/nginx-play.s2c");

type Msg = (u8, u32, u32, Vec<u8>);

fn chunk_size(payload: &[u8]) -> u32 {
    u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7FFF_FFFF
}

/// Complete messages as our decoder reads them, fed in pieces of `piece` bytes.
fn ours(wire: &[u8], piece: usize) -> Vec<Msg> {
    let limits = Limits {
        max_chunk_size: 1 << 24,
        ..Limits::default()
    };
    let mut dec = ChunkDecoder::new(limits);
    let mut out = Vec::new();
    for p in wire.chunks(piece) {
        dec.push(p);
        while let Some(m) = dec.next_message().expect("our decoder reads the recording") {
            if m.header.type_id == TYPE_SET_CHUNK_SIZE {
                dec.set_chunk_size(chunk_size(&m.payload))
                    .expect("valid chunk size");
            }
            let h = m.header;
            out.push((h.type_id, h.stream_id, h.timestamp, m.payload.to_vec()));
        }
    }
    out
}

/// Complete messages as rml_rtmp's decoder reads them.
fn theirs(wire: &[u8]) -> Vec<Msg> {
    let mut dec = ChunkDeserializer::new();
    let mut out = Vec::new();
    let mut input = wire;
    while let Some(m) = dec.get_next_message(input).expect("rml_rtmp reads it") {
        input = &[];
        if m.type_id == TYPE_SET_CHUNK_SIZE {
            dec.set_max_chunk_size(chunk_size(&m.data) as usize)
                .expect("valid chunk size");
        }
        out.push((
            m.type_id,
            m.message_stream_id,
            m.timestamp.value,
            m.data.to_vec(),
        ));
    }
    out
}

fn count(msgs: &[Msg], type_id: u8) -> usize {
    msgs.iter().filter(|m| m.0 == type_id).count()
}

#[test]
fn recorded_sessions_decode_as_an_independent_decoder_reads_them() {
    for (name, wire) in [
        ("ffmpeg publish", FFMPEG_PUBLISH),
        ("nginx play", NGINX_PLAY),
    ] {
        let reference = theirs(wire);
        assert!(
            count(&reference, 9) > 15,
            "{name}: too little video recorded"
        );
        assert!(
            count(&reference, 8) > 30,
            "{name}: too little audio recorded"
        );
        for piece in [1, 7, 1500, 1 << 20] {
            assert_eq!(
                ours(wire, piece),
                reference,
                "{name}, read {piece} bytes at a time"
            );
        }
    }
    let ffmpeg = theirs(FFMPEG_PUBLISH);
    let b_frames = ffmpeg
        .iter()
        .filter(|m| m.0 == 9)
        .filter_map(|m| flv::parse_video(&m.3).ok())
        .filter(|v| v.composition_time != 0)
        .count();
    assert!(
        b_frames > 0,
        "the recording carries B-frames (composition offsets)"
    );
}

#[test]
fn our_chunks_of_the_recorded_media_read_back_through_rml_rtmp() {
    let media: Vec<Msg> = theirs(NGINX_PLAY)
        .into_iter()
        .filter(|m| m.0 == 8 || m.0 == 9 || m.0 == 18)
        .collect();
    // rml_rtmp starts at chunk size 128, so we stay at it: its decoder must reassemble our
    // type 3 continuations, extended timestamps included.
    let enc = ChunkEncoder::new(128);
    let mut wire = Vec::new();
    for (type_id, stream_id, timestamp, payload) in &media {
        let csid = if *type_id == 8 { 4 } else { 6 };
        let header = MessageHeader {
            type_id: *type_id,
            stream_id: *stream_id,
            timestamp: *timestamp,
        };
        wire.extend_from_slice(&enc.to_bytes(csid, &header, payload));
    }
    let late = MessageHeader {
        type_id: 9,
        stream_id: 1,
        timestamp: 0x0123_4567,
    };
    wire.extend_from_slice(&enc.to_bytes(6, &late, &[0x27; 300]));
    let mut want = media;
    want.push((9, 1, 0x0123_4567, vec![0x27; 300]));
    assert_eq!(theirs(&wire), want);
}

#[test]
fn server_session_follows_ffmpeg_publishing() {
    let mut server = ServerSession::new(ServerConfig::default());
    let now = Instant::now();
    let (mut connect, mut publish, mut metadata, mut video, mut audio) = (None, None, 0, 0, 0);
    let mut first_video = None;
    for piece in FFMPEG_PUBLISH.chunks(1000) {
        server.feed(now, piece).expect("ffmpeg's session is valid");
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::Connect { app, .. } => {
                    connect = Some(app);
                    server.accept_connect().expect("answered");
                }
                ServerEvent::Publish { stream_id, name } => {
                    server.accept_publish(stream_id, &name).expect("answered");
                    publish = Some(name);
                }
                ServerEvent::Metadata(_) => metadata += 1,
                ServerEvent::Media { kind, payload, .. } => match kind {
                    MediaKind::Video => {
                        video += 1;
                        first_video.get_or_insert(payload);
                    }
                    _ => audio += 1,
                },
                ServerEvent::Play { .. } | ServerEvent::Closed { .. } => {}
            }
        }
        let _ = server.take_output();
    }
    assert_eq!(connect.as_deref(), Some("live"));
    assert_eq!(publish.as_deref(), Some("cam"));
    assert_eq!(metadata, 1);
    assert!(video > 15 && audio > 30, "{video} video, {audio} audio");
    let first = flv::parse_video(&first_video.expect("video")).expect("AVC");
    assert_eq!(first.packet, flv::VideoPacket::SequenceHeader);
}

#[test]
fn client_session_follows_nginx_rtmp_playing() {
    // The recording answers rtmpdump's requests; ours are equivalent, so its answers fit.
    let mut client = ClientSession::new(
        ClientConfig::new("live", "rtmp://127.0.0.1/live"),
        Goal::Play("cam".into()),
    );
    let mut events = Vec::new();
    for piece in NGINX_PLAY.chunks(1500) {
        client.feed(piece).expect("nginx-rtmp's session is valid");
        events.extend(std::iter::from_fn(|| client.poll_event()));
    }
    assert!(events.contains(&ClientEvent::Connected));
    assert!(events.contains(&ClientEvent::PlayStarted));
    let media = |kind| {
        events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Media { kind: k, .. } if *k == kind))
            .count()
    };
    assert!(media(MediaKind::Video) > 15 && media(MediaKind::Audio) > 30);
}
