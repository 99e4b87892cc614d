//! A crash in native code fails one node, not the run: the process executor runs each task
//! in a child process.
//!
//! `cargo run --example faults`
//!
//! One branch of the pipeline calls into C with a bad pointer, as a broken native library
//! does, and dies of a segfault; another exits the process; a third gives up after its
//! timeout. The healthy branch runs to the end and is stored, so running the example again
//! reruns only the nodes that crashed.

// The crash is real: a C library call on a null pointer.
#![allow(unsafe_code)]

use pipewright::prelude::*;

unsafe extern "C" {
    fn strlen(s: *const std::ffi::c_char) -> usize;
}

/// Readings from a sensor.
#[task]
fn readings(n: u32) -> Vec<f64> {
    (0..n).map(|i| (f64::from(i) * 0.1).sin()).collect()
}

/// The mean of the readings, computed in Rust.
#[task]
fn mean(xs: &Vec<f64>) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The peak of the readings.
#[task]
fn peak(xs: &Vec<f64>) -> f64 {
    xs.iter().copied().fold(f64::MIN, f64::max)
}

/// A "native" summary that hands a null pointer to C and crashes with SIGSEGV.
#[task]
fn native_summary(xs: &Vec<f64>) -> f64 {
    let label: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: none; the null pointer makes `strlen` fault, on purpose.
    let width = unsafe { strlen(label) };
    xs.len() as f64 / width as f64
}

/// A legacy step that ends the whole process when it dislikes its input.
#[task]
fn legacy_check(xs: &Vec<f64>) -> bool {
    if xs.iter().any(|x| *x < 0.0) {
        eprintln!("legacy_check: negative reading, giving up");
        std::process::exit(3);
    }
    true
}

/// A step that hangs; its timeout kills its process after two seconds.
#[task(timeout = "2s")]
fn hangs(xs: &Vec<f64>) -> usize {
    std::thread::sleep(std::time::Duration::from_secs(3600));
    xs.len()
}

/// The report of the healthy branch.
#[task]
fn report(mean: &f64, peak: &f64) -> String {
    format!("mean {mean:.4}, peak {peak:.4}")
}

#[pipewright::main]
fn main() -> pipewright::Result<()> {
    let p = pipeline! {
        name = "faults";
        let xs = readings(200);
        let m = mean(xs);
        let top = peak(xs);
        let summary = report(m, top);
        let native = native_summary(xs);
        let legacy = legacy_check(xs);
        let hung = hangs(xs);
    };
    let run = Runner::new("target/pipewright-data")
        .executor(Executor::Process)
        .run(&p)?;
    for node in run.nodes() {
        match node.error() {
            Some(error) => println!(
                "{:>8}  {:<8} {error}",
                node.status().to_string(),
                node.name()
            ),
            None => println!("{:>8}  {}", node.status().to_string(), node.name()),
        }
    }
    println!("{run}");
    println!("healthy branch: {}", run.get(p.summary)?);
    Ok(())
}
