//! The relay's state directory: what must survive a restart and is not configuration.
//!
//! The relay keeps almost nothing on disk: frames live in memory only, and settings come from
//! flags. What cannot be given on the command line lives here: the keys of the relay's own
//! certificate authority (made once, at first start) and the settings made for each phone from
//! the dashboard. Routers keep it on flash, so files are written only when their content
//! changes, each in one atomic step (a temporary file, `fsync`, `rename`): a power cut leaves
//! either the old file or the new one, never half of one.
//!
//! Where it is, when `--state-dir` is not given: `$STATE_DIRECTORY` (set by systemd for a unit
//! with `StateDirectory=`), else `$XDG_STATE_HOME/streampump`, else
//! `$HOME/.local/state/streampump`, else `streampump-state` in the working directory. The
//! OpenWrt service passes `/etc/streampump`, which survives firmware upgrades with the rest of
//! `/etc`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Directory mode: the relay's user only, as it holds private keys.
const DIRECTORY_MODE: u32 = 0o700;

/// Who may read a file written to the state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// Private keys and anything secret: the relay's user only (0600).
    Owner,
    /// Certificates and settings that carry no secret (0644).
    Everyone,
}

impl Readers {
    fn mode(self) -> u32 {
        match self {
            Readers::Owner => 0o600,
            Readers::Everyone => 0o644,
        }
    }
}

/// The state directory. It is created on first use, not at start, so that a relay which
/// never needs it (`--tls-listen off`, no phone settings) leaves nothing on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    path: PathBuf,
}

impl fmt::Display for StateDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> StateDir {
        StateDir { path: path.into() }
    }

    /// The default location, from the environment lookup `env` (injected for tests).
    pub fn default_from(env: impl Fn(&str) -> Option<String>) -> StateDir {
        let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        // systemd may list several directories separated by colons; the first is ours.
        if let Some(directories) = set("STATE_DIRECTORY") {
            let first = directories.split(':').next().unwrap_or_default();
            if !first.is_empty() {
                return StateDir::new(first);
            }
        }
        if let Some(state_home) = set("XDG_STATE_HOME") {
            return StateDir::new(Path::new(&state_home).join("streampump"));
        }
        if let Some(home) = set("HOME") {
            return StateDir::new(Path::new(&home).join(".local/state/streampump"));
        }
        StateDir::new("streampump-state")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates the directory (and its parents) if it is missing, readable by the relay's user
    /// only. An existing directory keeps the mode its owner gave it.
    pub fn ensure(&self) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIRECTORY_MODE)
            .create(&self.path)
            .map_err(|error| self.error("cannot create", error))
    }

    /// The content of `name`, or `None` if there is no such file yet.
    pub fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.file(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(self.error(&format!("cannot read {name} in"), error)),
        }
    }

    /// Replaces `name` with `bytes` in one atomic step, unless it already holds exactly them
    /// (flash wears with every write). Returns whether the file was written.
    pub fn write_if_changed(&self, name: &str, bytes: &[u8], readers: Readers) -> io::Result<bool> {
        if self.read(name)?.as_deref() == Some(bytes) {
            return Ok(false);
        }
        self.ensure()?;
        let target = self.file(name);
        // One writer per name at a time is the callers' rule; the process id keeps two relays
        // sharing a directory by mistake from writing into each other's temporary file.
        let temporary = self.file(&format!(".{name}.{}.tmp", std::process::id()));
        let written = write_synced(&temporary, bytes, readers.mode())
            .and_then(|()| fs::rename(&temporary, &target))
            .and_then(|()| File::open(&self.path)?.sync_all());
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written
            .map(|()| true)
            .map_err(|error| self.error(&format!("cannot write {name} in"), error))
    }

    /// An error that names the directory, so the log line says where to look.
    fn error(&self, what: &str, error: io::Error) -> io::Error {
        io::Error::new(
            error.kind(),
            format!(
                "{what} the state directory {}: {error}",
                self.path.display()
            ),
        )
    }
}

fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> StateDir {
        let path = std::env::temp_dir().join(format!(
            "streampump-state-test-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        StateDir::new(path.join("nested"))
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_default_follows_systemd_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            }
        };
        static ALL: [(&str, &str); 3] = [
            ("STATE_DIRECTORY", "/var/lib/streampump:/var/lib/other"),
            ("XDG_STATE_HOME", "/home/u/.state"),
            ("HOME", "/home/u"),
        ];
        let all = &ALL;
        assert_eq!(
            StateDir::default_from(env(&all[..])).path(),
            Path::new("/var/lib/streampump")
        );
        assert_eq!(
            StateDir::default_from(env(&all[1..])).path(),
            Path::new("/home/u/.state/streampump")
        );
        assert_eq!(
            StateDir::default_from(env(&all[2..])).path(),
            Path::new("/home/u/.local/state/streampump")
        );
        assert_eq!(
            StateDir::default_from(env(&[("HOME", " ")])).path(),
            Path::new("streampump-state")
        );
    }

    #[test]
    fn a_file_is_written_once_privately_and_read_back() {
        let state = scratch("write");
        assert_eq!(state.read("key.pem").unwrap(), None);
        assert!(state
            .write_if_changed("key.pem", b"secret", Readers::Owner)
            .unwrap());
        assert_eq!(
            state.read("key.pem").unwrap().as_deref(),
            Some(&b"secret"[..])
        );
        assert_eq!(mode_of(state.path()), 0o700);
        assert_eq!(mode_of(&state.file("key.pem")), 0o600);
        // The same content again is not written: the file's modification time stays.
        let before = fs::metadata(state.file("key.pem"))
            .unwrap()
            .modified()
            .unwrap();
        assert!(!state
            .write_if_changed("key.pem", b"secret", Readers::Owner)
            .unwrap());
        let after = fs::metadata(state.file("key.pem"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
        assert!(state
            .write_if_changed("settings.json", b"{}", Readers::Everyone)
            .unwrap());
        assert_eq!(mode_of(&state.file("settings.json")), 0o644);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(state.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let _ = fs::remove_dir_all(state.path().parent().unwrap());
    }

    #[test]
    fn an_error_names_the_directory() {
        let state = StateDir::new("/proc/streampump-cannot-exist");
        let error = state
            .write_if_changed("x", b"1", Readers::Everyone)
            .unwrap_err();
        assert!(
            error.to_string().contains("/proc/streampump-cannot-exist"),
            "{error}"
        );
    }
}
