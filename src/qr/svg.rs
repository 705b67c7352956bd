//! A QR code as SVG for the dashboard: one path of horizontal runs on a white square, in
//! module units, so the browser scales it sharply to any size (`crispEdges` keeps module
//! edges on whole pixels, which decoders like).

use std::fmt::Write;

use crate::qr::QrCode;

/// The picture's own size per module, for viewers that draw it unscaled (an image viewer, a
/// decoder); the dashboard sets its size in CSS.
const PIXELS_PER_MODULE: usize = 8;

/// The SVG document for `code`, quiet zone included.
pub fn render(code: &QrCode) -> String {
    let side = code.framed_size();
    let mut path = String::new();
    for row in 0..side {
        let mut column = 0;
        while column < side {
            if !code.is_dark_framed(row, column) {
                column += 1;
                continue;
            }
            let start = column;
            while column < side && code.is_dark_framed(row, column) {
                column += 1;
            }
            let run = column - start;
            // Writing to a String cannot fail.
            let _ = write!(path, "M{start} {row}h{run}v1h-{run}z");
        }
    }
    let pixels = side * PIXELS_PER_MODULE;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{pixels}\" height=\"{pixels}\" \
         viewBox=\"0 0 {side} {side}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/></svg>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_run_per_dark_stretch() {
        let code = QrCode::encode(b"x").unwrap();
        let svg = render(&code);
        assert!(svg.starts_with(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"232\" height=\"232\" \
             viewBox=\"0 0 29 29\""
        ));
        // The top-left finder's top edge: seven dark modules from the quiet zone's corner.
        assert!(svg.contains("M4 4h7v1h-7z"), "{svg}");
        let dark: usize = (0..29)
            .flat_map(|r| (0..29).map(move |c| (r, c)))
            .filter(|&(r, c)| code.is_dark_framed(r, c))
            .count();
        let path = svg.split(" d=\"").nth(1).unwrap();
        let drawn: usize = path
            .split('h')
            .skip(1)
            .step_by(2)
            .map(|run| run.split('v').next().unwrap().parse::<usize>().unwrap())
            .sum();
        assert_eq!(drawn, dark);
    }
}
