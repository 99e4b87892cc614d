//! The check that a parameter survives the codec, which the key depends on, and the
//! canonical encodings it makes, kept for the key ([`Kept`]).

use std::any::TypeId;
use std::{fmt, mem};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, CodecError, DefaultCodec};

use super::content::paths_only;
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

/// The canonical encodings of parameters, kept as [`encode_param`] checks them into a
/// [`Params`] that keeps them: a node's key hashes them, so each parameter is encoded
/// canonically once, when its node is added.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// The encodings, one after the other.
    pub(crate) bytes: Vec<u8>,
    /// Where each encoding ends in `bytes`, which keeps at most `u32::MAX` bytes.
    pub(crate) ends: Vec<u32>,
    /// Set when a task's parameters were checked as one value ([`encode_whole`]), not one
    /// by one: what was kept, if anything, is not the key's.
    pub(crate) whole: bool,
}

impl Kept {
    /// The encoding of parameter `i`.
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).map_or(0, |j| self.ends[j] as usize);
        &self.bytes[start..self.ends[i] as usize]
    }

    /// Forgets every parameter from the `len`-th on.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.ends.truncate(len);
        self.bytes
            .truncate(self.ends.last().map_or(0, |&end| end as usize));
    }

    /// Keeps the encoding written from byte `start` to the end of `bytes`; past `u32::MAX`
    /// bytes in all, forgets it instead, and the key of its node asks its task.
    fn keep(&mut self, start: usize) {
        match u32::try_from(self.bytes.len()) {
            Ok(end) => self.ends.push(end),
            Err(_) => self.bytes.truncate(start),
        }
    }
}

/// Where [`encode_param`] appends the parameters it checks: their encodings with the
/// default codec, and, for a node being added to a pipeline, their canonical encodings,
/// kept for its key. A parameter checked inside another one's `Serialize` impl is checked
/// into a `Params` of its own, which keeps nothing.
#[doc(hidden)]
#[derive(Debug)]
pub struct Params<'a> {
    bytes: &'a mut Vec<u8>,
    kept: Option<&'a mut Kept>,
}

impl<'a> Params<'a> {
    /// Parameters encoded into `bytes`, keeping nothing else.
    pub fn new(bytes: &'a mut Vec<u8>) -> Self {
        Params { bytes, kept: None }
    }

    /// Parameters encoded into `bytes`, their canonical encodings kept in `kept`, whose
    /// [`whole`](Kept::whole) it clears.
    pub(crate) fn keeping(bytes: &'a mut Vec<u8>, kept: &'a mut Kept) -> Self {
        kept.whole = false;
        Params {
            bytes,
            kept: Some(kept),
        }
    }

    /// The length of the encodings so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is encoded yet.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Forgets the encodings from byte `len` on (what was kept stays: the caller that
    /// keeps forgets it).
    pub fn truncate(&mut self, len: usize) {
        self.bytes.truncate(len);
    }
}

#[cfg(test)]
thread_local! {
    /// How many values [`check_rebuilt`] decoded on this thread.
    static ROUND_TRIPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether every value of `T` comes back from the default codec as itself, bit for bit,
/// whatever it holds: integers, floats (by bit pattern), `bool`, `char`, `String` and `()`.
/// Such a value needs no round trip to be checked; a type not listed here always gets one.
fn lossless<T: 'static>() -> bool {
    let t = TypeId::of::<T>();
    [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<u128>(),
        TypeId::of::<usize>(),
        TypeId::of::<i8>(),
        TypeId::of::<i16>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<i128>(),
        TypeId::of::<isize>(),
        TypeId::of::<f32>(),
        TypeId::of::<f64>(),
        TypeId::of::<bool>(),
        TypeId::of::<char>(),
        TypeId::of::<String>(),
        TypeId::of::<()>(),
    ]
    .contains(&t)
}

/// Appends `value`'s encoding with the default codec to `out`, once it has checked that
/// `value` survives the trip: it decodes from its encoding, and the rebuilt value equals it
/// and has its canonical hash. A value of a type that always survives it (an integer, a
/// float, `bool`, `char`, `String` or `()`) is only encoded, canonically too where the
/// encodings are kept.
///
/// Equality is `eq` where the type has `PartialEq` (`eq` returns `None` where it does not);
/// where it has none, or where `value` is not equal to itself (it holds a NaN), the `Debug`
/// texts are compared instead, unless the hash sorted a map or set, whose `Debug` order may
/// legitimately differ. The hashes are always compared.
///
/// # Errors
///
/// The [`ParamLoss`] that says how `value` does not survive.
pub fn encode_param<T: Serialize + DeserializeOwned + fmt::Debug + 'static>(
    value: &T,
    eq: impl Fn(&T, &T) -> Option<bool>,
    out: &mut Params<'_>,
) -> Result<(), ParamLoss> {
    let start = out.bytes.len();
    let encoded = DefaultCodec::encode_into(value, out.bytes);
    let bytes = &out.bytes[start..];
    let kept = out.kept.as_deref_mut();
    let checked = encoded
        .map_err(|e| ParamLoss::Encode(codec_reason(e)))
        .and_then(|()| {
            if lossless::<T>() {
                keep_canonical(value, kept)
            } else {
                check_rebuilt(value, bytes, eq, kept)
            }
        });
    if checked.is_err() {
        out.bytes.truncate(start);
    }
    checked
}

