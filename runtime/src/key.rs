//! Node keys: what a node's output is stored under. A key changes exactly when the output
//! could change: it hashes the key format, the codec, the task's identity (its code
//! fingerprint, the module it is defined in and its output type), the names it runs under
//! if it reads them, the digest of each parameter, and the content digests of the inputs'
//! outputs in argument order. A parameter that names an input file holds its content's
//! digest, taken through the store's stat cache ([`with_input_files`]).

use std::cell::RefCell;
use std::rc::Rc;

use smallvec::SmallVec;

use crate::cache::{ENTRY_FORMAT, NamedDigest, Store};
use crate::files::StatCache;
use crate::hash::{HashError, Seen, Unreadable, resolving};
use crate::task::{HelperMeta, TaskError, TaskMeta};

/// A 32-byte blake3 digest.
pub(crate) type Digest = [u8; 32];

/// The names a node runs under: its pipeline's and its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names<'a> {
    pub(crate) pipeline: &'a str,
    pub(crate) node: &'a str,
}

/// Everything a node key is made of, kept apart so a changed key can be explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Components {
    /// The [`ID`](crate::codec::Codec::ID) of the codec the task's outputs are stored with.
    pub(crate) codec: &'static str,
    /// The task's identity, from [`fingerprint`].
    pub(crate) fingerprint: Digest,
    /// The digest of the pipeline's and the node's names, for a task that can read them
    /// ([`TaskMeta::names_in_key`]).
    pub(crate) names: Option<Digest>,
    /// Each parameter's digest, by name, in argument order.
    pub(crate) params: Vec<(&'static str, Digest)>,
    /// Each input argument's upstream output digests, in argument order.
    pub(crate) inputs: Vec<Vec<Digest>>,
    /// The input files and directories the parameters name, with their content digests
    /// (which the parameters' digests hold), in the order they were met.
    pub(crate) files: Vec<Seen>,
}

/// Why a node's key cannot be made.
#[derive(Debug)]
pub(crate) enum KeyError {
    /// Its parameters cannot be hashed.
    Params(HashError),
    /// An input file or directory its parameters name cannot be read.
    InputFile(Unreadable),
}

impl KeyError {
    /// The error of a node that cannot run for it.
    pub(crate) fn into_task_error(self) -> TaskError {
        match self {
            KeyError::Params(e) => TaskError::Params(e),
            KeyError::InputFile(Unreadable { path, kind, source }) => TaskError::InputFile {
                path,
                kind: kind.as_str(),
                source,
            },
        }
    }
}

/// The key components `compute` makes, with the input files and directories that the
/// parameters name hashed through `store`'s stat cache (read, without a store), and noted
/// in [`Components::files`].
pub(crate) fn with_input_files(
    store: Option<&Store>,
    compute: impl FnOnce() -> Result<Components, HashError>,
) -> Result<Components, KeyError> {
    let (computed, files, failed) = resolving(Rc::new(StatCache::new(store)), compute);
    if let Some(failed) = failed {
        return Err(KeyError::InputFile(failed));
    }
    let mut components = computed.map_err(KeyError::Params)?;
    components.files = files;
    Ok(components)
}

/// The identity of a task in keys, in `meta.json` and in the worker's check: its code
/// fingerprint, the module it is defined in, the name of its output type, and the code
/// fingerprints of the helpers it uses ([`TaskMeta::helpers`]). Two tasks of one name in
/// two modules, or with two output types, never share a key.
///
/// Each thread remembers the last one it made: the nodes of a task, one after the other,
/// have the same. The helpers are a function of the task's `uses` list, a `'static` slice,
/// so that a list at the same address is the same list.
pub(crate) fn fingerprint(meta: &TaskMeta, output_type: &str) -> Digest {
    /// A fingerprint, and what it was made of.
    struct Last {
        fingerprint: [u8; 32],
        module_path: &'static str,
        uses: &'static [fn() -> &'static HelperMeta],
        output_type: String,
        digest: Digest,
    }
    thread_local! {
        static LAST: RefCell<Option<Last>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some(last) = &*last
            && last.fingerprint == meta.fingerprint
            && last.module_path == meta.module_path
            && std::ptr::eq(last.uses, meta.uses.0)
            && last.output_type == output_type
        {
            return last.digest;
        }
        let digest = identity(meta, output_type, &meta.helpers());
        *last = Some(Last {
            fingerprint: meta.fingerprint,
            module_path: meta.module_path,
            uses: meta.uses.0,
            output_type: output_type.to_owned(),
            digest,
        });
        digest
    })
}

