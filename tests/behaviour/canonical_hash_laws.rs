//! Laws of the canonical parameter hash, checked on generated values: it does not depend
//! on the order of a map or a set, it tells apart values that differ, and it is tagged by
//! type and delimited.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use pipewright::canonical_digest;
use proptest::prelude::*;
use serde::Serialize;

fn d<T: Serialize + ?Sized>(v: &T) -> [u8; 32] {
    canonical_digest(v).unwrap()
}

proptest! {
    #[test]
    fn a_map_hashes_the_same_in_any_insertion_order(
        entries in proptest::collection::btree_map(".{0,12}", any::<i64>(), 0..64),
        seed in any::<u64>(),
    ) {
        let forward: HashMap<String, i64> = entries.clone().into_iter().collect();
        // A different insertion order into a map with its own random hasher.
        let mut shuffled: Vec<_> = entries.clone().into_iter().collect();
        let n = shuffled.len().max(1);
        shuffled.rotate_left((seed as usize) % n);
        shuffled.reverse();
        let backward: HashMap<String, i64> = shuffled.into_iter().collect();
        prop_assert_eq!(d(&forward), d(&backward));
        prop_assert_eq!(d(&forward), d(&entries));
    }

    #[test]
    fn a_set_hashes_the_same_in_any_insertion_order(items in proptest::collection::vec(any::<u32>(), 0..64)) {
        let a: HashSet<u32> = items.iter().copied().collect();
        let b: HashSet<u32> = items.iter().rev().copied().collect();
        prop_assert_eq!(d(&a), d(&b));
        // A `HashSet` and a `BTreeSet` of the same elements, in a struct field.
        #[derive(Serialize)]
        struct Holder<S> { set: S }
        prop_assert_eq!(d(&Holder { set: a }), d(&Holder { set: b }));
        // Sets differing in one element differ.
        let mut c: BTreeSet<u32> = items.iter().copied().collect();
        let fresh = (0..).find(|x| !c.contains(x)).unwrap();
        let before = d(&c.iter().copied().collect::<HashSet<u32>>());
        c.insert(fresh);
        prop_assert_ne!(before, d(&c.iter().copied().collect::<HashSet<u32>>()));
    }

    #[test]
    fn different_values_hash_differently(a in any::<Vec<(u8, String)>>(), b in any::<Vec<(u8, String)>>()) {
        prop_assume!(a != b);
        prop_assert_ne!(d(&a), d(&b));
    }

    #[test]
    fn different_maps_hash_differently(
        a in proptest::collection::btree_map(any::<u16>(), any::<bool>(), 0..16),
        b in proptest::collection::btree_map(any::<u16>(), any::<bool>(), 0..16),
    ) {
        prop_assume!(a != b);
        prop_assert_ne!(d(&a), d(&b));
    }

    #[test]
    fn integer_widths_and_signs_are_tagged(x in any::<u32>()) {
        let digests = [
            d(&x), d(&u64::from(x)), d(&u128::from(x)), d(&i64::from(x)),
        ];
        for i in 0..digests.len() {
            for j in i + 1..digests.len() {
                prop_assert_ne!(digests[i], digests[j]);
            }
        }
    }

    #[test]
    fn strings_are_delimited(a in ".{0,8}", b in ".{0,8}", c in ".{0,8}") {
        let (ab, c2) = (format!("{a}{b}"), c.clone());
        let (a2, bc) = (a.clone(), format!("{b}{c}"));
        if ab != a2 {
            prop_assert_ne!(d(&(ab, c2)), d(&(a2, bc)));
        }
    }

    #[test]
    fn floats_hash_by_bit_pattern(x in any::<f64>()) {
        prop_assert_eq!(d(&x), d(&f64::from_bits(x.to_bits())));
        if !x.is_nan() && x != 0.0 {
            prop_assert_ne!(d(&x), d(&-x));
        }
    }
}

#[test]
fn the_examples_of_the_laws() {
    assert_ne!(d(&1u32), d(&1u64));
    assert_ne!(d(&("ab", "c")), d(&("a", "bc")));
    let m: BTreeMap<&str, u8> = [("a", 1), ("b", 2)].into();
    let h: HashMap<&str, u8> = [("b", 2), ("a", 1)].into();
    assert_eq!(d(&m), d(&h));
}
