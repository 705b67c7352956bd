//! What happens to a device that someone may want to act on: it came online, went offline,
//! its battery ran low, or it stopped charging.
//!
//! The relay layer only says that an event happened, to a [`Listener`]; what is done with it
//! (a log line, the `--on-event` command) is decided above it (see `crate::on_event`).

use std::fmt;

use crate::relay::device_id::DeviceId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Online,
    Offline,
    BatteryLow,
    NotCharging,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Online => "online",
            Kind::Offline => "offline",
            Kind::BatteryLow => "battery_low",
            Kind::NotCharging => "not_charging",
        }
    }
}

/// One event, with the device's battery as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub device: DeviceId,
    pub battery: Option<u8>,
    pub charging: Option<bool>,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.device, self.kind.as_str())?;
        if let Some(battery) = self.battery {
            write!(f, " (battery {battery} %")?;
            match self.charging {
                Some(true) => write!(f, ", charging)"),
                Some(false) => write!(f, ", not charging)"),
                None => write!(f, ")"),
            }?;
        }
        Ok(())
    }
}

/// Hears every event. It must not block: the relay calls it from request threads.
pub trait Listener: Send + Sync + fmt::Debug {
    fn hear(&self, event: Event);
}
