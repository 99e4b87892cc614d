//! The nodes of a pipeline in flat vectors, one entry per node in each: every name, task,
//! parameter and edge is kept once, and a node is an index into them ([`Node`]).

use std::any::{Any, TypeId};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use crate::erased::ErasedTask;
use crate::hash::{HashError, Kept};
use crate::key::{Components, Digest, Names};
use crate::task::{NodeNames, Task};

use super::{MapSpec, NodeId};

/// Whether each upstream node is read by one input only, so that the inputs, in argument
/// order, are the distinct upstream nodes themselves.
const DISTINCT_INPUTS: u8 = 1;
/// Whether the canonical encodings of the node's parameters were kept when it was added,
/// one per parameter of its task, in argument order.
const PARAMS_KEPT: u8 = 2;

/// The end of one input argument's nodes in [`Nodes::wired`], and whether the argument
/// gathers them (`&[&T]`) or takes one (`&T`).
#[derive(Debug, Clone, Copy)]
pub(super) struct WireEnd {
    pub(super) end: usize,
    pub(super) many: bool,
}

/// The nodes of a pipeline, but their names ([`NodeNames`]): node `i` is entry `i` of each
/// per-node vector, and its slice of a shared one ends where entry `i` of `ends` (or of
/// `downstream_end`) says, and starts where node `i - 1`'s ends.
#[derive(Default)]
pub(crate) struct Nodes {
    /// The index of nodes by name (the names themselves are in [`NodeNames`]), with half
    /// of each name's hash, from which the index's hash is made again when it grows.
    index: HashTable<(NodeId, u32)>,
    hasher: DefaultHashBuilder,
    pub(super) tasks: Tasks,
    /// Each node's parameters encoded with the default codec, one after the other: what a
    /// worker process, or a pipeline rebuilt from a run record, makes the task from.
    pub(super) params: Vec<u8>,
    /// The canonical encoding of each parameter, made when its node was added, for keys.
    pub(super) kept: Kept,
    /// The nodes each input argument reads, argument after argument.
    pub(super) wired: Vec<NodeId>,
    pub(super) wires: Vec<WireEnd>,
    /// The distinct upstream nodes of the nodes without [`DISTINCT_INPUTS`], in first-use
    /// order (those of the others are their wired nodes).
    pub(super) upstream: Vec<NodeId>,
    /// The distinct downstream nodes, made by [`finish`](Self::finish).
    downstream: Vec<NodeId>,
    downstream_end: Vec<usize>,
    /// Per node: where its slices end, and its flags.
    ends: Vec<Ends>,
    /// The mapped nodes, in the order they were added.
    pub(super) maps: Vec<MapSpec>,
}

/// The tasks of the nodes, each kept by value in a vector of its own type's (a column), so
/// that adding a node allocates nothing for its task.
#[derive(Default)]
pub(crate) struct Tasks {
    columns: Vec<Box<dyn Column>>,
    /// The column of each type, by its `TypeId`.
    by_type: HashMap<TypeId, u32>,
    /// The type and the column of the last task pushed: a graph mostly adds nodes of one
    /// task after the other.
    last: Option<(TypeId, u32)>,
    /// Per node: its task's column, and its place in that column.
    at: Vec<(u32, u32)>,
}

/// A vector of tasks of one type.
trait Column: Send + Sync {
    /// The number of tasks in the column.
    fn len(&self) -> usize;
    /// Task `i` of the column.
    fn get(&self, i: usize) -> &dyn ErasedTask;
    /// The column as a value of its own type.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Frees the room kept for more tasks.
    fn shrink_to_fit(&mut self);
}

impl<T: Task> Column for Vec<T> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn get(&self, i: usize) -> &dyn ErasedTask {
        &self[i]
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn shrink_to_fit(&mut self) {
        Vec::shrink_to_fit(self);
    }
}

/// The column of tasks made elsewhere, by a worker or from a run record, as
/// [`ErasedTask`] objects.
#[derive(Default)]
struct Shared(Vec<Arc<dyn ErasedTask>>);

