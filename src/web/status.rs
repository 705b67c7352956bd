//! `GET /api/devices`: every device's figures as JSON, in the spirit of µStreamer's `/state`.
//!
//! Written by hand: the document is flat and small, and a JSON crate would cost more binary
//! than the whole relay core. Ids are restricted to characters that never need escaping, but
//! they are escaped anyway so that this file stays correct on its own.
//!
//! The memory budget is the relay's, not a device's, so it rides in headers beside the array
//! (as `X-View-User` does) rather than turning the array every client parses into an object.

use std::fmt::Write;

use crate::http::Response;
use crate::relay::device::DeviceStatus;
use crate::relay::device_id::DeviceId;
use crate::relay::memory::Snapshot;
use crate::relay::settings_store::Versioned;
use crate::text::decimal;
use crate::text::json::push_string;

/// `X-Memory-Budget: 8388608` and
/// `X-Memory-Use: frames=N uploads=N in_flight=N refused=N evicted=N` (bytes, then counts).
pub fn add_memory_headers(response: &mut Response, memory: &Snapshot) {
    let usage = memory.usage;
    response.add_header("X-Memory-Budget", &memory.limit.to_string());
    response.add_header(
        "X-Memory-Use",
        &format!(
            "frames={} uploads={} in_flight={} refused={} evicted={}",
            usage.frames, usage.uploads, usage.in_flight, memory.refusals, memory.evictions
        ),
    );
}

/// Renders the status array. Field names are part of the API; see docs/api.md.
pub fn devices_json(
    statuses: &[DeviceStatus],
    settings_of: &dyn Fn(&DeviceId) -> Option<Versioned>,
) -> String {
    let mut json = String::with_capacity(64 + statuses.len() * 320);
    json.push('[');
    for (index, status) in statuses.iter().enumerate() {
        if index > 0 {
            json.push(',');
        }
        json.push_str("{\"id\":");
        push_string(&mut json, status.id.as_str());
        let optional = |value: Option<String>| value.unwrap_or_else(|| "null".to_string());
        let _ = write!(
            json,
            ",\"online\":{},\"frames_received\":{},\"input_fps\":{},\"bytes_received\":{},\
             \"last_frame_age_ms\":{},\"last_frame_bytes\":{},\"width\":{},\"height\":{},\
             \"viewers\":{},\"frames_sent\":{},\"frames_skipped\":{},\"bad_frames\":{},\"push_mode\":{},\"pusher\":{}",
            status.online,
            status.frames_received,
            status.input_fps,
            status.bytes_received,
            optional(
                status
                    .last_frame_age
                    .map(|age| decimal::whole_millis(age).to_string()),
            ),
            optional(status.last_frame_bytes.map(|bytes| bytes.to_string())),
            optional(status.dimensions.map(|d| d.width.to_string())),
            optional(status.dimensions.map(|d| d.height.to_string())),
            status.viewers,
            status.frames_sent,
            status.frames_skipped,
            status.bad_frames,
            optional(status.push_mode.map(|mode| format!("\"{}\"", mode.as_str()))),
            optional(status.pusher.map(|peer| format!("\"{peer}\""))),
        );
        push_management_json(&mut json, status, settings_of(&status.id));
        json.push('}');
    }
    json.push_str("]\n");
    json
}

/// What the dashboard shows to manage a phone: the settings made for it (with their version,
/// 0 if none), the settings it says it runs with, and its latest health report.
fn push_management_json(json: &mut String, status: &DeviceStatus, settings: Option<Versioned>) {
    let version = settings.as_ref().map_or(0, |s| s.version);
    let _ = write!(json, ",\"settings_version\":{version},\"settings\":");
    match settings {
        Some(settings) => json.push_str(&settings.settings.to_json()),
        None => json.push_str("null"),
    }
    json.push_str(",\"effective\":");
    match &status.effective {
        Some(effective) => json.push_str(&effective.to_json()),
        None => json.push_str("null"),
    }
    json.push_str(",\"health\":");
    match &status.health {
        Some((health, age)) => {
            let _ = write!(json, "{{\"age_ms\":{},", decimal::whole_millis(*age));
            health.push_json(json);
            json.push('}');
        }
        None => json.push_str("null"),
    }
}

/// The plain-text page at `/`: what this is and where things are.
pub fn index_text() -> String {
    format!(
        "streampump {}\n\n\
         Push:     POST /pump_push/{{device_id}}  (body: one JPEG)\n\
         Stream:   GET  /live.mjpeg?device_id=ID  (also /stream, /?action=stream; &fps=N, &advance_headers=1)\n\
         Snapshot: GET  /snapshot.jpg?device_id=ID (also /snapshot, /?action=snapshot)\n\
         Status:   GET  /api/devices\n\
         Health:   GET  /healthz\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::device::PushMode;
    use crate::relay::device_id::DeviceId;
    use crate::relay::jpeg::Dimensions;
    use crate::text::decimal::Hundredths;
    use std::time::Duration;

    fn status(id: &str) -> DeviceStatus {
        DeviceStatus {
            id: DeviceId::parse(id).unwrap(),
            online: true,
            frames_received: 3,
            input_fps: Hundredths(1499),
            bytes_received: 300,
            last_frame_age: Some(Duration::from_millis(42)),
            last_frame_bytes: Some(100),
            dimensions: Some(Dimensions {
                width: 640,
                height: 480,
            }),
            viewers: 2,
            frames_sent: 6,
            frames_skipped: 1,
            bad_frames: 0,
            push_mode: Some(PushMode::Stream),
            pusher: "192.168.1.20:40000".parse().ok(),
            health: None,
            effective: None,
        }
    }

    #[test]
    fn renders_every_field() {
        assert_eq!(
            devices_json(&[status("cam")], &|_| None),
            "[{\"id\":\"cam\",\"online\":true,\"frames_received\":3,\"input_fps\":14.99,\
             \"bytes_received\":300,\"last_frame_age_ms\":42,\"last_frame_bytes\":100,\
             \"width\":640,\"height\":480,\"viewers\":2,\"frames_sent\":6,\"frames_skipped\":1,\
             \"bad_frames\":0,\"push_mode\":\"stream\",\"pusher\":\"192.168.1.20:40000\",\
             \"settings_version\":0,\"settings\":null,\"effective\":null,\"health\":null}]\n"
        );
    }

    #[test]
    fn unknown_values_are_null_and_devices_are_separated() {
        let mut waiting = status("b");
        waiting.last_frame_age = None;
        waiting.last_frame_bytes = None;
        waiting.dimensions = None;
        let json = devices_json(&[status("a"), waiting], &|_| None);
        assert!(json.contains("},{\"id\":\"b\""));
        assert!(json.contains(
            "\"last_frame_age_ms\":null,\"last_frame_bytes\":null,\"width\":null,\"height\":null"
        ));
        assert_eq!(devices_json(&[], &|_| None), "[]\n");
    }
}
