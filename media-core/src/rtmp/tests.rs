//! Sessions against each other, and chunk round trips over arbitrary message sequences.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use proptest::prelude::*;

use super::amf0::Amf0;
use super::client::Goal;
use super::*;

/// Moves bytes both ways until neither side has anything to send.
fn pump(client: &mut ClientSession, server: &mut ServerSession, now: Instant) {
    loop {
        let mut moved = false;
        while let Some(b) = client.take_output() {
            server.feed(now, &b).expect("server accepts client bytes");
            moved = true;
        }
        while let Some(b) = server.take_output() {
            client.feed(&b).expect("client accepts server bytes");
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

fn events(server: &mut ServerSession) -> Vec<ServerEvent> {
    std::iter::from_fn(|| server.poll_event()).collect()
}

fn client_events(client: &mut ClientSession) -> Vec<ClientEvent> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

fn connected(goal: Goal) -> (ClientSession, ServerSession, Instant) {
    let now = Instant::now();
    let mut client = ClientSession::new(ClientConfig::new("live", "rtmp://127.0.0.1/live"), goal);
    let mut server = ServerSession::new(ServerConfig::default());
    pump(&mut client, &mut server, now);
    let ev = events(&mut server);
    assert_eq!(
        ev,
        [ServerEvent::Connect {
            app: "live".into(),
            tc_url: Some("rtmp://127.0.0.1/live".into())
        }]
    );
    server.accept_connect().expect("answered");
    pump(&mut client, &mut server, now);
    (client, server, now)
}

#[test]
fn publish_then_media_reaches_the_server() {
    let (mut client, mut server, now) = connected(Goal::Publish("cam".into()));
    let ev = events(&mut server);
    assert_eq!(
        ev,
        [ServerEvent::Publish {
            stream_id: 1,
            name: "cam".into()
        }]
    );
    server.accept_publish(1, "cam").expect("answered");
    pump(&mut client, &mut server, now);
    let ce = client_events(&mut client);
    assert_eq!(ce, [ClientEvent::Connected, ClientEvent::PublishStarted]);
    client.send_metadata(&[Amf0::EcmaArray(vec![("width".into(), Amf0::Number(640.0))])]);
    let frame = vec![0x17u8; 10_000];
    client.send_media(MediaKind::Video, 40, &frame);
    client.send_media(MediaKind::Audio, 0x0100_0000, b"\xaf\x01aac");
    pump(&mut client, &mut server, now);
    let ev = events(&mut server);
    assert_eq!(ev.len(), 3);
    assert!(matches!(&ev[0], ServerEvent::Metadata(v) if v[0].get("width").is_some()));
    assert!(
        matches!(&ev[1], ServerEvent::Media { kind: MediaKind::Video, timestamp: 40, payload } if payload[..] == frame[..])
    );
    assert!(matches!(
        &ev[2],
        ServerEvent::Media {
            kind: MediaKind::Audio,
            timestamp: 0x0100_0000,
            ..
        }
    ));
}

#[test]
fn play_accepted_and_refused() {
    let (mut client, mut server, now) = connected(Goal::Play("cam".into()));
    let ev = events(&mut server);
    assert_eq!(
        ev,
        [ServerEvent::Play {
            stream_id: 1,
            name: "cam".into()
        }]
    );
    server.accept_play(1, "cam").expect("answered");
    server.send_media(1, MediaKind::Video, 7, b"\x17\x01\0\0\0frame");
    pump(&mut client, &mut server, now);
    let ce = client_events(&mut client);
    assert!(ce.contains(&ClientEvent::PlayStarted));
    assert!(ce
        .iter()
        .any(|e| matches!(e, ClientEvent::Media { timestamp: 7, .. })));

    let (mut client, mut server, _) = connected(Goal::Play("nope".into()));
    server
        .refuse(1, "NetStream.Play.StreamNotFound", "no such stream")
        .expect("answered");
    let out = server.take_output().expect("refusal bytes");
    let err = client.feed(&out).expect_err("refusal ends the session");
    assert!(
        matches!(err, RtmpError::Refused { code, .. } if code == "NetStream.Play.StreamNotFound")
    );
}

#[test]
fn pipelined_requests_wait_for_their_answers() {
    let now = Instant::now();
    let mut client = ClientSession::new(
        ClientConfig::new("live", "rtmp://h/live"),
        Goal::Play("a".into()),
    );
    let mut server = ServerSession::new(ServerConfig::default());
    // The connect and a createStream sent before any answer, in one segment.
    let mut wire = client.take_output().expect("connect").to_vec();
    let create = command::Command::new("createStream", 2.0, Amf0::Null, Vec::new());
    wire.extend_from_slice(&ChunkEncoder::new(4096).to_bytes(
        CSID_COMMAND,
        &MessageHeader {
            type_id: TYPE_AMF0_COMMAND,
            stream_id: 0,
            timestamp: 0,
        },
        &create.encode(),
    ));
    server.feed(now, &wire).expect("valid");
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::Connect { .. })
    ));
    assert!(
        server.take_output().is_none(),
        "nothing answered before the decision"
    );
    server.accept_connect().expect("answered");
    let out = server.take_output().expect("answers");
    let mut dec = ChunkDecoder::new(Limits::default());
    dec.push(&out);
    let mut names = Vec::new();
    while let Some(m) = dec.next_message().expect("valid") {
        if m.header.type_id == TYPE_SET_CHUNK_SIZE {
            let size = u32::from_be_bytes([m.payload[0], m.payload[1], m.payload[2], m.payload[3]]);
            dec.set_chunk_size(size).expect("valid");
        }
        if m.header.type_id == TYPE_AMF0_COMMAND {
            let c = command::Command::decode(TYPE_AMF0_COMMAND, &m.payload, 8).expect("command");
            names.push((c.name, c.transaction));
        }
    }
    assert_eq!(
        names,
        [("_result".to_string(), 1.0), ("_result".to_string(), 2.0)]
    );
}

