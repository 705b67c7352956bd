//! Phones as managed cameras, against the real binary: settings made through the API reach the
//! phone in the answer to its next push and survive a restart; the long-poll tells a phone of
//! its first viewer at once; health reports show in `/api/devices`; `--on-event` runs its
//! command with the event in its environment and kills one that hangs.

mod support;

use std::io::{BufReader, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{jpeg, read_response, Relay, Response};

fn request(relay: &Relay, method: &str, target: &str, headers: &str, body: &str) -> Response {
    relay.raw(
        format!(
            "{method} {target} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

fn put_settings(relay: &Relay, device: &str, headers: &str, body: &str) -> Response {
    request(
        relay,
        "PUT",
        &format!("/api/devices/{device}/settings"),
        headers,
        body,
    )
}

/// A push with extra request headers (each ending in CRLF).
fn push_with(relay: &Relay, device: &str, headers: &str) -> Response {
    let body = jpeg(64, 48, 1, 300);
    let mut raw = format!(
        "POST /pump_push/{device} HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n{headers}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    relay.raw(&raw)
}

fn json(response: &Response) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.text()))
}

#[test]
fn settings_are_checked_changed_and_reach_the_phone_with_its_next_push() {
    let relay = Relay::start(&[]);
    // Before any change: the defaults, at version 0, and a push answer without settings.
    let fresh = relay.get("/api/devices/cam/settings");
    assert_eq!(fresh.status, 200);
    assert_eq!(json(&fresh)["version"], 0);
    assert_eq!(json(&fresh)["fps"], 10);
    let answer = push_with(&relay, "cam", "");
    assert_eq!((answer.status, answer.text().as_str()), (200, "OK"));
    assert_eq!(answer.header("X-Streampump-Viewers"), Some("0"));
    assert_eq!(answer.header("X-Streampump-Settings"), None);

    for (bad, named) in [
        (r#"{"fps":0}"#, "fps"),
        (r#"{"fps":31}"#, "fps"),
        (r#"{"rotation":45}"#, "rotation"),
        (r#"{"quality":5}"#, "quality"),
        (r#"{"camera":"left"}"#, "camera"),
        (r#"{"colour":1}"#, "unknown key colour"),
        (
            r#"{"overlay":{"label":"this label is far too long for one line of a frame"}}"#,
            "label",
        ),
        (r#"{"fps":5"#, "invalid JSON"),
        ("[]", "invalid JSON"),
    ] {
        let refused = put_settings(&relay, "cam", "", bad);
        assert_eq!(refused.status, 400, "{bad}: {}", refused.text());
        assert!(refused.text().contains(named), "{bad}: {}", refused.text());
        assert_eq!(refused.text().lines().count(), 1, "{}", refused.text());
    }
    let huge = format!(r#"{{"overlay":{{"label":"{}"}}}}"#, "x".repeat(5000));
    assert_eq!(put_settings(&relay, "cam", "", &huge).status, 413);
    assert_eq!(json(&relay.get("/api/devices/cam/settings"))["version"], 0);

    let changed = put_settings(
        &relay,
        "cam",
        "Content-Type: application/json\r\n",
        r#"{"fps":5,"width":320,"height":240,"quality":50,"rotation":90,
            "overlay":{"time":true,"label":"Garden"}}"#,
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    let settings = json(&changed);
    assert_eq!(settings["version"], 1);
    assert_eq!(
        (&settings["fps"], &settings["width"], &settings["rotation"]),
        (&Value::from(5), &Value::from(320), &Value::from(90))
    );
    assert_eq!(settings["overlay"]["label"], "Garden");
    // The same document again changes nothing, not even the version.
    let again = put_settings(&relay, "cam", "", r#"{"fps":5}"#);
    assert_eq!(json(&again)["version"], 1);

    // A page that has not applied version 1 gets the settings with its push answer…
    let answer = push_with(&relay, "cam", "X-Streampump-Settings-Version: 0\r\n");
    assert_eq!(answer.text(), "OK");
    assert_eq!(answer.header("X-Streampump-Settings-Version"), Some("1"));
    let carried: Value =
        serde_json::from_str(answer.header("X-Streampump-Settings").expect("settings")).unwrap();
    assert_eq!(carried["fps"], 5);
    assert_eq!(carried["quality"], 50);
    assert_eq!(carried["overlay"]["time"], true);
    // …and one that has, only the version.
    let answer = push_with(&relay, "cam", "X-Streampump-Settings-Version: 1\r\n");
    assert_eq!(answer.header("X-Streampump-Settings"), None);
    assert_eq!(answer.header("X-Streampump-Settings-Version"), Some("1"));

    // The dashboard's view of the device has them too.
    let device = relay.device("cam").expect("listed");
    assert_eq!(device["settings_version"], 1);
    assert_eq!(device["settings"]["width"], 320);
}

#[test]
fn settings_survive_a_restart_and_are_written_only_when_changed() {
    let first = Relay::start(&[]);
    let state_dir = first.state_dir.clone();
    let kept = support::scratch_dir("managed-state");
    let kept_arg = kept.to_str().unwrap().to_string();
    drop(first);
    let _ = std::fs::remove_dir_all(state_dir);

    let relay = Relay::start(&["--state-dir", &kept_arg]);
    let changed = put_settings(
        &relay,
        "porch",
        "",
        r#"{"fps":2,"camera":"front","mirror":true,"idle_when_unwatched":false}"#,
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    let file = Path::new(&kept).join("devices.json");
    let written = std::fs::metadata(&file).unwrap().modified().unwrap();
    assert_eq!(
        put_settings(&relay, "porch", "", r#"{"fps":2}"#).status,
        200
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        written,
        "an unchanged document must not rewrite the file"
    );
    drop(relay);

    let restarted = Relay::start(&["--state-dir", &kept_arg]);
    let settings = json(&restarted.get("/api/devices/porch/settings"));
    assert_eq!(settings["version"], 1);
    assert_eq!(settings["fps"], 2);
    assert_eq!(settings["camera"], "front");
    assert_eq!(settings["mirror"], true);
    assert_eq!(settings["idle_when_unwatched"], false);
    let answer = push_with(&restarted, "porch", "X-Streampump-Settings-Version: 1\r\n");
    assert_eq!(answer.header("X-Streampump-Settings"), None);
    // Forgetting the device forgets its settings, in the file too.
    assert_eq!(
        request(&restarted, "DELETE", "/api/devices/porch", "", "").status,
        200
    );
    assert_eq!(
        json(&restarted.get("/api/devices/porch/settings"))["version"],
        0
    );
    let file_now = std::fs::read_to_string(&file).unwrap();
    assert!(!file_now.contains("porch"), "{file_now}");
    // Settings made for an id that never pushed are forgotten the same way.
    assert_eq!(
        put_settings(&restarted, "ghost", "", r#"{"fps":3}"#).status,
        200
    );
    assert_eq!(
        request(&restarted, "DELETE", "/api/devices/ghost", "", "").status,
        200
    );
    assert_eq!(
        request(&restarted, "DELETE", "/api/devices/ghost", "", "").status,
        404
    );
    drop(restarted);
    let _ = std::fs::remove_dir_all(&kept);
}

#[test]
fn changing_settings_needs_the_admin_token_and_reading_them_a_view_credential() {
    let relay = Relay::start(&[
        "--view-token",
        "viewer",
        "--admin-token",
        "admin",
        "--push-token",
        "pusher",
    ]);
    let body = r#"{"fps":3}"#;
    assert_eq!(put_settings(&relay, "cam", "", body).status, 401);
    let as_viewer = put_settings(&relay, "cam", "Authorization: Bearer viewer\r\n", body);
    assert_eq!(as_viewer.status, 401);
    let as_admin = put_settings(&relay, "cam", "Authorization: Bearer admin\r\n", body);
    assert_eq!(as_admin.status, 200, "{}", as_admin.text());
    assert_eq!(relay.get("/api/devices/cam/settings").status, 401);
    let read = relay.get("/api/devices/cam/settings?token=viewer");
    assert_eq!(read.status, 200);
    assert_eq!(json(&read)["fps"], 3);
    // The phone gets its settings with the push token it already has.
    let answer = push_with(&relay, "cam", "Authorization: Bearer pusher\r\n");
    assert_eq!(answer.status, 200);
    assert!(answer.header("X-Streampump-Settings").is_some());
}

#[test]
fn the_long_poll_answers_when_the_first_viewer_comes_and_gives_way_to_a_newer_one() {
    let relay = Relay::start(&[]);
    relay.push_ok("cam", &jpeg(64, 48, 1, 300));
    assert_eq!(relay.get("/api/devices/nobody/wait").status, 404);

    let open_wait = |watched: u8| {
        let mut connection = relay.connect();
        connection
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            connection,
            "GET /api/devices/cam/wait?watched={watched} HTTP/1.1\r\nHost: t\r\n\
             Connection: close\r\n\r\n"
        )
        .unwrap();
        connection
    };
    // Nothing in progress but the metrics request that asks (the 404 above is done), so that
    // the count of 2 below is the first long-poll and no other.
    let in_progress = |count: usize| {
        relay
            .get("/metrics")
            .text()
            .contains(&format!("streampump_requests_in_progress {count}\n"))
    };
    relay.eventually(Duration::from_secs(5), "the relay idle", || in_progress(1));
    // Held open while nobody watches…
    let first = open_wait(0);
    relay.eventually(Duration::from_secs(5), "the long-poll is waiting", || {
        in_progress(2)
    });
    assert!(!support::has_answer(&first));
    // …a second long-poll makes the first answer at once (one per device)…
    let second = open_wait(0);
    let answer = read_response(&mut BufReader::new(first), true);
    assert_eq!(answer.status, 200);
    assert_eq!(json(&answer)["viewers"], 0);
    // …and a viewer ends the wait of the second, without any push in between.
    let viewer = relay.stream("/live.mjpeg?device_id=cam");
    let started = Instant::now();
    let answer = read_response(&mut BufReader::new(second), true);
    assert_eq!(json(&answer)["viewers"], 1);
    assert_eq!(answer.header("X-Streampump-Viewers"), Some("1"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "answered by the viewer, not the timeout"
    );
    // Waiting for "watched" while watched answers at once; the viewer leaving ends it again.
    let answer = read_response(&mut BufReader::new(open_wait(0)), true);
    assert_eq!(json(&answer)["viewers"], 1);
    let third = open_wait(1);
    viewer.close();
    let answer = read_response(&mut BufReader::new(third), true);
    assert_eq!(json(&answer)["viewers"], 0);
    // A push answer says who watches.
    assert_eq!(
        relay
            .push("cam", &jpeg(64, 48, 2, 300))
            .header("X-Streampump-Viewers"),
        Some("0")
    );
}

#[test]
fn health_reports_show_in_the_status_and_metrics_and_garbage_is_ignored() {
    let relay = Relay::start(&[]);
    let answer = push_with(
        &relay,
        "cam",
        "X-Streampump-Health: battery=14;charging=0;visible=0;wakelock=1;capture=1280x720;\
         encode_ms=9;skipped=4;uptime=3600;browser=Chrome 120;unsupported=torch;bogus=1\r\n\
         X-Streampump-Effective: {\"fps\":15,\"width\":640,\"height\":480}\r\n",
    );
    assert_eq!(answer.status, 200);
    let device = relay.device("cam").unwrap();
    let health = &device["health"];
    assert_eq!(health["battery"], 14);
    assert_eq!(health["charging"], false);
    assert_eq!(health["visible"], false);
    assert_eq!(health["wake_lock"], true);
    assert_eq!(
        (&health["capture_width"], &health["capture_height"]),
        (&Value::from(1280), &Value::from(720))
    );
    assert_eq!(health["encode_ms"], 9);
    assert_eq!(health["skipped"], 4);
    assert_eq!(health["page_uptime_s"], 3600);
    assert_eq!(health["browser"], "Chrome 120");
    assert_eq!(health["unsupported"], serde_json::json!(["torch"]));
    assert_eq!(device["effective"]["fps"], 15);
    let metrics = relay.get("/metrics").text();
    assert!(
        metrics.contains("streampump_device_battery_ratio{device=\"cam\"} 0.14\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("streampump_device_charging{device=\"cam\"} 0\n"),
        "{metrics}"
    );

    // Garbage neither refuses the push nor replaces a good report with nonsense.
    let answer = push_with(
        &relay,
        "cam",
        "X-Streampump-Health: battery=250;charging=maybe\r\nX-Streampump-Effective: {nope\r\n",
    );
    assert_eq!(answer.status, 200);
    let device = relay.device("cam").unwrap();
    assert_eq!(device["health"]["battery"], 14);
    assert_eq!(device["effective"]["fps"], 15);
    // A device that never reported has no health and no battery gauge.
    relay.push_ok("quiet", &jpeg(64, 48, 1, 300));
    assert_eq!(relay.device("quiet").unwrap()["health"], Value::Null);
    assert!(!relay
        .get("/metrics")
        .text()
        .contains("battery_ratio{device=\"quiet\"}"));
}

/// Waits until `file` has `lines` lines, and returns them.
fn lines_of(relay: &Relay, file: &Path, lines: usize) -> Vec<String> {
    relay.eventually(Duration::from_secs(10), "the event command ran", || {
        std::fs::read_to_string(file).is_ok_and(|text| text.lines().count() >= lines)
    });
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_event_command_runs_for_online_battery_charging_and_offline() {
    let scratch = support::scratch_dir("events");
    let out = scratch.join("events.txt");
    let command = format!(
        "echo \"$STREAMPUMP_EVENT $STREAMPUMP_DEVICE battery=$STREAMPUMP_BATTERY \
         charging=$STREAMPUMP_CHARGING\" >> {}",
        out.display()
    );
    let relay = Relay::start(&[
        "--on-event",
        &command,
        "--battery-low",
        "30",
        "--offline-after",
        "1s",
    ]);
    push_with(
        &relay,
        "cam",
        "X-Streampump-Health: battery=50;charging=1\r\n",
    );
    let seen = lines_of(&relay, &out, 1);
    assert_eq!(seen[0], "online cam battery= charging=");
    push_with(
        &relay,
        "cam",
        "X-Streampump-Health: battery=29;charging=1\r\n",
    );
    // Once per fall below the threshold, not with every report.
    push_with(
        &relay,
        "cam",
        "X-Streampump-Health: battery=28;charging=1\r\n",
    );
    push_with(
        &relay,
        "cam",
        "X-Streampump-Health: battery=28;charging=0\r\n",
    );
    let seen = lines_of(&relay, &out, 4);
    assert_eq!(seen[1], "battery_low cam battery=29 charging=1");
    assert_eq!(seen[2], "not_charging cam battery=28 charging=0");
    assert_eq!(seen[3], "offline cam battery=28 charging=0");
    assert!(relay.logged("cam: battery low (29 %, below --battery-low 30 %)"));
    assert!(relay.logged("cam: not charging"));
    drop(relay);
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn an_event_command_that_hangs_is_killed_at_its_timeout_with_what_it_started() {
    let scratch = support::scratch_dir("events-hang");
    let marker = scratch.join("child.pid");
    // The shell starts a sleep of its own; both must go.
    let command = format!("sleep 600 & echo $! > {}; wait", marker.display());
    let relay = Relay::start(&["--on-event", &command, "--event-timeout", "1s"]);
    let started = Instant::now();
    relay.push_ok("cam", &jpeg(64, 48, 1, 300));
    relay.wait_for_log("killed after 1s (--event-timeout)", Duration::from_secs(10));
    assert!(started.elapsed() >= Duration::from_secs(1));
    let pid = std::fs::read_to_string(&marker).unwrap();
    let proc_dir = format!("/proc/{}", pid.trim());
    relay.eventually(Duration::from_secs(5), "the sleep is gone", || {
        // Killed and reaped (by init, as its shell is gone): no process, or only a zombie
        // for the moment it takes init to reap it.
        std::fs::read_to_string(format!("{proc_dir}/stat"))
            .map_or(true, |stat| stat.contains(") Z "))
    });
    // The relay goes on serving while and after the command hangs.
    relay.push_ok("cam", &jpeg(64, 48, 2, 300));
    drop(relay);
    let _ = std::fs::remove_dir_all(&scratch);
}
