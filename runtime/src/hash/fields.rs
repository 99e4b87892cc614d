//! A struct split into its fields, each encoded canonically: the parameters of a task.

use serde::Serialize;
use serde::ser::{self, SerializeStruct};

use super::{HashError, Out, encode};

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
