#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

/// Makes a plain function a task of a pipeline.
///
/// The function stays as written, callable and unit-testable. Beside it, `#[task]` adds:
///
/// - a braced struct of the same name holding the function's parameters (its owned
///   arguments), which implements [`Task`]: `normalize { norm: Norm::L1 }`;
/// - an associated function `node` taking the function's arguments with a [`Handle`] in
///   place of each input, for [`Builder::add`]: `normalize::node(rows, Norm::L1)`;
/// - an entry in the registry of tasks under the task's name ([`find_task`]).
///
/// Arguments are sorted by type: `&T` is an input (the output of one upstream node), `&[&T]`
/// a gathered input (the outputs of any number of upstream nodes), `&Ctx` the optional
/// context, and any owned type a parameter. The function returns `T` or `Result<T, E>`
/// (where `E` converts into `Box<dyn Error + Send + Sync>`); the output is `T`.
///
/// The task's fingerprint, taken at compile time, hashes its name, the tokens of the
/// function (formatting, comments and doc comments left out) and its `version`. It sees the
/// code of the helpers named in `uses` (see [`macro@helper`]), and no other code the task
/// calls: bump `version` when such code changes. A node's key adds the task's module and
/// output type, the fingerprints of its helpers, and, for a task that takes `&Ctx`, its
/// pipeline's and its node's names ([`Ctx::node`]). Two tasks of one name in one program
/// are refused when a pipeline uses either: give one a `name`.
///
/// # Options
///
/// - `name = "load-csv"`: the task's name in the registry and in the store (default: the
///   function's name). ASCII letters, digits, `_`, `-` and `.`.
/// - `version = "2"` (or `version = 2`): a salt for the fingerprint (default: none).
/// - `cache = false`: never reuse a stored output of this task (default: `true`).
/// - `retries = 3`: how often a failed run is tried again (default: 0).
/// - `timeout = "30s"`: how long one run may take, in humantime syntax (default: none).
/// - `cpus = 4`, `mem = "8G"`, `time = "2h"`: resource hints for cluster executors.
/// - `uses = [parse_row, util::clean]`: the helpers the task calls, whose code goes into
///   its key (default: none); each must be marked [`#[helper]`](macro@helper).
/// - `codec = pipewright::codec::Json`: how the task's outputs are stored, a type
///   implementing [`codec::Codec`] (default: [`codec::DefaultCodec`], bincode). JSON suits
///   small outputs that people or other programs read in the store. The codec is part of
///   the task's keys; parameters always travel with the default codec.
/// - `crate = path::to::pipewright`: where the `pipewright` crate is, if it was renamed.
///
/// # Errors
///
/// Rejected at compile time, at the mistake: a method (`self`), a generic, `async` or
/// `unsafe` function, a `&mut` argument, `impl Trait` in an argument or the return type,
/// an argument that is not a plain name, a gathered input not written `&[&T]`, an argument
/// that borrows in another form (`Vec<&T>`, `Option<&T>`, `&Vec<&T>`), more than one
/// `&Ctx`, an unknown or repeated option, an option value of the wrong form, a helper
/// named twice in `uses`, and a `codec` that is not a [`codec::Codec`] or an entry of
/// `uses` that is not a helper (both reported by rustc at the path). A parameter type that is
/// not `Serialize`, `Deserialize`, `Clone` or `Debug`, and an output type that is not
/// `Serialize`, `Deserialize`, `Send` or `Sync`, are reported by rustc at that type. A
/// parameter value that does not come back intact from the codec is refused when its node
/// is added ([`Error::LossyParam`]).
///
/// # Example
///
/// ```
/// use pipewright::prelude::*;
///
/// #[task(version = "2", retries = 1, cpus = 2)]
/// fn words(text: &String, min_len: usize, ctx: &Ctx) -> Vec<String> {
///     assert_eq!(ctx.node(), "long_words");
///     text.split_whitespace()
///         .filter(|w| w.len() >= min_len)
///         .map(str::to_owned)
///         .collect()
/// }
///
/// #[task]
/// fn text() -> String {
///     "a pipeline of plain functions".to_string()
/// }
///
/// // The struct of parameters, and the metadata the macro computed.
/// let task = words { min_len: 5 };
/// assert_eq!(<words as Task>::META.version, Some("2"));
/// assert_eq!(<words as Task>::META.params, ["min_len"]);
///
/// // In a pipeline.
/// let p = pipeline! {
///     name = "words";
///     let t = text();
///     let long_words = words(t, task.min_len);
/// };
/// let data = tempfile::tempdir().unwrap();
/// let run = Runner::new(data.path()).run(&p).unwrap();
/// assert_eq!(run.get(p.long_words).unwrap(), &["pipeline", "plain", "functions"]);
/// ```
pub use pipewright_macros::task;

