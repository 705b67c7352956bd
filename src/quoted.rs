//! Client- and user-supplied text quoted for messages and logs, control characters escaped.
//!
//! What `{:?}` does for a string, without `Debug`: the MIPS builds pass
//! `-Z fmt-debug=none`, which compiles every `{:?}` to nothing and so keeps the `Debug`
//! machinery out of the binary (8 KB on mipsel). The relay therefore formats nothing with
//! `{:?}` outside its tests; text that came from a client goes through here, so a URL with a
//! newline or an escape sequence cannot forge a log line or garble a terminal.

use std::fmt;

/// `"text"`, with quotes, backslashes, control characters and anything beyond ASCII escaped
/// (`\n`, `\u{e9}`). Unlike `{:?}`, non-ASCII letters are escaped too: that needs no Unicode
/// tables in the binary, and a log line stays plain ASCII.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_debug_but_in_ascii() {
        for text in ["plain", "a\nb", "tab\there", "quote\"s", "back\\slash"] {
            assert_eq!(Quoted(text).to_string(), format!("{text:?}"));
        }
        assert_eq!(Quoted("\u{1b}[31m").to_string(), r#""\u{1b}[31m""#);
        assert_eq!(Quoted("café").to_string(), r#""caf\u{e9}""#);
    }
}