#[test]
fn media_before_connect_is_refused() {
    let mut server = ServerSession::new(ServerConfig::default());
    let cmd = command::Command::new("publish", 1.0, Amf0::Null, vec![Amf0::str("x")]);
    let bytes = ChunkEncoder::default().to_bytes(
        CSID_COMMAND,
        &MessageHeader {
            type_id: TYPE_AMF0_COMMAND,
            stream_id: 1,
            timestamp: 0,
        },
        &cmd.encode(),
    );
    assert!(matches!(
        server.feed(Instant::now(), &bytes),
        Err(RtmpError::Unexpected(_))
    ));
}

#[test]
fn silent_publisher_times_out_by_the_clock_it_is_given() {
    let (mut client, mut server, now) = connected(Goal::Publish("cam".into()));
    events(&mut server);
    server.accept_publish(1, "cam").expect("answered");
    pump(&mut client, &mut server, now);
    let limit = ServerConfig::default().publisher_timeout;
    assert_eq!(server.timeout(), Some(now + limit));
    assert!(server
        .handle_timeout(now + limit - Duration::from_millis(1))
        .is_ok());
    assert!(matches!(
        server.handle_timeout(now + limit),
        Err(RtmpError::Silent(_))
    ));
}

#[test]
fn acknowledgements_follow_the_window() {
    let (mut client, mut server, _) = connected(Goal::Play("cam".into()));
    events(&mut server);
    server.accept_play(1, "cam").expect("answered");
    let frame = vec![0u8; 100_000];
    for i in 0..30 {
        server.send_media(1, MediaKind::Video, i, &frame);
    }
    let out = server.take_output().expect("media");
    client.feed(&out).expect("valid");
    let acks = client.take_output().expect("an acknowledgement is due");
    let mut dec = ChunkDecoder::new(Limits::default());
    dec.push(&acks);
    let m = dec.next_message().expect("valid").expect("one message");
    assert_eq!(m.header.type_id, TYPE_ACK);
}

