//! Files built into the binary, so the relay is one file to copy onto a router.

use std::sync::OnceLock;

use crate::relay::mjpeg::Part;

/// Shown to viewers of a device that has no frame yet or whose phone went away: a 480×270
/// JPEG of a few kilobytes saying "NO SIGNAL". Keeping the stream alive with it (instead of a
/// 404) spares go2rtc its reconnect back-off of up to a minute.
pub const NO_SIGNAL_JPEG: &[u8] = include_bytes!("../../assets/no_signal.jpg");

/// The placeholder laid out as a stream part, made once.
pub fn no_signal_part() -> &'static Part {
    static PART: OnceLock<Part> = OnceLock::new();
    PART.get_or_init(|| Part::from_jpeg(NO_SIGNAL_JPEG, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::jpeg;

    #[test]
    fn the_placeholder_is_a_complete_jpeg_with_a_size() {
        assert_eq!(
            jpeg::walk(NO_SIGNAL_JPEG),
            Ok(jpeg::Dimensions {
                width: 480,
                height: 270
            })
        );
        assert!(NO_SIGNAL_JPEG.len() < 16 * 1024);
    }
}
