//! Canonical hashing of parameters: a serde `Serializer` that writes a canonical,
//! type-tagged, self-delimiting encoding of a value, hashed with blake3; and the check that
//! a parameter survives the codec, which the key depends on ([`encode_param`]).
//!
//! The encoding depends only on the value, never on the process, the platform or a codec's
//! version:
//!
//! - every value starts with a tag naming its kind in serde's data model, so `1u32` and
//!   `1u64` differ, and so do `Some(())` and `()`;
//! - strings and bytes are length-prefixed, so `("ab", "c")` and `("a", "bc")` differ;
//! - containers mark each item and their end, so nesting cannot be confused;
//! - floats are hashed by bit pattern, with every NaN as one NaN (`0.0` and `-0.0` differ);
//! - struct fields and enum variants are hashed by name (renaming the type does not count);
//! - map entries are sorted by their encoded key, so a `HashMap`'s iteration order, which
//!   differs from process to process, cannot change the digest;
//! - a `HashSet` (std's or hashbrown's) is recognized by its type and its elements are sorted
//!   by their encoding for the same reason. Other collections keep their order, which is
//!   part of their value. An unordered collection of another kind should serialize as a
//!   sorted sequence or a map.

use std::any::type_name;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::ser::{self, SerializeMap, SerializeSeq, SerializeStruct};

use crate::codec::{Codec, CodecError, DefaultCodec};

/// Why a value could not be hashed: its `Serialize` impl failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashError(pub(crate) String);

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HashError {}

impl ser::Error for HashError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        HashError(msg.to_string())
    }
}

/// The blake3 digest of `value`'s canonical encoding.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use pipewright::canonical_digest;
///
/// let a: HashMap<u32, &str> = (0..100).map(|i| (i, "x")).collect();
/// let b: HashMap<u32, &str> = (0..100).rev().map(|i| (i, "x")).collect();
/// assert_eq!(canonical_digest(&a).unwrap(), canonical_digest(&b).unwrap());
/// assert_ne!(canonical_digest(&1u32).unwrap(), canonical_digest(&1u64).unwrap());
/// ```
///
/// # Errors
///
/// If `value`'s `Serialize` impl reports an error.
pub fn canonical_digest<T: Serialize + ?Sized>(value: &T) -> Result<[u8; 32], HashError> {
    let mut out = Out::default();
    encode(value, &mut out)?;
    Ok(*blake3::hash(&out.bytes).as_bytes())
}

/// A canonical encoding being written.
#[derive(Default)]
struct Out {
    bytes: Vec<u8>,
    /// Whether a map or set of two or more entries was sorted, so that the order in which
    /// the value lists its entries (its `Debug` text, say) may differ from the encoding's.
    sorted: bool,
}

impl Out {
    fn with_capacity(capacity: usize) -> Self {
        Out {
            bytes: Vec::with_capacity(capacity),
            sorted: false,
        }
    }

    fn push(&mut self, byte: u8) {
        self.bytes.push(byte);
    }

    fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }
}

/// Appends `value`'s canonical encoding to `out`.
fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Out) -> Result<(), HashError> {
    value.serialize(Canonical::for_type::<T>(out))
}

/// The canonical encoding of each field of a struct, by name: the parameters of a task.
///
/// A value that is not a struct is one field named `""`.
pub(crate) fn fields<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<(&'static str, Vec<u8>)>, HashError> {
    match value.serialize(FieldSplitter) {
        Ok(fields) => Ok(fields),
        Err(HashError(message)) if message == NOT_A_STRUCT => {
            let mut out = Out::default();
            encode(value, &mut out)?;
            Ok(vec![("", out.bytes)])
        }
        Err(err) => Err(err),
    }
}

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

/// The digest of each field of a struct, by name: the parameters of a task (a value that is
/// not a struct is one field named `""`).
pub(crate) fn field_digests<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<(&'static str, [u8; 32])>, HashError> {
    Ok(fields(value)?
        .into_iter()
        .map(|(name, bytes)| (name, *blake3::hash(&bytes).as_bytes()))
        .collect())
}

