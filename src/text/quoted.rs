//! Client- and user-supplied text quoted for messages and logs, control characters escaped.
//!
//! What `{:?}` does for a string, without `Debug`: the MIPS builds pass
//! `-Z fmt-debug=none`, which compiles every `{:?}` to nothing and so keeps the `Debug`
//! machinery out of the binary (8 KB on mipsel). The relay therefore formats nothing with
//! `{:?}` outside its tests; text that came from a client goes through here, so a URL with a
//! newline or an escape sequence cannot forge a log line or garble a terminal.

use std::fmt::{self, Write};

/// `"text"`, with quotes and backslashes escaped, and control characters and anything beyond
/// ASCII written as `\u{e9}`. Unlike `{:?}`, non-ASCII letters are escaped too: that needs no
/// Unicode tables in the binary (nor std's escaping iterators, a kilobyte and a half on MIPS),
/// and a log line stays plain ASCII.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' | '\\' => {
                    f.write_char('\\')?;
                    f.write_char(c)?;
                }
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                ' '..='~' => f.write_char(c)?,
                _ => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
        }
        f.write_char('"')
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
