//! The module grid: function patterns (finders, timing, alignment, format and version
//! information), the codewords laid in their zigzag, and the mask that breaks up patterns a
//! decoder could mistake for finders.
//!
//! All eight masks are tried and the one with the lowest penalty (the four rules of section
//! 7.8.3) is kept, as the standard asks: a fixed mask would save little code, and some links
//! would then carry large uniform areas that cheap phone decoders misread.

use crate::qr::version::Version;
use crate::qr::QrCode;

/// Level M in the format information's two bits.
const LEVEL_M: u32 = 0b00;
/// Generator of the (15, 5) BCH code protecting the format information.
const FORMAT_GENERATOR: u32 = 0b101_0011_0111;
/// Applied to the format information so it is never all zero (section 7.9.1).
const FORMAT_MASK: u32 = 0b101_0100_0001_0010;
/// Generator of the (18, 6) BCH code protecting the version information (versions 7 and up).
const VERSION_GENERATOR: u32 = 0b1_1111_0010_0101;

/// A symbol being built: which modules are dark, and which belong to function patterns (and
/// so take no data and no mask).
pub struct Grid {
    version: Version,
    size: usize,
    dark: Vec<bool>,
    reserved: Vec<bool>,
}

impl Grid {
    /// The grid of `version` with its function patterns drawn and the format area reserved.
    pub fn new(version: Version) -> Grid {
        let size = version.size();
        let mut grid = Grid {
            version,
            size,
            dark: vec![false; size * size],
            reserved: vec![false; size * size],
        };
        grid.draw_finders();
        grid.draw_timing();
        grid.draw_alignment();
        grid.draw_version();
        // Reserved now, written per mask in `draw_format`.
        grid.draw_format(0);
        grid
    }

    fn set(&mut self, row: usize, column: usize, dark: bool) {
        let index = row * self.size + column;
        self.dark[index] = dark;
        self.reserved[index] = true;
    }

    /// The three 7×7 finder patterns with their light separators.
    fn draw_finders(&mut self) {
        let far = self.size - 7;
        for (top, left) in [(0, 0), (0, far), (far, 0)] {
            for row in top.saturating_sub(1)..(top + 8).min(self.size) {
                for column in left.saturating_sub(1)..(left + 8).min(self.size) {
                    // Rings around the centre: 3×3 dark, light, dark, light separator.
                    let ring = row.abs_diff(top + 3).max(column.abs_diff(left + 3));
                    self.set(row, column, ring != 2 && ring != 4);
                }
            }
        }
    }

    /// Alternating modules between the finders, on row 6 and column 6.
    fn draw_timing(&mut self) {
        for index in 8..self.size - 8 {
            self.set(6, index, index % 2 == 0);
            self.set(index, 6, index % 2 == 0);
        }
    }

    /// 5×5 alignment patterns at every pair of centres except where a finder is.
    fn draw_alignment(&mut self) {
        let centres = self.version.alignment;
        let last = centres.len().saturating_sub(1);
        for (i, &row) in centres.iter().enumerate() {
            for (j, &column) in centres.iter().enumerate() {
                let at_finder = (i == 0 && (j == 0 || j == last)) || (i == last && j == 0);
                if at_finder {
                    continue;
                }
                for r in row - 2..=row + 2 {
                    for c in column - 2..=column + 2 {
                        self.set(r, c, r.abs_diff(row).max(c.abs_diff(column)) != 1);
                    }
                }
            }
        }
    }

    /// The version number with its BCH code, twice (versions 7 and up only).
    fn draw_version(&mut self) {
        if self.version.number < 7 {
            return;
        }
        let number = u32::from(self.version.number);
        let bits = number << 12 | bch_remainder(number << 12, VERSION_GENERATOR);
        for index in 0..18 {
            let dark = (bits >> index) & 1 != 0;
            let (near, far) = (index / 3, self.size - 11 + index % 3);
            self.set(near, far, dark);
            self.set(far, near, dark);
        }
    }

    /// Level and mask with their BCH code, twice: around the top-left finder, and split
    /// between the other two. Bit 14 is the most significant.
    fn draw_format(&mut self, mask: u8) {
        let data = LEVEL_M << 3 | u32::from(mask);
        let bits = (data << 10 | bch_remainder(data << 10, FORMAT_GENERATOR)) ^ FORMAT_MASK;
        let bit = |index: usize| (bits >> index) & 1 != 0;
        let size = self.size;
        for index in 0..6 {
            self.set(index, 8, bit(index));
        }
        self.set(7, 8, bit(6));
        self.set(8, 8, bit(7));
        self.set(8, 7, bit(8));
        for index in 9..15 {
            self.set(8, 14 - index, bit(index));
        }
        for index in 0..8 {
            self.set(8, size - 1 - index, bit(index));
        }
        for index in 8..15 {
            self.set(size - 15 + index, 8, bit(index));
        }
        // The module that is always dark (section 7.9.1).
        self.set(size - 8, 8, true);
    }

    /// Lays the codewords (most significant bit first) in two-module columns from the
    /// bottom-right corner, up then down, skipping column 6 (the timing pattern) and every
    /// reserved module. Modules left after the last codeword stay light (remainder bits).
    fn place(&mut self, codewords: &[u8]) {
        let bit_count = codewords.len() * 8;
        let bit =
            |index: usize| index < bit_count && (codewords[index / 8] >> (7 - index % 8)) & 1 != 0;
        let mut index = 0;
        let mut right = self.size - 1;
        let mut upward = true;
        loop {
            if right == 6 {
                right = 5;
            }
            for step in 0..self.size {
                let row = if upward { self.size - 1 - step } else { step };
                for column in [right, right - 1] {
                    let at = row * self.size + column;
                    if !self.reserved[at] {
                        self.dark[at] = bit(index);
                        index += 1;
                    }
                }
            }
            upward = !upward;
            if right < 2 {
                break;
            }
            right -= 2;
        }
    }

