//! One task appears many times under different node names, each with its own parameters.

use pipewright::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
enum Norm {
    L1,
    L2,
    Max,
}

#[task]
fn data() -> Vec<f64> {
    vec![3.0, -4.0]
}

#[task(name = "same_task_many_names.normalize", version = "1")]
fn normalize(xs: &Vec<f64>, norm: Norm) -> Vec<f64> {
    let n = match norm {
        Norm::L1 => xs.iter().map(|x| x.abs()).sum::<f64>(),
        Norm::L2 => xs.iter().map(|x| x * x).sum::<f64>().sqrt(),
        Norm::Max => xs.iter().fold(0.0_f64, |m, x| m.max(x.abs())),
    };
    xs.iter().map(|x| x / n).collect()
}

#[task]
fn scale(xs: &Vec<f64>, factor: f64, label: String) -> (String, Vec<f64>) {
    (label, xs.iter().map(|x| x * factor).collect())
}

#[test]
fn each_use_keeps_its_own_parameters() {
    let p = pipeline! {
        name = "norms";
        let raw = data();
        let l1 = normalize(raw, Norm::L1);
        let l2 = normalize(raw, Norm::L2);
        let max = normalize(raw, Norm::Max);
        let twice = scale(l2, 2.0, "twice".to_string());
        let half = scale(l2, 0.5, String::from("half"));
    };
    let run = Runner::in_memory().keep(p.l2).run(&p).unwrap();
    assert_eq!(run.get(p.l1).unwrap(), &vec![3.0 / 7.0, -4.0 / 7.0]);
    assert_eq!(run.get(p.l2).unwrap(), &vec![0.6, -0.8]);
    assert_eq!(run.get(p.max).unwrap(), &vec![0.75, -1.0]);
    assert_eq!(
        run.get(p.twice).unwrap(),
        &("twice".to_string(), vec![1.2, -1.6])
    );
    assert_eq!(
        run.get(p.half).unwrap(),
        &("half".to_string(), vec![0.3, -0.4])
    );

    // Same task, distinct nodes.
    let tasks: Vec<&str> = run.nodes().map(|n| n.task()).collect();
    assert_eq!(
        tasks,
        [
            "data",
            "same_task_many_names.normalize",
            "same_task_many_names.normalize",
            "same_task_many_names.normalize",
            "scale",
            "scale"
        ]
    );
    let debug = format!("{:?}", *p);
    assert!(
        debug.contains("\"max\": normalize { norm: Max }"),
        "{debug}"
    );
    assert!(
        debug.contains("\"half\": scale { factor: 0.5, label: \"half\" }"),
        "{debug}"
    );
}

#[test]
fn the_task_struct_holds_the_parameters() {
    let bound = normalize::node(
        Pipeline::builder("x").add("raw", data::node()).unwrap(),
        Norm::L2,
    );
    assert_eq!(bound.task().norm, Norm::L2);
    // The function itself stays callable as written.
    assert_eq!(normalize(&vec![2.0, 2.0], Norm::Max), vec![1.0, 1.0]);
    let meta = <normalize as Task>::META;
    assert_eq!(meta.name, "same_task_many_names.normalize");
    assert_eq!(meta.version, Some("1"));
    assert_eq!(meta.params, ["norm"]);
    assert_eq!(meta.inputs.len(), 1);
    assert_eq!(meta.inputs[0].name, "xs");
}
