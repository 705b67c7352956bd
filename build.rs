//! Gzips the web pages in `assets/` into `OUT_DIR`, where `src/pages.rs` includes them.
//!
//! Compressed, the pages take about 8 KB of the binary instead of 20 KB: on a router with 8 MB
//! of flash and a 600 KB budget for the relay, that is the difference between fitting and not.
//! The gzip header carries no file name or time, so the same pages give the same bytes.

use std::error::Error;
use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;

const PAGES: [&str; 2] = ["push.html", "index.html"];

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = std::env::var_os("OUT_DIR").ok_or("cargo did not set OUT_DIR")?;
    for page in PAGES {
        let source = Path::new("assets").join(page);
        println!("cargo:rerun-if-changed={}", source.display());
        let html = fs::read(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&html)?;
        fs::write(
            Path::new(&out_dir).join(format!("{page}.gz")),
            encoder.finish()?,
        )?;
    }
    Ok(())
}
