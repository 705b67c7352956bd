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
