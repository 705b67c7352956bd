//! Fuzzes `jpeg::walk`, the check that a pushed body is whole JPEGs, against the stream
//! splitter, which finds frames in a streaming push by the same structure.
//!
//! The two are written apart (one walks a slice, the other is a byte-at-a-time state
//! machine), so agreeing on what a JPEG is says more than either's unit tests. Checked, for
//! every body the walk accepts:
//! - fed to the splitter whole, it comes out as frames only (nothing broken, nothing
//!   oversized), which put back together are the body: the splitter ends each image exactly
//!   where the walk did, and finds nothing between them;
//! - each of those frames walks on its own, and the first gives the same picture size.
//!
//! The input is used as it is and also behind a valid frame header, scan header and some
//! image data (the first byte picks which), so that the fuzzer reaches the scan and what
//! follows it without first having to find a whole header by chance.

#![no_main]

use libfuzzer_sys::fuzz_target;
use streampump::relay::jpeg::{walk, EOI, SOI};
use streampump::relay::splitter::{Found, JpegSplitter};

/// SOI, SOF0 of 32×24 with one component, SOS for it.
const HEADERS: [u8; 25] = [
    0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x18, 0x00, 0x20, 0x01, 0x01, 0x11, 0x00,
    0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00,
];

fn check(body: &[u8]) {
    let Ok(size) = walk(body) else {
        return;
    };
    let mut splitter = JpegSplitter::new(body.len());
    let mut found = Vec::new();
    splitter.feed(body, |f| found.push(f));
    let mut frames = Vec::new();
    for piece in found {
        match piece {
            Found::Frame(frame) => frames.push(frame),
            other => panic!("the splitter found {other:?} in an accepted body {body:02x?}"),
        }
    }
    assert_eq!(frames.concat(), body, "frames put back together");
    assert!(!splitter.in_frame());
    for (index, frame) in frames.iter().enumerate() {
        let walked = walk(frame);
        assert!(walked.is_ok(), "frame {index} of {body:02x?}: {walked:?}");
        if index == 0 {
            assert_eq!(walked, Ok(size));
        }
    }
    assert!(body.starts_with(&SOI) && body.ends_with(&EOI));
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    if first % 2 == 0 {
        check(rest);
    } else {
        let mut body = HEADERS.to_vec();
        body.push(0x5A);
        body.extend_from_slice(rest);
        if !body.ends_with(&EOI) {
            body.extend_from_slice(&EOI);
        }
        check(&body);
    }
});
