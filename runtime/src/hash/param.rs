//! The check that a parameter survives the codec, which the key depends on, and the
//! canonical encodings it makes, kept for the key ([`Kept`]).

use std::any::TypeId;
use std::cell::RefCell;
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

/// The canonical encodings of parameters, kept as [`encode_param`] checks them on a thread
/// that is [`keeping`] them: a node's key hashes them, so each parameter is encoded
/// canonically once, when its node is added.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// The encodings, one after the other.
    pub(crate) bytes: Vec<u8>,
    /// Where each encoding ends in `bytes`.
    pub(crate) ends: Vec<usize>,
    /// Set when a task's parameters were checked as one value ([`encode_whole`]), not one
    /// by one: what was kept, if anything, is not the key's.
    pub(crate) whole: bool,
}

impl Kept {
    /// The encoding of parameter `i`.
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).map_or(0, |j| self.ends[j]);
        &self.bytes[start..self.ends[i]]
    }

    /// Forgets every parameter from the `len`-th on.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.ends.truncate(len);
        self.bytes.truncate(self.ends.last().copied().unwrap_or(0));
    }
}

thread_local! {
    /// Where [`encode_param`] keeps the canonical encodings it makes, while [`keeping`].
    static KEEPING: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

#[cfg(test)]
thread_local! {
    /// How many values [`check_rebuilt`] decoded on this thread.
    static ROUND_TRIPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Calls `f` with the [`Kept`] of this thread, if it is keeping: borrowed for the call, so
/// that a parameter encoded inside another one's `Serialize` impl, which finds it
/// borrowed, is not kept.
fn with_kept<R>(f: impl FnOnce(Option<&mut Kept>) -> R) -> R {
    KEEPING.with(|cell| match cell.try_borrow_mut() {
        Ok(mut kept) => f(kept.as_mut()),
        Err(_) => f(None),
    })
}

/// Runs `f`, appending to `kept` the canonical encoding of each parameter that
/// [`encode_param`] checks on this thread meanwhile, and clearing [`Kept::whole`] first.
pub(crate) fn keeping<R>(kept: &mut Kept, f: impl FnOnce() -> R) -> R {
    /// Takes the kept encodings back into `kept` when dropped.
    struct TakeBack<'a>(&'a mut Kept);
    impl Drop for TakeBack<'_> {
        fn drop(&mut self) {
            let taken =
                KEEPING.with(|cell| cell.try_borrow_mut().ok().and_then(|mut slot| slot.take()));
            if let Some(kept) = taken {
                *self.0 = kept;
            }
        }
    }
    kept.whole = false;
    // Inside a parameter's `Serialize` impl, where the encodings are borrowed, nothing is
    // kept: the node's key then asks its task for its parameters' digests.
    let placed = KEEPING.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            *slot = Some(mem::take(kept));
            true
        }
        Err(_) => false,
    });
    if !placed {
        return f();
    }
    let _back = TakeBack(kept);
    f()
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
    out: &mut Vec<u8>,
) -> Result<(), ParamLoss> {
    with_kept(|kept| {
        let start = out.len();
        let encoded = DefaultCodec::encode_into(value, out);
        let bytes = &out[start..];
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
            out.truncate(start);
        }
        checked
    })
}

/// [`encode_param`] for a task whose parameters are checked as one value, `task` itself;
/// marks the [`Kept`] of this thread, if it is keeping, as [`whole`](Kept::whole).
pub(crate) fn encode_whole<T: Serialize + DeserializeOwned + fmt::Debug + 'static>(
    task: &T,
    out: &mut Vec<u8>,
) -> Result<(), ParamLoss> {
    with_kept(|kept| {
        if let Some(kept) = kept {
            kept.whole = true;
        }
        // The encodings are borrowed here, so this check keeps none.
        encode_param(task, |_, _| None, out)
    })
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
    } else {
        kept.ends.push(out.bytes.len());
    }
    kept.bytes = out.bytes;
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
    // Both canonical encodings are written one after the other, after those kept before.
    let mut kept = kept;
    let mut out = match kept.as_deref_mut() {
        Some(kept) => Out {
            bytes: mem::take(&mut kept.bytes),
            sorted: false,
        },
        None => Out::with_capacity(2 * bytes.len() + 32),
    };
    let start = out.bytes.len();
    // Input files are compared by path, and not read: they may change before the run.
    let (checked, files) = paths_only(|| compare(value, &rebuilt, eq, &mut out));
    // A key hashes the content of input files, so an encoding that names one is not kept.
    let end = match &checked {
        Ok(end) if !files => *end,
        _ => start,
    };
    out.bytes.truncate(end);
    if let Some(kept) = kept {
        kept.bytes = out.bytes;
        if end != start {
            kept.ends.push(end);
        }
    }
    checked.map(drop)
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
            encode_param(&7u64, |a, b| Some(a == b), &mut Vec::new())
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
        let checked = keeping(&mut kept, || {
            encode_param(value, |a, b| Some(a == b), &mut Vec::new())
        });
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
        keeping(&mut kept, || {
            encode_param(&Outer(3), |a, b| Some(a == b), &mut out)
        })
        .unwrap();
        assert_eq!(kept.ends.len(), 1);
        let mut alone = Out::with_capacity(0);
        encode(&Outer(3), &mut alone).unwrap();
        assert_eq!(kept.get(0), &alone.bytes[..]);
        assert_eq!(DefaultCodec::decode::<Outer>(&out).unwrap(), Outer(3));
        // Nothing is kept once `keeping` has returned.
        encode_param(&Outer(4), |a, b| Some(a == b), &mut Vec::new()).unwrap();
        assert_eq!(kept.ends.len(), 1);
    }
}
