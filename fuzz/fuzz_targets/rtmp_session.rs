//! The RTMP chunk decoder and command decoder, through both session ends, on arbitrary bytes
//! delivered in arbitrary pieces. Requests are accepted as they come, so the fuzzer reaches
//! publish, play and media handling. Nothing may panic, and memory stays within the limits.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use media_core::rtmp::client::Goal;
use media_core::rtmp::command::Command;
use media_core::rtmp::{
    ChunkDecoder, ClientConfig, ClientSession, Limits, ServerConfig, ServerEvent, ServerSession,
};

fuzz_target!(|data: &[u8]| {
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
});
