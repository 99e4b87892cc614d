//! An entry's record ([`EntryMeta`]) as JSON, the same bytes `serde_json::to_string` writes,
//! with fewer calls: most of the record is hex digests, which need no escaping, and each
//! node that runs writes one.

use super::{EntryMeta, InputDigests, NamedDigest};

/// `meta` as JSON, as `serde_json::to_string` writes it.
pub(super) fn to_string(meta: &EntryMeta) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"format\":");
    number(&mut out, u64::from(meta.format));
    field(&mut out, "task", &meta.task);
    field(&mut out, "node", &meta.node);
    field(&mut out, "key", &meta.key);
    field(&mut out, "codec", &meta.codec);
    field(&mut out, "fingerprint", &meta.fingerprint);
    out.extend_from_slice(b",\"version\":");
    match &meta.version {
        Some(version) => string(&mut out, version),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"params\":");
    serde_json::to_writer(&mut out, &meta.params)?;
    out.extend_from_slice(b",\"param_digests\":");
    named(&mut out, &meta.param_digests);
    out.extend_from_slice(b",\"helpers\":");
    named(&mut out, &meta.helpers);
    if !meta.input_files.is_empty() {
        out.extend_from_slice(b",\"input_files\":");
        named(&mut out, &meta.input_files);
    }
    out.extend_from_slice(b",\"inputs\":[");
    for (
        i,
        InputDigests {
            name,
            nodes,
            digests,
        },
    ) in meta.inputs.iter().enumerate()
    {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        string(&mut out, name);
        out.extend_from_slice(b",\"nodes\":");
        strings(&mut out, nodes);
        out.extend_from_slice(b",\"digests\":");
        strings(&mut out, digests);
        out.push(b'}');
    }
    out.push(b']');
    field(&mut out, "output_digest", &meta.output_digest);
    out.extend_from_slice(b",\"output_size\":");
    number(&mut out, meta.output_size);
    out.extend_from_slice(b",\"duration_secs\":");
    serde_json::to_writer(&mut out, &meta.duration_secs)?;
    field(&mut out, "created", &meta.created);
    field(&mut out, "pipewright", &meta.pipewright);
    out.push(b'}');
    // Every piece written is UTF-8: the strings are `str`s, escaped or not, the rest ASCII.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// `,"name":` and `value` as a JSON string.
fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    string(out, value);
}

/// `value` as a JSON string: as it is between quotes when no byte of it needs escaping
/// (a control character, a quote or a backslash), else as `serde_json` escapes it.
pub(crate) fn string(out: &mut Vec<u8>, value: &str) {
    // Every byte is looked at, without stopping early, so that the loop runs in wide steps.
    let plain = value.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a vector cannot fail.
        let _ = serde_json::to_writer(out, value);
    }
}

fn strings(out: &mut Vec<u8>, values: &[String]) {
    out.push(b'[');
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, value);
    }
    out.push(b']');
}

fn named(out: &mut Vec<u8>, values: &[NamedDigest]) {
    out.push(b'[');
    for (i, NamedDigest { name, digest }) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        string(out, name);
        out.extend_from_slice(b",\"digest\":");
        string(out, digest);
        out.push(b'}');
    }
    out.push(b']');
}

/// Appends `n` in decimal.
pub(crate) fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> EntryMeta {
        let digest = |s: &str| blake3::hash(s.as_bytes()).to_hex().to_string();
        let named = |name: &str| NamedDigest {
            name: name.to_owned(),
            digest: digest(name),
        };
        EntryMeta {
            format: 2,
            task: "a::task".to_owned(),
            node: "n\"quoted\"\\and\ttab\u{1}é".to_owned(),
            key: digest("key"),
            codec: "bincode".to_owned(),
            fingerprint: digest("code"),
            version: Some("v\n2".to_owned()),
            params: serde_json::json!({"x": 1.5, "name": "a \"b\"", "list": [1, 2, null]}),
            param_digests: vec![named("x"), named("name")],
            helpers: vec![named("helper")],
            input_files: Vec::new(),
            inputs: vec![
                InputDigests {
                    name: "xs".to_owned(),
                    nodes: vec!["a".to_owned(), "b/c".to_owned()],
                    digests: vec![digest("a"), digest("b")],
                },
                InputDigests {
                    name: "none".to_owned(),
                    nodes: Vec::new(),
                    digests: Vec::new(),
                },
            ],
            output_digest: digest("out"),
            output_size: 18_446_744_073_709_551_615,
            duration_secs: 0.000_012_345_678_9,
            created: "2026-01-02T03:04:05Z".to_owned(),
            pipewright: "0.1.0".to_owned(),
        }
    }

    #[test]
    fn a_record_is_written_as_serde_json_writes_it() {
        let mut meta = meta();
        assert_eq!(
            to_string(&meta).unwrap(),
            serde_json::to_string(&meta).unwrap()
        );
        meta.version = None;
        meta.input_files = vec![NamedDigest {
            name: "data/ü.csv".to_owned(),
            digest: "00".repeat(32),
        }];
        meta.params = serde_json::Value::Null;
        meta.param_digests.clear();
        meta.inputs.clear();
        meta.output_size = 0;
        meta.duration_secs = 3.0;
        assert_eq!(
            to_string(&meta).unwrap(),
            serde_json::to_string(&meta).unwrap()
        );
        let back: EntryMeta = serde_json::from_str(&to_string(&meta).unwrap()).unwrap();
        assert_eq!(back, meta);
        meta.duration_secs = f64::NAN;
        assert_eq!(
            to_string(&meta).unwrap(),
            serde_json::to_string(&meta).unwrap()
        );
    }
}
