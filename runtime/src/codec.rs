//! How outputs are encoded on disk: one [`Codec`] trait, with bincode 2 (serde mode,
//! fixed-width little-endian integers, a decode size limit) as the default and JSON for
//! small outputs people want to read.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The most a decode may claim, in bytes: a damaged length prefix cannot make a decode
/// allocate more than this.
pub const DECODE_LIMIT: usize = 1 << 34;

/// Encodes outputs to bytes and back. A task's codec is [`DefaultCodec`] unless
/// `#[task(codec = ...)]` names another; its [`ID`](Codec::ID) is part of every key of the
/// task, so changing the codec or its settings invalidates old entries cleanly.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a codec",
    label = "not a codec",
    note = "`codec = ...` takes a type implementing `pipewright::codec::Codec`, like `pipewright::codec::Json`"
)]
pub trait Codec {
    /// Names the codec, its version and its settings.
    const ID: &'static str;

    /// Encodes `value`.
    ///
    /// # Errors
    ///
    /// If `value`'s `Serialize` impl fails or uses what the codec cannot represent.
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError>;

    /// Appends the encoding of `value` to `out`.
    ///
    /// # Errors
    ///
    /// As [`encode`](Codec::encode); `out` may then hold part of the encoding.
    fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&Self::encode(value)?);
        Ok(())
    }

    /// Decodes a `T` from all of `bytes`.
    ///
    /// # Errors
    ///
    /// If `bytes` is not a whole, valid encoding of a `T` within [`DECODE_LIMIT`].
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError>;
}

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Encoding failed.
    #[error("cannot encode the value: {0}")]
    Encode(String),
    /// Decoding failed.
    #[error("cannot decode the value: {0}")]
    Decode(String),
    /// Bytes were left over after the value.
    #[error("{0} bytes are left over after the value")]
    Trailing(usize),
}

/// bincode 2 in serde mode: fixed-width little-endian integers, [`DECODE_LIMIT`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<DECODE_LIMIT>()
}

impl Codec for Bincode {
    const ID: &'static str = "bincode-2-serde-le-fixint-limit34";

    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
        bincode::serde::encode_to_vec(value, bincode_config()).map_err(encode_error)
    }

    fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match bincode::serde::encode_into_std_write(value, out, bincode_config()) {
            Ok(_) => Ok(()),
            Err(e) => Err(encode_error(e)),
        }
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        match bincode::serde::decode_from_slice(bytes, bincode_config()) {
            Ok((value, read)) => whole(bytes, read).map(|()| value),
            Err(e) => Err(decode_error(e)),
        }
    }
}

// Not generic, so that each type the codec encodes or decodes does not instantiate them.
fn encode_error(e: bincode::error::EncodeError) -> CodecError {
    CodecError::Encode(e.to_string())
}

fn decode_error(e: bincode::error::DecodeError) -> CodecError {
    CodecError::Decode(e.to_string())
}

/// Whether reading `read` bytes of `bytes` read them all.
fn whole(bytes: &[u8], read: usize) -> Result<(), CodecError> {
    match bytes.len() - read {
        0 => Ok(()),
        left => Err(CodecError::Trailing(left)),
    }
}

/// JSON (serde_json), compact: for small outputs that people or other programs read in
/// the store.
///
/// JSON holds less than bincode: a float that is not finite is written as `null` and
/// cannot be read back, so such an output is computed again on every run; a map whose keys
/// are not strings or numbers cannot be encoded, so its node fails.
///
/// # Examples
///
/// ```
/// use pipewright::codec::{Codec, Json};
///
/// let bytes = Json::encode(&vec![("a", 1)]).unwrap();
/// assert_eq!(bytes, br#"[["a",1]]"#);
/// assert_eq!(Json::decode::<Vec<(String, u32)>>(&bytes).unwrap(), [("a".to_owned(), 1)]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    const ID: &'static str = "serde-json-1";

    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError::Encode(e.to_string()))
    }

    fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        serde_json::to_writer(out, value).map_err(|e| CodecError::Encode(e.to_string()))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        // Trailing bytes other than white space are an error of `from_slice`.
        serde_json::from_slice(bytes).map_err(|e| CodecError::Decode(e.to_string()))
    }
}

/// The codec outputs are stored with unless a task names another, and that parameters
/// always travel with.
pub type DefaultCodec = Bincode;

#[cfg(test)]
mod tests {
    use super::{Bincode, Codec, CodecError, Json};

    #[test]
    fn json_round_trips_and_refuses_damage() {
        let value = (vec![1u32, 2, 3], "text".to_string(), Some(2.5f64));
        let bytes = Json::encode(&value).unwrap();
        assert_eq!(bytes, br#"[[1,2,3],"text",2.5]"#);
        let back: (Vec<u32>, String, Option<f64>) = Json::decode(&bytes).unwrap();
        assert_eq!(back, value);
        assert!(Json::decode::<Vec<u32>>(&bytes[..bytes.len() - 1]).is_err());
        assert!(Json::decode::<Vec<u32>>(b"[1,2] 3").is_err());
    }

    #[test]
    fn round_trips() {
        let value = (vec![1u32, 2, 3], "text".to_string(), Some(2.5f64));
        let bytes = Bincode::encode(&value).unwrap();
        let back: (Vec<u32>, String, Option<f64>) = Bincode::decode(&bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn damaged_bytes_are_errors() {
        let bytes = Bincode::encode(&vec![7u64; 10]).unwrap();
        assert!(Bincode::decode::<Vec<u64>>(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Bincode::decode::<Vec<u64>>(&longer),
            Err(CodecError::Trailing(1))
        ));
        // A length prefix claiming 2^62 elements: refused, not allocated.
        let mut huge = bytes;
        huge[..8].copy_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(Bincode::decode::<Vec<u64>>(&huge).is_err());
    }
}
