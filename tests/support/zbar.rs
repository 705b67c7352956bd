//! Pictures of QR codes for Debian's `zbarimg` (zbar-tools), which reads them back: the
//! proof that a code the relay makes is one a real decoder reads.

use std::path::Path;
use std::process::Command;

/// Pixels per module in the test images.
const SCALE: usize = 4;

/// Writes a binary PGM (netpbm's grey map: a short text header, then one byte per pixel) of
/// `side`×`side` modules; `dark(row, column)` says which are dark.
pub fn write_pgm(path: &Path, side: usize, dark: impl Fn(usize, usize) -> bool) {
    let pixels = side * SCALE;
    let mut image = format!("P5\n{pixels} {pixels}\n255\n").into_bytes();
    for y in 0..pixels {
        for x in 0..pixels {
            image.push(if dark(y / SCALE, x / SCALE) { 0 } else { 255 });
        }
    }
    std::fs::write(path, image).expect("write the test image");
}

/// What `zbarimg` reads from the image at `path`, or its complaint.
pub fn zbar_decode(path: &Path) -> Result<Vec<u8>, String> {
    let output = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sbinary"])
        .arg(path)
        .output()
        .map_err(|error| format!("cannot run zbarimg: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "zbarimg found no code ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(output.stdout)
}

/// The modules of an SVG code as the relay draws it (`viewBox="0 0 SIDE SIDE"`, one path of
/// `M{x} {y}h{run}v1h-{run}z` runs): the side and the dark modules, row by row. Reading the
/// geometry back rather than rasterising keeps the test free of an SVG renderer's
/// antialiasing; the browser test screenshots the real rendering.
pub fn svg_modules(svg: &str) -> (usize, Vec<bool>) {
    let side: usize = svg
        .split("viewBox=\"0 0 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|side| side.parse().ok())
        .expect("a square viewBox");
    let path = svg
        .split(" d=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a path");
    let mut dark = vec![false; side * side];
    for run in path.split('M').filter(|run| !run.is_empty()) {
        let (x, rest) = run.split_once(' ').expect("M x y");
        let (y, rest) = rest.split_once('h').expect("h run");
        let (length, rest) = rest.split_once('v').expect("v1");
        assert!(
            rest.starts_with("1h-") && rest.ends_with('z'),
            "odd run {run}"
        );
        let (x, y, length): (usize, usize, usize) = (
            x.parse().unwrap(),
            y.parse().unwrap(),
            length.parse().unwrap(),
        );
        for column in x..x + length {
            dark[y * side + column] = true;
        }
    }
    (side, dark)
}
