//! Graphs built at run time with the typed builder: one node per value of a parameter
//! sweep, or one node per file of a directory.
//!
//! `cargo run --release --example sweep` sweeps the step size of a gradient descent.
//! `cargo run --release --example sweep -- DIR` counts the lines and words of each file in DIR.

use std::path::PathBuf;

use pipewright::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a gradient descent on the Rosenbrock function ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Descent {
    step: f64,
    loss: f64,
}

/// Runs `iterations` steps of gradient descent of size `step` from (-1.5, 2).
#[task]
fn descend(step: f64, iterations: u32) -> Descent {
    let (mut x, mut y) = (-1.5_f64, 2.0_f64);
    for _ in 0..iterations {
        let dx = -2.0 * (1.0 - x) - 400.0 * x * (y - x * x);
        let dy = 200.0 * (y - x * x);
        x -= step * dx;
        y -= step * dy;
        if !(x.is_finite() && y.is_finite()) {
            break;
        }
    }
    let loss = (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2);
    Descent {
        step,
        loss: if loss.is_finite() {
            loss
        } else {
            f64::INFINITY
        },
    }
}

/// The step size with the lowest final loss.
#[task]
fn best(runs: &[&Descent]) -> Descent {
    runs.iter()
        .min_by(|a, b| a.loss.total_cmp(&b.loss))
        .map(|d| (*d).clone())
        .unwrap_or(Descent {
            step: f64::NAN,
            loss: f64::INFINITY,
        })
}

/// Lines and words of one file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counts {
    files: usize,
    lines: usize,
    words: usize,
}

/// Counts the lines and words of a text file.
#[task]
fn count(path: PathBuf) -> std::io::Result<Counts> {
    let bytes = std::fs::read(&path)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(Counts {
        files: 1,
        lines: text.lines().count(),
        words: text.split_whitespace().count(),
    })
}

/// Adds up the counts of every file.
#[task]
fn add_up(parts: &[&Counts]) -> Counts {
    parts.iter().fold(Counts::default(), |acc, c| Counts {
        files: acc.files + c.files,
        lines: acc.lines + c.lines,
        words: acc.words + c.words,
    })
}

fn sweep() -> pipewright::Result<()> {
    let mut b = Pipeline::builder("step-sweep");
    let runs = (1..=200)
        .map(|i| {
            let step = i as f64 * 1e-5;
            b.add(format!("step_{i:03}"), descend::node(step, 20_000))
        })
        .collect::<pipewright::Result<Vec<_>>>()?;
    let winner = b.add("best", best::node(runs))?;
    let p = b.build();

    let run = Runner::new("target/pipewright-data").run(&p)?;
    let best = run.get(winner)?;
    println!(
        "best step size {:.5} reaches loss {:.3e}",
        best.step, best.loss
    );
    println!("{run}");
    Ok(())
}

fn count_files(dir: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let mut b = Pipeline::builder("word-count");
    let mut parts = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?
        .collect::<std::io::Result<Vec<_>>>()?
        .into_iter()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for (i, entry) in entries.iter().enumerate() {
        // Node names are unique and at most 200 bytes: number the files, shorten long names.
        let file_name: String = entry
            .file_name()
            .to_string_lossy()
            .chars()
            .take(100)
            .map(|c| {
                if c.is_control() || c == '/' || c == '\\' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let name = format!("file_{i}_{file_name}");
        parts.push(b.add(name, count::node(entry.path()))?);
    }
    let total = b.add("total", add_up::node(parts))?;
    let p = b.build();

    let run = Runner::new("target/pipewright-data").run(&p)?;
    for node in run.nodes().filter(|n| !n.status().is_success()) {
        println!(
            "{}: {} ({})",
            node.name(),
            node.status(),
            node.error().map_or(String::new(), |e| e.to_string())
        );
    }
    match run.get(total) {
        Ok(c) => println!(
            "{}: {} files, {} lines, {} words",
            dir.display(),
            c.files,
            c.lines,
            c.words
        ),
        Err(e) => println!("no total: {e}"),
    }
    println!("{run}");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args_os().nth(1) {
        Some(dir) => count_files(PathBuf::from(dir)),
        None => Ok(sweep()?),
    }
}
