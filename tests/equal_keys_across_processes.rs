//! Equal sets and maps give equal node keys in every process, at any depth of a parameter:
//! the parameter itself, a struct field, a `Vec` element, an `Option`, a map's value. Each
//! process builds its own `HashSet`s and `HashMap`s (with its own random hasher keys, so in
//! its own iteration order) from elements handed over in a fixed order.
//!
//! This file has its own `main`: the test re-runs its own executable as the second process
//! (`PIPEWRIGHT_CHILD=<elements file>`), which prints its keys.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use pipewright::prelude::*;
use pipewright::{Decision, Error};

mod support;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Holder {
    set: HashSet<u64>,
    map: HashMap<String, u32>,
}

#[task]
fn top(set: HashSet<u64>, map: HashMap<String, u32>) -> usize {
    set.len() + map.len()
}

#[task]
fn in_struct(holder: Holder) -> usize {
    holder.set.len() + holder.map.len()
}

#[task]
fn in_vec(sets: Vec<HashSet<u64>>, maps: Vec<HashMap<String, u32>>) -> usize {
    sets.len() + maps.len()
}

#[task]
fn in_option(set: Option<HashSet<u64>>, map: Option<HashMap<String, u32>>) -> usize {
    usize::from(set.is_some()) + usize::from(map.is_some())
}

#[task]
fn deeper(holders: Vec<Option<Holder>>, by_tag: HashMap<u8, HashSet<u64>>) -> usize {
    holders.len() + by_tag.len()
}

/// The elements of the sets and maps, in a fixed order.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Elements {
    set: Vec<u64>,
    map: Vec<(String, u32)>,
}

/// A pipeline whose parameters are sets and maps of `elements`, inserted in their order,
/// or in reverse.
fn pipeline(elements: &Elements, reverse: bool) -> Result<Pipeline, Error> {
    let set = || -> HashSet<u64> {
        let mut set = HashSet::new();
        let mut items = elements.set.clone();
        if reverse {
            items.reverse();
        }
        set.extend(items);
        set
    };
    let map = || -> HashMap<String, u32> {
        let mut map = HashMap::new();
        let mut items = elements.map.clone();
        if reverse {
            items.reverse();
        }
        map.extend(items);
        map
    };
    let holder = || Holder {
        set: set(),
        map: map(),
    };
    let mut b = Pipeline::builder("equal-keys");
    b.add("top", top::node(set(), map()))?;
    b.add("in_struct", in_struct::node(holder()))?;
    b.add(
        "in_vec",
        in_vec::node(vec![set(), set()], vec![map(), map()]),
    )?;
    b.add("in_option", in_option::node(Some(set()), Some(map())))?;
    let by_tag = (0..4).map(|tag| (tag, set())).collect();
    b.add(
        "deeper",
        deeper::node(vec![None, Some(holder()), Some(holder())], by_tag),
    )?;
    Ok(b.build())
}

/// Every node's key, `node=key`, in the pipeline's order.
fn keys(p: &Pipeline) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let plan = Runner::new(dir.path()).plan(p).unwrap();
    plan.nodes()
        .iter()
        .map(|planned| match &planned.decision {
            Decision::Run { key: Some(key), .. } => format!("{}={key}", planned.node),
            other => panic!("node `{}` is not to run: {other:?}", planned.node),
        })
        .collect()
}

/// The keys the other process computes for `elements`.
fn keys_in_child(elements: &Elements, dir: &Path) -> Vec<String> {
    let file = dir.join("elements.json");
    std::fs::write(&file, serde_json::to_vec(elements).unwrap()).unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .env("PIPEWRIGHT_CHILD", &file)
        .output()
        .unwrap();
    assert!(output.status.success(), "child failed: {output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn equal_sets_and_maps_give_equal_keys_in_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let elements = (
        proptest::collection::vec(any::<u64>(), 0..32),
        proptest::collection::btree_map(".{0,8}", any::<u32>(), 0..32),
    )
        .prop_map(|(set, map): (Vec<u64>, BTreeMap<String, u32>)| Elements {
            set,
            map: map.into_iter().collect(),
        });
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&elements, |elements| {
            let here = keys(
                &pipeline(&elements, true)
                    .map_err(|e| TestCaseError::fail(format!("the pipeline is refused: {e}")))?,
            );
            let there = keys_in_child(&elements, dir.path());
            prop_assert_eq!(here, there);
            Ok(())
        })
        .unwrap();
}

fn main() -> std::process::ExitCode {
    if let Some(file) = std::env::var_os("PIPEWRIGHT_CHILD") {
        let elements: Elements = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        for key in keys(&pipeline(&elements, false).unwrap()) {
            println!("{key}");
        }
        return std::process::ExitCode::SUCCESS;
    }
    support::run_scenarios(&[(
        "equal_sets_and_maps_give_equal_keys_in_two_processes",
        equal_sets_and_maps_give_equal_keys_in_two_processes,
    )])
}
