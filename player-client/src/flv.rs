//! HTTP-FLV playback: one streaming GET, read chunk by chunk into the FLV tag reader.

use media_core::flv::{self, FlvError, TAG_AUDIO, TAG_VIDEO};
use tokio::time::{timeout, Instant};

use crate::deadline::Deadline;
use crate::error::{Failure, PlayErrorKind};
use crate::http::{request_failure, status_failure};
use crate::session::Session;
use crate::tags::TagHandler;

/// Largest FLV tag accepted; a live frame is far smaller.
const MAX_TAG_SIZE: usize = 8 << 20;

/// Plays an HTTP-FLV URL until the session ends, reconnecting as the options allow.
pub(crate) async fn play(url: &str, session: &mut Session<'_>) -> Result<(), PlayErrorKind> {
    let client = session
        .options
        .client()
        .map_err(|e| PlayErrorKind::Client(e.to_string()))?;
    let mut handler = TagHandler::default();
    while !session.over() {
        match connection(url, &client, session, &mut handler).await {
            Ok(()) => break,
            Err(failure) => session.retry(failure).await?,
        }
    }
    Ok(())
}

/// One connection; `Ok` when the session ended while it was open.
async fn connection(
    url: &str,
    client: &reqwest::Client,
    session: &mut Session<'_>,
    handler: &mut TagHandler,
) -> Result<(), Failure> {
    handler.new_connection(&mut session.stats);
    let ended = session.ended();
    tokio::pin!(ended);
    let request = timeout(session.options.connect_timeout, client.get(url).send());
    let mut response = tokio::select! {
        _ = &mut ended => return Ok(()),
        r = request => match r {
            Err(_) => return Err(Failure::retry("timeout", format!("{url}: no answer"))),
            Ok(Err(e)) => return Err(request_failure(url, &e)),
            Ok(Ok(r)) => r,
        },
    };
    if let Some(failure) = status_failure(url, response.status()) {
        return Err(failure);
    }
    let mut reader = flv::Reader::with_max_tag_size(MAX_TAG_SIZE);
    let mut tags = 0u64;
    let mut flowing = false;
    let idle = session.options.idle_timeout;
    let mut last_data = Instant::now();
    let mut tick = Deadline::new(session.next_tick());
    let mut quiet = Deadline::new(last_data + idle);
    loop {
        tokio::select! {
            _ = &mut ended => return Ok(()),
            _ = tick.until(session.next_tick()) => session.tick(),
            _ = quiet.until(last_data + idle) => {
                return Err(Failure::retry("idle", format!("{url}: no data for {idle:?}")));
            }
            chunk = response.chunk() => {
                let chunk = match chunk {
                    Err(e) => return Err(request_failure(url, &e)),
                    Ok(None) => return Err(Failure::retry("closed", format!("{url}: stream ended"))),
                    Ok(Some(chunk)) => chunk,
                };
                last_data = Instant::now();
                session.stats.add_bytes(chunk.len());
                reader.push(&chunk);
                loop {
                    match reader.next_tag() {
                        Ok(Some(tag)) => {
                            tags += 1;
                            match tag.tag_type {
                                TAG_VIDEO => handler.video(&mut session.stats, tag.timestamp, &tag.data),
                                TAG_AUDIO => handler.audio(&mut session.stats, tag.timestamp, &tag.data),
                                _ => {}
                            }
                        }
                        Ok(None) => break,
                        Err(e @ (FlvError::BadSignature | FlvError::BadHeaderOffset(_))) if tags == 0 => {
                            return Err(Failure::Fatal(PlayErrorKind::NotFlv {
                                url: url.to_string(),
                                reason: e.to_string(),
                            }));
                        }
                        Err(e) => return Err(Failure::retry("bad_flv", format!("{url}: {e}"))),
                    }
                }
                if !flowing && handler.started() {
                    flowing = true;
                    session.media_flowing();
                }
            }
        }
    }
}