impl Column for Shared {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, i: usize) -> &dyn ErasedTask {
        &*self.0[i]
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl Tasks {
    /// Adds `task` as the next node's.
    pub(super) fn push<T: Task>(&mut self, task: T) {
        self.push_to::<Vec<T>>(|column| column.push(task));
    }

    /// Adds `task`, made elsewhere, as the next node's.
    pub(super) fn push_shared(&mut self, task: Arc<dyn ErasedTask>) {
        self.push_to::<Shared>(|column| column.0.push(task));
    }

    /// Adds a task to the column of type `C` with `push`, and notes its place as the next
    /// node's.
    fn push_to<C: Column + Default + Any>(&mut self, push: impl FnOnce(&mut C)) {
        let ty = TypeId::of::<C>();
        let column = match self.last {
            Some((last, column)) if last == ty => column,
            _ => self.column(ty, || Box::<C>::default()),
        };
        let Some(tasks) = self.columns[column as usize]
            .as_any_mut()
            .downcast_mut::<C>()
        else {
            unreachable!("a column holds tasks of the type it is found by")
        };
        // A column holds at most every node, and node indices are below `u32::MAX`.
        let place = tasks.len() as u32;
        push(tasks);
        self.at.push((column, place));
    }

    /// The column of the tasks of type `ty`, made by `make` if there is none yet, which the
    /// next task of that type is pushed to as well.
    #[cold]
    fn column(&mut self, ty: TypeId, make: fn() -> Box<dyn Column>) -> u32 {
        let columns = &mut self.columns;
        let column = *self.by_type.entry(ty).or_insert_with(|| {
            columns.push(make());
            (columns.len() - 1) as u32
        });
        self.last = Some((ty, column));
        column
    }

    /// The task of node `i`.
    fn get(&self, i: usize) -> &dyn ErasedTask {
        let (column, place) = self.at[i];
        self.columns[column as usize].get(place as usize)
    }

    /// Frees the room kept for more tasks.
    fn shrink_to_fit(&mut self) {
        for column in &mut self.columns {
            column.shrink_to_fit();
        }
        self.at.shrink_to_fit();
    }
}

/// Where a node's slices of the shared vectors of [`Nodes`] end, and its flags: one entry
/// per node, pushed at once. The counts of kept encodings, input arguments and upstream
/// nodes are at most `u32::MAX` ([`Nodes::fits`]), so 24 bytes hold a node's entry.
#[derive(Debug, Clone, Copy, Default)]
struct Ends {
    /// In [`Nodes::params`].
    params: usize,
    /// In `ends` of [`Nodes::kept`].
    kept: u32,
    /// In [`Nodes::wires`].
    wires: u32,
    /// In [`Nodes::upstream`].
    upstream: u32,
    flags: u8,
}

/// The half of a name's hash that the index keeps: its high bits.
fn half_hash(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// The index's hash of a name whose kept half is `half`: both the bits the index places an
/// entry by (the low ones) and those it tells entries apart by (the top seven) come from it.
fn spread(half: u32) -> u64 {
    u64::from(half) << 32 | u64::from(half)
}

/// The start of node `i`'s slice of a shared vector whose ends are `ends`.
fn start(ends: &[usize], i: usize) -> usize {
    i.checked_sub(1).map_or(0, |j| ends[j])
}

impl Nodes {
    /// The number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.tasks.at.len()
    }

    /// The node named `name`, its names being `names`.
    pub(crate) fn find(&self, names: &NodeNames, name: &str) -> Option<NodeId> {
        let hash = half_hash(self.hasher.hash_one(name));
        self.find_hashed(names, name, hash)
    }

    fn find_hashed(&self, names: &NodeNames, name: &str, hash: u32) -> Option<NodeId> {
        self.index
            .find(spread(hash), |&(id, h)| {
                h == hash && names.get(id.index()) == name
            })
            .map(|&(id, _)| id)
    }

    /// The hash of `name` in the index, and whether no node has that name yet.
    pub(super) fn is_new(&self, names: &NodeNames, name: &str) -> (u32, bool) {
        let hash = half_hash(self.hasher.hash_one(name));
        (hash, self.find_hashed(names, name, hash).is_none())
    }

    /// Indexes node `id`, whose name has the hash `hash`.
    pub(super) fn index(&mut self, id: NodeId, hash: u32) {
        self.index
            .insert_unique(spread(hash), (id, hash), |&(_, h)| spread(h));
    }

    /// Where node `i`'s slices start: where node `i - 1`'s end, which is closed.
    fn starts(&self, i: usize) -> Ends {
        i.checked_sub(1)
            .map_or_else(Ends::default, |j| self.ends[j])
    }

    /// Where node `i`'s wired nodes start in `wired`; node `i - 1` is closed.
    fn wired_start(&self, i: usize) -> usize {
        match self.starts(i).wires as usize {
            0 => 0,
            w => self.wires[w - 1].end,
        }
    }

    /// Whether one more node fits, with `wires` input arguments that read `wired` nodes in
    /// all, its parameters' encodings kept: there are at most `u32::MAX` nodes (the last
    /// one's index is below it), and at most as many kept encodings, input arguments and
    /// upstream nodes, which [`Ends`] counts in `u32`s.
    pub(super) fn fits(&self, wires: usize, wired: usize) -> bool {
        let most = u32::MAX as usize;
        self.len() < most
            && self.kept.ends.len() <= most
            && self.wires.len().saturating_add(wires) <= most
            && self.upstream.len().saturating_add(wired) <= most
    }

    /// Closes the entries of the last node, whose task, parameters and wires were pushed:
    /// finds its distinct upstream nodes, and notes whether the canonical encodings of its
    /// parameters were kept. `seen` holds no entry equal to the node's index plus one.
    pub(super) fn close(&mut self, params_kept: bool, seen: &mut Vec<u32>) {
        let i = self.ends.len();
        let first = self.wired_start(i);
        // Node indices are below `u32::MAX`, so the mark is never 0, which no node is.
        let mark = i as u32 + 1;
        if first < self.wired.len() {
            seen.resize(i, 0);
        }
        let mut distinct = true;
        for id in &self.wired[first..] {
            let seen = &mut seen[id.index()];
            distinct &= *seen != mark;
            *seen = mark;
        }
        if !distinct {
            // Once more, keeping each node the first time it is met.
            for k in first..self.wired.len() {
                let id = self.wired[k];
                if seen[id.index()] == mark {
                    seen[id.index()] = 0;
                    self.upstream.push(id);
                }
            }
        }
        let kept = if params_kept { PARAMS_KEPT } else { 0 };
        // Each count was checked to fit in a `u32` by `fits`.
        self.ends.push(Ends {
            params: self.params.len(),
            kept: self.kept.ends.len() as u32,
            wires: self.wires.len() as u32,
            upstream: self.upstream.len() as u32,
            flags: kept | if distinct { DISTINCT_INPUTS } else { 0 },
        });
    }

    /// The distinct upstream nodes of node `i`, in first-use order.
    fn upstream_of(&self, i: usize) -> &[NodeId] {
        if self.ends[i].flags & DISTINCT_INPUTS != 0 {
            &self.wired[self.wired_start(i)..self.wired_start(i + 1)]
        } else {
            &self.upstream[self.starts(i).upstream as usize..self.ends[i].upstream as usize]
        }
    }

    /// Makes the lists of downstream nodes, once every node is added, and frees the room
    /// kept for more nodes.
    pub(super) fn finish(&mut self) {
        let n = self.len();
        // `at[i]` is where node `i`'s children start, then, as they are placed, where its
        // next child goes: in the end, where they end.
        let mut at = vec![0usize; n + 1];
        for i in 0..n {
            for up in self.upstream_of(i) {
                at[up.index() + 1] += 1;
            }
        }
        for i in 0..n {
            at[i + 1] += at[i];
        }
        let mut downstream = vec![NodeId(0); at[n]];
        for i in 0..n {
            for up in self.upstream_of(i) {
                downstream[at[up.index()]] = NodeId::at(i);
                at[up.index()] += 1;
            }
        }
        at.truncate(n);
        self.downstream = downstream;
        self.downstream_end = at;
        self.tasks.shrink_to_fit();
        self.params.shrink_to_fit();
        self.kept.bytes.shrink_to_fit();
        self.kept.ends.shrink_to_fit();
        self.wired.shrink_to_fit();
        self.wires.shrink_to_fit();
        self.upstream.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.maps.shrink_to_fit();
    }

    /// What node `id` maps over, if it is a mapped node.
    pub(crate) fn map(&self, id: NodeId) -> Option<&MapSpec> {
        Some(&self.maps[self.map_index(id)?])
    }

    /// The position of node `id` among the mapped nodes, if it is one.
    pub(crate) fn map_index(&self, id: NodeId) -> Option<usize> {
        self.maps.binary_search_by_key(&id, |m| m.node).ok()
    }

    /// The mapped nodes, in the order they were added.
    pub(crate) fn maps(&self) -> &[MapSpec] {
        &self.maps
    }

    /// Node `id`, its names being `names`.
    pub(crate) fn at<'a>(&'a self, names: &'a NodeNames, id: NodeId) -> Node<'a> {
        Node {
            names,
            nodes: self,
            i: id.index(),
        }
    }

    /// Every node, in the order they were added, their names being `names`.
    pub(crate) fn iter<'a>(
        &'a self,
        names: &'a NodeNames,
    ) -> impl ExactSizeIterator<Item = Node<'a>> + 'a {
        (0..self.len()).map(move |i| Node {
            names,
            nodes: self,
            i,
        })
    }
}

