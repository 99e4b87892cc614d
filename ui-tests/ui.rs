//! Compile-time diagnostics of `#[task]` and `pipeline!`, and corner cases that must compile.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("fail/**/*.rs");
}