    /// Flips every data module where mask `mask`'s condition holds.
    fn apply_mask(&mut self, mask: u8) {
        for row in 0..self.size {
            for column in 0..self.size {
                let at = row * self.size + column;
                if !self.reserved[at] && mask_condition(mask, row, column) {
                    self.dark[at] = !self.dark[at];
                }
            }
        }
    }

    /// Places the codewords and keeps the mask with the lowest penalty.
    pub fn finish(mut self, codewords: &[u8]) -> QrCode {
        self.place(codewords);
        let mut best: Option<(u32, Vec<bool>)> = None;
        for mask in 0..8 {
            self.apply_mask(mask);
            self.draw_format(mask);
            let score = penalty(self.size, &self.dark);
            if best.as_ref().is_none_or(|(lowest, _)| score < *lowest) {
                best = Some((score, self.dark.clone()));
            }
            // Masking twice undoes it.
            self.apply_mask(mask);
        }
        let dark = best.map_or(self.dark, |(_, dark)| dark);
        QrCode::from_modules(self.size, dark)
    }
}

/// The eight data mask conditions of section 7.8.2 (`row` is i, `column` is j).
fn mask_condition(mask: u8, row: usize, column: usize) -> bool {
    let (i, j) = (row, column);
    match mask {
        0 => (i + j) % 2 == 0,
        1 => i % 2 == 0,
        2 => j % 3 == 0,
        3 => (i + j) % 3 == 0,
        4 => (i / 2 + j / 3) % 2 == 0,
        5 => (i * j) % 2 + (i * j) % 3 == 0,
        6 => ((i * j) % 2 + (i * j) % 3) % 2 == 0,
        _ => ((i + j) % 2 + (i * j) % 3) % 2 == 0,
    }
}

/// The remainder of `value` divided by `generator`, both binary polynomials.
fn bch_remainder(value: u32, generator: u32) -> u32 {
    let degree = 31 - generator.leading_zeros();
    let mut rest = value;
    while rest != 0 && 31 - rest.leading_zeros() >= degree {
        rest ^= generator << (31 - rest.leading_zeros() - degree);
    }
    rest
}

/// How much a masked symbol looks like something else (section 7.8.3): long runs, 2×2 blocks,
/// finder-like 1:1:3:1:1 patterns, and an unbalanced share of dark modules.
fn penalty(size: usize, dark: &[bool]) -> u32 {
    let at = |row: usize, column: usize| dark[row * size + column];
    let mut score = 0;
    // Rows, then columns, through the same line scan.
    for line in 0..size {
        for by_row in [true, false] {
            let module = |k: usize| if by_row { at(line, k) } else { at(k, line) };
            score += line_penalty(size, module);
        }
    }
    for row in 0..size - 1 {
        for column in 0..size - 1 {
            let colour = at(row, column);
            if at(row, column + 1) == colour
                && at(row + 1, column) == colour
                && at(row + 1, column + 1) == colour
            {
                score += 3;
            }
        }
    }
    let dark_count = dark.iter().filter(|&&d| d).count();
    let total = dark.len();
    score + 10 * ((dark_count * 20).abs_diff(total * 10) / total) as u32
}

/// Runs of five or more of one colour, and finder-like patterns, in one row or column.
fn line_penalty(size: usize, module: impl Fn(usize) -> bool) -> u32 {
    const FINDER_LIKE: [bool; 11] = [
        true, false, true, true, true, false, true, false, false, false, false,
    ];
    let mut score: u32 = 0;
    let mut run: u32 = 1;
    for k in 1..=size {
        if k < size && module(k) == module(k - 1) {
            run += 1;
            continue;
        }
        if run >= 5 {
            score += 3 + (run - 5);
        }
        run = 1;
    }
    for start in 0..size.saturating_sub(10) {
        let forward = (0..11).all(|k| module(start + k) == FINDER_LIKE[k]);
        let backward = (0..11).all(|k| module(start + k) == FINDER_LIKE[10 - k]);
        score += 40 * (u32::from(forward) + u32::from(backward));
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_information_matches_the_standards_table() {
        // ISO/IEC 18004 annex C, table C.1: level M with masks 0 and 5.
        let format = |mask: u32| {
            let data = LEVEL_M << 3 | mask;
            (data << 10 | bch_remainder(data << 10, FORMAT_GENERATOR)) ^ FORMAT_MASK
        };
        assert_eq!(format(0), 0b101_0100_0001_0010);
        assert_eq!(format(5), 0b100_0000_1100_1110);
    }

    #[test]
    fn version_information_matches_the_standards_table() {
        // Annex D, table D.1: version 7 is 000111 110010010100.
        assert_eq!(7 << 12 | bch_remainder(7 << 12, VERSION_GENERATOR), 0x07C94);
        assert_eq!(
            10 << 12 | bch_remainder(10 << 12, VERSION_GENERATOR),
            0x0A4D3
        );
    }

    #[test]
    fn every_module_outside_the_patterns_takes_a_bit() {
        // Version 1: 26 codewords, 208 bits, and exactly 208 data modules (no remainder).
        let version = Version::smallest_for(1).unwrap();
        let grid = Grid::new(version);
        let free = grid.reserved.iter().filter(|&&r| !r).count();
        assert_eq!(free, 208);
        // Version 7 (with version information): 196 codewords, no remainder bits.
        let grid = Grid::new(Version::smallest_for(110).unwrap());
        assert_eq!(grid.version.number, 7);
        assert_eq!(grid.reserved.iter().filter(|&&r| !r).count(), 1568);
    }
}
