//! Every phone's settings, kept in `devices.json` in the state directory so that they outlive
//! a restart of the relay.
//!
//! Settings belong to a device id, not to a connected device: they can be made before the
//! phone first pushes, and stay when the device is forgotten for being idle. Each device's
//! settings carry a version that grows with every change; a push answer names it, and a page
//! that has applied an older one gets the settings with that same answer (see `web::app`).
//! Version 0 means "never set": the page then keeps what was chosen on the phone.
//!
//! The file is one JSON object, `{"cam_1":{"version":3,"settings":{…}},…}`, rewritten whole
//! and atomically, and only when something changed (routers keep it on flash). Writers take
//! turns, so the file always holds the newest state; pushes read versions under a separate,
//! briefly held lock and never wait for the disk.

use std::fmt::Write as _;
use std::time::Duration;

use parking_lot::Mutex;

use crate::relay::device_id::DeviceId;
use crate::relay::settings::Settings;
use crate::state::{Readers, StateDir};
use crate::text::decimal::{self, Seconds};
use crate::text::json::{self, Value};

pub const FILE: &str = "devices.json";

type Entries = Vec<(DeviceId, Versioned)>;

fn find<'a>(entries: &'a Entries, id: &DeviceId) -> Option<&'a Versioned> {
    entries
        .binary_search_by(|(known, _)| known.cmp(id))
        .ok()
        .map(|index| &entries[index].1)
}

/// One device's settings and how many times they were changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub version: u32,
    pub settings: Settings,
}

/// Why a change was not taken.
#[derive(Debug)]
pub enum Rejected {
    /// The document was not valid settings: the one-line reason.
    Invalid(String),
    /// As many devices as allowed already have settings.
    Full(usize),
    /// Taken in memory, but the file could not be written.
    NotSaved(Versioned, String),
}

#[derive(Debug)]
pub struct SettingsStore {
    directory: Option<StateDir>,
    limit: usize,
    /// `--offline-after`: a phone idling longer than this between frames would show offline.
    offline_after: Duration,
    /// Sorted by id. A few dozen phones at most: a vector is as fast as a map here and
    /// costs less binary.
    entries: Mutex<Entries>,
    /// Held for a whole change, file write included, so changes reach the file in order.
    writer: Mutex<()>,
}

impl SettingsStore {
    /// Loads the settings from `directory` (`None`: kept in memory only, for tests). A file
    /// that cannot be read is logged and ignored; it is replaced at the next change.
    pub fn open(
        directory: Option<StateDir>,
        limit: usize,
        offline_after: Duration,
    ) -> SettingsStore {
        let mut entries = Vec::new();
        if let Some(directory) = &directory {
            match directory.read(FILE) {
                Ok(None) => {}
                Ok(Some(bytes)) => match parse_file(&bytes) {
                    Ok(loaded) => {
                        log::info!(
                            "settings of {} devices loaded from {directory}/{FILE}",
                            loaded.len()
                        );
                        entries = loaded;
                    }
                    Err(error) => log::warn!(
                        "ignoring {directory}/{FILE}: {error}; it is replaced at the next change"
                    ),
                },
                Err(error) => log::warn!("{error}; phone settings start empty"),
            }
        }
        SettingsStore {
            directory,
            limit,
            offline_after,
            entries: Mutex::new(entries),
            writer: Mutex::new(()),
        }
    }

    /// The device's settings, if any were ever made.
    pub fn get(&self, id: &DeviceId) -> Option<Versioned> {
        find(&self.entries.lock(), id).cloned()
    }

    /// The version of the device's settings; 0 if none were made.
    pub fn version(&self, id: &DeviceId) -> u32 {
        find(&self.entries.lock(), id).map_or(0, |entry| entry.version)
    }

    /// Applies a JSON document of settings to a device, and saves them if they changed.
    pub fn change(&self, id: &DeviceId, document: &str) -> Result<Versioned, Rejected> {
        let _turn = self.writer.lock();
        let mut entries = self.entries.lock();
        let current = find(&entries, id).cloned();
        if current.is_none() && entries.len() >= self.limit {
            return Err(Rejected::Full(self.limit));
        }
        let before = current.clone().unwrap_or(Versioned {
            version: 0,
            settings: Settings::default(),
        });
        let settings = before
            .settings
            .updated(document)
            .map_err(Rejected::Invalid)?;
        if Duration::from_secs(u64::from(settings.idle_interval)) >= self.offline_after {
            return Err(Rejected::Invalid(format!(
                "idle_interval must be below --offline-after ({}), or the phone shows offline \
                 while it idles",
                Seconds(self.offline_after)
            )));
        }
        if current.as_ref().is_some_and(|c| c.settings == settings) {
            return Ok(before);
        }
        let changed = Versioned {
            version: before.version.wrapping_add(1).max(1),
            settings,
        };
        match entries.binary_search_by(|(known, _)| known.cmp(id)) {
            Ok(index) => entries[index].1 = changed.clone(),
            Err(index) => entries.insert(index, (id.clone(), changed.clone())),
        }
        let file = render_file(&entries);
        drop(entries);
        log::info!("{id}: settings changed (version {})", changed.version);
        if let Some(directory) = &self.directory {
            if let Err(error) = directory.write_if_changed(FILE, file.as_bytes(), Readers::Everyone)
            {
                log::error!("{id}: settings not saved: {error}");
                return Err(Rejected::NotSaved(changed, error.to_string()));
            }
        }
        Ok(changed)
    }

