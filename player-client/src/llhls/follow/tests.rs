//! Scripted playlists and answers, no sockets or sleeps: the start point, the requests after
//! each playlist, missing and skipped parts, discontinuities, failed held requests, staleness.

use super::*;
use media_core::hls::ll::parse::parse_lenient;

/// A playlist as the origin renders it, in 250 ms parts (part 0 of each segment independent)
/// with `PART-HOLD-BACK` 1 s and `TARGETDURATION` 2.
#[derive(Clone)]
struct Fixture {
    first: u64,
    complete: u64,
    open_parts: u64,
    per_segment: u64,
    /// A segment with fewer parts: (msn, parts).
    short: Option<(u64, u64)>,
    discontinuity: Option<u64>,
    new_map_at: Option<u64>,
    ended: bool,
    can_block: bool,
}

impl Fixture {
    fn new(first: u64, complete: u64, open_parts: u64) -> Self {
        Self {
            first,
            complete,
            open_parts,
            per_segment: 4,
            short: None,
            discontinuity: None,
            new_map_at: None,
            ended: false,
            can_block: true,
        }
    }

    fn text(&self) -> String {
        let control = if self.can_block {
            "CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,"
        } else {
            ""
        };
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-SERVER-CONTROL:{control}PART-HOLD-BACK=1.0,HOLD-BACK=6.0\n\
             #EXT-X-PART-INF:PART-TARGET=0.25\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            self.first
        );
        let open = self.first + self.complete;
        for msn in self.first..=open {
            let parts = match self.short {
                Some((short, parts)) if short == msn => parts,
                _ if msn == open => self.open_parts,
                _ => self.per_segment,
            };
            if msn == open && parts == 0 {
                break;
            }
            if self.discontinuity == Some(msn) {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if msn == self.first || self.new_map_at == Some(msn) {
                let init = u64::from(self.new_map_at.is_some_and(|at| msn >= at));
                out.push_str(&format!("#EXT-X-MAP:URI=\"init{init}.mp4\"\n"));
            }
            for part in 0..parts {
                let independent = if part == 0 { ",INDEPENDENT=YES" } else { "" };
                out.push_str(&format!(
                    "#EXT-X-PART:DURATION=0.25,URI=\"{msn}.{part}.m4s\"{independent}\n"
                ));
            }
            if msn < open {
                out.push_str(&format!("#EXTINF:{},\n{msn}.m4s\n", parts as f64 / 4.0));
            }
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        } else {
            out.push_str(&format!(
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{open}.{}.m4s\"\n",
                self.open_parts
            ));
        }
        out
    }

