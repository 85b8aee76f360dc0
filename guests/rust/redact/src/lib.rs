//! `redact`: masks the JSON fields named in its config, at any depth.
//!
//! Config: `{ "fields": ["email", "ip"], "mask": "***" }` (`mask` is optional). The value of every
//! object member with one of those names becomes the mask (a JSON string), whatever it was.
//! Everything else is copied byte for byte: key order, spacing and number spelling are kept,
//! since the record is rewritten as it is scanned rather than parsed and serialized again. A
//! record that is not valid JSON (or nests deeper than 128 levels) fails with
//! `processing-failed`, so it reaches the error output unchanged.
//!
//! The logic is plain Rust so that `weir bench` can run the very same code natively and as a
//! guest; the WIT glue is in `guest` and only exists on wasm.

use serde::Deserialize;

/// How deep objects and arrays may nest; deeper records fail instead of exhausting the stack.
const MAX_DEPTH: usize = 128;

/// Byte-parallel ("SWAR") constants: the scanner looks at eight bytes per step.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub fields: Vec<String>,
    #[serde(default = "default_mask")]
    pub mask: String,
    /// The mask as a JSON string literal, quotes included.
    #[serde(skip)]
    mask_json: Vec<u8>,
}

fn default_mask() -> String {
    "***".to_string()
}

impl Config {
    /// Parses and checks the JSON config a pipeline gives the guest.
    pub fn from_json(json: &str) -> Result<Config, String> {
        let mut config: Config =
            serde_json::from_str(json).map_err(|e| format!("redact: bad config: {e}"))?;
        if config.fields.is_empty() {
            return Err("redact: `fields` must name at least one field".into());
        }
        config.mask_json = serde_json::to_vec(&config.mask).map_err(|e| e.to_string())?;
        Ok(config)
    }
}

/// Masks every object member whose name is in `config.fields`, appending the result to `out`.
/// On error `out` may hold part of the record; callers discard it.
pub fn redact(input: &[u8], config: &Config, out: &mut Vec<u8>) -> Result<(), String> {
    if !is_ascii(input) {
        std::str::from_utf8(input)
            .map_err(|e| format!("record is not JSON: invalid UTF-8: {e}"))?;
    }
    let mut scan = Scanner {
        input,
        pos: 0,
        copied: 0,
        out,
        config,
    };
    let result = scan.document();
    result.map_err(|bad| {
        format!(
            "record is not JSON: {} at byte {}",
            bad.describe(),
            scan.pos
        )
    })?;
    scan.out.extend_from_slice(&input[scan.copied..]);
    Ok(())
}

/// Whether every byte is ASCII (and so the input is valid UTF-8), 32 bytes per step.
fn is_ascii(input: &[u8]) -> bool {
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().expect("8 bytes"));
    let mut chunks = input.chunks_exact(32);
    let wide = chunks.by_ref().fold(0u64, |acc, c| {
        acc | word(&c[..8]) | word(&c[8..16]) | word(&c[16..24]) | word(&c[24..])
    });
    wide & HIGH == 0 && chunks.remainder().is_ascii()
}

/// Why a record is not JSON. A one-byte error keeps the scanner's `Result`s in registers; the
/// message is written once, at the top.
#[derive(Debug, Clone, Copy)]
enum Bad {
    Expected(u8),
    ExpectedValue,
    ExpectedCommaOr(u8),
    Literal,
    Number,
    Escape,
    ControlCharacter,
    Unterminated,
    TooDeep,
    Trailing,
}

impl Bad {
    fn describe(self) -> String {
        match self {
            Bad::Expected(b) => format!("expected `{}`", b as char),
            Bad::ExpectedValue => "expected a value".into(),
            Bad::ExpectedCommaOr(b) => format!("expected `,` or `{}`", b as char),
            Bad::Literal => "invalid literal".into(),
            Bad::Number => "invalid number".into(),
            Bad::Escape => "invalid escape".into(),
            Bad::ControlCharacter => "control character in string".into(),
            Bad::Unterminated => "unterminated string".into(),
            Bad::TooDeep => "nested too deeply".into(),
            Bad::Trailing => "trailing characters after the JSON value".into(),
        }
    }
}

/// A single pass over the input. Bytes are not copied one by one: `copied` marks how far the
/// input has been copied to `out`, and only a masked value interrupts the copy.
struct Scanner<'a> {
    input: &'a [u8],
    pos: usize,
    copied: usize,
    out: &'a mut Vec<u8>,
    config: &'a Config,
}

