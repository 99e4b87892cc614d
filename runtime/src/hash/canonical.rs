//! The canonical serializer: type-tagged, self-delimiting, with maps and sets sorted.

use std::any::type_name;

use serde::Serialize;
use serde::ser::{self, SerializeMap, SerializeSeq, SerializeStruct};

use super::content::{self, Kind};
use super::{HashError, Out, encode};

pub(super) mod tag {
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
    /// An input file, as its content's digest.
    pub const FILE: u8 = 32;
    /// An input directory, as its content's digest.
    pub const DIR: u8 = 33;
    /// An input file, as its path (when it is checked, not hashed for a key).
    pub const FILE_PATH: u8 = 34;
    /// An input directory, as its path (when it is checked, not hashed for a key).
    pub const DIR_PATH: u8 = 35;
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
pub(super) struct Canonical<'a> {
    out: &'a mut Out,
    unordered: bool,
}

impl<'a> Canonical<'a> {
    pub(super) fn for_type<T: ?Sized>(out: &'a mut Out) -> Self {
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
pub(super) struct Items<'a> {
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
        name: &'static str,
        value: &T,
    ) -> Result<(), HashError> {
        match name {
            content::FILE_MARK => return content::encode_input(Kind::File, value, self.out),
            content::DIR_MARK => return content::encode_input(Kind::Dir, value, self.out),
            _ => {}
        }
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
