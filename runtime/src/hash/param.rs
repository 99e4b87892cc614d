//! The check that a parameter survives the codec, which the key depends on.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, CodecError, DefaultCodec};

use super::{HashError, Out, encode};

/// Why a parameter is refused: the codec does not carry it to another process intact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamLoss {
    /// The codec cannot encode it.
    #[error("the codec cannot encode it: {0}")]
    Encode(String),
    /// The codec cannot decode what it encoded (an untagged or internally tagged enum, a
    /// `#[serde(flatten)]` field or a `serde_json::Value` need a self-describing format).
    #[error("the codec cannot decode it: {0}")]
    Decode(String),
    /// It cannot be hashed.
    #[error("it cannot be hashed: {0}")]
    Hash(HashError),
    /// It comes back different: a field skipped in serialization, or enum variants whose
    /// encodings coincide.
    #[error("it comes back as `{rebuilt}` instead of `{original}`")]
    Changed {
        /// The value, as `Debug` shows it (shortened).
        original: String,
        /// The value rebuilt from its encoding (shortened).
        rebuilt: String,
    },
    /// Its canonical hash changes when it is rebuilt: a collection whose order depends on
    /// the process, which the hash does not recognize as unordered.
    #[error(
        "its hash changes when it is rebuilt from its encoding: does it hold an unordered \
         collection other than `HashMap` or `HashSet`? serialize it as a sorted sequence or a map"
    )]
    HashChanged,
}

/// How many characters of a value's `Debug` text a [`ParamLoss::Changed`] shows.
const SHOWN: usize = 200;

/// `value`'s `Debug` text, cut to [`SHOWN`] characters.
fn shown(value: &dyn fmt::Debug) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

/// Appends `value`'s encoding with the default codec to `out`, once it has checked that
/// `value` survives the trip: it decodes from its encoding, and the rebuilt value equals it
/// and has its canonical hash.
///
/// Equality is `eq` where the type has `PartialEq` (`eq` returns `None` where it does not);
/// where it has none, or where `value` is not equal to itself (it holds a NaN), the `Debug`
/// texts are compared instead, unless the hash sorted a map or set, whose `Debug` order may
/// legitimately differ. The hashes are always compared.
///
/// # Errors
///
/// The [`ParamLoss`] that says how `value` does not survive.
pub fn encode_param<T: Serialize + DeserializeOwned + fmt::Debug>(
    value: &T,
    eq: impl Fn(&T, &T) -> Option<bool>,
    out: &mut Vec<u8>,
) -> Result<(), ParamLoss> {
    let start = out.len();
    let encoded = DefaultCodec::encode_into(value, out);
    let bytes = &out[start..];
    let checked = encoded
        .map_err(|e| ParamLoss::Encode(codec_reason(e)))
        .and_then(|()| check_rebuilt(value, bytes, eq));
    if checked.is_err() {
        out.truncate(start);
    }
    checked
}

/// Checks that `value`, encoded as `bytes`, is rebuilt from them intact.
fn check_rebuilt<T: Serialize + DeserializeOwned + fmt::Debug>(
    value: &T,
    bytes: &[u8],
    eq: impl Fn(&T, &T) -> Option<bool>,
) -> Result<(), ParamLoss> {
    let rebuilt: T = DefaultCodec::decode(bytes).map_err(|e| {
        let mut reason = codec_reason(e);
        if reason.contains("AnyNotSupported") {
            reason.push_str(
                " (the codec decodes by type, so untagged and internally tagged enums, \
                 `#[serde(flatten)]` fields and `serde_json::Value` cannot be parameters)",
            );
        }
        ParamLoss::Decode(reason)
    })?;
    let mut original = Out::with_capacity(bytes.len() + 16);
    encode(value, &mut original).map_err(ParamLoss::Hash)?;
    let mut again = Out::with_capacity(original.bytes.len());
    encode(&rebuilt, &mut again).map_err(ParamLoss::Hash)?;
    let changed = || ParamLoss::Changed {
        original: shown(value),
        rebuilt: shown(&rebuilt),
    };
    match eq(value, &rebuilt) {
        Some(true) => {}
        Some(false) if eq(value, value) == Some(true) => return Err(changed()),
        // No `PartialEq`, or a value unequal to itself.
        _ => {
            if !original.sorted && format!("{value:?}") != format!("{rebuilt:?}") {
                return Err(changed());
            }
        }
    }
    if original.bytes != again.bytes {
        return Err(ParamLoss::HashChanged);
    }
    Ok(())
}

/// The codec's own words for why it failed.
fn codec_reason(error: CodecError) -> String {
    match error {
        CodecError::Encode(reason) | CodecError::Decode(reason) => reason,
        other => other.to_string(),
    }
}
