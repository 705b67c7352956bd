//! Minifies and gzips the web pages in `assets/` into `OUT_DIR`, where `src/pages.rs` includes
//! them.
//!
//! Compressed, the pages take about 9 KB of the binary instead of 27 KB: on a router with 8 MB
//! of flash and a 600 KB budget for the relay, that is the difference between fitting and not.
//! The gzip header carries no file name or time, so the same pages give the same bytes.

use std::error::Error;
use std::fs;
use std::path::Path;

#[path = "build_support/minify.rs"]
mod minify;

const PAGES: [&str; 2] = ["push.html", "index.html"];
/// The HTTPS set-up page, only in a build with HTTPS (the `tls` feature).
const TLS_PAGES: [&str; 1] = ["https.html"];

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = std::env::var_os("OUT_DIR").ok_or("cargo did not set OUT_DIR")?;
    let with_tls = std::env::var_os("CARGO_FEATURE_TLS").is_some();
    let tls_pages = if with_tls { &TLS_PAGES[..] } else { &[] };
    for page in PAGES.iter().chain(tls_pages) {
        let source = Path::new("assets").join(page);
        println!("cargo:rerun-if-changed={}", source.display());
        let html = fs::read_to_string(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        // Zopfli: gzip that any browser reads, 5 to 8% smaller than zlib's best, for a
        // compression time only the build pays.
        let mut gzip = Vec::new();
        zopfli::compress(
            zopfli::Options::default(),
            zopfli::Format::Gzip,
            minify::minify(&html).as_bytes(),
            &mut gzip,
        )?;
        fs::write(Path::new(&out_dir).join(format!("{page}.gz")), gzip)?;
    }
    println!("cargo:rerun-if-changed=build_support/minify.rs");
    Ok(())
}
