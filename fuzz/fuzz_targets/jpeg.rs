//! Fuzzes the JPEG checks run on every pushed body, and the part layout that stores it.
//!
//! A pushed body is whatever the client sent. `check_complete` decides whether it is stored,
//! `dimensions` walks its marker segments by the lengths the body itself declares, so a short
//! or lying segment must give `None`, never an out-of-bounds panic. `Part::from_jpeg` copies an
//! accepted body into the buffer every viewer is sent, which must hold the body byte for byte.
//! Checked:
//! - `check_complete` accepts exactly the bodies of at least 4 bytes that start with FF D8 and
//!   end with FF D9;
//! - `dimensions` never panics, finds nothing without a leading FF D8, and depends only on the
//!   bytes up to the frame header: appending bytes to a body with a size does not change it.
//!   Zero width or height is not ruled out: the code makes no such promise, and a frame header
//!   may legally declare height 0 (ITU T.81 B.2.2, height given later by a DNL marker);
//! - the JPEG inside a part is the body it was made from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use streampump::relay::jpeg::{check_complete, dimensions, EOI, SOI};
use streampump::relay::mjpeg::Part;

fuzz_target!(|body: &[u8]| {
    let framed = body.len() >= 4 && body.starts_with(&SOI) && body.ends_with(&EOI);
    assert_eq!(check_complete(body).is_ok(), framed);

    if let Some(size) = dimensions(body) {
        assert!(body.starts_with(&SOI));
        let mut longer = body.to_vec();
        longer.extend_from_slice(&[0xFF, 0xD9, 0x00, 0xFF]);
        assert_eq!(dimensions(&longer), Some(size));
    }

    let part = Part::from_jpeg(body);
    assert_eq!(part.jpeg(), body);
    let (shared, range) = part.shared_jpeg();
    assert_eq!(shared.get(range), Some(body));
});
