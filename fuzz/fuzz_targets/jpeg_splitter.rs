//! Fuzzes `JpegSplitter`, which reads every streaming push: bytes straight from the network.
//!
//! Checked: no panic; every frame it hands out starts with SOI, ends with EOI and fits the
//! cap; and the result does not depend on how the stream is cut into reads (the first byte of
//! the input picks a read size, and the same input fed whole must give the same frames).

#![no_main]

use libfuzzer_sys::fuzz_target;
use streampump::relay::splitter::{Found, JpegSplitter};

const MAX_FRAME_BYTES: usize = 4096;

fn split(stream: &[u8], read_size: usize) -> Vec<Found> {
    let mut splitter = JpegSplitter::new(MAX_FRAME_BYTES);
    let mut found = Vec::new();
    for piece in stream.chunks(read_size) {
        splitter.feed(piece, |f| found.push(f));
    }
    found
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let read_size = usize::from(first % 64) + 1;
    let pieces = split(stream, read_size);
    for found in &pieces {
        if let Found::Frame(frame) = found {
            assert!(frame.starts_with(&[0xFF, 0xD8]), "{frame:02x?}");
            assert!(frame.ends_with(&[0xFF, 0xD9]), "{frame:02x?}");
            assert!(frame.len() <= MAX_FRAME_BYTES);
        }
    }
    assert_eq!(pieces, split(stream, stream.len().max(1)));
});
