//! One viewer's MJPEG stream, from the response head until the viewer goes away.
//!
//! Runs on the viewer's connection thread and writes straight to its connection, raw and never
//! chunked. The viewer gets the current frame at once, then every new frame as it is
//! published; with nothing new for a second it gets the latest frame again, or the no-signal
//! picture when the phone is gone. The only way to learn that a viewer left is a failed write:
//! the idle repeat makes one happen within about a second of a viewer closing its connection,
//! and the socket's write timeout (`--write-timeout`) ends a viewer that keeps the connection
//! but stops reading.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::relay::assets;
use crate::relay::device::{Next, Viewer};
use crate::relay::device_id::DeviceId;
use crate::relay::mjpeg::PartWriter;

/// With no new frame for this long, send something anyway (see the module docs).
pub const IDLE_RESEND: Duration = Duration::from_secs(1);

/// Per-viewer choices carried in the stream URL.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ViewerOptions {
    /// From `?fps=N`: at least this long between two frames to this viewer.
    pub min_interval: Option<Duration>,
    /// From `?advance_headers=1`: send the next part's headers right after each frame, so
    /// Chromium paints a frame as soon as it arrives (crbug 527446). Breaks go2rtc, which needs
    /// Content-Length in every part, so it is never the default.
    pub advance_headers: bool,
}

/// Writes `head` (from `mjpeg::response_head`) and then frames until the viewer leaves or the
/// device is deleted.
pub fn run(mut viewer: Viewer, out: impl Write, head: &str, options: ViewerOptions) {
    let result = PartWriter::start(out, head, options.advance_headers).and_then(|mut parts| {
        let mut next = viewer.first();
        loop {
            let started = Instant::now();
            match &next {
                Next::Fresh(frame) | Next::Repeat(frame) => {
                    parts.write_part(&frame.part)?;
                    viewer.sent();
                }
                Next::NoSignal => parts.write_part(assets::no_signal_part())?,
                Next::Gone => return Ok(()),
            }
            let not_before = options.min_interval.map(|interval| started + interval);
            next = viewer.next(IDLE_RESEND, not_before);
        }
    });
    report_end(viewer.device_id(), result);
}

/// A viewer hanging up is the normal way for a stream to end; only other errors are worth
/// more than a debug line.
fn report_end(device: &DeviceId, result: io::Result<()>) {
    let Err(error) = result else { return };
    match error.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => log::debug!("{device}: viewer hung up: {error}"),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            log::info!("{device}: dropped a viewer that stopped reading (write timed out)")
        }
        _ => log::info!("{device}: viewer dropped: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::relay::device::{Peer, PushMode};
    use crate::relay::mjpeg::{self, Part};
    use crate::relay::registry::Registry;

    /// A viewer's connection in memory that hangs up after `parts` writes.
    struct HangsUpAfter {
        parts: usize,
        wire: Vec<u8>,
    }

    impl Write for HangsUpAfter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if self.parts == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.parts -= 1;
            self.wire.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_viewer_gets_the_head_then_the_latest_frame_and_leaves_when_it_hangs_up() {
        let registry = Registry::new(&Config::default());
        let id = DeviceId::parse("cam").unwrap();
        let part = Part::from_jpeg(b"JPEG", None);
        registry
            .publish(&id, part, None, (None, PushMode::Single))
            .unwrap();
        let viewer = registry.watch(&id, Peer::default()).unwrap();
        let mut out = HangsUpAfter {
            parts: 2,
            wire: Vec::new(),
        };
        let head = mjpeg::response_head(false, false, "");
        run(viewer, &mut out, &head, ViewerOptions::default());
        let text = String::from_utf8(out.wire).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.ends_with(
            "--frame_boundary\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\n\r\nJPEG\r\n\
             --frame_boundary\r\n"
        ));
        // The viewer was counted while it watched and let go when it left.
        assert_eq!(registry.statuses()[0].viewers, 0);
        assert_eq!(registry.statuses()[0].frames_sent, 1);
    }
}