mod tag {
    pub const BOOL: u8 = 1;
    pub const I8: u8 = 2;
    pub const I16: u8 = 3;
    pub const I32: u8 = 4;
    pub const I64: u8 = 5;
    pub const I128: u8 = 6;
    pub const U8: u8 = 7;
    pub const U16: u8 = 8;
    pub const U32: u8 = 9;
    pub const U64: u8 = 10;
    pub const U128: u8 = 11;
    pub const F32: u8 = 12;
    pub const F64: u8 = 13;
    pub const CHAR: u8 = 14;
    pub const STR: u8 = 15;
    pub const BYTES: u8 = 16;
    pub const NONE: u8 = 17;
    pub const SOME: u8 = 18;
    pub const UNIT: u8 = 19;
    pub const UNIT_STRUCT: u8 = 20;
    pub const UNIT_VARIANT: u8 = 21;
    pub const NEWTYPE_STRUCT: u8 = 22;
    pub const NEWTYPE_VARIANT: u8 = 23;
    pub const SEQ: u8 = 24;
    pub const SET: u8 = 25;
    pub const TUPLE: u8 = 26;
    pub const TUPLE_STRUCT: u8 = 27;
    pub const TUPLE_VARIANT: u8 = 28;
    pub const MAP: u8 = 29;
    pub const STRUCT: u8 = 30;
    pub const STRUCT_VARIANT: u8 = 31;
    /// Precedes each item of a container.
    pub const ITEM: u8 = 0xfe;
    /// Ends a container.
    pub const END: u8 = 0xff;
}

/// Whether `T` is an unordered set whose iteration order varies between processes.
fn is_unordered_set<T: ?Sized>() -> bool {
    let mut name = type_name::<T>();
    // Wrappers that serialize as what they hold.
    for wrapper in [
        "&",
        "alloc::boxed::Box<",
        "alloc::sync::Arc<",
        "alloc::rc::Rc<",
    ] {
        while let Some(inner) = name.strip_prefix(wrapper) {
            name = inner;
        }
    }
    name.starts_with("std::collections::hash::set::HashSet<")
        || name.starts_with("hashbrown::set::HashSet<")
}

fn put_len(out: &mut Out, len: usize) {
    out.extend_from_slice(&(len as u64).to_le_bytes());
}

fn put_str(out: &mut Out, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// The canonical serializer; `unordered` is set when the value about to be serialized is a
/// set whose elements must be sorted.
struct Canonical<'a> {
    out: &'a mut Out,
    unordered: bool,
}

impl<'a> Canonical<'a> {
    fn for_type<T: ?Sized>(out: &'a mut Out) -> Self {
        Canonical {
            out,
            unordered: is_unordered_set::<T>(),
        }
    }

    fn tag(self, tag: u8) -> Self {
        self.out.push(tag);
        self
    }
}

/// Writes the items of a container: in order, or sorted by encoding.
struct Items<'a> {
    out: &'a mut Out,
    /// For sorted containers: each item's encoding (for a map, key and value together,
    /// sorted by the key's encoding, which is a prefix).
    sorted: Option<Vec<Vec<u8>>>,
    /// For maps written by `serialize_key` then `serialize_value`: the pending key.
    pending_key: Option<Out>,
}

impl<'a> Items<'a> {
    fn new(out: &'a mut Out, sorted: bool) -> Self {
        Items {
            out,
            sorted: sorted.then(Vec::new),
            pending_key: None,
        }
    }

    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HashError> {
        match &mut self.sorted {
            Some(items) => {
                let mut buf = Out::default();
                encode(value, &mut buf)?;
                self.out.sorted |= buf.sorted;
                items.push(buf.bytes);
            }
            None => {
                self.out.push(tag::ITEM);
                encode(value, self.out)?;
            }
        }
        Ok(())
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), HashError> {
        self.out.push(tag::ITEM);
        put_str(self.out, name);
        encode(value, self.out)
    }

