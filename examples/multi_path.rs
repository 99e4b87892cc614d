//! The main example: clustering four synthetic data sets, each under two normalizations
//! and two cluster counts, scored and joined into one report.
//!
//! 4 data sets -> 8 normalized copies -> 16 clusterings -> 16 scores -> 1 ranking: 45 nodes on
//! independent paths that only meet at the end, so every worker stays busy.
//!
//! `cargo run --release --example multi_path` runs it; run it again and nothing runs, as
//! every output is in the store. The binary has pipewright's command line: `-- plan`,
//! `-- explain NODE`, `-- graph --format svg`, `-- status`, `-- run --force NODE`,
//! `-- run --target NODE`, `-- gc --keep-runs 3`, `-- --help`. `MULTI_PATH_ITERATIONS=N`
//! changes a parameter of the 16 clusterings, so they and what depends on them run again.

use std::process::ExitCode;
use std::time::Duration;

use pipewright::prelude::*;
use serde::{Deserialize, Serialize};

/// A point in the plane.
type Point = [f64; 2];

/// How to rescale a data set before clustering.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Norm {
    /// Each coordinate to zero mean and unit variance.
    ZScore,
    /// Each coordinate to the range 0..1.
    MinMax,
}

/// A small, fast, deterministic generator (xorshift64*), so runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A normal deviate (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// `n` points around `blobs` centres, with a different spread along each axis.
#[task]
fn generate(seed: u64, n: usize, blobs: usize) -> Vec<Point> {
    let mut rng = Rng(seed.max(1));
    let centres: Vec<Point> = (0..blobs)
        .map(|_| [rng.next() * 100.0, rng.next() * 10.0])
        .collect();
    (0..n)
        .map(|i| {
            let c = centres[i % blobs];
            [c[0] + rng.normal() * 4.0, c[1] + rng.normal() * 0.4]
        })
        .collect()
}

/// Rescales each coordinate.
#[task]
fn normalize(points: &Vec<Point>, norm: Norm) -> Vec<Point> {
    let mut out = points.clone();
    for axis in 0..2 {
        let values = points.iter().map(|p| p[axis]);
        let (a, b) = match norm {
            Norm::ZScore => {
                let n = points.len() as f64;
                let mean = values.clone().sum::<f64>() / n;
                let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                (mean, var.sqrt().max(f64::EPSILON))
            }
            Norm::MinMax => {
                let min = values.clone().fold(f64::INFINITY, f64::min);
                let max = values.fold(f64::NEG_INFINITY, f64::max);
                (min, (max - min).max(f64::EPSILON))
            }
        };
        for p in &mut out {
            p[axis] = (p[axis] - a) / b;
        }
    }
    out
}

/// The result of k-means: a centre per cluster and a cluster per point.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Clustering {
    centres: Vec<Point>,
    labels: Vec<usize>,
}

fn dist2(a: &Point, b: &Point) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// Lloyd's k-means with `k` clusters, `iterations` rounds, seeded from evenly spaced points.
#[task]
fn kmeans(points: &Vec<Point>, k: usize, iterations: usize) -> Clustering {
    let mut centres: Vec<Point> = (0..k).map(|i| points[i * points.len() / k]).collect();
    let mut labels = vec![0; points.len()];
    for _ in 0..iterations {
        for (label, p) in labels.iter_mut().zip(points) {
            *label = (0..k)
                .min_by(|&a, &b| dist2(p, &centres[a]).total_cmp(&dist2(p, &centres[b])))
                .unwrap_or(0);
        }
        let mut sums = vec![([0.0, 0.0], 0usize); k];
        for (label, p) in labels.iter().zip(points) {
            let (sum, count) = &mut sums[*label];
            sum[0] += p[0];
            sum[1] += p[1];
            *count += 1;
        }
        for (centre, (sum, count)) in centres.iter_mut().zip(sums) {
            if count > 0 {
                *centre = [sum[0] / count as f64, sum[1] / count as f64];
            }
        }
    }
    Clustering { centres, labels }
}

/// One scored configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Scored {
    name: String,
    score: f64,
}

