//! `--on-event COMMAND`: runs a command when a device comes online, goes offline, its battery
//! runs low or it stops charging, as mediamtx's `runOnReady` does, so that Home Assistant (a
//! webhook), a phone notification or a script can act on it.
//!
//! Commands run one at a time on a thread of their own, in the order the events happened: the
//! relay never waits for one (an event that finds [`QUEUE`] others waiting is dropped and
//! logged), and two commands for one device never overlap. Each runs as `/bin/sh -c COMMAND`
//! in a process group of its own, with the event in its environment; one that is still running
//! after `--event-timeout` is killed with its whole group (a hanging `curl` included) and
//! reaped, so nothing is left behind.

use std::io;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::relay::events::{Event, Listener};
use crate::sys;
use crate::text::decimal::Seconds;
use crate::text::quoted::Quoted;

/// Events waiting for their command at most; more are dropped (and logged).
pub const QUEUE: usize = 32;
/// The thread only waits for children: a small stack is plenty.
const STACK_BYTES: usize = 64 * 1024;
/// How often a running command is checked: std has no wait with a timeout, and a command
/// runs a few times a day, so a short sleep between checks costs nothing.
const CHECK_PERIOD: Duration = Duration::from_millis(20);

/// Hands events to the command's thread.
#[derive(Debug)]
pub struct EventCommand {
    queue: SyncSender<Event>,
}

impl Listener for EventCommand {
    fn hear(&self, event: Event) {
        match self.queue.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => {
                log::warn!("{event}: --on-event not run, {QUEUE} events are already waiting");
            }
            Err(TrySendError::Disconnected(event)) => {
                log::warn!("{event}: --on-event not run, its thread has ended");
            }
        }
    }
}

/// Starts the thread that runs `command` for each event.
pub fn start(command: String, timeout: Duration) -> io::Result<Arc<EventCommand>> {
    let (queue, events) = mpsc::sync_channel(QUEUE);
    thread::Builder::new()
        .name("sp-on-event".into())
        .stack_size(STACK_BYTES)
        .spawn(move || run_all(&command, timeout, events))?;
    Ok(Arc::new(EventCommand { queue }))
}

fn run_all(command: &str, timeout: Duration, events: Receiver<Event>) {
    for event in events {
        if let Err(error) = run(command, timeout, &event) {
            log::warn!("{event}: --on-event {}: {error}", Quoted(command));
        }
    }
}

fn run(command: &str, timeout: Duration, event: &Event) -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    let optional = |value: Option<String>| value.unwrap_or_default();
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("STREAMPUMP_EVENT", event.kind.as_str())
        .env("STREAMPUMP_DEVICE", event.device.as_str())
        .env(
            "STREAMPUMP_BATTERY",
            optional(event.battery.map(|b| b.to_string())),
        )
        .env(
            "STREAMPUMP_CHARGING",
            optional(event.charging.map(|c| u8::from(c).to_string())),
        )
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                log::debug!("{event}: --on-event done");
            } else {
                log::warn!("{event}: --on-event {}: {status}", Quoted(command));
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            if let Err(error) = sys::kill_process_group(child.id()) {
                log::debug!("{event}: cannot kill the command's group: {error}");
                let _ = child.kill();
            }
            child.wait()?;
            log::warn!(
                "{event}: --on-event {} killed after {} (--event-timeout)",
                Quoted(command),
                Seconds(timeout)
            );
            return Ok(());
        }
        thread::sleep(CHECK_PERIOD);
    }
}
