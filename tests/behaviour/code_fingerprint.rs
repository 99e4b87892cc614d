//! A task's code fingerprint ignores formatting, comments and doc comments, and changes
//! with an edit of its function or its `version`. The versions of one task sit side by side
//! in this program under one name, so that their fingerprints can be compared; a program
//! refuses to run a task whose name another task has, so nothing here runs them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Norm {
    L1,
    L2,
    Max,
}

/// The task as first written.
mod v1 {
    use super::Norm;
    use pipewright::prelude::*;

    #[task(name = "code_fingerprint.normalize")]
    pub fn normalize(xs: &Vec<f64>, norm: Norm) -> Vec<f64> {
        let n: f64 = match norm {
            Norm::L1 => xs.iter().map(|x| x.abs()).sum(),
            Norm::L2 => xs.iter().map(|x| x * x).sum::<f64>().sqrt(),
            Norm::Max => xs.iter().fold(0.0, |m, x| x.abs().max(m)),
        };
        xs.iter().map(|x| x / n).collect()
    }
}

/// `v1::normalize` reformatted, with comments: the same code.
mod v1_reformatted {
    use super::Norm;
    use pipewright::prelude::*;

    /// Normalizes (doc comments do not count either).
    #[task(name = "code_fingerprint.normalize")]
    pub fn normalize(
        xs: &Vec<f64>,
        norm: Norm, // which norm
    ) -> Vec<f64> {
        let n: f64 = match norm {
            Norm::L1 => xs.iter().map(|x| x.abs()).sum(),
            Norm::L2 => xs.iter().map(|x| x * x).sum::<f64>().sqrt(),
            Norm::Max => xs.iter().fold(0.0, |m, x| x.abs().max(m)),
        };
        /* scale */
        xs.iter().map(|x| x / n).collect()
    }
}

/// `v1::normalize` with an edited body.
mod v2 {
    use super::Norm;
    use pipewright::prelude::*;

    #[task(name = "code_fingerprint.normalize")]
    pub fn normalize(xs: &Vec<f64>, norm: Norm) -> Vec<f64> {
        let n: f64 = match norm {
            Norm::L1 => xs.iter().map(|x| x.abs()).sum(),
            Norm::L2 => xs.iter().map(|x| x * x).sum::<f64>().sqrt(),
            Norm::Max => xs.iter().fold(0.0, |m, x| x.abs().max(m)),
        };
        xs.iter().map(|x| x / n.max(1e-12)).collect()
    }
}

/// `v2::normalize` with a version salt.
mod v3 {
    use super::Norm;
    use pipewright::prelude::*;

    #[task(name = "code_fingerprint.normalize", version = "2")]
    pub fn normalize(xs: &Vec<f64>, norm: Norm) -> Vec<f64> {
        let n: f64 = match norm {
            Norm::L1 => xs.iter().map(|x| x.abs()).sum(),
            Norm::L2 => xs.iter().map(|x| x * x).sum::<f64>().sqrt(),
            Norm::Max => xs.iter().fold(0.0, |m, x| x.abs().max(m)),
        };
        xs.iter().map(|x| x / n.max(1e-12)).collect()
    }
}

#[test]
fn reformatting_keeps_the_fingerprint_and_editing_changes_it() {
    use pipewright::Task;
    let fp = |m: pipewright::TaskMeta| m.fingerprint;
    assert_eq!(fp(v1::normalize::META), fp(v1_reformatted::normalize::META));
    assert_ne!(fp(v1::normalize::META), fp(v2::normalize::META));
    assert_ne!(fp(v2::normalize::META), fp(v3::normalize::META));
}
