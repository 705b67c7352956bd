//! QR codes, so a phone scans the relay's address instead of someone typing it: the dashboard
//! shows the push link as an SVG, and the relay prints it in a terminal at start.
//!
//! Only what a link needs, written from ISO/IEC 18004: byte mode, error correction level M
//! (15 % of the symbol may be lost: a code shown on a laptop screen and filmed at an angle
//! still reads), versions 1 to 10, which hold up to 213 bytes. Longer text is refused, never
//! truncated. Kept small on purpose: a general library would bring numeric, kanji and ECI
//! modes the relay never uses, and every byte counts on a 4 MB router.
//!
//! The layer: the symbol's layout per version (`version`), the error correction
//! (`reed_solomon`), the module grid with its patterns and masks (`matrix`), and the two ways
//! to show it (`svg`, `terminal`). It uses nothing of the relay.

pub mod matrix;
pub mod reed_solomon;
pub mod svg;
pub mod terminal;
pub mod version;

use std::fmt;

use crate::qr::matrix::Grid;
use crate::qr::version::Version;

/// Modules of light margin on every side; the standard asks for four so a decoder finds the
/// finder patterns against whatever surrounds the code.
pub const QUIET_ZONE: usize = 4;

/// A finished symbol: a square of dark and light modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrCode {
    size: usize,
    dark: Vec<bool>,
}

/// The text does not fit in the largest version this encoder makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    pub bytes: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes do not fit in a QR code (at most {})",
            self.bytes,
            version::MAX_BYTES
        )
    }
}

impl std::error::Error for TooLong {}

impl QrCode {
    /// Encodes `text` in byte mode at level M, in the smallest version that holds it.
    pub fn encode(text: &[u8]) -> Result<QrCode, TooLong> {
        let version = Version::smallest_for(text.len()).ok_or(TooLong { bytes: text.len() })?;
        let codewords = version.codewords(text);
        let grid = Grid::new(version);
        Ok(grid.finish(&codewords))
    }

    pub(crate) fn from_modules(size: usize, dark: Vec<bool>) -> QrCode {
        QrCode { size, dark }
    }

    /// Modules per side, without the quiet zone.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the module at `row`, `column` is dark; outside the symbol (the quiet zone) it
    /// is light.
    pub fn is_dark(&self, row: usize, column: usize) -> bool {
        row < self.size && column < self.size && self.dark[row * self.size + column]
    }

    /// Like [`is_dark`](Self::is_dark), counting rows and columns from the quiet zone's
    /// corner, so renderers walk one square of `size + 2 * QUIET_ZONE` modules.
    pub fn is_dark_framed(&self, row: usize, column: usize) -> bool {
        match (row.checked_sub(QUIET_ZONE), column.checked_sub(QUIET_ZONE)) {
            (Some(row), Some(column)) => self.is_dark(row, column),
            _ => false,
        }
    }

    /// Modules per side with the quiet zone.
    pub fn framed_size(&self) -> usize {
        self.size + 2 * QUIET_ZONE
    }
}
