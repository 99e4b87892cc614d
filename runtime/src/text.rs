//! Text forms for files: codec bytes as hex digits and back, and names made safe as file
//! names.

/// `bytes` as lowercase hex digits, two per byte. Digests are written by
/// [`blake3::Hash::to_hex`]; this is for bytes of any length, such as encoded parameters.
pub(crate) fn hex_bytes(bytes: &[u8]) -> String {
    let mut digits = Vec::new();
    push_hex(&mut digits, bytes);
    // Hex digits are ASCII, so this never fails.
    String::from_utf8(digits).unwrap_or_default()
}

/// Appends `bytes` to `out` as pairs of lowercase hex digits.
pub(crate) fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
}

/// Reads bytes written as pairs of hex digits.
pub(crate) fn parse_hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// Reads `text`, hex digits two per byte, into `out`: whether it was exactly that many
/// digits.
pub(crate) fn hex_into(text: &str, out: &mut [u8]) -> bool {
    /// Each byte's value as a hex digit, or 16 if it is none.
    const VALUES: [u8; 256] = {
        let mut values = [16; 256];
        let mut i = 0;
        while i < 10 {
            values[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            values[b'a' as usize + i] = 10 + i as u8;
            values[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        values
    };
    if text.len() != 2 * out.len() {
        return false;
    }
    let mut bad = 0;
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let (hi, lo) = (VALUES[usize::from(pair[0])], VALUES[usize::from(pair[1])]);
        bad |= hi | lo;
        *byte = hi << 4 | (lo & 0x0f);
    }
    bad < 16
}

/// A file name for node `name`: the name itself where it is a safe file name, else its
/// [`safe_name`] with a digest of the name, so that two nodes never share a file.
pub(crate) fn node_file_name(name: &str) -> String {
    let safe = safe_name(name);
    if safe == name {
        safe
    } else {
        format!("{safe}-{}", &blake3::hash(name.as_bytes()).to_hex()[..8])
    }
}

/// `name` with every character that is not safe in a file name replaced by `_`.
pub(crate) fn safe_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        format!("_{safe}")
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::{hex_bytes, hex_into, parse_hex_bytes, safe_name};

    #[test]
    fn names_become_safe_file_names() {
        assert_eq!(safe_name("multi-path"), "multi-path");
        assert_eq!(safe_name("a/b c"), "a_b_c");
        assert_eq!(safe_name(".."), "_..");
        assert_eq!(safe_name(""), "_");
        assert_eq!(safe_name("données"), "donn_es");
        assert_eq!(safe_name(&"x".repeat(300)).len(), 80);
    }

    #[test]
    fn bytes_go_to_hex_and_back() {
        let bytes = [0x00, 0x7f, 0xab, 0xff];
        assert_eq!(hex_bytes(&bytes), "007fabff");
        assert_eq!(parse_hex_bytes("007fabff").as_deref(), Some(&bytes[..]));
        assert_eq!(parse_hex_bytes("007FABFF").as_deref(), Some(&bytes[..]));
        assert_eq!(parse_hex_bytes("abc"), None);
        assert_eq!(parse_hex_bytes("zz"), None);
        let mut out = [0; 4];
        assert!(hex_into("007FabfF", &mut out));
        assert_eq!(out, bytes);
        assert!(!hex_into("007fabf", &mut out));
        assert!(!hex_into("+07fabff", &mut out));
    }
}
