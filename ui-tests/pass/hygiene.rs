// Generated code names everything by absolute path: shadowing prelude names, or naming a
// type like a generic parameter, breaks nothing.

#![allow(dead_code, non_camel_case_types, unused_imports)]

struct Result;
struct Option;
struct Some;
struct Ok;
struct Err;
struct Box;
struct Vec;
struct String;
struct Task;
struct Ctx;
struct HelperMeta;
trait Helper {}
struct Sized;
fn concat() {}
fn module_path() {}
trait Clone {}
trait Debug {}
trait Serialize {}
trait Deserialize {}
mod __pw {}
mod core {}
mod std {}
mod serde {}

#[derive(::core::clone::Clone, ::core::fmt::Debug, ::serde::Serialize, ::serde::Deserialize)]
struct T(usize);

use pipewright::{helper, pipeline, task};

#[helper]
fn first(text: &::std::string::String) -> usize {
    text.len()
}

struct Lengths;

#[helper(uses = [first])]
impl Lengths {
    fn of(text: &::std::string::String) -> usize {
        first(text)
    }
}

#[helper(uses = [super::first])]
mod sizes {
    pub fn size(text: &::std::string::String) -> usize {
        super::Lengths::of(text)
    }
}

#[task(uses = [sizes::size, Lengths])]
fn words(text: ::std::string::String) -> ::std::vec::Vec<::std::string::String> {
    text.split(' ')
        .take(sizes::size(&text))
        .map(::std::string::ToString::to_string)
        .collect()
}

#[task]
fn count(
    words: &::std::vec::Vec<::std::string::String>,
    extra: T,
    ctx: &pipewright::Ctx,
) -> ::core::result::Result<usize, ::std::string::String> {
    ::core::result::Result::Ok(words.len() + extra.0 + ctx.node().len())
}

#[task]
fn total(counts: &[&usize]) -> usize {
    counts.iter().copied().sum()
}

pub(crate) fn main() {
    let p = pipeline! {
        name = "hygiene";
        let w = words("a b c".into());
        let n = count(w, T(10));
        let sum = total([n, n]);
    };
    let data = crate::data_dir();
    let run = pipewright::Runner::new(data.path()).run(&p).unwrap();
    assert_eq!(*run.get(p.sum).unwrap(), 28);
}
