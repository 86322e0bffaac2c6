//! Text from the channel made safe to print on a terminal.
//!
//! A payload can hold escape sequences that recolour the terminal, move the cursor, rewrite the
//! window title or worse, and characters that reorder or hide text. None of them reaches the
//! terminal as such: they are written as escapes (`\u{1b}`), and bytes that are not UTF-8 as `\xff`.

use std::fmt::Write as _;
use std::io;

/// Whether `c` must not reach a terminal as itself: control characters (C0, DEL, C1), characters
/// that reorder text (bidirectional controls) or hide it (zero-width characters), and line
/// separators.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `text` with every unsafe character escaped: `\n`, `\r`, `\t`, or `\u{..}`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// The start of `bytes`, escaped, at most `max_chars` characters long (an escape is never cut), with
/// `…` when something was left out.
pub fn preview(bytes: &[u8], max_chars: usize) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid().chars().map(|c| {
            let mut unit = String::new();
            push_escaped(&mut unit, c);
            unit
        });
        let invalid = chunk.invalid().iter().map(|b| format!("\\x{b:02x}"));
        for unit in valid.chain(invalid) {
            let width = unit.chars().count();
            if chars + width > max_chars {
                out.push('…');
                return out;
            }
            out.push_str(&unit);
            chars += width;
        }
    }
    out
}

/// A JSON formatter that also escapes what [`escape`] escapes: `serde_json` escapes only the C0
/// control characters, and leaves DEL, C1 controls and the characters that reorder text as they
/// are.
pub struct SafeJson;

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                // Every unsafe character is in the Basic Multilingual Plane: one `\u` escape.
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// `value` as one line of JSON, safe for a terminal.
pub fn to_safe_json(value: &impl serde::Serialize) -> serde_json::Result<String> {
    let mut out = Vec::new();
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, SafeJson,
    ))?;
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}