/// [`encode_param`] for a task whose parameters are checked as one value, `task` itself;
/// marks what `out` keeps, if anything, as [`whole`](Kept::whole), and keeps nothing.
pub(crate) fn encode_whole<T: Serialize + DeserializeOwned + fmt::Debug + 'static>(
    task: &T,
    out: &mut Params<'_>,
) -> Result<(), ParamLoss> {
    if let Some(kept) = out.kept.as_deref_mut() {
        kept.whole = true;
    }
    encode_param(task, |_, _| None, &mut Params::new(out.bytes))
}

/// Appends the canonical encoding of `value`, of a [`lossless`] type (which holds no input
/// file), to `kept`, if given.
fn keep_canonical<T: Serialize>(value: &T, kept: Option<&mut Kept>) -> Result<(), ParamLoss> {
    let Some(kept) = kept else {
        return Ok(());
    };
    let mut out = Out {
        bytes: mem::take(&mut kept.bytes),
        sorted: false,
    };
    let start = out.bytes.len();
    let encoded = encode(value, &mut out);
    if encoded.is_err() {
        out.bytes.truncate(start);
    }
    kept.bytes = out.bytes;
    if encoded.is_ok() {
        kept.keep(start);
    }
    encoded.map_err(ParamLoss::Hash)
}

/// Checks that `value`, encoded as `bytes`, is rebuilt from them intact; appends its
/// canonical encoding to `kept`, if given.
fn check_rebuilt<T: Serialize + DeserializeOwned + fmt::Debug>(
    value: &T,
    bytes: &[u8],
    eq: impl Fn(&T, &T) -> Option<bool>,
    kept: Option<&mut Kept>,
) -> Result<(), ParamLoss> {
    #[cfg(test)]
    ROUND_TRIPS.with(|n| n.set(n.get() + 1));
    let rebuilt: T = DefaultCodec::decode(bytes).map_err(decode_loss)?;
    // Both canonical encodings are written one after the other, after those kept before.
    let mut kept = kept;
    let mut out = canonical_out(kept.as_deref_mut(), bytes.len());
    let start = out.bytes.len();
    // Input files are compared by path, and not read: they may change before the run.
    let (checked, files) = paths_only(|| compare(value, &rebuilt, eq, &mut out));
    // A key hashes the content of input files, so an encoding that names one is not kept.
    let end = match &checked {
        Ok(end) if !files => *end,
        _ => start,
    };
    keep_first(kept, out, start, end);
    checked.map(drop)
}

/// Why a parameter's encoding does not decode.
fn decode_loss(e: CodecError) -> ParamLoss {
    let mut reason = codec_reason(e);
    if reason.contains("AnyNotSupported") {
        reason.push_str(
            " (the codec decodes by type, so untagged and internally tagged enums, \
             `#[serde(flatten)]` fields and `serde_json::Value` cannot be parameters)",
        );
    }
    ParamLoss::Decode(reason)
}

/// Where two canonical encodings of a parameter encoded in `len` bytes are written: after
/// those `kept` holds (taken out of it meanwhile), or in a buffer of their own.
#[inline]
fn canonical_out(kept: Option<&mut Kept>, len: usize) -> Out {
    match kept {
        Some(kept) => Out {
            bytes: mem::take(&mut kept.bytes),
            sorted: false,
        },
        None => Out::with_capacity(2 * len + 32),
    }
}

/// Keeps in `kept`, if given, the canonical encoding `out` holds from `start` to `end`
/// (none if they are equal), and gives it back the bytes before.
#[inline]
fn keep_first(kept: Option<&mut Kept>, mut out: Out, start: usize, end: usize) {
    out.bytes.truncate(end);
    if let Some(kept) = kept {
        kept.bytes = out.bytes;
        if end != start {
            kept.keep(start);
        }
    }
}

