//! A run emits, under target `pipewright`, one span per node with events for its start,
//! finish and failure; nothing at all is printed unless the user installs a subscriber.

use pipewright::prelude::*;

mod support;

#[task]
fn ok(x: u32) -> u32 {
    x
}

#[task]
fn fails(_x: &u32) -> Result<u32, String> {
    Err("the disk is on fire".to_string())
}

#[task]
fn after(x: &u32) -> u32 {
    *x
}

#[test]
fn each_node_gets_a_span_and_events() {
    let captured = support::Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .without_time()
        .init();

    let p = pipeline! {
        name = "traced";
        let good = ok(7);
        let bad = fails(good);
        let skipped = after(bad);
    };
    let run = Runner::in_memory().jobs(2).run(&p).unwrap();
    assert!(!run.succeeded());

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let has = |needle: &[&str]| lines.iter().any(|l| needle.iter().all(|n| l.contains(n)));
    assert!(
        has(&[
            "DEBUG",
            "run{pipeline=\"traced\"}:node{node=good task=ok}",
            "pipewright: started"
        ]),
        "{log}"
    );
    assert!(
        has(&[
            "INFO",
            "run{pipeline=\"traced\"}:node{node=good task=ok}",
            "pipewright: finished"
        ]),
        "{log}"
    );
    assert!(
        has(&[
            "ERROR",
            "node{node=bad task=fails}",
            "failed",
            "the disk is on fire"
        ]),
        "{log}"
    );
    assert!(
        has(&[
            "WARN",
            "run{pipeline=\"traced\"}",
            "node=skipped",
            "upstream=bad",
            "not run: upstream failed"
        ]),
        "{log}"
    );
    assert!(
        has(&[
            "INFO",
            "run{pipeline=\"traced\"}",
            "3 nodes: 1 ran, 1 failed, 1 upstream failed"
        ]),
        "{log}"
    );
    assert!(
        !log.contains("node{node=skipped"),
        "a skipped node never enters its span: {log}"
    );
}
