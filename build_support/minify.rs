//! Shrinks a web page before it is gzipped into the binary: indentation, blank lines and
//! whole-line `//` comments go. Line breaks stay, so JavaScript's automatic semicolons and
//! every string keep their meaning; a line that merely starts with `//` inside a multi-line
//! string or `<pre>` would be lost, and the pages have none.
//!
//! Shared, through `#[path]`, by `build.rs` and by the page tests, which check that what the
//! relay serves is exactly this function applied to the file in `assets/`.

pub fn minify(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    for line in html.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