impl Scanner<'_> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn document(&mut self) -> Result<(), Bad> {
        self.ws();
        self.value(0)?;
        self.ws();
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(Bad::Trailing)
        }
    }

    #[inline(always)]
    fn ws(&mut self) {
        // Most JSON records are compact: test once before entering a loop.
        if let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
                self.pos += 1;
            }
        }
    }

    #[inline(always)]
    fn expect(&mut self, byte: u8) -> Result<(), Bad> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Bad::Expected(byte))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), Bad> {
        if depth > MAX_DEPTH {
            return Err(Bad::TooDeep);
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(Bad::ExpectedValue),
        }
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> Result<(), Bad> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Bad::Literal)
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        // Eight at a time, as in `skip_plain`: the lowest byte flagged as not a digit is exact.
        while let Some(chunk) = self.input.get(self.pos..self.pos + 8) {
            let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            let other = (v.wrapping_add(ONES * 0x46) | v.wrapping_sub(ONES * 0x30)) & HIGH;
            if other != 0 {
                self.pos += (other.trailing_zeros() / 8) as usize;
                return self.pos - start;
            }
            self.pos += 8;
        }
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), Bad> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(Bad::Number),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(Bad::Number);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(Bad::Number);
            }
        }
        Ok(())
    }

    /// Skips string bytes that need no attention (not `"`, `\\` or a control character), eight
    /// at a time, and stops on the first byte that does: most of a JSON record is plain string
    /// bytes, and fewer loop iterations also mean fewer of the runtime's interruption checks.
    fn skip_plain(&mut self) {
        // High bit set in the bytes of `v` that are zero (exact up to the first such byte).
        let zeros = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let special = |v: u64| {
            zeros(v ^ (ONES * b'"' as u64))
                | zeros(v ^ (ONES * b'\\' as u64))
                | (v.wrapping_sub(ONES * 0x20) & !v & HIGH)
        };
        while let Some(chunk) = self.input.get(self.pos..self.pos + 8) {
            let found = special(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            if found != 0 {
                // The lowest flagged byte is exact: the tricks above only err above it.
                self.pos += (found.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
        }
        // The last few bytes, padded with zeros: a zero counts as special, so this stops at the
        // end of the input at the latest.
        let rest = &self.input[self.pos..];
        let mut padded = [0u8; 8];
        padded[..rest.len()].copy_from_slice(rest);
        self.pos += (special(u64::from_le_bytes(padded)).trailing_zeros() / 8) as usize;
    }

    /// Scans a string, from its opening quote to past its closing one; returns whether it has
    /// escapes. Its contents are `input[start + 1 .. pos - 1]`.
    fn string(&mut self) -> Result<bool, Bad> {
        self.expect(b'"')?;
        let mut escaped = false;
        loop {
            self.skip_plain();
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            let hex = self.input.get(self.pos + 1..self.pos + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(Bad::Escape);
                            }
                            self.pos += 5;
                        }
                        _ => return Err(Bad::Escape),
                    }
                }
                Some(0..=0x1f) => return Err(Bad::ControlCharacter),
                Some(_) => self.pos += 1,
                None => return Err(Bad::Unterminated),
            }
        }
    }

    fn is_masked(&self, raw: &[u8], escaped: bool) -> bool {
        if !escaped {
            return self.config.fields.iter().any(|f| f.as_bytes() == raw);
        }
        // Rare: a key with escapes is compared by its decoded text.
        let mut quoted = Vec::with_capacity(raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(raw);
        quoted.push(b'"');
        serde_json::from_slice::<String>(&quoted).is_ok_and(|key| self.config.fields.contains(&key))
    }

    fn object(&mut self, depth: usize) -> Result<(), Bad> {
        self.expect(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let start = self.pos + 1;
            let escaped = self.string()?;
            let masked = self.is_masked(&self.input[start..self.pos - 1], escaped);
            self.ws();
            self.expect(b':')?;
            self.ws();
            if masked {
                self.out
                    .extend_from_slice(&self.input[self.copied..self.pos]);
                self.value(depth + 1)?;
                self.out.extend_from_slice(&self.config.mask_json);
                self.copied = self.pos;
            } else {
                self.value(depth + 1)?;
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Bad::ExpectedCommaOr(b'}')),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Bad> {
        self.expect(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Bad::ExpectedCommaOr(b']')),
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod guest {
    use std::sync::OnceLock;

    wit_bindgen::generate!({ path: "../../../wit", world: "transform" });

    use weir::plugin::types::Outcome;
    use weir_guest::Packer;

    static CONFIG: OnceLock<super::Config> = OnceLock::new();

    struct Redact;

    impl Guest for Redact {
        fn init() -> Result<(), String> {
            let config = super::Config::from_json(&weir::plugin::host::config())?;
            let _ = CONFIG.set(config);
            Ok(())
        }

        fn transform(batch: Batch) -> Transformed {
            let config = CONFIG.get().expect("init runs before transform");
            let mut out = Packer::with_capacity(batch.data_ends.len(), batch.data.len());
            let outcomes = weir_guest::slices(&batch.data, &batch.data_ends)
                .map(
                    |data| match out.push_with(|buf| super::redact(data, config, buf)) {
                        Ok(()) => Outcome::Ok(1),
                        Err(reason) => Outcome::ProcessingFailed(reason),
                    },
                )
                .collect();
            Transformed {
                outcomes,
                data: out.data,
                data_ends: out.ends,
                keys: Vec::new(),
                partition_keys: Vec::new(),
            }
        }
    }

    export!(Redact);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(fields: &str, input: &str) -> Result<String, String> {
        let config = Config::from_json(fields).unwrap();
        let mut out = Vec::new();
        redact(input.as_bytes(), &config, &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn masks_named_fields_at_any_depth_and_keeps_everything_else() {
        assert_eq!(
            run(
                r#"{"fields":["email","ip"]}"#,
                r#"{"z":1.50,"email":"a@b.c","nested":{"ip":[1,2],"ok":true},"list":[{"email":{"x":null}}]}"#
            )
            .unwrap(),
            r#"{"z":1.50,"email":"***","nested":{"ip":"***","ok":true},"list":[{"email":"***"}]}"#
        );
        // Spacing is kept, escaped keys are matched by their text, the mask is JSON-escaped.
        assert_eq!(
            run(
                r#"{"fields":["pw"],"mask":"<\"x\">"}"#,
                "{ \"p\\u0077\" : \"s\" , \"n\": -2e3 }"
            )
            .unwrap(),
            r#"{ "p\u0077" : "<\"x\">" , "n": -2e3 }"#
        );
        assert_eq!(
            run(r#"{"fields":["a"]}"#, " [1, \"a\", {}] ").unwrap(),
            " [1, \"a\", {}] "
        );
        for n in [
            "0",
            "-12345678901234567890.5e+10",
            "123456789012",
            "9.0",
            "1234567E-8",
        ] {
            let input = format!(r#"{{"n":{n},"a":{n}}}"#);
            assert_eq!(
                run(r#"{"fields":["a"]}"#, &input).unwrap(),
                format!(r#"{{"n":{n},"a":"***"}}"#)
            );
        }
        // Long strings, with escapes and multi-byte characters at every offset of an 8-byte chunk.
        for pad in 0..9 {
            let text = format!("{}\\\"é\\n{}", "x".repeat(pad), "y".repeat(17));
            let input = format!(r#"{{"k{pad}":"{text}","a":"{text}"}}"#);
            let want = format!(r#"{{"k{pad}":"{text}","a":"***"}}"#);
            assert_eq!(run(r#"{"fields":["a"]}"#, &input).unwrap(), want);
            let bad = format!("{{\"a\":\"{}\u{1}\"}}", "x".repeat(pad));
            assert!(run(r#"{"fields":["a"]}"#, &bad).is_err());
        }
    }

    #[test]
    fn agrees_with_serde_json_on_what_is_json() {
        for bad in [
            "not json",
            "{",
            r#"{"a":}"#,
            r#"{"a" 1}"#,
            "[1,]",
            "01",
            "1.",
            "-",
            r#""\x""#,
            "{\"a\":\"\u{1}\"}",
            "[1] 2",
            "tru",
            r#"{"a":1,}"#,
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "{bad}"
            );
            let err = run(r#"{"fields":["a"]}"#, bad).unwrap_err();
            assert!(err.starts_with("record is not JSON"), "{bad}: {err}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(run(r#"{"fields":["a"]}"#, &deep)
            .unwrap_err()
            .contains("nested too deeply"));
    }

    #[test]
    fn rejects_bad_config() {
        assert!(Config::from_json(r#"{"fields":[]}"#).is_err());
        assert!(Config::from_json(r#"{"feilds":["a"]}"#)
            .unwrap_err()
            .contains("unknown field"));
    }
}