#[test]
fn ping_requests_are_answered() {
    let mut server = ServerSession::new(ServerConfig::default());
    let ping = control::Control::User(control::UserControl::PingRequest(42));
    let bytes = ChunkEncoder::default().to_bytes(
        CSID_CONTROL,
        &MessageHeader {
            type_id: ping.type_id(),
            stream_id: 0,
            timestamp: 0,
        },
        &ping.payload(),
    );
    server.feed(Instant::now(), &bytes).expect("valid");
    let out = server.take_output().expect("pong");
    let mut dec = ChunkDecoder::new(Limits::default());
    dec.push(&out);
    let m = dec.next_message().expect("valid").expect("message");
    assert_eq!(
        control::Control::parse(m.header.type_id, &m.payload),
        Ok(Some(control::Control::User(
            control::UserControl::PingResponse(42)
        )))
    );
}

fn arb_message() -> impl Strategy<Value = (u32, MessageHeader, Vec<u8>)> {
    (
        prop_oneof![2u32..64, 64u32..320, 320u32..65_600],
        prop_oneof![Just(8u8), Just(9u8), Just(18u8), Just(20u8)],
        0u32..4,
        prop_oneof![0u32..100_000, 0xFF_FF00u32..0x0100_0100, any::<u32>()],
        proptest::collection::vec(any::<u8>(), 0..3000),
    )
        .prop_map(|(csid, type_id, stream_id, timestamp, body)| {
            (
                csid,
                MessageHeader {
                    type_id,
                    stream_id,
                    timestamp,
                },
                body,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any message sequence survives encoding at one chunk size and decoding, in arbitrary
    /// read sizes, with the chunk size changed mid-stream as a peer would.
    #[test]
    fn chunk_round_trip(
        messages in proptest::collection::vec(arb_message(), 1..20),
        size_a in 1u32..5000,
        size_b in 1u32..5000,
        cut in 1usize..700,
    ) {
        let mut wire = BytesMut::new();
        let mut enc = ChunkEncoder::new(size_a);
        let half = messages.len() / 2;
        let mut dec = ChunkDecoder::new(Limits::default());
        dec.set_chunk_size(size_a).expect("valid size");
        for (i, (csid, header, body)) in messages.iter().enumerate() {
            if i == half {
                let c = control::Control::SetChunkSize(size_b);
                let h = MessageHeader { type_id: c.type_id(), stream_id: 0, timestamp: 0 };
                enc.encode(CSID_CONTROL, &h, &c.payload(), &mut wire);
                enc.set_chunk_size(size_b);
            }
            enc.encode(*csid, header, body, &mut wire);
        }
        let mut got = Vec::new();
        for piece in wire.chunks(cut) {
            dec.push(piece);
            while let Some(m) = dec.next_message().expect("decodes") {
                if m.header.type_id == TYPE_SET_CHUNK_SIZE {
                    dec.set_chunk_size(size_b).expect("valid size");
                    continue;
                }
                got.push((m.csid, m.header, m.payload.to_vec()));
            }
        }
        prop_assert_eq!(got, messages);
        prop_assert_eq!(dec.buffered(), 0);
    }

    /// Arbitrary bytes never panic the server session; they fail it or wait for more.
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4000)) {
        let mut server = ServerSession::new(ServerConfig::default());
        let _ = server.feed(Instant::now(), &data);
    }
}

#[test]
fn deep_amf_command_fails_the_session() {
    let mut server = ServerSession::new(ServerConfig::default());
    let body = [0x03, 0x00, 0x01, b'k'].repeat(100_000);
    let bytes = ChunkEncoder::default().to_bytes(
        CSID_COMMAND,
        &MessageHeader {
            type_id: TYPE_AMF0_COMMAND,
            stream_id: 0,
            timestamp: 0,
        },
        &body,
    );
    let mut result = Ok(());
    for piece in bytes.chunks(65_536) {
        result = server.feed(Instant::now(), piece);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(RtmpError::Amf(amf0::AmfError::TooDeep(16))));
}

fn arb_media() -> impl Strategy<Value = Vec<(MediaKind, u32, Vec<u8>)>> {
    proptest::collection::vec(
        (
            prop_oneof![Just(MediaKind::Audio), Just(MediaKind::Video)],
            prop_oneof![0u32..100_000, 0xFF_FF00u32..0x0100_0100],
            proptest::collection::vec(any::<u8>(), 0..20_000),
        ),
        1..30,
    )
}

/// Delivers `bytes` to `feed` in pieces of `cut` bytes.
fn deliver(bytes: &[u8], cut: usize, mut feed: impl FnMut(&[u8])) {
    for piece in bytes.chunks(cut) {
        feed(piece);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Media published by the client reaches the server unchanged, and media the server plays
    /// reaches the client unchanged, whatever the chunk sizes and read sizes on each side.
    #[test]
    fn sessions_carry_media_both_directions(
        media in arb_media(),
        client_chunk in 1u32..70_000,
        server_chunk in 1u32..70_000,
        cut in 1usize..5000,
    ) {
        let now = Instant::now();
        let want: Vec<_> = media.iter().map(|(k, t, p)| (*k, *t, p.clone())).collect();

        // Client to server.
        let mut config = ClientConfig::new("live", "rtmp://h/live");
        config.chunk_size = client_chunk;
        let mut client = ClientSession::new(config, Goal::Publish("cam".into()));
        let server_config = ServerConfig { chunk_size: server_chunk, ..ServerConfig::default() };
        let mut server = ServerSession::new(server_config.clone());
        pump(&mut client, &mut server, now);
        server.accept_connect().expect("answered");
        pump(&mut client, &mut server, now);
        server.accept_publish(1, "cam").expect("answered");
        pump(&mut client, &mut server, now);
        for (kind, ts, payload) in &media {
            client.send_media(*kind, *ts, payload);
        }
        let wire = client.take_output().expect("media");
        let mut got = Vec::new();
        deliver(&wire, cut, |p| {
            server.feed(now, p).expect("server decodes");
            while let Some(e) = server.poll_event() {
                if let ServerEvent::Media { kind, timestamp, payload } = e {
                    got.push((kind, timestamp, payload.to_vec()));
                }
            }
        });
        prop_assert_eq!(&got, &want);

        // Server to client.
        let mut client = ClientSession::new(ClientConfig::new("live", "rtmp://h/live"), Goal::Play("cam".into()));
        let mut server = ServerSession::new(server_config);
        pump(&mut client, &mut server, now);
        server.accept_connect().expect("answered");
        pump(&mut client, &mut server, now);
        server.accept_play(1, "cam").expect("answered");
        for (kind, ts, payload) in &media {
            server.send_media(1, *kind, *ts, payload);
        }
        let wire = server.take_output().expect("media");
        let mut got = Vec::new();
        deliver(&wire, cut, |p| {
            client.feed(p).expect("client decodes");
            while let Some(e) = client.poll_event() {
                if let ClientEvent::Media { kind, timestamp, payload } = e {
                    got.push((kind, timestamp, payload.to_vec()));
                }
            }
        });
        prop_assert_eq!(got, want);
    }
}

#[test]
fn a_rejected_connect_fails_the_client_with_the_reason() {
    let now = Instant::now();
    let mut client = ClientSession::new(
        ClientConfig::new("live", "rtmp://h/live"),
        Goal::Play("a".into()),
    );
    let mut server = ServerSession::new(ServerConfig::default());
    server
        .feed(now, &client.take_output().expect("connect"))
        .expect("valid");
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::Connect { .. })
    ));
    server.reject_connect("no such app");
    let err = client
        .feed(&server.take_output().expect("refusal"))
        .expect_err("refused");
    assert_eq!(
        err,
        RtmpError::Refused {
            code: "NetConnection.Connect.Rejected".into(),
            description: "no such app".into()
        }
    );
}
