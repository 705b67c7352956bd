//! The reasons a load run cannot start or complete, each naming what it was about.
//!
//! Failures during a run (a refused push, a viewer timing out) are not errors of the run:
//! they are counted and reported. Only what makes the measurement meaningless ends up here.

use std::fmt;
use std::io;
use std::time::Duration;

#[derive(Debug)]
pub enum LoadError {
    /// A flag with an unusable value.
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// The server did not accept a connection.
    Unreachable { url: String, error: io::Error },
    /// Some devices never had a push accepted, so their viewers would have nothing to measure
    /// (the reference server answers 404 to viewers of a device it has no frame for).
    NoFirstPush {
        timeout: Duration,
        /// One line per device still waiting: its push URL and the last failure.
        waiting: Vec<String>,
    },
    /// `--pid` names no readable process.
    NoProcess { pid: u32, error: io::Error },
    /// The operating system refused a thread.
    Thread { name: String, error: io::Error },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Invalid {
                flag,
                value,
                reason,
            } => write!(f, "invalid --{flag} {value:?}: {reason}"),
            LoadError::Unreachable { url, error } => {
                write!(
                    f,
                    "cannot connect to {url}: {error}; is the server running there?"
                )
            }
            LoadError::NoFirstPush { timeout, waiting } => {
                write!(
                    f,
                    "{} device(s) had no push accepted within {} s:",
                    waiting.len(),
                    timeout.as_secs()
                )?;
                for line in waiting {
                    write!(f, "\n  {line}")?;
                }
                Ok(())
            }
            LoadError::NoProcess { pid, error } => {
                write!(f, "cannot read /proc/{pid} (--pid {pid}): {error}")
            }
            LoadError::Thread { name, error } => write!(f, "cannot start thread {name}: {error}"),
        }
    }
}

impl std::error::Error for LoadError {}
