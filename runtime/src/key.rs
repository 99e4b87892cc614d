//! Node keys: what a node's output is stored under. A key changes exactly when the output
//! could change: it hashes the key format, the codec, the task's code fingerprint, the
//! digest of each parameter, and the content digests of the inputs' outputs in argument
//! order.

use crate::cache::ENTRY_FORMAT;
use crate::codec::{Codec, DefaultCodec};
use crate::task::{TaskMeta, hex};

/// A 32-byte blake3 digest.
pub(crate) type Digest = [u8; 32];

/// Everything a node key is made of, kept apart so a changed key can be explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Components {
    pub(crate) fingerprint: Digest,
    /// Each parameter's digest, by name, in argument order.
    pub(crate) params: Vec<(&'static str, Digest)>,
    /// Each input argument's upstream output digests, in argument order.
    pub(crate) inputs: Vec<Vec<Digest>>,
}

impl Components {
    /// The components of a node running `meta` with parameters whose digests are `params`,
    /// on inputs whose output digests are `inputs`.
    pub(crate) fn new(
        meta: &TaskMeta,
        params: Vec<(&'static str, Digest)>,
        inputs: Vec<Vec<Digest>>,
    ) -> Self {
        Components {
            fingerprint: meta.fingerprint,
            params,
            inputs,
        }
    }

    /// The node key.
    pub(crate) fn key(&self) -> Digest {
        let mut h = blake3::Hasher::new();
        h.update(b"pipewright node key\0");
        h.update(&ENTRY_FORMAT.to_le_bytes());
        h.update(&(DefaultCodec::ID.len() as u64).to_le_bytes());
        h.update(DefaultCodec::ID.as_bytes());
        h.update(&self.fingerprint);
        h.update(&(self.params.len() as u64).to_le_bytes());
        for (name, digest) in &self.params {
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update(digest);
        }
        h.update(&(self.inputs.len() as u64).to_le_bytes());
        for input in &self.inputs {
            h.update(&(input.len() as u64).to_le_bytes());
            for digest in input {
                h.update(digest);
            }
        }
        *h.finalize().as_bytes()
    }

    /// The param digests in hex, as `meta.json` records them.
    pub(crate) fn param_hex(&self) -> Vec<(String, String)> {
        self.params
            .iter()
            .map(|(name, d)| ((*name).to_owned(), hex(d)))
            .collect()
    }
}

/// Reads a digest written as 64 hex digits.
pub(crate) fn parse_hex(text: &str) -> Option<Digest> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
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
