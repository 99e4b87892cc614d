//! Mapped nodes: [`Mapped`], the handle of a node that runs once per element of a list made
//! at run time, [`Over`], what a map goes over, and what the executor reads of a mapped node
//! ([`MapSpec`]).

use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;

use crate::hash::HashError;
use crate::task::Value;

use super::NodeId;

/// The id an element's handle carries inside a map's body: no node has it, so the builder
/// finds the element's input by it, and refuses it anywhere else.
pub(crate) const ELEMENT: NodeId = NodeId(u32::MAX);

/// A typed reference to a mapped node: a node that runs once per element of a list known
/// only at run time, each run a *branch* with an output `T`.
///
/// Returned by [`Builder::map`](crate::Builder::map). Pass it to a task's `node`
/// constructor where a gathered `&[&T]` input is expected, to take every branch's output in
/// order, or map over it again (branch `i` then takes branch `i`'s output); read the
/// branches' outputs with [`RunReport::branches`](crate::RunReport::branches). It is not a
/// [`Handle`](crate::Handle): it cannot be passed where a single `&T` is expected. It is
/// `Copy`.
pub struct Mapped<T> {
    pub(crate) pipeline: u64,
    pub(crate) id: NodeId,
    _output: PhantomData<fn() -> T>,
}

impl<T> Mapped<T> {
    pub(crate) fn new(pipeline: u64, id: NodeId) -> Self {
        Mapped {
            pipeline,
            id,
            _output: PhantomData,
        }
    }

    /// The mapped node: the node that stands for every branch in the pipeline's graph.
    pub fn id(self) -> NodeId {
        self.id
    }
}

impl<T> Clone for Mapped<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Mapped<T> {}

impl<T> fmt::Debug for Mapped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mapped<{}>(#{})", type_name::<T>(), self.id.0)
    }
}

/// What [`Builder::map`](crate::Builder::map) goes over, giving its body a `Handle<T>` to
/// each element: the [`Handle`](crate::Handle) of a node whose output is a `Vec<T>` (one
/// branch per element), or a [`Mapped<T>`] node (branch `i` takes branch `i`'s output).
#[diagnostic::on_unimplemented(
    message = "a map goes over a node whose output is a `Vec`, or over a mapped node, and `{Self}` is neither",
    label = "not a list of elements",
    note = "each branch takes one element: map over a node whose task returns a `Vec<T>`, or over another map"
)]
pub trait Over<T> {
    #[doc(hidden)]
    fn __over(self) -> OverSpec;
}

impl<T> Over<T> for super::Handle<Vec<T>>
where
    T: Serialize + Send + Sync + 'static,
{
    fn __over(self) -> OverSpec {
        OverSpec {
            pipeline: self.pipeline,
            id: self.id,
            elements: Some(Elements::of::<T>()),
        }
    }
}

impl<T> Over<T> for Mapped<T> {
    fn __over(self) -> OverSpec {
        OverSpec {
            pipeline: self.pipeline,
            id: self.id,
            elements: None,
        }
    }
}

/// The node a map goes over, as [`Over`] describes it to the builder.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct OverSpec {
    pub(crate) pipeline: u64,
    pub(crate) id: NodeId,
    /// How to read the elements of its `Vec` output; none for a mapped node.
    pub(crate) elements: Option<Elements>,
}

/// How the elements of a `Vec<T>` output are read without knowing `T`: functions made for
/// the `T` of each map, so that an element is read in place, never cloned, and hashed as
/// its own type.
#[derive(Clone, Copy)]
pub(crate) struct Elements {
    /// The number of elements.
    pub(crate) len: fn(&Value) -> usize,
    /// Element `i`.
    pub(crate) get: fn(&Value, usize) -> &Value,
    /// The canonical digest of element `i`: a branch's identity. Canonical, not through
    /// the codec of the task that made the list, which a handle does not know: the same
    /// encoding parameters are hashed with, whatever codec stores the list.
    pub(crate) digest: fn(&Value, usize) -> Result<[u8; 32], HashError>,
}

impl Elements {
    fn of<T: Serialize + Send + Sync + 'static>() -> Self {
        Elements {
            len: |list| vec_of::<T>(list).len(),
            get: |list, i| &vec_of::<T>(list)[i],
            digest: |list, i| crate::hash::canonical_digest(&vec_of::<T>(list)[i]),
        }
    }
}

impl fmt::Debug for Elements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Elements")
    }
}

/// `list` as the `Vec<T>` it is: the typed builder made the map over a node with that
/// output, so anything else is a bug of pipewright and panics (the executor turns the
/// panic into a failed node).
fn vec_of<T: 'static>(list: &Value) -> &Vec<T> {
    list.downcast_ref::<Vec<T>>().unwrap_or_else(|| {
        panic!(
            "a mapped-over output is not a `Vec<{}>`: the graph was wired wrongly",
            type_name::<T>()
        )
    })
}

/// What the executor reads of a mapped node.
#[derive(Debug, Clone)]
pub(crate) struct MapSpec {
    /// The mapped node.
    pub(crate) node: NodeId,
    /// The node it goes over.
    pub(crate) over: NodeId,
    /// The input arguments that take the element, wired to `over` in the graph.
    pub(crate) element_inputs: Box<[usize]>,
    /// How to read the elements of `over`'s output; none if `over` is a mapped node, whose
    /// branches are the elements.
    pub(crate) elements: Option<Elements>,
}

/// The name of branch `i` of mapped node `node`, as reports show it.
pub(crate) fn branch_name(node: &str, i: usize) -> String {
    format!("{node}[{i}]")
}

/// The mapped node and position that the branch name `name` (`counts[3]`) stands for: the
/// position written as reports write it, in plain digits without a leading zero.
pub(crate) fn branch_of(name: &str) -> Option<(&str, usize)> {
    let (mapped, rest) = name.strip_suffix(']')?.rsplit_once('[')?;
    let plain = rest.bytes().all(|b| b.is_ascii_digit()) && (rest == "0" || !rest.starts_with('0'));
    Some((mapped, rest.parse().ok().filter(|_| plain)?))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Elements;
    use crate::task::Value;

    #[test]
    fn elements_are_read_in_place_and_hashed_as_their_own_type() {
        let read = Elements::of::<String>();
        let list: Arc<Value> = Arc::new(vec!["a".to_owned(), "bb".to_owned()]);
        assert_eq!((read.len)(&*list), 2);
        let second = (read.get)(&*list, 1).downcast_ref::<String>().unwrap();
        assert_eq!(second, "bb");
        // The very element of the list, not a copy.
        let vec = list.downcast_ref::<Vec<String>>().unwrap();
        assert!(std::ptr::eq(second, &vec[1]));
        assert_eq!(
            (read.digest)(&*list, 1).unwrap(),
            crate::hash::canonical_digest(&"bb".to_owned()).unwrap()
        );
    }
}