    fn playlist(&self) -> Playlist {
        parse_lenient(&self.text()).expect("fixture parses")
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn id(msn: u64, part: u64) -> PartId {
    PartId { msn, part }
}

fn blocking(msn: u64, part: u64) -> PlaylistRequest {
    PlaylistRequest::Blocking {
        next: id(msn, part),
        skip: true,
    }
}

/// A follower that loaded its first (plain) playlist `f` at `now`.
fn joined(f: &Fixture, now: Duration) -> Follower {
    let mut follower = Follower::new();
    assert_eq!(
        follower.playlist_request(now),
        Slot::Send(PlaylistRequest::Plain)
    );
    follower
        .playlist_answered(now, PlaylistRequest::Plain, &f.playlist())
        .expect("fresh");
    follower
}

/// The next part request, loading any init segment it needs first.
fn next_part(follower: &mut Follower, now: Duration) -> PartRequest {
    match follower.media_request(now) {
        Slot::Send(MediaRequest::Init(uri)) => {
            follower.init_loaded(&uri);
            next_part(follower, now)
        }
        Slot::Send(MediaRequest::Part(part)) => part,
        other => panic!("no part to request: {other:?}"),
    }
}

/// Downloads parts until the next one is the hint; returns the ids downloaded.
fn play_listed(follower: &mut Follower, now: Duration) -> Vec<PartId> {
    let mut played = Vec::new();
    loop {
        let part = next_part(follower, now);
        if part.hinted {
            follower.media_in_flight = None;
            return played;
        }
        follower.part_loaded(part.id);
        played.push(part.id);
    }
}

#[test]
fn starts_part_hold_back_behind_the_live_edge_on_an_independent_part() {
    // Parts 10.0 … 12.3 and 13.0, 13.1: the point 1 s (four parts) before the end lies at the
    // start of 12.2, and the last independent part at or before it is 12.0.
    let f = Fixture::new(10, 3, 2);
    let mut follower = joined(&f, ms(0));
    assert_eq!(
        follower.media_request(ms(0)),
        Slot::Send(MediaRequest::Init("init0.mp4".into()))
    );
    assert_eq!(
        follower.media_request(ms(0)),
        Slot::Idle,
        "one media request at a time"
    );
    follower.init_loaded("init0.mp4");
    let first = next_part(&mut follower, ms(0));
    assert_eq!(
        first,
        PartRequest {
            id: id(12, 0),
            uri: "12.0.m4s".into(),
            hinted: false,
            discontinuity: false,
            skipped: false,
            trim: ms(500),
        }
    );
    follower.part_loaded(first.id);
    assert_eq!(
        play_listed(&mut follower, ms(0)),
        [id(12, 1), id(12, 2), id(12, 3), id(13, 0), id(13, 1)]
    );
    // With the hold-back point on an independent part, nothing before it is loaded.
    let f = Fixture::new(10, 3, 4);
    let mut follower = joined(&f, ms(0));
    let first = next_part(&mut follower, ms(0));
    assert_eq!((first.id, first.trim), (id(13, 0), Duration::ZERO));
    // A playlist without parts starts at the hint.
    let mut f = Fixture::new(10, 0, 0);
    f.short = Some((10, 0));
    let mut follower = joined(&f, ms(0));
    let first = next_part(&mut follower, ms(0));
    assert_eq!((first.id, first.hinted), (id(10, 0), true));
}

#[test]
fn blocking_reloads_ask_for_the_part_after_the_last_listed_and_hints_are_fetched_at_once() {
    let mut f = Fixture::new(10, 3, 2);
    let mut follower = joined(&f, ms(0));
    play_listed(&mut follower, ms(0));
    let reload = blocking(13, 2);
    assert_eq!(follower.playlist_request(ms(10)), Slot::Send(reload));
    assert_eq!(
        follower.playlist_request(ms(10)),
        Slot::Idle,
        "one reload at a time"
    );
    // The held part 13.2 is asked for while the reload waits for it.
    let hinted = next_part(&mut follower, ms(10));
    assert_eq!(
        (hinted.id, hinted.uri.as_str(), hinted.hinted),
        (id(13, 2), "13.2.m4s", true)
    );
    assert_eq!(follower.media_request(ms(10)), Slot::Idle);
    follower.part_loaded(hinted.id);
    // The part came before the playlist that lists it: nothing to do until that arrives.
    assert_eq!(follower.media_request(ms(260)), Slot::Idle);
    f.open_parts = 3;
    follower
        .playlist_answered(ms(261), reload, &f.playlist())
        .expect("fresh");
    assert_eq!(
        follower.playlist_request(ms(261)),
        Slot::Send(blocking(13, 3))
    );
    assert_eq!(next_part(&mut follower, ms(261)).id, id(13, 3));
    follower.part_loaded(id(13, 3));
    // The segment closes: the next reload and hint are part 0 of the next segment.
    f.complete = 4;
    f.open_parts = 0;
    follower
        .playlist_answered(ms(510), blocking(13, 3), &f.playlist())
        .expect("fresh");
    assert_eq!(
        follower.playlist_request(ms(510)),
        Slot::Send(blocking(14, 0))
    );
    let hinted = next_part(&mut follower, ms(510));
    assert_eq!(
        (hinted.id, hinted.hinted, hinted.trim),
        (id(14, 0), true, Duration::ZERO)
    );
}

#[test]
fn a_hinted_part_that_never_comes_waits_for_the_playlist_that_tells_what_follows() {
    // A republish ends segment 13 after two parts: the hinted 13.2 answers 404 and the next
    // segment starts with a discontinuity.
    let mut f = Fixture::new(10, 3, 2);
    let mut follower = joined(&f, ms(0));
    play_listed(&mut follower, ms(0));
    let hinted = next_part(&mut follower, ms(0));
    assert_eq!(hinted.id, id(13, 2));
    follower.part_failed(ms(5), PartFailure::NotFound);
    assert_eq!(
        follower.media_request(ms(5)),
        Slot::Idle,
        "not asked again before a reload"
    );
    f.complete = 4;
    f.short = Some((13, 2));
    f.discontinuity = Some(14);
    f.open_parts = 1;
    follower
        .playlist_answered(ms(300), blocking(13, 2), &f.playlist())
        .expect("fresh");
    let next = next_part(&mut follower, ms(300));
    assert_eq!(
        (next.id, next.hinted, next.discontinuity, next.skipped),
        (id(14, 0), false, true, false),
        "a new timeline, nothing skipped"
    );
    follower.part_loaded(next.id);
    assert_eq!(
        follower.take_late_discontinuities(),
        0,
        "flagged on the request"
    );

    // The same with the new segment's first part still hinted: its discontinuity is counted
    // once a playlist lists it.
    let mut f = Fixture::new(10, 3, 2);
    let mut follower = joined(&f, ms(0));
    play_listed(&mut follower, ms(0));
    next_part(&mut follower, ms(0));
    follower.part_failed(ms(5), PartFailure::Unavailable);
    f.complete = 4;
    f.short = Some((13, 2));
    f.open_parts = 0;
    follower
        .playlist_answered(ms(300), blocking(13, 2), &f.playlist())
        .expect("fresh");
    let next = next_part(&mut follower, ms(300));
    assert_eq!(
        (next.id, next.hinted, next.discontinuity),
        (id(14, 0), true, false)
    );
    follower.part_loaded(next.id);
    f.discontinuity = Some(14);
    f.open_parts = 1;
    follower
        .playlist_answered(ms(600), blocking(14, 0), &f.playlist())
        .expect("fresh");
    assert_eq!(follower.take_late_discontinuities(), 1);
    f.open_parts = 2;
    follower
        .playlist_answered(ms(900), blocking(14, 1), &f.playlist())
        .expect("fresh");
    assert_eq!(follower.take_late_discontinuities(), 0, "counted once");
}

#[test]
fn a_listed_part_answering_404_is_retried_then_skipped() {
    let f = Fixture::new(10, 3, 2);
    let mut follower = joined(&f, ms(0));
    let first = next_part(&mut follower, ms(0));
    follower.part_loaded(first.id);
    for attempt in 0..3 {
        let part = next_part(&mut follower, ms(1000 * attempt));
        assert_eq!(part.id, id(12, 1));
        follower.part_failed(ms(1000 * attempt), PartFailure::NotFound);
        if attempt < 2 {
            assert_eq!(
                follower.media_request(ms(1000 * attempt)),
                Slot::Wait(ms(1000 * attempt + 200))
            );
        }
    }
    let next = next_part(&mut follower, ms(2000));
    assert_eq!(
        (next.id, next.discontinuity, next.skipped),
        (id(12, 2), true, true)
    );
    // Other failures wait for the time the session's backoff gives.
    follower.part_failed(ms(2000), PartFailure::Retry(ms(2400)));
    assert_eq!(follower.media_request(ms(2000)), Slot::Wait(ms(2400)));
    let again = next_part(&mut follower, ms(2400));
    assert_eq!(
        (again.id, again.discontinuity),
        (id(12, 2), true),
        "still flagged"
    );
    follower.part_loaded(again.id);
    assert!(!next_part(&mut follower, ms(2400)).discontinuity);
}

#[test]
fn falling_behind_the_listed_parts_starts_over_at_the_hold_back() {
    let f = Fixture::new(10, 3, 2);
    let mut follower = joined(&f, ms(0));
    let first = next_part(&mut follower, ms(0));
    follower.part_loaded(first.id);
    // The viewer stalled: the playlist now lists parts from 20.0 on.
    let later = Fixture::new(20, 3, 2);
    follower
        .playlist_answered(ms(10_000), PlaylistRequest::Plain, &later.playlist())
        .expect("fresh");
    let next = next_part(&mut follower, ms(10_000));
    assert_eq!(
        (next.id, next.discontinuity, next.skipped, next.trim),
        (id(22, 0), true, true, Duration::ZERO)
    );
    // A stream whose sequence started over (an origin restart) is joined again too.
    follower.part_loaded(next.id);
    let restarted = Fixture::new(0, 2, 1);
    follower
        .playlist_answered(ms(11_000), PlaylistRequest::Plain, &restarted.playlist())
        .expect("fresh");
    let next = next_part(&mut follower, ms(11_000));
    assert_eq!((next.id, next.discontinuity), (id(1, 0), true));
}

#[test]
fn a_new_init_segment_is_loaded_before_its_parts() {
    let mut f = Fixture::new(10, 3, 4);
    let mut follower = joined(&f, ms(0));
    assert_eq!(play_listed(&mut follower, ms(0)).len(), 4);
    f.complete = 4;
    f.open_parts = 1;
    f.new_map_at = Some(14);
    f.discontinuity = Some(14);
    follower
        .playlist_answered(ms(100), blocking(13, 4), &f.playlist())
        .expect("fresh");
    assert_eq!(
        follower.media_request(ms(100)),
        Slot::Send(MediaRequest::Init("init1.mp4".into()))
    );
    follower.init_loaded("init1.mp4");
    let next = next_part(&mut follower, ms(100));
    assert_eq!((next.id, next.discontinuity), (id(14, 0), true));
}

#[test]
fn failed_reloads_fall_back_to_plain_ones_and_a_quiet_playlist_goes_stale() {
    let f = Fixture::new(10, 3, 2);
    let mut follower = joined(&f, ms(0));
    assert_eq!(
        follower.playlist_request(ms(0)),
        Slot::Send(blocking(13, 2))
    );
    // The held reload timed out (503 after three target durations).
    follower.playlist_failed(ms(6_100));
    assert_eq!(follower.playlist_request(ms(6_000)), Slot::Wait(ms(6_100)));
    assert_eq!(
        follower.playlist_request(ms(6_100)),
        Slot::Send(PlaylistRequest::Plain)
    );
    // The plain reload shows nothing new for three target durations: stale.
    assert_eq!(
        follower.playlist_answered(ms(6_150), PlaylistRequest::Plain, &f.playlist()),
        Err(ms(6_150))
    );
    // A blocking reload answered without the part it asked for is not repeated at once.
    let mut follower = joined(&f, ms(0));
    assert_eq!(
        follower.playlist_request(ms(0)),
        Slot::Send(blocking(13, 2))
    );
    follower
        .playlist_answered(ms(50), blocking(13, 2), &f.playlist())
        .expect("fresh");
    assert_eq!(follower.playlist_request(ms(50)), Slot::Wait(ms(300)));
    assert_eq!(
        follower.playlist_request(ms(300)),
        Slot::Send(blocking(13, 2))
    );
    // New parts keep it fresh however long it runs.
    let mut follower = joined(&f, ms(0));
    for step in 1..40 {
        let mut next = f.clone();
        next.open_parts = 2 + step % 2;
        next.complete = 3 + step / 2;
        assert!(follower
            .playlist_answered(ms(250 * step), PlaylistRequest::Plain, &next.playlist())
            .is_ok());
    }
}

#[test]
fn a_server_that_cannot_block_is_polled_once_per_part() {
    let mut f = Fixture::new(10, 3, 2);
    f.can_block = false;
    let mut follower = joined(&f, ms(0));
    assert_eq!(follower.playlist_request(ms(0)), Slot::Wait(ms(250)));
    assert_eq!(
        follower.playlist_request(ms(250)),
        Slot::Send(PlaylistRequest::Plain)
    );
}

#[test]
fn an_ended_playlist_plays_out_and_finishes() {
    let mut f = Fixture::new(10, 3, 2);
    let mut follower = joined(&f, ms(0));
    play_listed(&mut follower, ms(0));
    f.complete = 4;
    f.open_parts = 0;
    f.short = Some((13, 3));
    f.ended = true;
    follower
        .playlist_answered(ms(400), blocking(13, 2), &f.playlist())
        .expect("ended");
    assert!(!follower.finished());
    assert_eq!(follower.playlist_request(ms(400)), Slot::Idle);
    let last = next_part(&mut follower, ms(400));
    assert_eq!(last.id, id(13, 2));
    follower.part_loaded(last.id);
    assert!(follower.finished());
    assert_eq!(follower.media_request(ms(400)), Slot::Idle);
}