    /// Drops the device's settings (when it is forgotten), so that ids given up do not hold
    /// places under the limit for ever. Returns whether it had any.
    pub fn forget(&self, id: &DeviceId) -> bool {
        let _turn = self.writer.lock();
        let mut entries = self.entries.lock();
        let Ok(index) = entries.binary_search_by(|(known, _)| known.cmp(id)) else {
            return false;
        };
        entries.remove(index);
        let file = render_file(&entries);
        drop(entries);
        log::info!("{id}: settings forgotten");
        if let Some(directory) = &self.directory {
            if let Err(error) = directory.write_if_changed(FILE, file.as_bytes(), Readers::Everyone)
            {
                log::error!("{id}: settings file not updated: {error}");
            }
        }
        true
    }
}

fn render_file(entries: &Entries) -> String {
    let mut file = String::from("{");
    for (index, (id, entry)) in entries.iter().enumerate() {
        if index > 0 {
            file.push(',');
        }
        let _ = write!(
            file,
            "\n\"{}\":{{\"version\":{},\"settings\":{}}}",
            id.as_str(),
            entry.version,
            entry.settings.to_json()
        );
    }
    file.push_str("\n}\n");
    file
}

fn parse_file(bytes: &[u8]) -> Result<Entries, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let mut entries: Entries = Vec::new();
    for (raw_id, value) in json::parse_object(text, 4)? {
        let id = DeviceId::parse(&raw_id).map_err(|error| error.to_string())?;
        let Value::Object(members) = value else {
            return Err(format!("{id}: not an object"));
        };
        let mut version = None;
        let mut settings = None;
        for (key, value) in members {
            match (key.as_str(), value) {
                ("version", Value::Number(n)) if n % decimal::ONE == 0 => {
                    version = u32::try_from(n / decimal::ONE).ok();
                }
                ("settings", Value::Object(object)) => {
                    // Through the same checks as a client's document: a hand-edited file
                    // cannot give a phone a value the API would refuse.
                    let mut checked = Settings::default();
                    checked.apply(&object)?;
                    settings = Some(checked);
                }
                (other, _) => return Err(format!("{id}: unexpected {other}")),
            }
        }
        match (version, settings) {
            (Some(version), Some(settings)) => {
                match entries.binary_search_by(|(known, _)| known.cmp(&id)) {
                    Ok(_) => return Err(format!("{id}: given twice")),
                    Err(index) => entries.insert(index, (id, Versioned { version, settings })),
                }
            }
            _ => return Err(format!("{id}: needs a version and settings")),
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> DeviceId {
        DeviceId::parse(text).unwrap()
    }

    #[test]
    fn versions_grow_only_with_real_changes_and_the_file_reads_back() {
        let store = SettingsStore::open(None, 2, Duration::from_secs(10));
        assert_eq!(store.version(&id("a")), 0);
        assert_eq!(store.change(&id("a"), r#"{"fps":5}"#).unwrap().version, 1);
        assert_eq!(store.change(&id("a"), r#"{"fps":5}"#).unwrap().version, 1);
        let second = store
            .change(&id("a"), r#"{"overlay":{"label":"Tür"},"zoom":1.5}"#)
            .unwrap();
        assert_eq!(second.version, 2);
        store.change(&id("b"), "{}").unwrap();
        assert!(matches!(
            store.change(&id("a"), r#"{"idle_interval":10}"#),
            Err(Rejected::Invalid(_))
        ));
        assert!(matches!(
            store.change(&id("c"), "{}"),
            Err(Rejected::Full(2))
        ));
        let file = render_file(&store.entries.lock());
        let back = parse_file(file.as_bytes()).unwrap();
        assert_eq!(find(&back, &id("a")), Some(&second));
        assert_eq!(back.len(), 2);
        assert!(parse_file(br#"{"a":{"version":1,"settings":{"fps":99}}}"#).is_err());
        assert!(parse_file(b"{\"a\":{\"version\":1}}").is_err());
    }
}
