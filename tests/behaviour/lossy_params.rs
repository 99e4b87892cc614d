//! A parameter that does not come back intact from its encoding would give one key to
//! different values, or reach a worker process changed: `Builder::add` refuses it, naming the
//! node, the task, the parameter and why, and `pipeline!`'s pipeline refuses to run.
//! Values that do survive are not refused, whatever their `Debug` order or their NaNs.

use std::collections::{HashMap, HashSet};
use std::error::Error as _;

use pipewright::prelude::*;
use pipewright::{Error, ParamLoss};
use serde::{Deserialize, Serialize, Serializer};

/// A field serde skips: two values that differ in it encode alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Skipping {
    kept: u32,
    #[serde(skip)]
    skipped: u32,
}

/// The same without `PartialEq`: compared by `Debug` text.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SkippingNoEq {
    kept: u32,
    #[serde(skip)]
    skipped: u32,
}

/// Two variants with one payload: untagged, they encode alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Side {
    Left(u32),
    Right(u32),
}

/// A set serialized in its iteration order, which the hash cannot see is a set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Bag(HashSet<u64>);

impl Serialize for Bag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

/// No `PartialEq`, a map whose `Debug` order varies, and a NaN: all of it survives.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Settings {
    weights: HashMap<String, u32>,
    tags: HashSet<String>,
    threshold: f64,
}

#[task]
fn skipping(p: Skipping) -> u32 {
    p.kept + p.skipped
}

#[task]
fn skipping_no_eq(p: SkippingNoEq) -> u32 {
    p.kept + p.skipped
}

#[task]
fn side(first: u8, side: Side) -> u32 {
    u32::from(first)
        + match side {
            Side::Left(x) => x,
            Side::Right(x) => x + 1,
        }
}

#[task]
fn json(value: serde_json::Value) -> String {
    value.to_string()
}

#[task]
fn bag(bag: Bag) -> usize {
    bag.0.len()
}

#[task]
fn settings(settings: Settings, nan: f64, pair: (f32, f64)) -> usize {
    settings.weights.len() + settings.tags.len() + usize::from(nan.is_nan() && pair.0.is_nan())
}

/// The error `Builder::add` returns for `bound`, with its source.
fn refusal<T: Task>(bound: pipewright::Bound<T>) -> (Error, String) {
    let mut b = Pipeline::builder("lossy");
    let error = b.add("n", bound).unwrap_err();
    let source = error.source().expect("the error has a source").to_string();
    (error, source)
}

#[test]
fn a_skipped_field_is_refused_by_partial_eq() {
    let (error, source) = refusal(skipping::node(Skipping {
        kept: 1,
        skipped: 2,
    }));
    assert!(
        matches!(
            &error,
            Error::LossyParam { node, task: "skipping", param: "p", source: ParamLoss::Changed { .. } }
                if node == "n"
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "parameter `p` of node `n` (task `skipping`) does not survive encoding"
    );
    assert_eq!(
        source,
        "it comes back as `Skipping { kept: 1, skipped: 0 }` instead of \
         `Skipping { kept: 1, skipped: 2 }`"
    );
}

#[test]
fn a_skipped_field_is_refused_by_debug_text() {
    let (error, source) = refusal(skipping_no_eq::node(SkippingNoEq {
        kept: 1,
        skipped: 2,
    }));
    assert!(
        matches!(
            &error,
            Error::LossyParam {
                task: "skipping_no_eq",
                param: "p",
                source: ParamLoss::Changed { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(source.contains("skipped: 0"), "{source}");
}

#[test]
fn an_untagged_enum_is_refused_with_the_codec_reason() {
    let (error, source) = refusal(side::node(7, Side::Right(3)));
    assert!(
        matches!(
            &error,
            Error::LossyParam {
                task: "side",
                param: "side",
                source: ParamLoss::Decode(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        source.starts_with("the codec cannot decode it: "),
        "{source}"
    );
    // The codec's own reason: bincode cannot decode a format that describes itself.
    assert!(source.contains("AnyNotSupported"), "{source}");
}

#[test]
fn a_json_value_is_refused() {
    let (error, _) = refusal(json::node(serde_json::json!({ "a": [1, 2] })));
    assert!(
        matches!(
            &error,
            Error::LossyParam {
                param: "value",
                source: ParamLoss::Decode(_),
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn an_unordered_collection_the_hash_cannot_see_is_refused() {
    let (error, source) = refusal(bag::node(Bag((0..200).collect())));
    assert!(
        matches!(
            &error,
            Error::LossyParam {
                param: "bag",
                source: ParamLoss::HashChanged,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(source.contains("hash changes"), "{source}");
}

#[test]
fn maps_sets_and_nans_are_not_refused() {
    let settings_value = Settings {
        weights: (0..100).map(|i| (format!("w{i}"), i)).collect(),
        tags: (0..100).map(|i| format!("t{i}")).collect(),
        threshold: f64::NAN,
    };
    let mut b = Pipeline::builder("fine");
    let h = b
        .add(
            "s",
            settings::node(settings_value, f64::NAN, (f32::NAN, -f64::NAN)),
        )
        .unwrap();
    let p = b.build();
    let run = Runner::in_memory().run(&p).unwrap();
    assert_eq!(*run.get(h).unwrap(), 201);
}

#[test]
fn a_pipeline_with_a_refused_parameter_does_not_run() {
    let p = pipeline! {
        name = "lossy-macro";
        let fine = bag(Bag(HashSet::new()));
        let lossy = skipping(Skipping { kept: 1, skipped: 2 });
    };
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::new(dir.path());
    for error in [runner.run(&p).unwrap_err(), runner.plan(&p).unwrap_err()] {
        assert_eq!(
            error.to_string(),
            "parameter `p` of node `lossy` (task `skipping`) does not survive encoding"
        );
    }
    // Nothing ran, so nothing was stored.
    assert!(!dir.path().join("skipping").exists());
    assert!(!dir.path().join("bag").exists());
}
