//! A QR code as text for a terminal: two module rows per line with the half-block characters
//! `▀ ▄ █`, so the code is square and small enough for a laptop's terminal.
//!
//! The colours are set explicitly, black on bright white, with the quiet zone in the same
//! white: a terminal's own colours are unknown (a dark theme would show the code inverted,
//! light modules dark), and phone decoders read dark-on-light codes reliably but not all read
//! inverted ones. The line ends with a colour reset so the rest of the log is untouched.

use crate::qr::QrCode;

/// Black text on a bright white background (SGR 30 and 107).
pub const COLOURS: &str = "\x1b[30;107m";
/// Back to the terminal's own colours.
pub const RESET: &str = "\x1b[0m";

/// The text for `code`, quiet zone included, one line per two module rows.
pub fn render(code: &QrCode) -> String {
    let side = code.framed_size();
    let mut text = String::new();
    for top in (0..side).step_by(2) {
        text.push_str(COLOURS);
        for column in 0..side {
            let upper = code.is_dark_framed(top, column);
            // Past the last row is more quiet zone.
            let lower = top + 1 < side && code.is_dark_framed(top + 1, column);
            text.push(match (upper, lower) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        text.push_str(RESET);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_rows_per_line_in_explicit_colours() {
        let code = QrCode::encode(b"x").unwrap();
        let text = render(&code);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 15);
        for line in &lines {
            assert!(line.starts_with(COLOURS) && line.ends_with(RESET));
            let modules = line.trim_start_matches(COLOURS).trim_end_matches(RESET);
            assert_eq!(modules.chars().count(), 29);
        }
        // Quiet zone lines are blank; line 2 holds frame rows 4 and 5: the finder's top edge
        // (all dark) over its second row (dark at both ends only).
        assert!(lines[0].contains(&" ".repeat(29)));
        let line2: Vec<char> = lines[2].trim_start_matches(COLOURS).chars().collect();
        assert_eq!(
            &line2[3..12],
            &[' ', '█', '▀', '▀', '▀', '▀', '▀', '█', ' ']
        );
    }
}
