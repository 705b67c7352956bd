//! A phone's camera settings, made from the dashboard or `PUT /api/devices/{id}/settings`.
//!
//! The relay only stores and hands them out: the phone's push page applies them (frame rate,
//! size, JPEG quality, which camera, torch and zoom through `applyConstraints`, rotation,
//! mirror, the time and label it draws onto each frame, and whether it idles while nobody
//! watches). A `PUT` carries any subset of the keys; the others keep their value. Every value
//! is range-checked here and an unknown key is refused, so a typo is a 400 that names it
//! rather than a setting that silently does nothing.

use std::fmt::Write as _;

use crate::text::decimal;
use crate::text::json::{self, Object, Value};

/// Largest settings document accepted from a client.
pub const MAX_DOCUMENT_BYTES: usize = 4096;
/// Longest overlay label, in characters: one line on a 320-pixel-wide frame.
pub const MAX_LABEL_CHARS: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Camera {
    Back,
    Front,
}

impl Camera {
    pub fn as_str(self) -> &'static str {
        match self {
            Camera::Back => "back",
            Camera::Front => "front",
        }
    }
}

/// Everything a phone can be told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Frames per second while someone watches, 1 to 30.
    pub fps: u32,
    /// The box each frame is fitted into, keeping the camera's shape (width is the long side).
    pub width: u32,
    pub height: u32,
    /// JPEG quality in percent, 10 to 100.
    pub quality: u32,
    pub camera: Camera,
    pub torch: bool,
    /// Zoom factor in hundredths, 100 (none) to 1000.
    pub zoom: u32,
    /// Degrees clockwise: 0, 90, 180 or 270.
    pub rotation: u32,
    pub mirror: bool,
    pub overlay_time: bool,
    pub overlay_label: String,
    /// Whether the phone drops to one frame every `idle_interval` seconds with no viewer.
    pub idle_when_unwatched: bool,
    /// Seconds between frames while idle, 1 to 60.
    pub idle_interval: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            fps: 10,
            width: 640,
            height: 480,
            quality: 70,
            camera: Camera::Back,
            torch: false,
            zoom: 100,
            rotation: 0,
            mirror: false,
            overlay_time: false,
            overlay_label: String::new(),
            idle_when_unwatched: true,
            idle_interval: 5,
        }
    }
}

/// The keys a settings document may hold.
const KEYS: &str = "fps, width, height, quality, camera, torch, zoom, rotation, mirror, \
                    overlay {time, label}, idle_when_unwatched, idle_interval";

impl Settings {
    /// Applies the members of `document` (a JSON object) to a copy of these settings.
    pub fn updated(&self, document: &str) -> Result<Settings, String> {
        if document.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("settings document over {MAX_DOCUMENT_BYTES} bytes"));
        }
        let object = json::parse_object(document, 2)?;
        let mut settings = self.clone();
        settings.apply(&object)?;
        Ok(settings)
    }

    /// Applies the members of a parsed object, checking each.
    pub fn apply(&mut self, object: &Object) -> Result<(), String> {
        for (key, value) in object {
            match key.as_str() {
                "fps" => self.fps = whole(key, value, 1, 30)?,
                "width" => self.width = whole(key, value, 160, 1920)?,
                "height" => self.height = whole(key, value, 120, 1920)?,
                "quality" => self.quality = whole(key, value, 10, 100)?,
                "camera" => {
                    self.camera = match value {
                        Value::Text(text) if text == "back" => Camera::Back,
                        Value::Text(text) if text == "front" => Camera::Front,
                        _ => return Err("camera must be \"back\" or \"front\"".into()),
                    }
                }
                "torch" => self.torch = boolean(key, value)?,
                "zoom" => {
                    let Value::Number(millionths) = value else {
                        return Err("zoom must be a number from 1 to 10".into());
                    };
                    let hundredths = millionths / (decimal::ONE / 100);
                    if !(100..=1000).contains(&hundredths) || millionths % (decimal::ONE / 100) != 0
                    {
                        return Err("zoom must be a number from 1 to 10, in hundredths".into());
                    }
                    self.zoom = hundredths as u32;
                }
                "rotation" => {
                    let degrees = whole(key, value, 0, 270)?;
                    if degrees % 90 != 0 {
                        return Err("rotation must be 0, 90, 180 or 270".into());
                    }
                    self.rotation = degrees;
                }
                "mirror" => self.mirror = boolean(key, value)?,
                "overlay" => {
                    let Value::Object(members) = value else {
                        return Err(
                            "overlay must be an object: {\"time\":true,\"label\":\"…\"}".into()
                        );
                    };
                    for (key, value) in members {
                        match key.as_str() {
                            "time" => self.overlay_time = boolean("overlay.time", value)?,
                            "label" => self.overlay_label = label(value)?,
                            other => {
                                return Err(format!(
                                    "unknown key overlay.{other}; overlay takes time and label"
                                ))
                            }
                        }
                    }
                }
                "idle_when_unwatched" => self.idle_when_unwatched = boolean(key, value)?,
                "idle_interval" => self.idle_interval = whole(key, value, 1, 60)?,
                other => return Err(format!("unknown key {other}; settings take {KEYS}")),
            }
        }
        Ok(())
    }

    /// The settings as one JSON object, ASCII only so that it can travel in a header.
    pub fn to_json(&self) -> String {
        let mut json = String::with_capacity(256);
        let _ = write!(
            json,
            "{{\"fps\":{},\"width\":{},\"height\":{},\"quality\":{},\"camera\":\"{}\",\
             \"torch\":{},\"zoom\":{}.{:02},\"rotation\":{},\"mirror\":{},\
             \"overlay\":{{\"time\":{},\"label\":",
            self.fps,
            self.width,
            self.height,
            self.quality,
            self.camera.as_str(),
            self.torch,
            self.zoom / 100,
            self.zoom % 100,
            self.rotation,
            self.mirror,
            self.overlay_time,
        );
        json::push_string(&mut json, &self.overlay_label);
        let _ = write!(
            json,
            "}},\"idle_when_unwatched\":{},\"idle_interval\":{}}}",
            self.idle_when_unwatched, self.idle_interval
        );
        json
    }
}