/// The identity of task `meta`, whose output type is named `output_type`, if it used the
/// helpers `helpers` (by name, sorted): what [`fingerprint`] is now, or was for an entry
/// written when the task used other helpers.
pub(crate) fn identity(meta: &TaskMeta, output_type: &str, helpers: &[(&str, Digest)]) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(b"pipewright task\0");
    h.update(&meta.fingerprint);
    for text in [meta.module_path, output_type] {
        h.update(&(text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    // Last, and only if there are any, so that a task without helpers keeps its key.
    if !helpers.is_empty() {
        h.update(b"helpers\0");
        h.update(&(helpers.len() as u64).to_le_bytes());
        for (name, digest) in helpers {
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update(digest);
        }
    }
    *h.finalize().as_bytes()
}

impl Components {
    /// The components of node `names` running `meta`, whose output type is named
    /// `output_type` and stored with the codec `codec`, with parameters whose digests are `params`, on inputs whose output
    /// digests are `inputs`.
    pub(crate) fn new(
        meta: &TaskMeta,
        output_type: &str,
        codec: &'static str,
        names: Names<'_>,
        params: Vec<(&'static str, Digest)>,
        inputs: Vec<Vec<Digest>>,
    ) -> Self {
        let names = meta.names_in_key.then(|| {
            let mut h = blake3::Hasher::new();
            for name in [names.pipeline, names.node] {
                h.update(&(name.len() as u64).to_le_bytes());
                h.update(name.as_bytes());
            }
            *h.finalize().as_bytes()
        });
        Components {
            codec,
            fingerprint: fingerprint(meta, output_type),
            names,
            params,
            inputs,
            files: Vec::new(),
        }
    }

    /// The node key. Its bytes are gathered and hashed in one call (the digest of bytes
    /// hashed in parts is that of the parts one after the other): a few hundred bytes, for
    /// which blake3's per-call work would cost more than the hashing.
    pub(crate) fn key(&self) -> Digest {
        let mut bytes: SmallVec<[u8; 512]> = SmallVec::new();
        bytes.extend_from_slice(b"pipewright node key\0");
        bytes.extend_from_slice(&ENTRY_FORMAT.to_le_bytes());
        bytes.extend_from_slice(&(self.codec.len() as u64).to_le_bytes());
        bytes.extend_from_slice(self.codec.as_bytes());
        bytes.extend_from_slice(&self.fingerprint);
        match &self.names {
            Some(names) => {
                bytes.push(1);
                bytes.extend_from_slice(names);
            }
            None => bytes.push(0),
        }
        bytes.extend_from_slice(&(self.params.len() as u64).to_le_bytes());
        for (name, digest) in &self.params {
            bytes.extend_from_slice(&(name.len() as u64).to_le_bytes());
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(digest);
        }
        bytes.extend_from_slice(&(self.inputs.len() as u64).to_le_bytes());
        for input in &self.inputs {
            bytes.extend_from_slice(&(input.len() as u64).to_le_bytes());
            for digest in input {
                bytes.extend_from_slice(digest);
            }
        }
        *blake3::hash(&bytes).as_bytes()
    }

    /// The input files and directories, by path, with their content digests in hex, as
    /// the entry's metadata records them.
    pub(crate) fn file_hex(&self) -> Vec<NamedDigest> {
        self.files
            .iter()
            .map(|file| NamedDigest {
                name: file.path.display().to_string(),
                digest: hex(&file.digest),
            })
            .collect()
    }

    /// The param digests in hex, as `meta.json` records them.
    pub(crate) fn param_hex(&self) -> Vec<(String, String)> {
        self.params
            .iter()
            .map(|(name, d)| ((*name).to_owned(), hex(d)))
            .collect()
    }
}

/// A digest as 64 lowercase hex digits.
pub(crate) fn hex(digest: &Digest) -> String {
    blake3::Hash::from_bytes(*digest)
        .to_hex()
        .as_str()
        .to_owned()
}

/// Reads a digest written as 64 hex digits.
pub(crate) fn parse_hex(text: &str) -> Option<Digest> {
    blake3::Hash::from_hex(text).ok().map(|h| *h.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Codec, DefaultCodec, Json};
    use crate::task::HelperMeta;

    const CODEC: &str = DefaultCodec::ID;

    /// A task named `load` defined in `module`, with or without a `&Ctx`.
    const fn load(module: &'static str, names_in_key: bool) -> TaskMeta {
        TaskMeta {
            names_in_key,
            ..TaskMeta::for_tests("load", module)
        }
    }

    fn key(meta: &TaskMeta, output_type: &str, pipeline: &str, node: &str) -> Digest {
        let names = Names { pipeline, node };
        Components::new(meta, output_type, CODEC, names, Vec::new(), Vec::new()).key()
    }

    #[test]
    fn tasks_of_one_name_in_two_modules_have_two_keys() {
        let a = key(&load("app::a", false), "u64", "p", "n");
        let b = key(&load("app::b", false), "u64", "p", "n");
        assert_ne!(a, b);
        assert_eq!(a, key(&load("app::a", false), "u64", "p", "n"));
    }

    #[test]
    fn tasks_with_two_output_types_have_two_keys() {
        let meta = load("app", false);
        assert_ne!(
            key(&meta, "u64", "p", "n"),
            key(&meta, "(u32, u32)", "p", "n")
        );
    }

    #[test]
    fn names_are_in_the_key_of_a_task_that_reads_them_only() {
        let reads = load("app", true);
        assert_ne!(
            key(&reads, "u64", "p", "north"),
            key(&reads, "u64", "p", "south")
        );
        assert_ne!(
            key(&reads, "u64", "etl", "n"),
            key(&reads, "u64", "elt", "n")
        );
        // The names are length-prefixed: moving a byte from one to the other changes the key.
        assert_ne!(key(&reads, "u64", "ab", "c"), key(&reads, "u64", "a", "bc"));

        let blind = load("app", false);
        assert_eq!(
            key(&blind, "u64", "p", "north"),
            key(&blind, "u64", "q", "south")
        );
    }

    #[test]
    fn tasks_with_two_codecs_have_two_keys() {
        let meta = load("app", false);
        let names = Names {
            pipeline: "p",
            node: "n",
        };
        let with = |codec| Components::new(&meta, "u64", codec, names, Vec::new(), Vec::new());
        assert_ne!(with(DefaultCodec::ID).key(), with(Json::ID).key());
        assert_eq!(with(Json::ID).key(), with(Json::ID).key());
    }

    /// `fn $f() -> &'static HelperMeta`: the helper `$name`, whose own code has the
    /// fingerprint `[$fp; 32]`, using the helpers `$uses`.
    macro_rules! helper {
        ($f:ident, $name:literal, $fp:literal, [$($uses:ident),*]) => {
            fn $f() -> &'static HelperMeta {
                static META: HelperMeta = HelperMeta::__new($name, [$fp; 32], &[$($uses),*]);
                &META
            }
        };
    }

    /// The key's fingerprint of a task that uses `uses`.
    fn using(uses: &'static [fn() -> &'static HelperMeta]) -> Digest {
        fingerprint(&TaskMeta::for_tests("t", "app").__with_helpers(uses), "u64")
    }

    /// The key as stores hold it: its parts hashed one after the other.
    #[test]
    fn a_key_is_the_digest_of_its_parts_in_order() {
        let meta = load("app", true);
        let names = Names {
            pipeline: "p",
            node: "n",
        };
        let params = vec![("x", [3; 32]), ("label", [4; 32])];
        let inputs = vec![vec![[5; 32]], vec![[6; 32], [7; 32]]];
        let components = Components::new(&meta, "u64", CODEC, names, params, inputs);
        let mut h = blake3::Hasher::new();
        h.update(b"pipewright node key\0");
        h.update(&ENTRY_FORMAT.to_le_bytes());
        h.update(&(CODEC.len() as u64).to_le_bytes());
        h.update(CODEC.as_bytes());
        h.update(&fingerprint(&meta, "u64"));
        h.update(&[1]);
        let mut n = blake3::Hasher::new();
        for name in ["p", "n"] {
            n.update(&(name.len() as u64).to_le_bytes());
            n.update(name.as_bytes());
        }
        h.update(n.finalize().as_bytes());
        h.update(&2u64.to_le_bytes());
        for (name, digest) in [("x", [3; 32]), ("label", [4; 32])] {
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update(&digest);
        }
        h.update(&2u64.to_le_bytes());
        h.update(&1u64.to_le_bytes());
        h.update(&[5; 32]);
        h.update(&2u64.to_le_bytes());
        h.update(&[6; 32]);
        h.update(&[7; 32]);
        assert_eq!(components.key(), *h.finalize().as_bytes());
    }

    #[test]
    fn a_fingerprint_remembered_by_a_thread_is_no_other_tasks() {
        let plain = TaskMeta::for_tests("t", "app");
        let elsewhere = TaskMeta::for_tests("t", "lib");
        let helped = plain.__with_helpers(&[chain_a]);
        let fresh = |meta: &TaskMeta, output: &str| identity(meta, output, &meta.helpers());
        for _ in 0..2 {
            for (meta, output) in [
                (&plain, "u64"),
                (&plain, "u32"),
                (&elsewhere, "u32"),
                (&helped, "u32"),
                (&plain, "u32"),
            ] {
                assert_eq!(fingerprint(meta, output), fresh(meta, output));
            }
        }
        assert_ne!(fresh(&plain, "u32"), fresh(&helped, "u32"));
    }

    // A chain: `a` uses `b`, which uses `c`; then the same with `c`, or `b`, edited.
    helper!(chain_a, "a", 1, [chain_b]);
    helper!(chain_b, "b", 2, [chain_c]);
    helper!(chain_c, "c", 3, []);
    helper!(chain_a_c_edited, "a", 1, [chain_b_c_edited]);
    helper!(chain_b_c_edited, "b", 2, [chain_c_edited]);
    helper!(chain_c_edited, "c", 4, []);
    helper!(chain_a_b_edited, "a", 1, [chain_b_edited]);
    helper!(chain_b_edited, "b", 5, [chain_c]);

    #[test]
    fn an_edit_anywhere_down_a_chain_of_helpers_changes_the_task_key() {
        let base = using(&[chain_a]);
        assert_eq!(base, using(&[chain_a]));
        assert_ne!(base, using(&[chain_a_c_edited]));
        assert_ne!(base, using(&[chain_a_b_edited]));
        assert_ne!(using(&[chain_a_c_edited]), using(&[chain_a_b_edited]));
        assert_ne!(base, using(&[]));
        assert_eq!(
            TaskMeta::for_tests("t", "app")
                .__with_helpers(&[chain_a])
                .helpers(),
            [("a", [1; 32]), ("b", [2; 32]), ("c", [3; 32])]
        );
    }

    // A diamond: `top` uses `left` and `right`, which both use `leaf`.
    helper!(top, "top", 1, [left, right]);
    helper!(left, "left", 2, [leaf]);
    helper!(right, "right", 3, [leaf]);
    helper!(leaf, "leaf", 4, []);
    helper!(top_edited, "top", 1, [left_edited, right_edited]);
    helper!(left_edited, "left", 2, [leaf_edited]);
    helper!(right_edited, "right", 3, [leaf_edited]);
    helper!(leaf_edited, "leaf", 5, []);

    #[test]
    fn a_helper_reached_twice_counts_once_and_its_edit_changes_the_task_key() {
        let meta = TaskMeta::for_tests("t", "app").__with_helpers(&[top]);
        assert_eq!(
            meta.helpers(),
            [
                ("leaf", [4; 32]),
                ("left", [2; 32]),
                ("right", [3; 32]),
                ("top", [1; 32])
            ]
        );
        assert_ne!(using(&[top]), using(&[top_edited]));
        // Naming a helper the others reach anyway adds nothing.
        assert_eq!(using(&[top]), using(&[top, leaf, left]));
    }

    // Two helpers that name each other.
    helper!(ping, "ping", 1, [pong]);
    helper!(pong, "pong", 2, [ping]);

    #[test]
    fn helpers_that_name_each_other_are_each_listed_once() {
        let meta = TaskMeta::for_tests("t", "app").__with_helpers(&[ping]);
        assert_eq!(meta.helpers(), [("ping", [1; 32]), ("pong", [2; 32])]);
    }

    #[test]
    fn a_task_without_helpers_keeps_its_key() {
        let meta = TaskMeta::for_tests("t", "app");
        let mut h = blake3::Hasher::new();
        h.update(b"pipewright task\0");
        h.update(&meta.fingerprint);
        for text in ["app", "u64"] {
            h.update(&(text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        assert_eq!(fingerprint(&meta, "u64"), *h.finalize().as_bytes());
    }
}