/// How one input argument of a node is wired: to one upstream node or to many.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wire<'a> {
    One(&'a NodeId),
    Many(&'a [NodeId]),
}

impl<'a> Wire<'a> {
    /// The nodes the input reads, in order.
    pub(crate) fn ids(&self) -> &'a [NodeId] {
        match *self {
            Wire::One(id) => std::slice::from_ref(id),
            Wire::Many(ids) => ids,
        }
    }
}

/// One node of a pipeline: an index into its [`Nodes`].
#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    names: &'a NodeNames,
    nodes: &'a Nodes,
    i: usize,
}

impl<'a> Node<'a> {
    pub(crate) fn id(self) -> NodeId {
        NodeId::at(self.i)
    }

    pub(crate) fn name(self) -> &'a str {
        self.names.get(self.i)
    }

    pub(crate) fn task(self) -> &'a dyn ErasedTask {
        self.nodes.tasks.get(self.i)
    }

    /// The task's parameters encoded with the default codec: what a worker process, or a
    /// pipeline rebuilt from a run record, makes the task from.
    pub(crate) fn params(self) -> &'a [u8] {
        let start = self.nodes.starts(self.i).params;
        &self.nodes.params[start..self.nodes.ends[self.i].params]
    }

    /// How each input argument is wired, in argument order.
    pub(crate) fn wires(self) -> impl ExactSizeIterator<Item = Wire<'a>> + 'a {
        let nodes = self.nodes;
        let first = nodes.starts(self.i).wires as usize;
        let mut from = nodes.wired_start(self.i);
        nodes.wires[first..nodes.ends[self.i].wires as usize]
            .iter()
            .map(move |wire| {
                let ids = &nodes.wired[from..wire.end];
                from = wire.end;
                match (wire.many, ids) {
                    (false, [id]) => Wire::One(id),
                    _ => Wire::Many(ids),
                }
            })
    }

    /// How input argument `i` is wired.
    ///
    /// # Panics
    ///
    /// If the task has no input argument `i`.
    pub(crate) fn wire(self, i: usize) -> Wire<'a> {
        self.wires()
            .nth(i)
            .unwrap_or_else(|| panic!("node `{}` has no input {i}", self.name()))
    }

    /// The distinct upstream nodes, in first-use order.
    pub(crate) fn upstream(self) -> &'a [NodeId] {
        self.nodes.upstream_of(self.i)
    }

    /// What this node maps over, if it is a mapped node.
    pub(crate) fn map(self) -> Option<&'a MapSpec> {
        if self.nodes.maps.is_empty() {
            return None;
        }
        self.nodes.map(self.id())
    }

    /// The distinct downstream nodes, in the order they were added.
    pub(crate) fn downstream(self) -> &'a [NodeId] {
        let ends = &self.nodes.downstream_end;
        &self.nodes.downstream[start(ends, self.i)..ends[self.i]]
    }

    /// Whether each upstream node is read by one input only, so that the inputs, in
    /// argument order, are [`upstream`](Self::upstream) itself.
    pub(crate) fn distinct_inputs(self) -> bool {
        self.nodes.ends[self.i].flags & DISTINCT_INPUTS != 0
    }

    /// The key components of this node of pipeline `pipeline`, on inputs with the given
    /// output digests. The parameters' digests are those of the canonical encodings kept
    /// when the node was added, if they were.
    pub(crate) fn components(
        self,
        pipeline: &str,
        inputs: Vec<Vec<Digest>>,
    ) -> Result<Components, HashError> {
        let names = Names {
            pipeline,
            node: self.name(),
        };
        let task = self.task();
        if self.nodes.ends[self.i].flags & PARAMS_KEPT == 0 {
            return task.components(names, inputs);
        }
        let meta = task.meta();
        let first = self.nodes.starts(self.i).kept as usize;
        let params = meta
            .params
            .iter()
            .enumerate()
            .map(|(j, name)| {
                (
                    *name,
                    *blake3::hash(self.nodes.kept.get(first + j)).as_bytes(),
                )
            })
            .collect();
        Ok(Components::new(
            meta,
            task.output_type(),
            task.codec(),
            names,
            params,
            inputs,
        ))
    }

    /// The output digests of this node's inputs, in argument order.
    pub(crate) fn input_digests(self, digest: impl Fn(NodeId) -> Digest) -> Vec<Vec<Digest>> {
        self.wires()
            .map(|wire| wire.ids().iter().map(|id| digest(*id)).collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use crate::erased::ErasedTask;
    use crate::graph::value::Constant;
    use crate::graph::{NodeId, Pipeline, Wire};

    /// The key components of node `id`, and those its task computes on its own, as a
    /// worker does.
    fn both(p: &Pipeline, id: NodeId) -> (crate::key::Components, crate::key::Components) {
        let node = p.node_at(id);
        let names = crate::key::Names {
            pipeline: p.name(),
            node: node.name(),
        };
        let kept = node.components(p.name(), Vec::new()).unwrap();
        let asked = node.task().components(names, Vec::new()).unwrap();
        (kept, asked)
    }

    #[test]
    fn a_value_keeps_the_encoding_its_task_would_hash() {
        let mut b = Pipeline::builder("values");
        let set = b.value("set", HashSet::from([3u32, 1, 2])).unwrap();
        let text = b.value("text", "abc".to_owned()).unwrap();
        let p = b.build();
        for id in [set.id(), text.id()] {
            // Kept when the node was added, not asked of the task.
            assert_ne!(p.nodes.ends[id.index()].flags & super::PARAMS_KEPT, 0);
            let (kept, asked) = both(&p, id);
            assert_eq!(kept.params.len(), 1);
            assert_eq!(kept, asked);
            assert_eq!(kept.key(), asked.key());
        }
        // The value's encoding is the task's, as workers and records decode it.
        let bytes = <crate::codec::DefaultCodec as crate::codec::Codec>::encode("abc").unwrap();
        assert_eq!(p.node_at(text.id()).params(), bytes.as_slice());
    }

    #[test]
    fn each_node_runs_its_own_task_whatever_order_the_task_types_come_in() {
        let mut b = Pipeline::builder("columns");
        b.value("a", 1u32).unwrap();
        b.value("b", "two".to_owned()).unwrap();
        b.value("c", 3u32).unwrap();
        // A task made elsewhere, as a pipeline rebuilt from a run record has.
        let shared: Arc<dyn ErasedTask> = Arc::new(Constant { value: 4u8 });
        b.add_node("d", shared, &[4], &[]).unwrap();
        b.value("e", vec![5u8]).unwrap();
        b.value("f", 6u32).unwrap();
        let shared: Arc<dyn ErasedTask> = Arc::new(Constant { value: 7i64 });
        b.add_node("g", shared, &[14], &[]).unwrap();
        b.value("h", "eight".to_owned()).unwrap();
        let p = b.build();
        let tasks: Vec<String> = (0..p.len())
            .map(|i| {
                let node = p.node_at(NodeId::at(i));
                format!("{} {:?}", node.name(), node.task().params())
            })
            .collect();
        assert_eq!(
            tasks,
            [
                "a Constant { value: 1 }",
                "b Constant { value: \"two\" }",
                "c Constant { value: 3 }",
                "d Constant { value: 4 }",
                "e Constant { value: [5] }",
                "f Constant { value: 6 }",
                "g Constant { value: 7 }",
                "h Constant { value: \"eight\" }",
            ]
        );
        // Each node's parameters stay its own too.
        assert_eq!(p.node_at(NodeId::at(6)).params(), [14]);
        let eight = <crate::codec::DefaultCodec as crate::codec::Codec>::encode("eight").unwrap();
        assert_eq!(p.node_at(NodeId::at(7)).params(), eight.as_slice());
    }

    #[test]
    fn each_node_keeps_its_own_inputs_after_nodes_without_any() {
        let mut b = Pipeline::builder("ends");
        let a = b.value("a", 1u32).unwrap().id();
        let c = b.value("c", 2u32).unwrap().id();
        let task: Arc<dyn ErasedTask> = Arc::new(Constant { value: 0u8 });
        let wires = [Wire::One(&a), Wire::Many(&[c, a])];
        let d = b.add_node("d", task.clone(), &[0], &wires).unwrap();
        let e = b.value("e", 3u32).unwrap().id();
        let f = b
            .add_node("f", task, &[9], &[Wire::Many(&[d, e, d])])
            .unwrap();
        let p = b.build();
        let ids = |node: super::Node<'_>| -> Vec<Vec<NodeId>> {
            node.wires().map(|wire| wire.ids().to_vec()).collect()
        };
        assert_eq!(ids(p.node_at(d)), [vec![a], vec![c, a]]);
        assert_eq!(p.node_at(d).upstream(), [a, c]);
        assert!(!p.node_at(d).distinct_inputs());
        assert_eq!(ids(p.node_at(e)), Vec::<Vec<NodeId>>::new());
        assert_eq!(ids(p.node_at(f)), [vec![d, e, d]]);
        assert_eq!(p.node_at(f).upstream(), [d, e]);
        assert_eq!(p.node_at(f).params(), [9]);
        assert_eq!(p.node_at(a).downstream(), [d]);
        assert_eq!(p.node_at(c).downstream(), [d]);
        assert_eq!(p.node_at(d).downstream(), [f]);
        assert_eq!(p.node_at(e).downstream(), [f]);
    }

    #[test]
    fn a_node_fits_while_its_counts_fit_in_a_u32() {
        let nodes = super::Nodes::default();
        let most = u32::MAX as usize;
        assert!(nodes.fits(most, most));
        assert!(!nodes.fits(most + 1, 0));
        assert!(!nodes.fits(0, most + 1));
        assert!(!nodes.fits(0, usize::MAX));
        assert_eq!(std::mem::size_of::<super::Ends>(), 24);
    }
}