fn whole(key: &str, value: &Value, low: u32, high: u32) -> Result<u32, String> {
    match value {
        Value::Number(millionths)
            if millionths % decimal::ONE == 0
                && (u64::from(low)..=u64::from(high)).contains(&(millionths / decimal::ONE)) =>
        {
            Ok((millionths / decimal::ONE) as u32)
        }
        _ => Err(format!("{key} must be a whole number from {low} to {high}")),
    }
}

fn boolean(key: &str, value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(value) => Ok(*value),
        _ => Err(format!("{key} must be true or false")),
    }
}

fn label(value: &Value) -> Result<String, String> {
    match value {
        Value::Text(text)
            if text.chars().count() <= MAX_LABEL_CHARS && !text.chars().any(char::is_control) =>
        {
            Ok(text.clone())
        }
        _ => Err(format!(
            "overlay.label must be a string of at most {MAX_LABEL_CHARS} characters on one line"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_document_changes_only_its_keys() {
        let settings = Settings::default()
            .updated(r#"{"fps":5,"width":320,"height":240,"overlay":{"label":"Küche"}}"#)
            .unwrap();
        assert_eq!(
            (settings.fps, settings.width, settings.height),
            (5, 320, 240)
        );
        assert_eq!(settings.overlay_label, "Küche");
        assert_eq!(settings.quality, 70);
        assert!(!settings.overlay_time);
    }

    #[test]
    fn the_json_reads_back_to_the_same_settings() {
        let settings = Settings::default()
            .updated(
                r#"{"fps":30,"quality":100,"camera":"front","torch":true,"zoom":2.5,
                   "rotation":270,"mirror":true,"overlay":{"time":true,"label":"a\"b"},
                   "idle_when_unwatched":false,"idle_interval":60}"#,
            )
            .unwrap();
        let json = settings.to_json();
        assert!(json.contains("\"zoom\":2.50"), "{json}");
        assert_eq!(Settings::default().updated(&json).unwrap(), settings);
        assert!(json.is_ascii());
    }

    #[test]
    fn values_out_of_range_and_unknown_keys_are_refused_with_the_key() {
        for (bad, named) in [
            (r#"{"fps":0}"#, "fps"),
            (r#"{"fps":31}"#, "fps"),
            (r#"{"fps":2.5}"#, "fps"),
            (r#"{"fps":"5"}"#, "fps"),
            (r#"{"width":100}"#, "width"),
            (r#"{"quality":0.7}"#, "quality"),
            (r#"{"camera":"side"}"#, "camera"),
            (r#"{"torch":1}"#, "torch"),
            (r#"{"zoom":0.5}"#, "zoom"),
            (r#"{"zoom":1.005}"#, "zoom"),
            (r#"{"rotation":45}"#, "rotation"),
            (
                r#"{"overlay":{"label":"12345678901234567890123456789012345678901"}}"#,
                "label",
            ),
            (r#"{"overlay":{"label":"a\nb"}}"#, "label"),
            (r#"{"overlay":{"colour":"red"}}"#, "overlay.colour"),
            (r#"{"overlay":true}"#, "overlay"),
            (r#"{"idle_interval":0}"#, "idle_interval"),
            (r#"{"brightness":3}"#, "brightness"),
        ] {
            let error = Settings::default().updated(bad).unwrap_err();
            assert!(error.contains(named), "{bad}: {error}");
        }
        let huge = format!("{{\"overlay\":{{\"label\":\"{}\"}}}}", " ".repeat(5000));
        assert!(Settings::default().updated(&huge).is_err());
    }
}
