//! Caps on every field of a run record. What a sandbox host reports is
//! untrusted (a host is a jailed process running tenant code), and the
//! sandbox's own limits cover the result and the logs but not an error's
//! name or message: a script can throw a message of hundreds of megabytes.
//! Every field is capped here, where the record is made, so no reader of
//! runs (listings, streams) ever loads more than these bounds per run.

use citadel_sandbox::LogLine;
use serde_json::json;

/// An error's message.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 8 << 10;
/// An error's name (`TypeError`, or whatever a script set).
pub const MAX_ERROR_NAME_BYTES: usize = 256;
/// The input as the run record shows it (the run itself gets all of it).
pub const MAX_INPUT_ECHO_BYTES: usize = 64 << 10;

/// `text` cut to at most `max` bytes (on a character boundary), saying how
/// long it was when it is cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let note = format!("… [truncated: {} bytes]", text.len());
    let mut end = max.saturating_sub(note.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + note.len());
    out.push_str(&text[..end]);
    out.push_str(&note);
    out
}

/// The input as a run record keeps it: the JSON itself up to
/// [`MAX_INPUT_ECHO_BYTES`], else a note of its size (cut JSON would not
/// parse).
pub fn input_echo(input_json: &str) -> String {
    if input_json.len() <= MAX_INPUT_ECHO_BYTES {
        return input_json.to_owned();
    }
    json!({ "truncated": true, "bytes": input_json.len() }).to_string()
}

/// Log lines kept up to `limit` bytes of messages; true when some were
/// dropped.
pub fn logs_within(lines: Vec<LogLine>, limit: usize) -> (Vec<LogLine>, bool) {
    let mut bytes = 0usize;
    let mut kept = Vec::with_capacity(lines.len());
    for line in lines {
        bytes = bytes.saturating_add(line.message.len());
        if bytes > limit {
            return (kept, true);
        }
        kept.push(line);
    }
    (kept, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_on_character_boundaries_and_says_so() {
        assert_eq!(clip("short", 10), "short");
        let long = "é".repeat(100);
        let cut = clip(&long, 60);
        assert!(cut.len() <= 60, "{}", cut.len());
        assert!(cut.ends_with("… [truncated: 200 bytes]"), "{cut}");
        assert!(cut.starts_with("éé"));
    }

    #[test]
    fn a_large_input_is_echoed_as_its_size() {
        assert_eq!(input_echo("{\"a\":1}"), "{\"a\":1}");
        let big = format!("\"{}\"", "x".repeat(MAX_INPUT_ECHO_BYTES));
        let echo: serde_json::Value = serde_json::from_str(&input_echo(&big)).unwrap();
        assert_eq!(echo, json!({ "truncated": true, "bytes": big.len() }));
    }
}
