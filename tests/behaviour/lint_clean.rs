//! The code `#[task]` and `pipeline!` generate adds no warning to the crate that uses them,
//! whatever its tasks' names and attributes: this file denies every warning, and CI's
//! `cargo clippy --all-targets -D warnings` denies clippy's default lints on it too.

#![deny(warnings)]

use pipewright::prelude::*;

/// A parameter with a leading underscore.
#[task]
fn underscored(_p: u32) -> u32 {
    1
}

/// Upper-case parameters and inputs, which the task itself allows.
#[task]
#[allow(non_snake_case)]
fn upper(P: u32, Q: &u32) -> u32 {
    P + Q
}

/// Raw identifiers as parameter and input names.
#[task]
fn raw(r#type: String, r#match: &u32) -> String {
    format!("{}{}", r#type, r#match)
}

/// A deprecated task; a pipeline may still use it.
#[task]
#[deprecated(note = "use `upper`")]
fn old(x: u32) -> u32 {
    x + 100
}

/// Deprecated above `#[task]`.
#[deprecated]
#[task]
fn older() -> u32 {
    7
}

/// Parameters named like what the generated code names.
#[task]
#[allow(clippy::too_many_arguments)]
fn generated_names(
    node: u32,
    __pw: u32,
    __inputs: &u32,
    __ctx: u32,
    __value: u32,
    __error: u32,
    value: u32,
    serializer: u32,
) -> Result<u32, String> {
    Ok(node + __pw + __inputs + __ctx + __value + __error + value + serializer)
}

/// Takes the context under a name of the generated code's.
#[task]
fn named_context(__inputs: &u32, __pw_builder: &Ctx) -> String {
    format!("{}:{}", __pw_builder.node(), __inputs)
}

#[test]
fn a_pipeline_of_oddly_named_tasks_runs() {
    let p = pipeline! {
        name = "lint-clean";
        let r#type = underscored(5);
        let node = upper(2, r#type);
        let __pw = raw("t".to_string(), node);
        let __inputs = old(1);
        let __ctx = generated_names(1, 2, __inputs, 4, 5, 6, 7, 8);
        let __pw_builder = named_context(__ctx);
        let __pipewright_pipeline = upper(0, __ctx);
        let pipeline_nodes = older();
    };
    let run = Runner::in_memory()
        .keep(p.r#type)
        .keep(p.node)
        .keep(p.__inputs)
        .keep(p.__ctx)
        .run(&p)
        .unwrap();
    assert_eq!(*run.get(p.r#type).unwrap(), 1);
    assert_eq!(*run.get(p.node).unwrap(), 3);
    assert_eq!(run.get(p.__pw).unwrap(), "t3");
    assert_eq!(*run.get(p.__inputs).unwrap(), 101);
    assert_eq!(*run.get(p.__ctx).unwrap(), 134);
    assert_eq!(run.get(p.__pw_builder).unwrap(), "__pw_builder:134");
    assert_eq!(*run.get(p.__pipewright_pipeline).unwrap(), 134);
    assert_eq!(*run.get(p.pipeline_nodes).unwrap(), 7);
    let names: Vec<&str> = p.node_names().collect();
    assert_eq!(
        names,
        [
            "type",
            "node",
            "__pw",
            "__inputs",
            "__ctx",
            "__pw_builder",
            "__pipewright_pipeline",
            "pipeline_nodes"
        ]
    );
}

/// The struct `pipeline!` returns is named `PipelineNodes`; a binding may be named so too.
#[test]
#[allow(non_snake_case)]
fn a_binding_may_have_the_name_of_the_returned_struct() {
    let p = pipeline! {
        name = "lint-clean-struct";
        let PipelineNodes = underscored(0);
    };
    let run = Runner::in_memory().run(&p).unwrap();
    assert_eq!(*run.get(p.PipelineNodes).unwrap(), 1);
}

/// A constant node made by `value!(...)`, read by a task.
#[test]
fn a_value_node_adds_no_warning() {
    let p = pipeline! {
        name = "lint-clean-value";
        let seven = value!(7_u32);
        let node = upper(1, seven);
    };
    let run = Runner::in_memory().keep(p.seven).run(&p).unwrap();
    assert_eq!(*run.get(p.seven).unwrap(), 7);
    assert_eq!(*run.get(p.node).unwrap(), 8);
}

#[task(name = "lint_clean.several")]
fn several(n: u32) -> Vec<u32> {
    (0..n).collect()
}

#[task(name = "lint_clean.next")]
fn next(x: &u32) -> u32 {
    x + 1
}

/// A map whose body is nothing but the task's call on the element, and one with a
/// parameter and another input beside it.
#[test]
fn a_map_adds_no_warning() {
    let p = pipeline! {
        name = "lint-clean-map";
        let list = several(3);
        let same = for n in list { next(n) };
        let more = for n in same { upper(10, n) };
        let named = for x in list { raw("r".to_owned(), x) };
        let unused = value!(7_u32);
    };
    let run = Runner::in_memory().keep_branches(p.same).run(&p).unwrap();
    assert_eq!(run.branches(p.same).unwrap(), [&1, &2, &3]);
    assert_eq!(run.branches(p.more).unwrap(), [&11, &12, &13]);
    assert_eq!(run.branches(p.named).unwrap(), ["r0", "r1", "r2"]);
    assert_eq!(*run.get(p.unused).unwrap(), 7);
}
