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
//!   sorted sequence or a map;
//! - an input file or directory (`InputFile`, `InputDir`) is hashed as its content's
//!   digest, never its path ([`content`]).

use std::fmt;

use serde::Serialize;
use serde::ser;

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

/// The blake3 digest of `value`'s canonical encoding. An input file or directory in it
/// counts as its content, read here.
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
    value.serialize(canonical::Canonical::for_type::<T>(out))
}

mod canonical;
mod content;
mod fields;
mod param;

pub(crate) use content::{
    Contents, DIR_MARK, FILE_MARK, Kind, Seen, Unreadable, dir_digest, file_digest, resolving,
};
pub(crate) use fields::field_digests;
#[cfg(test)]
use fields::fields;
pub(crate) use param::{Kept, encode_whole};
pub use param::{ParamLoss, Params, encode_param};

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