    fn end(self) -> Result<(), HashError> {
        if let Some(mut items) = self.sorted {
            self.out.sorted |= items.len() > 1;
            items.sort_unstable();
            for item in items {
                self.out.push(tag::ITEM);
                self.out.extend_from_slice(&item);
            }
        }
        self.out.push(tag::END);
        Ok(())
    }
}

impl<'a> ser::Serializer for Canonical<'a> {
    type Ok = ();
    type Error = HashError;
    type SerializeSeq = Items<'a>;
    type SerializeTuple = Items<'a>;
    type SerializeTupleStruct = Items<'a>;
    type SerializeTupleVariant = Items<'a>;
    type SerializeMap = Items<'a>;
    type SerializeStruct = Items<'a>;
    type SerializeStructVariant = Items<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), HashError> {
        self.out.extend_from_slice(&[tag::BOOL, u8::from(v)]);
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), HashError> {
        self.tag(tag::I8).out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_i16(self, v: i16) -> Result<(), HashError> {
        self.tag(tag::I16).out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_i32(self, v: i32) -> Result<(), HashError> {
        self.tag(tag::I32).out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_i64(self, v: i64) -> Result<(), HashError> {
        self.tag(tag::I64).out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), HashError> {
        self.tag(tag::I128).out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_u8(self, v: u8) -> Result<(), HashError> {
        self.tag(tag::U8).out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_u16(self, v: u16) -> Result<(), HashError> {
        self.tag(tag::U16).out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_u32(self, v: u32) -> Result<(), HashError> {
        self.tag(tag::U32).out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_u64(self, v: u64) -> Result<(), HashError> {
        self.tag(tag::U64).out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), HashError> {
        self.tag(tag::U128).out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), HashError> {
        let bits = if v.is_nan() {
            f32::NAN.to_bits()
        } else {
            v.to_bits()
        };
        self.tag(tag::F32)
            .out
            .extend_from_slice(&bits.to_le_bytes());
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), HashError> {
        let bits = if v.is_nan() {
            f64::NAN.to_bits()
        } else {
            v.to_bits()
        };
        self.tag(tag::F64)
            .out
            .extend_from_slice(&bits.to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), HashError> {
        self.tag(tag::CHAR)
            .out
            .extend_from_slice(&u32::from(v).to_le_bytes());
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), HashError> {
        put_str(self.tag(tag::STR).out, v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), HashError> {
        let out = self.tag(tag::BYTES).out;
        put_len(out, v.len());
        out.extend_from_slice(v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), HashError> {
        self.out.push(tag::NONE);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), HashError> {
        self.out.push(tag::SOME);
        encode(value, self.out)
    }

    fn serialize_unit(self) -> Result<(), HashError> {
        self.out.push(tag::UNIT);
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), HashError> {
        self.out.push(tag::UNIT_STRUCT);
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), HashError> {
        put_str(self.tag(tag::UNIT_VARIANT).out, variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), HashError> {
        self.out.push(tag::NEWTYPE_STRUCT);
        encode(value, self.out)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), HashError> {
        let out = self.tag(tag::NEWTYPE_VARIANT).out;
        put_str(out, variant);
        encode(value, out)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Items<'a>, HashError> {
        let sorted = self.unordered;
        let out = self.tag(if sorted { tag::SET } else { tag::SEQ }).out;
        Ok(Items::new(out, sorted))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Items<'a>, HashError> {
        Ok(Items::new(self.tag(tag::TUPLE).out, false))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Items<'a>, HashError> {
        Ok(Items::new(self.tag(tag::TUPLE_STRUCT).out, false))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Items<'a>, HashError> {
        let out = self.tag(tag::TUPLE_VARIANT).out;
        put_str(out, variant);
        Ok(Items::new(out, false))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Items<'a>, HashError> {
        Ok(Items::new(self.tag(tag::MAP).out, true))
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Items<'a>, HashError> {
        Ok(Items::new(self.tag(tag::STRUCT).out, false))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Items<'a>, HashError> {
        let out = self.tag(tag::STRUCT_VARIANT).out;
        put_str(out, variant);
        Ok(Items::new(out, false))
    }
}

/// The compound serializers whose items are values: each item goes through [`Items::item`].
macro_rules! items_of_values {
    ($($trait:path => $method:ident;)*) => {
        $(impl $trait for Items<'_> {
            type Ok = ();
            type Error = HashError;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HashError> {
                self.item(value)
            }

            fn end(self) -> Result<(), HashError> {
                Items::end(self)
            }
        })*
    };
}

items_of_values! {
    SerializeSeq => serialize_element;
    ser::SerializeTuple => serialize_element;
    ser::SerializeTupleStruct => serialize_field;
    ser::SerializeTupleVariant => serialize_field;
}

impl SerializeMap for Items<'_> {
    type Ok = ();
    type Error = HashError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), HashError> {
        let mut buf = Out::default();
        encode(key, &mut buf)?;
        self.pending_key = Some(buf);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HashError> {
        let mut entry = self
            .pending_key
            .take()
            .ok_or_else(|| HashError("a map value was serialized before its key".into()))?;
        // Keys are self-delimiting, so sorting whole entries sorts by key.
        encode(value, &mut entry)?;
        self.out.sorted |= entry.sorted;
        self.sorted.get_or_insert_with(Vec::new).push(entry.bytes);
        Ok(())
    }

    fn end(self) -> Result<(), HashError> {
        Items::end(self)
    }
}

/// The compound serializers whose items are named fields: each goes through
/// [`Items::field`].
macro_rules! items_of_fields {
    ($($trait:path;)*) => {
        $(impl $trait for Items<'_> {
            type Ok = ();
            type Error = HashError;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), HashError> {
                self.field(key, value)
            }

            fn end(self) -> Result<(), HashError> {
                Items::end(self)
            }
        })*
    };
}

items_of_fields! {
    SerializeStruct;
    ser::SerializeStructVariant;
}

const NOT_A_STRUCT: &str = "\0not a struct";

/// Splits a struct into the canonical encodings of its fields; anything else is refused
/// with [`NOT_A_STRUCT`].
struct FieldSplitter;

struct Fields(Vec<(&'static str, Vec<u8>)>);

macro_rules! not_a_struct {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, HashError> {
            Err(HashError(NOT_A_STRUCT.into()))
        })*
    };
}

impl ser::Serializer for FieldSplitter {
    type Ok = Vec<(&'static str, Vec<u8>)>;
    type Error = HashError;
    type SerializeSeq = ser::Impossible<Self::Ok, HashError>;
    type SerializeTuple = ser::Impossible<Self::Ok, HashError>;
    type SerializeTupleStruct = ser::Impossible<Self::Ok, HashError>;
    type SerializeTupleVariant = ser::Impossible<Self::Ok, HashError>;
    type SerializeMap = ser::Impossible<Self::Ok, HashError>;
    type SerializeStruct = Fields;
    type SerializeStructVariant = ser::Impossible<Self::Ok, HashError>;

    not_a_struct! {
        serialize_bool(bool) -> Self::Ok;
        serialize_i8(i8) -> Self::Ok;
        serialize_i16(i16) -> Self::Ok;
        serialize_i32(i32) -> Self::Ok;
        serialize_i64(i64) -> Self::Ok;
        serialize_i128(i128) -> Self::Ok;
        serialize_u8(u8) -> Self::Ok;
        serialize_u16(u16) -> Self::Ok;
        serialize_u32(u32) -> Self::Ok;
        serialize_u64(u64) -> Self::Ok;
        serialize_u128(u128) -> Self::Ok;
        serialize_f32(f32) -> Self::Ok;
        serialize_f64(f64) -> Self::Ok;
        serialize_char(char) -> Self::Ok;
        serialize_str(&str) -> Self::Ok;
        serialize_bytes(&[u8]) -> Self::Ok;
        serialize_none() -> Self::Ok;
        serialize_unit() -> Self::Ok;
        serialize_unit_struct(&'static str) -> Self::Ok;
        serialize_unit_variant(&'static str, u32, &'static str) -> Self::Ok;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Self::Ok, HashError> {
        Err(HashError(NOT_A_STRUCT.into()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, HashError> {
        Err(HashError(NOT_A_STRUCT.into()))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, HashError> {
        Err(HashError(NOT_A_STRUCT.into()))
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Fields, HashError> {
        Ok(Fields(Vec::with_capacity(len)))
    }
}

impl SerializeStruct for Fields {
    type Ok = Vec<(&'static str, Vec<u8>)>;
    type Error = HashError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), HashError> {
        let mut out = Out::default();
        encode(value, &mut out)?;
        self.0.push((key, out.bytes));
        Ok(())
    }

    fn end(self) -> Result<Self::Ok, HashError> {
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap, HashSet};

    use serde::Serialize;

    use super::{canonical_digest, fields};

    fn d<T: Serialize + ?Sized>(v: &T) -> [u8; 32] {
        canonical_digest(v).unwrap()
    }

    #[test]
    fn kinds_are_tagged() {
        assert_ne!(d(&1u32), d(&1u64));
        assert_ne!(d(&1u8), d(&1i8));
        assert_ne!(d(&()), d(&None::<()>));
        assert_ne!(d(&Some(())), d(&()));
        assert_ne!(d(&'a'), d(&"a"));
        assert_ne!(d(&vec![1u8, 2]), d(&(1u8, 2u8)));
        assert_ne!(d(&0.0f64), d(&-0.0f64));
        assert_eq!(d(&f64::NAN), d(&-f64::NAN));
        assert_eq!(d(&f64::NAN), d(&f64::from_bits(0x7ff8_0000_0000_0001)));
    }

    #[test]
    fn strings_are_delimited() {
        assert_ne!(d(&("ab", "c")), d(&("a", "bc")));
        assert_ne!(d(&vec!["ab", "c"]), d(&vec!["a", "bc"]));
        assert_ne!(d(&vec![vec![1u8], vec![]]), d(&vec![vec![], vec![1u8]]));
    }

    #[test]
    fn maps_and_sets_do_not_depend_on_order() {
        let a: HashMap<String, u32> = (0..500).map(|i| (format!("k{i}"), i)).collect();
        let b: HashMap<String, u32> = (0..500).rev().map(|i| (format!("k{i}"), i)).collect();
        assert_eq!(d(&a), d(&b));
        let sorted: BTreeMap<String, u32> = a.clone().into_iter().collect();
        assert_eq!(d(&a), d(&sorted));

        let s: HashSet<u64> = (0..500).collect();
        let t: HashSet<u64> = (0..500).rev().collect();
        assert_eq!(d(&s), d(&t));
        assert_eq!(d(&Some(Box::new(s.clone()))), d(&Some(Box::new(t))));

        // Sequences keep their order.
        assert_ne!(d(&vec![1, 2]), d(&vec![2, 1]));
    }

    #[test]
    fn struct_fields_count_by_name() {
        #[derive(Serialize)]
        struct A {
            x: u32,
            y: u32,
        }
        #[derive(Serialize)]
        struct B {
            x: u32,
            z: u32,
        }
        assert_ne!(d(&A { x: 1, y: 2 }), d(&B { x: 1, z: 2 }));
        let split = fields(&A { x: 1, y: 2 }).unwrap();
        assert_eq!(split.iter().map(|f| f.0).collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(split[1].1, fields(&B { x: 7, z: 2 }).unwrap()[1].1);
        assert_eq!(fields(&5u8).unwrap()[0].0, "");
    }
}