/// Compares `value` with `rebuilt`, and their canonical encodings, which it appends to
/// `out`; returns where the first ends.
fn compare<T: Serialize + fmt::Debug>(
    value: &T,
    rebuilt: &T,
    eq: impl Fn(&T, &T) -> Option<bool>,
    out: &mut Out,
) -> Result<usize, ParamLoss> {
    let start = out.bytes.len();
    encode(value, out).map_err(ParamLoss::Hash)?;
    let mid = out.bytes.len();
    let sorted = out.sorted;
    encode(rebuilt, out).map_err(ParamLoss::Hash)?;
    let changed = || ParamLoss::Changed {
        original: shown(value),
        rebuilt: shown(rebuilt),
    };
    match eq(value, rebuilt) {
        Some(true) => {}
        Some(false) if eq(value, value) == Some(true) => return Err(changed()),
        // No `PartialEq`, or a value unequal to itself.
        _ => {
            if !sorted && format!("{value:?}") != format!("{rebuilt:?}") {
                return Err(changed());
            }
        }
    }
    if out.bytes[start..mid] != out.bytes[mid..] {
        return Err(ParamLoss::HashChanged);
    }
    Ok(mid)
}

/// The codec's own words for why it failed.
fn codec_reason(error: CodecError) -> String {
    match error {
        CodecError::Encode(reason) | CodecError::Decode(reason) => reason,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serializer};

    use super::*;

    /// A parameter whose serialization checks another value as a parameter.
    #[derive(Debug, PartialEq, Deserialize)]
    struct Outer(u32);

    impl Serialize for Outer {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            encode_param(
                &7u64,
                |a, b| Some(a == b),
                &mut Params::new(&mut Vec::new()),
            )
            .map_err(serde::ser::Error::custom)?;
            serializer.serialize_newtype_struct("Outer", &self.0)
        }
    }

    /// A struct that serializes as its first field alone, as a `u64` does.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(from = "u64")]
    struct FirstOnly(u64, u64);

    impl From<u64> for FirstOnly {
        fn from(first: u64) -> Self {
            FirstOnly(first, 0)
        }
    }

    impl Serialize for FirstOnly {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_u64(self.0)
        }
    }

    /// Checks `value` while keeping, and returns how many values were decoded to check it,
    /// and what was kept.
    fn counted<T: Serialize + DeserializeOwned + fmt::Debug + PartialEq + 'static>(
        value: &T,
    ) -> (Result<(), ParamLoss>, usize, Kept) {
        let mut kept = Kept::default();
        let before = ROUND_TRIPS.with(|n| n.get());
        let mut bytes = Vec::new();
        let checked = encode_param(
            value,
            |a, b| Some(a == b),
            &mut Params::keeping(&mut bytes, &mut kept),
        );
        (checked, ROUND_TRIPS.with(|n| n.get()) - before, kept)
    }

    #[test]
    fn values_of_lossless_types_are_kept_without_a_round_trip() {
        fn check<T: Serialize + DeserializeOwned + fmt::Debug + PartialEq + 'static>(value: T) {
            let (checked, round_trips, kept) = counted(&value);
            assert_eq!(checked, Ok(()), "{value:?}");
            assert_eq!(round_trips, 0, "{value:?}");
            let mut alone = Out::with_capacity(0);
            encode(&value, &mut alone).unwrap();
            assert_eq!(kept.ends.len(), 1);
            assert_eq!(kept.get(0), &alone.bytes[..], "{value:?}");
        }
        check(7u64);
        check(-3i32);
        check(u128::MAX);
        check(f64::NAN);
        check(-0.0f32);
        check(true);
        check('é');
        check("text".to_owned());
        check(());
    }

    #[test]
    fn values_of_other_types_are_checked_by_a_round_trip() {
        let (checked, round_trips, kept) = counted(&Some(7u64));
        assert_eq!(checked, Ok(()));
        assert_eq!(round_trips, 1);
        assert_eq!(kept.ends.len(), 1);
        // Encoded as a `u64` is, but not one: its loss is found.
        let (checked, round_trips, kept) = counted(&FirstOnly(1, 2));
        assert_eq!(
            checked.unwrap_err().to_string(),
            "it comes back as `FirstOnly(1, 0)` instead of `FirstOnly(1, 2)`"
        );
        assert_eq!(round_trips, 1);
        assert_eq!(kept.ends.len(), 0);
    }

    #[test]
    fn a_parameter_checked_inside_another_ones_serialization_is_not_kept() {
        let mut kept = Kept::default();
        let mut out = Vec::new();
        encode_param(
            &Outer(3),
            |a, b| Some(a == b),
            &mut Params::keeping(&mut out, &mut kept),
        )
        .unwrap();
        assert_eq!(kept.ends.len(), 1);
        let mut alone = Out::with_capacity(0);
        encode(&Outer(3), &mut alone).unwrap();
        assert_eq!(kept.get(0), &alone.bytes[..]);
        assert_eq!(DefaultCodec::decode::<Outer>(&out).unwrap(), Outer(3));
    }
}
