//! The layout of each version at error correction level M (ISO/IEC 18004, tables 1, 9 and
//! annex E): how many codewords the symbol holds, how they split into blocks, and where the
//! alignment patterns sit. Versions 1 to 10 hold 14 to 213 bytes, enough for any link the
//! relay makes (an IPv6 address, a 64-byte device id and a 256-byte token would not fit, and
//! are shown as text only).

use crate::qr::reed_solomon;

/// One version at level M.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// 1 to 10.
    pub number: u8,
    /// Data and error correction codewords together.
    total_codewords: usize,
    /// Error correction codewords in each block.
    ec_per_block: usize,
    /// Blocks the codewords are split into, each corrected on its own.
    blocks: usize,
    /// Row and column centres of the alignment patterns.
    pub alignment: &'static [usize],
}

const fn version(
    number: u8,
    total_codewords: usize,
    ec_per_block: usize,
    blocks: usize,
    alignment: &'static [usize],
) -> Version {
    Version {
        number,
        total_codewords,
        ec_per_block,
        blocks,
        alignment,
    }
}

const VERSIONS: [Version; 10] = [
    version(1, 26, 10, 1, &[]),
    version(2, 44, 16, 1, &[6, 18]),
    version(3, 70, 26, 1, &[6, 22]),
    version(4, 100, 18, 2, &[6, 26]),
    version(5, 134, 24, 2, &[6, 30]),
    version(6, 172, 16, 4, &[6, 34]),
    version(7, 196, 18, 4, &[6, 22, 38]),
    version(8, 242, 22, 4, &[6, 24, 42]),
    version(9, 292, 22, 5, &[6, 26, 46]),
    version(10, 346, 26, 5, &[6, 28, 50]),
];

/// The most bytes the largest version here holds.
pub const MAX_BYTES: usize = 213;

/// Mode indicator for 8-bit bytes.
const BYTE_MODE: u32 = 0b0100;
/// Filler codewords, alternating, after the data (section 7.4.10).
const PAD: [u8; 2] = [0xEC, 0x11];

impl Version {
    /// The smallest version whose capacity is at least `bytes`.
    pub fn smallest_for(bytes: usize) -> Option<Version> {
        VERSIONS.into_iter().find(|v| v.capacity() >= bytes)
    }

    /// Modules per side.
    pub fn size(&self) -> usize {
        17 + 4 * self.number as usize
    }

    fn data_codewords(&self) -> usize {
        self.total_codewords - self.ec_per_block * self.blocks
    }

    /// Bits of the character count: 8 up to version 9, 16 from 10 on.
    fn count_bits(&self) -> u32 {
        if self.number <= 9 {
            8
        } else {
            16
        }
    }

    /// Bytes this version holds in byte mode.
    pub fn capacity(&self) -> usize {
        (self.data_codewords() * 8 - 4 - self.count_bits() as usize) / 8
    }

    /// The data codewords for `text` (which must fit): mode, count, bytes, terminator, padding.
    pub(crate) fn data(&self, text: &[u8]) -> Vec<u8> {
        let mut bits = Bits::default();
        bits.push(BYTE_MODE, 4);
        bits.push(text.len() as u32, self.count_bits());
        for &byte in text {
            bits.push(u32::from(byte), 8);
        }
        let room = self.data_codewords() * 8;
        // Terminator: up to four zero bits, then zeros to the byte boundary.
        let terminator = room.saturating_sub(bits.len).min(4) as u32;
        bits.push(0, terminator);
        let to_boundary = ((8 - bits.len % 8) % 8) as u32;
        bits.push(0, to_boundary);
        let mut bytes = bits.bytes;
        let mut pad = PAD.iter().cycle();
        while bytes.len() < self.data_codewords() {
            bytes.push(*pad.next().unwrap_or(&PAD[0]));
        }
        bytes
    }

