//! A strict reader and a small writer for the flat JSON objects the relay exchanges: a phone's
//! settings (`PUT /api/devices/{id}/settings`) and the file that keeps them.
//!
//! Why not serde_json: the relay's run-time crates are few on purpose (every kilobyte counts
//! on a router's flash), and these documents are objects of numbers, booleans, strings and at
//! most a few nested objects. The reader refuses what a general parser would let through and
//! the settings code would then have to think about: `null`, arrays, negative numbers,
//! exponents, duplicate keys, nesting deeper than asked, anything after the closing brace.
//! Numbers are read in fixed point (see `decimal`), never as floats. Every error is one line
//! that says where the document went wrong.

use std::fmt::Write as _;

use crate::text::decimal;

/// A value in a document. Numbers are non-negative, in millionths (`1.5` is 1 500 000).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Number(u64),
    Bool(bool),
    Text(String),
    Object(Object),
}

/// An object's members in document order; keys are unique.
pub type Object = Vec<(String, Value)>;

/// Reads `text` as one object nested at most `depth` levels (1: no objects inside).
pub fn parse_object(text: &str, depth: usize) -> Result<Object, String> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        at: 0,
    };
    reader.space();
    let object = reader.object(depth)?;
    reader.space();
    if reader.at != reader.bytes.len() {
        return Err(reader.error("text after the closing brace"));
    }
    Ok(object)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn error(&self, what: &str) -> String {
        format!("invalid JSON at byte {}: {what}", self.at)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", char::from(byte))))
        }
    }

    fn object(&mut self, depth: usize) -> Result<Object, String> {
        if depth == 0 {
            return Err(self.error("objects nested too deep"));
        }
        self.expect(b'{')?;
        let mut members: Object = Vec::new();
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(members);
        }
        loop {
            self.space();
            let key = self.string()?;
            if members.iter().any(|(known, _)| *known == key) {
                return Err(self.error(&format!("key \"{key}\" given twice")));
            }
            self.space();
            self.expect(b':')?;
            self.space();
            let value = self.value(depth)?;
            members.push((key, value));
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(members);
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        match self.peek() {
            Some(b'{') => self.object(depth - 1).map(Value::Object),
            Some(b'"') => self.string().map(Value::Text),
            Some(b't') => self.word("true").map(|()| Value::Bool(true)),
            Some(b'f') => self.word("false").map(|()| Value::Bool(false)),
            Some(b'0'..=b'9') => self.number(),
            _ => Err(self.error(
                "expected a number, true, false, a string or an object (null, arrays and \
                 negative numbers are not taken)",
            )),
        }
    }

    fn word(&mut self, word: &str) -> Result<(), String> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("expected true or false"))
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9' | b'.')) {
            self.at += 1;
        }
        if matches!(self.peek(), Some(b'e' | b'E' | b'+' | b'-')) {
            return Err(self.error("exponents are not taken; write the number out"));
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or_default();
        // JSON has no leading zeros ("01") and no bare fractions ("1." or ".5").
        let leading_zero = text.len() > 1 && text.starts_with('0') && !text.starts_with("0.");
        if leading_zero || text.ends_with('.') || text.starts_with('.') {
            return Err(self.error("not a JSON number"));
        }
        decimal::parse_millionths(text)
            .map(Value::Number)
            .ok_or_else(|| self.error("not a number the relay can hold"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut text = String::new();
        loop {
            let start = self.at;
            while !matches!(self.peek(), None | Some(b'"' | b'\\' | 0..=0x1f)) {
                self.at += 1;
            }
            // The input is a `str` and the run ends at an ASCII byte, so this is whole chars.
            text.push_str(std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or_default());
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(text);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = self.escape()?;
                    text.push(escaped);
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("string not closed")),
            }
        }
    }

    fn escape(&mut self) -> Result<char, String> {
        let Some(byte) = self.peek() else {
            return Err(self.error("string not closed"));
        };
        self.at += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&high) {
                    if !self.bytes[self.at..].starts_with(b"\\u") {
                        return Err(self.error("lone surrogate"));
                    }
                    self.at += 2;
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.error("lone surrogate"));
                    }
                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    high
                };
                char::from_u32(code).ok_or_else(|| self.error("lone surrogate"))?
            }
            _ => return Err(self.error("unknown escape")),
        })
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .filter(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|digits| u32::from_str_radix(digits, 16).ok())
            .ok_or_else(|| self.error("\\u needs four hex digits"))?;
        self.at += 4;
        Ok(digits)
    }
}

/// Appends `text` as a JSON string in ASCII only: anything else is a `\u` escape, so the
/// result can also travel in an HTTP header, where browsers read bytes as Latin-1.
pub fn push_string(json: &mut String, text: &str) {
    json.push('"');
    for c in text.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            ' '..='~' => json.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(json, "\\u{:04x}", unit);
                }
            }
        }
    }
    json.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flat_and_nested_objects() {
        let object = parse_object(
            r#" {"a": 1.5, "b": true, "c": "x\"\u00e9\ud83d\ude00", "d": {"e": false}} "#,
            2,
        )
        .unwrap();
        assert_eq!(object[0], ("a".into(), Value::Number(1_500_000)));
        assert_eq!(object[1], ("b".into(), Value::Bool(true)));
        assert_eq!(object[2], ("c".into(), Value::Text("x\"é😀".into())));
        assert_eq!(
            object[3],
            (
                "d".into(),
                Value::Object(vec![("e".into(), Value::Bool(false))])
            )
        );
        assert_eq!(parse_object("{}", 1).unwrap(), vec![]);
    }

    #[test]
    fn refuses_what_settings_never_hold() {
        for bad in [
            "",
            "[]",
            "{",
            "{\"a\":null}",
            "{\"a\":[1]}",
            "{\"a\":-1}",
            "{\"a\":1e3}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":1,}",
            "{\"a\":1,\"a\":2}",
            "{\"a\":1} x",
            "{\"a\":\"\n\"}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\q\"}",
            "{\"a\":{\"b\":{}}}",
            "{a:1}",
            "{\"a\":tru}",
            "{\"a\":99999999999999999999}",
        ] {
            assert!(parse_object(bad, 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn writes_ascii_only() {
        let mut json = String::new();
        push_string(&mut json, "a\"b\\c\né😀");
        assert_eq!(
            json,
            "\"a\\\"b\\\\c\\u000aé\\ud83d\\ude00\"".replace('é', "\\u00e9")
        );
        let back = parse_object(&format!("{{\"k\":{json}}}"), 1).unwrap();
        assert_eq!(back[0].1, Value::Text("a\"b\\c\né😀".into()));
    }
}
