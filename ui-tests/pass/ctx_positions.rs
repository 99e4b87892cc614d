// `&Ctx` may come first, between other arguments, or last.

use pipewright::prelude::*;

#[task]
fn first(ctx: &Ctx, n: u32) -> String {
    format!("{}:{n}", ctx.node())
}

#[task]
fn middle(a: &String, ctx: &Ctx, suffix: String) -> String {
    format!("{a}|{}:{suffix}", ctx.node())
}

#[task]
fn last(a: &String, ctx: &Ctx) -> String {
    format!("{a}|{}", ctx.task())
}

pub(crate) fn main() -> pipewright::Result<()> {
    let p = pipeline! {
        name = "ctx";
        let a = first(1);
        let b = middle(a, "x".to_string());
        let c = last(b);
    };
    let data = crate::data_dir();
    let run = Runner::new(data.path()).run(&p)?;
    assert_eq!(run.get(p.c)?, "a:1|b:x|last");
    Ok(())
}
