//! The memory budget against the real binary: what it says at start, what room is made from,
//! the 503 when none can be, and the figures in `/metrics` and `/api/devices`.

mod support;

use std::time::Duration;

use support::{jpeg, tag_of, Relay};

/// Part headers and delimiters a stored frame carries besides its JPEG (the exact figure is
/// pinned by the unit tests; here it only has to be small).
const PART_OVERHEAD: u64 = 128;

fn metric(relay: &Relay, line_start: &str) -> u64 {
    let text = relay.get("/metrics").text();
    text.lines()
        .find_map(|line| line.strip_prefix(line_start)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in /metrics:\n{text}"))
}

#[test]
fn the_budget_in_force_is_said_at_start() {
    let relay = Relay::start(&[]);
    let line = relay.wait_for_log("memory budget: ", Duration::from_secs(5));
    assert!(line.contains("of MemTotal"), "{line}");
    let given = Relay::start(&["--memory-budget", "24M"]);
    let line = given.wait_for_log("memory budget: ", Duration::from_secs(5));
    assert!(
        line.contains("25165824 bytes") && line.contains("set by --memory-budget"),
        "{line}"
    );
    assert_eq!(metric(&given, "streampump_memory_budget_bytes"), 24 << 20);
    // The old upload cap is accepted, said to be unused, and changes nothing.
    let old = Relay::start(&["--max-upload-bytes", "16777216"]);
    old.wait_for_log("--max-upload-bytes", Duration::from_secs(5));
}

#[test]
fn watched_phones_are_never_dropped_and_a_push_that_finds_no_room_gets_503() {
    let relay = Relay::start(&["--memory-budget", "420000", "--max-frame-bytes", "150000"]);
    // Three watched phones hold most of the budget; each has room for its next frame beside
    // its current one, not for a stranger's bigger one.
    let mut viewers = Vec::new();
    for (tag, phone) in [(1, "phone_a"), (2, "phone_b"), (3, "phone_c")] {
        relay.push_ok(phone, &jpeg(64, 48, tag, 100_000));
        let mut viewer = relay.stream(&format!("/live.mjpeg?device_id={phone}"));
        assert_eq!(tag_of(&viewer.next_part().body), tag);
        viewers.push(viewer);
    }
    let frames = metric(&relay, "streampump_memory_used_bytes{holder=\"frames\"}");
    assert!(
        (300_000..300_000 + 3 * PART_OVERHEAD).contains(&frames),
        "{frames}"
    );

    // A newcomer's frame does not fit, and nothing may make room for it.
    for _ in 0..2 {
        let refused = relay.push("stranger", &jpeg(64, 48, 9, 130_000));
        assert_eq!(refused.status, 503, "{}", refused.text());
        assert_eq!(refused.header("Retry-After"), Some("5"));
        let text = refused.text();
        assert!(
            text.contains("memory budget full") && text.lines().count() == 1,
            "{text}"
        );
    }
    for (tag, phone) in [(1, "phone_a"), (2, "phone_b"), (3, "phone_c")] {
        let snapshot = relay.get(&format!("/snapshot.jpg?device_id={phone}"));
        assert_eq!(snapshot.body, jpeg(64, 48, tag, 100_000), "{phone} kept");
    }
    assert_eq!(metric(&relay, "streampump_memory_refused_total"), 2);
    assert_eq!(
        metric(
            &relay,
            "streampump_requests_rejected_total{reason=\"memory_budget\"}"
        ),
        2
    );
    // The phones themselves still push: their new frame replaces the old one.
    relay.push_ok("phone_a", &jpeg(64, 48, 4, 100_000));
    let full_logs = relay.wait_for_log("memory budget of 420000 bytes is full", Duration::ZERO);
    assert!(full_logs.contains("refusing pushes"), "{full_logs}");

    // A phone nobody watches any more, that pushed a single frame, makes room.
    viewers.pop().expect("phone_c's viewer").close();
    relay.eventually(Duration::from_secs(5), "phone_c to be unwatched", || {
        relay.device("phone_c").is_some_and(|d| d["viewers"] == 0)
    });
    relay.push_ok("stranger", &jpeg(64, 48, 9, 130_000));
    assert!(relay.device("phone_c").is_none(), "phone_c made room");
    assert!(relay.device("phone_b").is_some() && relay.device("phone_a").is_some());
    assert_eq!(metric(&relay, "streampump_memory_evictions_total"), 1);

    // One line said when the refusals began, for both of them; one says when they ended.
    assert_eq!(relay.logged_count("bytes is full"), 1);
    relay.wait_for_log("memory budget: pushes fit again", Duration::from_secs(10));
    assert_eq!(relay.logged_count("pushes fit again"), 1);

    // /api/devices carries the figures beside its array.
    let status = relay.get("/api/devices");
    assert_eq!(status.header("X-Memory-Budget"), Some("420000"));
    let usage = status
        .header("X-Memory-Use")
        .expect("X-Memory-Use")
        .to_string();
    assert!(
        usage.starts_with("frames=")
            && usage.contains(" uploads=0 in_flight=")
            && usage.ends_with(" refused=2 evicted=1"),
        "{usage}"
    );
}