/// The silhouette of a clustering on a sample of its points: near 1 when clusters are tight
/// and far apart, near 0 when they overlap.
#[task]
fn silhouette(points: &Vec<Point>, clustering: &Clustering, sample: usize, name: String) -> Scored {
    let k = clustering.centres.len();
    let step = (points.len() / sample).max(1);
    let mut total = 0.0;
    let mut counted = 0;
    for i in (0..points.len()).step_by(step) {
        let mut sum = vec![0.0; k];
        let mut count = vec![0usize; k];
        for (j, q) in points.iter().enumerate() {
            if i != j {
                sum[clustering.labels[j]] += dist2(&points[i], q).sqrt();
                count[clustering.labels[j]] += 1;
            }
        }
        let own = clustering.labels[i];
        let a = sum[own] / count[own].max(1) as f64;
        let b = (0..k)
            .filter(|&c| c != own && count[c] > 0)
            .map(|c| sum[c] / count[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() {
            total += (b - a) / a.max(b);
            counted += 1;
        }
    }
    Scored {
        name,
        score: total / counted.max(1) as f64,
    }
}

/// Ranks every configuration, best first.
#[task]
fn report(scores: &[&Scored]) -> Vec<Scored> {
    let mut ranked: Vec<Scored> = scores.iter().map(|s| (*s).clone()).collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    ranked
}

#[pipewright::main]
fn main() -> ExitCode {
    const N: usize = 20_000;
    const SAMPLE: usize = 1_000;
    let iterations: usize = match std::env::var("MULTI_PATH_ITERATIONS") {
        Ok(n) => match n.parse() {
            Ok(n) => n,
            Err(_) => {
                eprintln!("MULTI_PATH_ITERATIONS is not a number: {n}");
                return ExitCode::from(2);
            }
        },
        Err(_) => 60,
    };

    let p = pipeline! {
        name = "multi-path";
        let wide = generate(1, N, 3);
        let dense = generate(2, N, 5);
        let sparse = generate(3, N, 2);
        let noisy = generate(4, N, 8);

        let wide_z = normalize(wide, Norm::ZScore);
        let wide_m = normalize(wide, Norm::MinMax);
        let dense_z = normalize(dense, Norm::ZScore);
        let dense_m = normalize(dense, Norm::MinMax);
        let sparse_z = normalize(sparse, Norm::ZScore);
        let sparse_m = normalize(sparse, Norm::MinMax);
        let noisy_z = normalize(noisy, Norm::ZScore);
        let noisy_m = normalize(noisy, Norm::MinMax);

        let wide_z3 = kmeans(wide_z, 3, iterations);
        let wide_z5 = kmeans(wide_z, 5, iterations);
        let wide_m3 = kmeans(wide_m, 3, iterations);
        let wide_m5 = kmeans(wide_m, 5, iterations);
        let dense_z3 = kmeans(dense_z, 3, iterations);
        let dense_z5 = kmeans(dense_z, 5, iterations);
        let dense_m3 = kmeans(dense_m, 3, iterations);
        let dense_m5 = kmeans(dense_m, 5, iterations);
        let sparse_z3 = kmeans(sparse_z, 3, iterations);
        let sparse_z5 = kmeans(sparse_z, 5, iterations);
        let sparse_m3 = kmeans(sparse_m, 3, iterations);
        let sparse_m5 = kmeans(sparse_m, 5, iterations);
        let noisy_z3 = kmeans(noisy_z, 3, iterations);
        let noisy_z5 = kmeans(noisy_z, 5, iterations);
        let noisy_m3 = kmeans(noisy_m, 3, iterations);
        let noisy_m5 = kmeans(noisy_m, 5, iterations);

        let s_wide_z3 = silhouette(wide_z, wide_z3, SAMPLE, "wide z-score k=3".to_string());
        let s_wide_z5 = silhouette(wide_z, wide_z5, SAMPLE, "wide z-score k=5".to_string());
        let s_wide_m3 = silhouette(wide_m, wide_m3, SAMPLE, "wide min-max k=3".to_string());
        let s_wide_m5 = silhouette(wide_m, wide_m5, SAMPLE, "wide min-max k=5".to_string());
        let s_dense_z3 = silhouette(dense_z, dense_z3, SAMPLE, "dense z-score k=3".to_string());
        let s_dense_z5 = silhouette(dense_z, dense_z5, SAMPLE, "dense z-score k=5".to_string());
        let s_dense_m3 = silhouette(dense_m, dense_m3, SAMPLE, "dense min-max k=3".to_string());
        let s_dense_m5 = silhouette(dense_m, dense_m5, SAMPLE, "dense min-max k=5".to_string());
        let s_sparse_z3 = silhouette(sparse_z, sparse_z3, SAMPLE, "sparse z-score k=3".to_string());
        let s_sparse_z5 = silhouette(sparse_z, sparse_z5, SAMPLE, "sparse z-score k=5".to_string());
        let s_sparse_m3 = silhouette(sparse_m, sparse_m3, SAMPLE, "sparse min-max k=3".to_string());
        let s_sparse_m5 = silhouette(sparse_m, sparse_m5, SAMPLE, "sparse min-max k=5".to_string());
        let s_noisy_z3 = silhouette(noisy_z, noisy_z3, SAMPLE, "noisy z-score k=3".to_string());
        let s_noisy_z5 = silhouette(noisy_z, noisy_z5, SAMPLE, "noisy z-score k=5".to_string());
        let s_noisy_m3 = silhouette(noisy_m, noisy_m3, SAMPLE, "noisy min-max k=3".to_string());
        let s_noisy_m5 = silhouette(noisy_m, noisy_m5, SAMPLE, "noisy min-max k=5".to_string());

        let ranking = report([
            s_wide_z3, s_wide_z5, s_wide_m3, s_wide_m5,
            s_dense_z3, s_dense_z5, s_dense_m3, s_dense_m5,
            s_sparse_z3, s_sparse_z5, s_sparse_m3, s_sparse_m5,
            s_noisy_z3, s_noisy_z5, s_noisy_m3, s_noisy_m5,
        ]);
    };

    pipewright::cli::main_then(&p, |run| {
        let Ok(ranking) = run.get(p.ranking) else {
            return;
        };
        println!("{} configurations ranked by silhouette:", ranking.len());
        for scored in ranking {
            println!("  {:<22} {:.3}", scored.name, scored.score);
        }
        let busy: Duration = run.nodes().map(|n| n.duration()).sum();
        if !busy.is_zero() {
            println!("{busy:.2?} of task time");
        }
    })
}