    /// Every codeword in the order it is placed: the data split into blocks (the shorter
    /// blocks first), each block's error correction computed, then both interleaved column by
    /// column (section 7.6).
    pub(crate) fn codewords(&self, text: &[u8]) -> Vec<u8> {
        let data = self.data(text);
        let short_len = self.data_codewords() / self.blocks;
        let long_blocks = self.data_codewords() % self.blocks;
        let short_blocks = self.blocks - long_blocks;
        let mut blocks = Vec::with_capacity(self.blocks);
        let mut start = 0;
        for index in 0..self.blocks {
            let len = short_len + usize::from(index >= short_blocks);
            blocks.push(&data[start..start + len]);
            start += len;
        }
        let corrections: Vec<Vec<u8>> = blocks
            .iter()
            .map(|block| reed_solomon::remainder(block, self.ec_per_block))
            .collect();
        let mut out = Vec::with_capacity(self.total_codewords);
        for column in 0..=short_len {
            out.extend(blocks.iter().filter_map(|block| block.get(column)));
        }
        for column in 0..self.ec_per_block {
            out.extend(corrections.iter().map(|block| block[column]));
        }
        out
    }
}

/// A bit string filled most significant bit first.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    len: usize,
}

impl Bits {
    fn push(&mut self, value: u32, count: u32) {
        for shift in (0..count).rev() {
            if self.len % 8 == 0 {
                self.bytes.push(0);
            }
            if (value >> shift) & 1 != 0 {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 0x80 >> (self.len % 8);
            }
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_are_the_standards() {
        // ISO/IEC 18004 table 7, byte mode, level M.
        let capacities: Vec<usize> = VERSIONS.iter().map(Version::capacity).collect();
        assert_eq!(capacities, [14, 26, 42, 62, 84, 106, 122, 152, 180, 213]);
        assert_eq!(VERSIONS[9].capacity(), MAX_BYTES);
    }

    #[test]
    fn smallest_version_is_chosen() {
        assert_eq!(Version::smallest_for(0).map(|v| v.number), Some(1));
        assert_eq!(Version::smallest_for(14).map(|v| v.number), Some(1));
        assert_eq!(Version::smallest_for(15).map(|v| v.number), Some(2));
        assert_eq!(Version::smallest_for(213).map(|v| v.number), Some(10));
        assert_eq!(Version::smallest_for(214), None);
    }

    #[test]
    fn data_is_mode_count_bytes_terminator_and_padding() {
        let version = VERSIONS[0];
        // 0100 00000010 01000001 01000010 0000, then 0xEC 0x11 ...
        assert_eq!(
            version.data(b"AB"),
            [
                0x40, 0x24, 0x14, 0x20, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11,
                0xEC, 0x11
            ]
        );
    }

    #[test]
    fn blocks_are_interleaved_short_ones_first() {
        // Version 5-M: two blocks of 43 data codewords; version 8-M: two of 38 then two of
        // 39. Every codeword is placed once, the data first.
        for (index, text_len) in [(4, 80), (7, 150), (9, 200)] {
            let version = VERSIONS[index];
            let text = vec![b'a'; text_len];
            let data = version.data(&text);
            let codewords = version.codewords(&text);
            assert_eq!(codewords.len(), version.total_codewords);
            let mut placed = codewords[..data.len()].to_vec();
            let mut sorted = data.clone();
            placed.sort_unstable();
            sorted.sort_unstable();
            assert_eq!(placed, sorted);
        }
        let version = VERSIONS[7];
        let text: Vec<u8> = (0..150u8).collect();
        let data = version.data(&text);
        let codewords = version.codewords(&text);
        // Column 0 holds the first codeword of each block: blocks start at 0, 38, 76, 115.
        assert_eq!(&codewords[..4], &[data[0], data[38], data[76], data[115]]);
        // The last data codeword placed is the 39th of the two long blocks' last.
        assert_eq!(codewords[data.len() - 1], data[153]);
    }
}