/// Wires tasks into a [`Pipeline`], in the shape of calling them.
///
/// The block starts with `name = "...";` and goes on with one `let` per node. Each `let`
/// calls a task (by name, path or `use ... as` alias); an argument that names an earlier
/// binding is an edge from that node, `[a, b, c]` gathers several of them into an `&[&T]`
/// input, and anything else is a parameter expression, evaluated once when the pipeline is
/// built. The binding's name is the node's name (`let r#type` is the node `type`).
///
/// `let rows = value!(vec![1, 2, 3]);` is a node whose output is the expression's value,
/// with no task written to return it ([`Builder::value`]): the value is the node's
/// parameter, so it is hashed into the node's key. It is written as a macro call, so a task
/// named `value` is still called as `value(...)`.
///
/// `let counts = for line in lines { count(line, 3) };` maps a task over a list made at run
/// time ([`Builder::map`]): `lines` is a binding whose task returns a `Vec<T>`, and the body
/// is one call of a task that takes the element `line` as an input (`&T`), its other
/// arguments as anywhere. It runs once per element, each run a branch cached by its
/// element's content. The binding is a [`Mapped`] node: pass it whole where a gathered
/// `&[&U]` input is expected to take every branch's output in order (`total(counts)`), or
/// map over it again (`for c in counts { render(c) }` pairs branch with branch).
///
/// It expands to calls of [`Pipeline::builder`] and [`Builder::add`], so the compiler checks
/// the wiring: a wrong input type, a wrong number of arguments or an unknown task is an
/// error at that argument or call. The value it returns derefs to [`Pipeline`] and has one
/// [`Handle`] field per binding, named after it.
///
/// # Errors
///
/// Rejected at compile time, at the mistake: a missing or repeated `name`, an empty
/// pipeline, a repeated binding name, a binding name longer than 200 bytes (node names
/// name files), a binding used before (or in) its own definition, a
/// binding used inside a parameter expression or behind `&`, a gathered input that
/// lists something else than bindings, and `value!(...)` with other than one expression; in
/// a map, an element that is not a plain name or not passed to the task whole, a body that
/// is not one call of a task, a map over something else than a binding above, and a mapped
/// binding listed in brackets. A single binding passed to a gathered input is reported by
/// rustc with a hint to write it in brackets, a map over a node whose output is not a `Vec`
/// with a note to map over one, and a mapped binding passed where one node is expected as a
/// [`Mapped`] where a [`Handle`] was expected. A parameter value that does not come back intact from the codec, or a task
/// whose name another registered task has, makes running or planning the pipeline return
/// [`Error::LossyParam`] or [`Error::DuplicateTask`].
///
/// # Panics
///
/// If an argument is an expression that gives a [`Handle`] of another pipeline (a field of
/// another `pipeline!`'s value), which the macro cannot tell from a parameter.
///
/// # Example
///
/// ```
/// use pipewright::prelude::*;
///
/// mod etl {
///     use pipewright::prelude::*;
///
///     #[task]
///     pub fn read(rows: u32) -> Vec<u32> {
///         (0..rows).collect()
///     }
///
///     #[task]
///     pub fn keep_even(xs: &Vec<u32>) -> Vec<u32> {
///         xs.iter().copied().filter(|x| x % 2 == 0).collect()
///     }
/// }
///
/// use etl::keep_even as even;
///
/// #[task]
/// fn count(parts: &[&Vec<u32>]) -> usize {
///     parts.iter().map(|p| p.len()).sum()
/// }
///
/// let rows = 10;
/// let p = pipeline! {
///     name = "etl";
///     let small = etl::read(rows);
///     let large = etl::read(rows * 10);
///     let small_even = even(small);
///     let large_even = even(large);
///     let n = count([small_even, large_even, small]);
/// };
/// assert_eq!(p.name(), "etl");
/// assert_eq!(p.len(), 5);
/// let data = tempfile::tempdir().unwrap();
/// let run = Runner::new(data.path()).run(&p).unwrap();
/// assert_eq!(*run.get(p.n).unwrap(), 5 + 50 + 10);
/// ```
///
/// A map, one branch per word, and the branches gathered:
///
/// ```
/// use pipewright::prelude::*;
///
/// #[task]
/// fn split_words(text: String) -> Vec<String> {
///     text.split(' ').map(str::to_owned).collect()
/// }
///
/// #[task]
/// fn letters(word: &String, times: usize) -> usize {
///     word.len() * times
/// }
///
/// #[task]
/// fn all_letters(counts: &[&usize]) -> usize {
///     counts.iter().copied().sum()
/// }
///
/// let p = pipeline! {
///     name = "words";
///     let list = split_words("a bb ccc".to_owned());
///     let counts = for word in list { letters(word, 2) };
///     let sum = all_letters(counts);
/// };
/// let run = Runner::in_memory().keep_branches(p.counts).run(&p).unwrap();
/// assert_eq!(run.branches(p.counts).unwrap(), [&2, &4, &6]);
/// assert_eq!(*run.get(p.sum).unwrap(), 12);
/// ```
pub use pipewright_macros::pipeline;

