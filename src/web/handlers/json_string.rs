//! JSON string literals, written fast: payloads are most of the bytes of every collection read,
//! and serde_json's byte-at-a-time escaping was 10 % of the server's CPU on the read benchmark.
//! Eight bytes are checked at once for the only bytes JSON requires escaped (`"`, `\` and
//! controls below 0x20); runs without them are copied whole. The escapes are serde_json's, so
//! the output is byte for byte what it wrote before.

/// `0x01` in every byte.
const ONES: u64 = u64::from_le_bytes([0x01; 8]);
/// `0x80` in every byte.
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// Whether any byte of `word` is below `n` (n ≤ 0x80): the classic "has less" bit trick, exact
/// for the question "any byte?".
fn has_byte_below(word: u64, n: u8) -> bool {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS != 0
}

/// Whether any byte of `word` must be escaped.
fn needs_escape(word: u64) -> bool {
    has_byte_below(word ^ (ONES * u64::from(b'"')), 1)
        || has_byte_below(word ^ (ONES * u64::from(b'\\')), 1)
        || has_byte_below(word, 0x20)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `text` as a JSON string literal.
pub(super) fn push_json_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `bytes[copied..i]` is checked and still to be copied.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes.get(i..i + 8) {
            let word =
                u64::from_le_bytes([word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7]]);
            if !needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let escape: &[u8] = match bytes[i] {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            control @ 0x00..=0x1f => {
                &[b'\\', b'u', b'0', b'0', HEX[usize::from(control >> 4)], HEX[usize::from(control & 0xf)]]
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[copied..i]);
        out.extend_from_slice(escape);
        i += 1;
        copied = i;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn ours(text: &str) -> String {
        let mut out = vec![];
        push_json_string(&mut out, text);
        String::from_utf8(out).expect("UTF-8")
    }

    /// Every ASCII byte, at every position within and across an 8-byte word, among plain text
    /// and multi-byte characters: the same literal as serde_json's.
    #[test]
    fn same_as_serde_json_for_every_ascii_byte_at_every_offset() {
        for byte in 0u8..0x80 {
            for offset in 0..17 {
                let text = format!("{}{}é{}", "a".repeat(offset), char::from(byte), "b".repeat(17 - offset));
                assert_eq!(ours(&text), serde_json::to_string(&text).unwrap(), "byte {byte:#x} at {offset}");
            }
        }
        assert_eq!(ours(""), "\"\"");
        assert_eq!(
            ours("\"\\\u{1f}\u{7f}\u{2028}😀"),
            serde_json::to_string("\"\\\u{1f}\u{7f}\u{2028}😀").unwrap()
        );
    }

    #[test]
    fn same_as_serde_json_for_random_text() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet: Vec<char> = "ab\"\\\n\r\t\u{0}\u{8}\u{c}\u{1b}\u{7f}é€😀 {}:,".chars().collect();
        for _ in 0..5000 {
            let len = rng.gen_range(0..64);
            let text: String = (0..len).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect();
            assert_eq!(ours(&text), serde_json::to_string(&text).unwrap(), "{text:?}");
        }
    }
}
