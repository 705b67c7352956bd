//! `--on-event COMMAND`: runs a command when a device comes online, goes offline, its battery
//! runs low or it stops charging, as mediamtx's `runOnReady` does, so that Home Assistant (a
//! webhook), a phone notification or a script can act on it.
//!
//! Commands run one at a time on a thread of their own, in the order the events happened: the
//! relay never waits for one (an event that finds [`QUEUE`] others waiting is dropped and
//! logged), and two commands for one device never overlap. The queue is a deque under a lock
//! with a condition variable, as everywhere else in the relay (`std::sync::mpsc` cost 5 KB
//! more on mipsel). Each runs as `/bin/sh -c COMMAND` in a process group of its own (see
//! `sys::spawn_shell`), with the event in its environment; one that is still running after
//! `--event-timeout` is killed with its whole group (a hanging `curl` included) and reaped,
//! so nothing is left behind.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::relay::events::{Event, Listener};
use crate::sys::{self, Exit};
use crate::text::decimal::Seconds;

/// Events waiting for their command at most; more are dropped (and logged).
pub const QUEUE: usize = 32;
/// The thread only waits for children: a small stack is plenty.
const STACK_BYTES: usize = 64 * 1024;
/// How often a running command is checked: there is no wait with a timeout for a child, and
/// a command runs a few times a day, so a short sleep between checks costs nothing.
const CHECK_PERIOD: Duration = Duration::from_millis(20);

/// The events waiting for the command's thread.
#[derive(Debug, Default)]
pub struct EventCommand {
    waiting: Mutex<Queue>,
    arrived: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Event>,
    /// Events dropped since the queue was last empty: logged once when dropping starts and
    /// counted when it ends, not a line per event of a flood.
    dropped: usize,
}

impl Listener for EventCommand {
    fn hear(&self, event: Event) {
        let mut waiting = self.waiting.lock();
        if waiting.events.len() >= QUEUE {
            waiting.dropped += 1;
            let first = waiting.dropped == 1;
            drop(waiting);
            if first {
                log::warn!(
                    "{event}: --on-event not run, {QUEUE} events are already waiting; more are \
                     dropped until the queue is empty"
                );
            }
            return;
        }
        waiting.events.push_back(event);
        drop(waiting);
        self.arrived.notify_one();
    }
}

impl EventCommand {
    fn next(&self) -> Event {
        let mut waiting = self.waiting.lock();
        loop {
            if let Some(event) = waiting.events.pop_front() {
                if waiting.events.is_empty() && waiting.dropped > 0 {
                    log::warn!(
                        "--on-event: {} events were dropped while the queue was full",
                        waiting.dropped
                    );
                    waiting.dropped = 0;
                }
                return event;
            }
            self.arrived.wait(&mut waiting);
        }
    }
}

/// Starts the thread that runs `command` for each event.
pub fn start(command: String, timeout: Duration) -> io::Result<Arc<EventCommand>> {
    let events = Arc::new(EventCommand::default());
    let queue = Arc::clone(&events);
    thread::Builder::new()
        .name("sp-on-event".into())
        .stack_size(STACK_BYTES)
        .spawn(move || loop {
            let event = queue.next();
            if let Err(error) = run(&command, timeout, &event) {
                log::warn!("{event}: --on-event command: {error}");
            }
        })?;
    Ok(events)
}

/// Which of the relay's environment variables the command inherits: not the relay's own
/// settings (`STREAMPUMP_*`), which hold its secrets when a service passes them that way (the
/// OpenWrt init script does). Log lines name the command only as "command" for the same
/// reason: a webhook's address is a credential.
fn inherited(name: &[u8]) -> bool {
    !name.starts_with(b"STREAMPUMP_")
}

fn run(command: &str, timeout: Duration, event: &Event) -> io::Result<()> {
    let optional = |value: Option<String>| value.unwrap_or_default();
    let environment = [
        ("STREAMPUMP_EVENT", event.kind.as_str().to_string()),
        ("STREAMPUMP_DEVICE", event.device.as_str().to_string()),
        (
            "STREAMPUMP_BATTERY",
            optional(event.battery.map(|b| b.to_string())),
        ),
        (
            "STREAMPUMP_CHARGING",
            optional(event.charging.map(|c| u8::from(c).to_string())),
        ),
    ];
    let child = sys::spawn_shell(command, &environment, inherited)?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait()? {
            Some(Exit::Code(0)) => {
                log::debug!("{event}: --on-event done");
                return Ok(());
            }
            Some(Exit::Code(code)) => {
                log::warn!("{event}: --on-event command exited with {code}");
                return Ok(());
            }
            Some(Exit::Signal(signal)) => {
                log::warn!("{event}: --on-event command ended by signal {signal}");
                return Ok(());
            }
            None => {}
        }
        if Instant::now() >= deadline {
            if let Err(error) = child.kill_group() {
                log::debug!("{event}: cannot kill the command's group: {error}");
            }
            child.wait()?;
            log::warn!(
                "{event}: --on-event command killed after {} (--event-timeout)",
                Seconds(timeout)
            );
            return Ok(());
        }
        thread::sleep(CHECK_PERIOD);
    }
}