/// Marks a function, an `impl` block or an inline module as a helper: code that tasks call,
/// whose edits change the keys of the tasks that name it in `uses`.
///
/// The item stays as written. Its fingerprint, taken at compile time as a task's is, hashes
/// its tokens (formatting, comments and doc comments left out). A task's key holds the
/// fingerprints of the helpers in its `#[task(uses = [...])]`, of those that these name in
/// their own `#[helper(uses = [...])]`, and so on, each once; so an edited helper re-runs
/// exactly the tasks that reach it, and [`Runner::explain`] names it. What `uses` names:
///
/// - a function: `#[helper] fn parse_row(..)`, named `parse_row` (by any path or `use`
///   alias). A hidden struct of the same name goes beside it, so a helper cannot also be a
///   `#[task]`;
/// - an inherent `impl` block without generics: `#[helper] impl Parser { .. }`, named by its
///   type, `Parser`, for every function in it, methods or not (one such block per type);
/// - an inline module: `#[helper] mod util { .. }`, named by any of its free functions
///   (`util::clean`), each of which stands for the whole module: an edit of anything in it
///   changes them all. Its `uses` paths are read inside the module, as its code names
///   things. A function in it marked `#[task]` or `#[helper]` is left to that attribute.
///
/// # Options
///
/// - `uses = [other_helper, util::clean]`: the helpers this one calls (default: none).
/// - `crate = path::to::pipewright`: where the `pipewright` crate is, if it was renamed.
///
/// # Errors
///
/// Rejected at compile time, at the mistake: another kind of item, a module in its own
/// file, a method (mark its `impl` block), a function that is also a `#[task]`, a trait's
/// or a generic `impl` block, and the options' mistakes as `#[task]` reports them. An
/// entry of a `uses` list that is not a helper is reported by rustc at the entry:
/// `` `parse_row` is not a helper: mark it `#[pipewright::helper]` ``.
///
/// # Example
///
/// ```
/// use pipewright::prelude::*;
///
/// mod text {
///     /// Splits a line into words.
///     #[pipewright::helper(uses = [clean])]
///     pub fn words(line: &str) -> Vec<String> {
///         line.split_whitespace().map(clean).collect()
///     }
///
///     #[pipewright::helper]
///     pub fn clean(word: &str) -> String {
///         word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()
///     }
/// }
///
/// #[task(uses = [text::words])]
/// fn word_count(line: String) -> usize {
///     text::words(&line).len()
/// }
///
/// // The key of `word_count` holds the code of `words` and, through it, of `clean`.
/// // Each is named by its module path and its name, and listed once.
/// let helpers = <word_count as Task>::META.helpers();
/// assert_eq!(helpers.len(), 2);
/// assert!(helpers[0].0.ends_with("::text::clean"));
/// assert!(helpers[1].0.ends_with("::text::words"));
/// ```
pub use pipewright_macros::helper;

/// Marks the program's `main`, so that the process executor can run its tasks in child
/// processes.
///
/// [`Executor::Process`] starts this program again, with arguments of its own, for each
/// node that must run. The attribute puts a call before the body of `main` that, in such
/// a child, runs that one node and exits; in a normal start it only records that the
/// program can be re-entered, and `main` goes on as written. Put it on `main` before
/// anything else reads the command line. `main` keeps its signature, and may be `async`
/// (put `#[pipewright::main]` above the runtime's attribute).
///
/// # Examples
///
/// ```no_run
/// use pipewright::prelude::*;
///
/// #[task]
/// fn parse(text: String) -> Vec<u32> {
///     text.split(',').filter_map(|s| s.trim().parse().ok()).collect()
/// }
///
/// #[pipewright::main]
/// fn main() -> pipewright::Result<()> {
///     let p = pipeline! {
///         name = "parse";
///         let numbers = parse("1, 2, 3".to_string());
///     };
///     let report = Runner::new("data").executor(Executor::Process).run(&p)?;
///     assert_eq!(report.get(p.numbers)?, &vec![1, 2, 3]);
///     Ok(())
/// }
/// ```
pub use pipewright_macros::main;

pub use pipewright_runtime::{
    Bound, Builder, Cancel, Cancelled, Ctx, Decision, Error, Executor, Explanation, Handle,
    HashError, InputDir, InputFile, InputKind, InputSpec, Mapped, NodeId, NodeReport, NodeStatus,
    OutputFile, Over, ParamLoss, Pipeline, Plan, PlannedNode, PublishAction, Published,
    Registration, Resources, Result, RunReason, RunReport, Runner, StoredOutput, Task, TaskError,
    TaskMeta, WorkerExit, canonical_digest, find_task, registered_tasks,
};

#[cfg(feature = "slurm")]
pub use pipewright_runtime::Slurm;
#[cfg(feature = "cli")]
pub use pipewright_runtime::cli;
#[cfg(feature = "render")]
pub use pipewright_runtime::render;
pub use pipewright_runtime::{codec, record, store};

/// The names a pipeline program needs: `use pipewright::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Ctx, Executor, Handle, Mapped, NodeStatus, Pipeline, RunReport, Runner, Task, pipeline,
        task,
    };
}

/// The paths that code generated by `#[task]` and `pipeline!` uses. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use pipewright_runtime::__private::*;
}
