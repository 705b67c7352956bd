//! Fuzzes the JPEG walk run on every pushed body at the level of its contract, and the part
//! layout that stores an accepted body.
//!
//! A pushed body is whatever the client sent. `walk` decides whether it is stored and reads
//! its picture size, following lengths the body itself declares, so a short or lying segment
//! must give an error, never an out-of-bounds panic. `Part::from_jpeg` copies an accepted body
//! into the buffer every viewer is sent, which must hold the body byte for byte. Checked:
//! - an accepted body has at least 4 bytes, starts with FF D8 and ends with FF D9, and its
//!   picture size is within 1..=`MAX_SIDE` on both sides; `dimensions` agrees with `walk`;
//! - cutting the last byte off an accepted body makes it refused (it no longer ends in EOI);
//! - the JPEG inside a part is the body it was made from, and the part is as large as
//!   `Part::size_for` says, which is what a push is charged.
//! The finer structure is checked against the stream splitter by the `jpeg_walk` target.

#![no_main]

use libfuzzer_sys::fuzz_target;
use streampump::relay::jpeg::{dimensions, walk, EOI, MAX_SIDE, SOI};
use streampump::relay::mjpeg::Part;

fuzz_target!(|body: &[u8]| {
    let walked = walk(body);
    assert_eq!(dimensions(body), walked.ok());
    if let Ok(size) = walked {
        assert!(body.len() >= 4 && body.starts_with(&SOI) && body.ends_with(&EOI));
        assert!((1..=MAX_SIDE).contains(&size.width), "{size:?}");
        assert!((1..=MAX_SIDE).contains(&size.height), "{size:?}");
        assert!(walk(&body[..body.len() - 1]).is_err());
    }

    let part = Part::from_jpeg(body, None);
    assert_eq!(part.jpeg(), body);
    assert_eq!(part.buffer().get(part.jpeg_range()), Some(body));
    assert_eq!(part.buffer().len(), Part::size_for(body.len()));
});
