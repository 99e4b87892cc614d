//! The pictures of a pipeline, drawn from a real run and a real plan of a diamond with a
//! failing branch: text, DOT and Mermaid are snapshots; DOT goes through Graphviz, the SVG
//! and the HTML report parse as XML, and the report renders in a headless browser.
//!
//! Graphviz and Chromium are optional: a test that needs a missing one is ignored, saying
//! why, unless `PIPEWRIGHT_REQUIRE_TOOLS=1` makes that a failure (`.ci/install-test-tools.sh`
//! installs both).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use pipewright::prelude::*;
use pipewright::render::{self, GraphView, NodeState};

use crate::support;

#[task]
fn load(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

#[task]
fn scale(xs: &Vec<u64>, factor: u64) -> Vec<u64> {
    xs.iter().map(|x| x * factor).collect()
}

#[task]
fn total(parts: &[&Vec<u64>]) -> u64 {
    parts.iter().flat_map(|p| p.iter()).sum()
}

#[task]
fn fit(xs: &Vec<u64>) -> Result<f64, String> {
    Err(format!(
        "cannot fit {} points: \"singular\" <matrix>",
        xs.len()
    ))
}

#[task]
fn summarize(model: &f64) -> String {
    format!("{model:.3}")
}

/// Seven nodes: a diamond (`load` → `left`, `right` → the sum), a branch that fails (`fit`)
/// with a node below it, and a node alone. The sum's name needs escaping everywhere.
fn pipeline() -> Pipeline {
    let mut b = Pipeline::builder("diamond \"demo\"");
    let xs = b.add("load", load::node(4)).unwrap();
    let left = b.add("left", scale::node(xs, 2)).unwrap();
    let right = b.add("right", scale::node(xs, 3)).unwrap();
    b.add("sum of «both» <&>", total::node([left, right, xs]))
        .unwrap();
    let model = b.add("fit", fit::node(xs)).unwrap();
    b.add("report", summarize::node(model)).unwrap();
    b.add("extra", load::node(2)).unwrap();
    b.build()
}

/// The view of an in-memory run, with its timings replaced by fixed ones so that pictures
/// are the same on every run (after checking the real ones are there).
fn run_view() -> GraphView {
    let p = pipeline();
    let run = Runner::in_memory().jobs(2).run(&p).unwrap();
    let mut view = GraphView::of_run(&p, &run);
    // Two workers, each running its nodes one after the other.
    let mut clocks = [Duration::ZERO, Duration::from_millis(45)];
    for (i, node) in view.nodes.iter_mut().enumerate() {
        if matches!(node.state, NodeState::Ran | NodeState::Failed) {
            assert!(node.duration.is_some() && node.worker.is_some(), "{node:?}");
            let duration = Duration::from_millis(40 + 35 * i as u64);
            let worker = i % 2;
            node.started = Some(clocks[worker]);
            node.duration = Some(duration);
            node.worker = Some(worker);
            clocks[worker] += duration + Duration::from_millis(5);
        }
    }
    view
}

/// The view of a plan: after a first run stored what succeeded, `left` is forced.
fn plan_view() -> GraphView {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline();
    // A node of it fails.
    assert!(!Runner::new(dir.path()).run(&p).unwrap().succeeded());
    let plan = Runner::new(dir.path()).force("left").plan(&p).unwrap();
    GraphView::of_plan(&p, &plan)
}

fn state(view: &GraphView, name: &str) -> NodeState {
    view.nodes.iter().find(|n| n.name == name).unwrap().state
}

fn views_take_states_and_edges_from_the_pipeline_the_plan_and_the_run() {
    let p = pipeline();
    let graph = GraphView::of_pipeline(&p);
    assert!(graph.nodes.iter().all(|n| n.state == NodeState::Unknown));
    assert_eq!(
        graph.edges,
        [(0, 1), (0, 2), (1, 3), (2, 3), (0, 3), (0, 4), (4, 5)]
    );

    let run = run_view();
    assert_eq!(state(&run, "left"), NodeState::Ran);
    assert_eq!(state(&run, "fit"), NodeState::Failed);
    assert_eq!(state(&run, "report"), NodeState::UpstreamFailed);
    let report = run.nodes.iter().find(|n| n.name == "report").unwrap();
    assert_eq!(report.error.as_deref(), Some("upstream node `fit` failed"));
    assert!(report.worker.is_none() && report.started.is_none());

    let plan = plan_view();
    assert_eq!(state(&plan, "load"), NodeState::Fresh);
    assert_eq!(state(&plan, "left"), NodeState::WillRun);
    assert_eq!(state(&plan, "right"), NodeState::Fresh);
    assert_eq!(state(&plan, "sum of «both» <&>"), NodeState::Pending);
    assert_eq!(state(&plan, "fit"), NodeState::WillRun);
    assert_eq!(state(&plan, "report"), NodeState::Pending);
}

fn text_of_a_run() {
    insta::assert_snapshot!(render::text(&run_view()));
}

fn text_of_a_plan() {
    insta::assert_snapshot!(render::text(&plan_view()));
}

fn text_of_the_graph_alone() {
    insta::assert_snapshot!(render::text(&GraphView::of_pipeline(&pipeline())));
}

fn text_of_a_graph_too_wide_to_draw_is_a_list() {
    let mut b = Pipeline::builder("wide");
    let xs = b.add("source", load::node(3)).unwrap();
    let parts: Vec<_> = (0..40)
        .map(|i| b.add(format!("part_{i}"), scale::node(xs, i)).unwrap())
        .collect();
    b.add("gather", total::node(parts)).unwrap();
    let text = render::text(&GraphView::of_pipeline(&b.build()));
    assert!(text.contains("too wide to draw"), "{text}");
    assert!(
        text.contains("\nlayer 1\n  part_0 (scale)\n      ← source\n"),
        "{text}"
    );
    assert!(
        text.contains("  gather (total)\n      ← part_0, part_1,"),
        "{text}"
    );
    assert!(text.contains("part_39\n"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
}

fn dot_of_a_run() {
    insta::assert_snapshot!(render::dot(&run_view()));
}

fn mermaid_of_a_run() {
    insta::assert_snapshot!(render::mermaid(&run_view()));
}

fn dot_is_accepted_by_graphviz() {
    let dot = tool(DOT).expect("checked when listed");
    let dir = out_dir("dot");
    for (name, view) in [("run", run_view()), ("plan", plan_view())] {
        let path = dir.join(format!("{name}.dot"));
        std::fs::write(&path, render::dot(&view)).unwrap();
        let output = Command::new(dot).arg("-Tsvg").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.trim().is_empty(),
            "{stderr}"
        );
        let svg = String::from_utf8(output.stdout).unwrap();
        let doc = roxmltree::Document::parse_with_options(&svg, xml_with_doctype()).unwrap();
        let nodes = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("node"))
            .count();
        assert_eq!(nodes, view.nodes.len());
        assert!(svg.contains("sum of «both» &lt;&amp;&gt;"));
    }
}

fn svg_is_well_formed_with_one_box_per_node() {
    for view in [run_view(), plan_view(), GraphView::of_pipeline(&pipeline())] {
        let svg = render::svg(&view);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let boxes = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("box"))
            .count();
        assert_eq!(boxes, view.nodes.len());
        let names: Vec<&str> = doc
            .descendants()
            .filter_map(|n| n.attribute("data-node"))
            .collect();
        let expected: Vec<&str> = view.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, expected);
        let edges = doc.descendants().filter(|n| n.has_tag_name("path")).count();
        // One path per edge, plus the two arrowheads.
        assert_eq!(edges, view.edges.len() + 2);
    }
}

fn html_is_well_formed_with_one_row_per_node() {
    let view = run_view();
    let html = render::html(&view);
    let doc = roxmltree::Document::parse_with_options(&html, xml_with_doctype()).unwrap();
    let rows: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("tr"))
        .filter_map(|n| n.attribute("data-node"))
        .collect();
    let expected: Vec<&str> = view.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(rows, expected);
    assert!(html.contains("cannot fit 4 points: &quot;singular&quot; &lt;matrix&gt;"));
    for outside in [
        "http://", "https://", "<script", "<link", "@import", "url(http",
    ] {
        let found = html.replace("http://www.w3.org/2000/svg", "");
        assert!(!found.contains(outside), "the report refers to `{outside}`");
    }
    // One bar per node that ran or settled on a worker, on two workers.
    let bars = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("bar"))
        .count();
    assert_eq!(
        bars,
        view.nodes.iter().filter(|n| n.worker.is_some()).count()
    );
    assert!(html.contains(">worker 0<") && html.contains(">worker 1<"));
}

fn html_report_renders_in_a_browser() {
    let chromium = tool(CHROMIUM).expect("checked when listed");
    let dir = out_dir("html");
    let view = run_view();
    let page = dir.join("report.html");
    std::fs::write(&page, render::html(&view)).unwrap();
    let graph = dir.join("graph.svg");
    std::fs::write(&graph, render::svg(&view)).unwrap();

    for (file, png) in [(&page, "report.png"), (&graph, "graph.png")] {
        let shot = dir.join(png);
        let _ = std::fs::remove_file(&shot);
        browser(
            chromium,
            &dir,
            &[&format!("--screenshot={}", shot.display())],
            file,
        );
        let (distinct, total) = colours(&shot);
        assert!(
            distinct > 3,
            "{} is blank: {distinct} colour(s) in {total} pixels",
            shot.display()
        );
    }

    let dom = browser(chromium, &dir, &["--dump-dom"], &page);
    assert_eq!(
        dom.matches("<tr data-node=").count(),
        view.nodes.len(),
        "{dom}"
    );
    for node in &view.nodes {
        let name = node.name.replace('&', "&amp;").replace('<', "&lt;");
        let name = name.replace('>', "&gt;").replace('"', "&quot;");
        assert!(
            dom.contains(&format!("<tr data-node=\"{name}\">")),
            "{name}"
        );
    }
}

/// XML parsing that accepts a `<!DOCTYPE>`.
fn xml_with_doctype<'a>() -> roxmltree::ParsingOptions<'a> {
    roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    }
}

/// A directory for this test's files, kept after the run for people to look at.
fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("render")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Graphviz's command.
const DOT: &[&str] = &["dot"];

/// Chromium's command, under either of its names.
const CHROMIUM: &[&str] = &["chromium", "chromium-browser"];

/// The first of `names` that runs.
fn tool(names: &[&'static str]) -> Option<&'static str> {
    names.iter().copied().find(|name| {
        Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

/// The tests of this file; one that needs a missing tool says so.
pub fn trials() -> Vec<Trial> {
    let missing = |names: &[&'static str], package: &str| {
        tool(names)
            .is_none()
            .then(|| format!("{package} is not installed (run .ci/install-test-tools.sh)"))
    };
    let needing =
        |name, test, missing| support::needing(name, test, missing, "PIPEWRIGHT_REQUIRE_TOOLS");
    vec![
        support::scenario(
            "render::views_take_states_and_edges_from_the_pipeline_the_plan_and_the_run",
            views_take_states_and_edges_from_the_pipeline_the_plan_and_the_run,
        ),
        support::scenario("render::text_of_a_run", text_of_a_run),
        support::scenario("render::text_of_a_plan", text_of_a_plan),
        support::scenario("render::text_of_the_graph_alone", text_of_the_graph_alone),
        support::scenario(
            "render::text_of_a_graph_too_wide_to_draw_is_a_list",
            text_of_a_graph_too_wide_to_draw_is_a_list,
        ),
        support::scenario("render::dot_of_a_run", dot_of_a_run),
        support::scenario("render::mermaid_of_a_run", mermaid_of_a_run),
        needing(
            "render::dot_is_accepted_by_graphviz",
            dot_is_accepted_by_graphviz,
            missing(DOT, "graphviz"),
        ),
        support::scenario(
            "render::svg_is_well_formed_with_one_box_per_node",
            svg_is_well_formed_with_one_box_per_node,
        ),
        support::scenario(
            "render::html_is_well_formed_with_one_row_per_node",
            html_is_well_formed_with_one_row_per_node,
        ),
        needing(
            "render::html_report_renders_in_a_browser",
            html_report_renders_in_a_browser,
            missing(CHROMIUM, "chromium"),
        ),
    ]
}

/// Runs headless Chromium on `file` with `args` and a fresh profile, and returns what it
/// printed; fails after two minutes.
fn browser(chromium: &str, dir: &Path, args: &[&str], file: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let stdout_path = dir.join("browser-stdout.txt");
    let stdout = std::fs::File::create(&stdout_path).unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", file.display()))
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(stdout_path).unwrap()
}

/// How many distinct colours a PNG holds (up to a few hundred), and how many pixels.
fn colours(path: &Path) -> (usize, usize) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    let samples = frame.color_type.samples()
        * if frame.bit_depth == png::BitDepth::Sixteen {
            2
        } else {
            1
        };
    let pixels = &buf[..frame.buffer_size()];
    let mut seen = std::collections::HashSet::new();
    for pixel in pixels.chunks(samples) {
        if seen.len() < 300 {
            seen.insert(pixel);
        }
    }
    (seen.len(), pixels.len() / samples)
}

#[task]
fn words(text: String) -> Vec<String> {
    text.split(' ').map(str::to_owned).collect()
}

#[task]
fn letters(word: &String) -> Result<usize, String> {
    if word == "bad" {
        Err("a bad word".to_owned())
    } else {
        Ok(word.len())
    }
}

#[task]
fn all_letters(counts: &[&usize]) -> usize {
    counts.iter().copied().sum()
}

#[test]
fn a_mapped_node_is_one_stacked_box_that_counts_its_branches() {
    let dir = tempfile::tempdir().unwrap();
    // A map over four words, one of which fails its branch, then a node gathering them.
    let p = pipeline! {
        name = "mapped";
        let list = words("a bb bad cccc".to_owned());
        let counts = for word in list { letters(word) };
        let sum = all_letters(counts);
    };

    let graph = GraphView::of_pipeline(&p);
    assert_eq!(graph.nodes.len(), 3);
    let text = render::text(&graph);
    assert!(text.contains("[mapped] counts (letters)"), "{text}");

    let first = Runner::new(dir.path()).run(&p).unwrap();
    let view = GraphView::of_run(&p, &first);
    // One node for the whole map, never one per branch.
    assert_eq!(view.nodes.len(), 3);
    let counts = view.nodes.iter().find(|n| n.name == "counts").unwrap();
    let map = counts.map.unwrap();
    assert_eq!(
        (map.branches, map.ran, map.cached, map.failed),
        (Some(4), 3, 0, 1)
    );
    assert!(
        view.nodes
            .iter()
            .filter(|n| n.name != "counts")
            .all(|n| n.map.is_none())
    );
    let text = render::text(&view);
    assert!(
        text.contains("[4 branches: 3 ran, 0 cached, 1 failed]"),
        "{text}"
    );
    assert!(render::dot(&view).contains("4 branches: 3 ran, 0 cached, 1 failed"));
    assert!(render::mermaid(&view).contains("4 branches: 3 ran, 0 cached, 1 failed"));

    let svg = render::svg(&view);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let nodes: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("data-node").is_some())
        .collect();
    assert_eq!(nodes.len(), 3);
    for node in nodes {
        let stacked = node
            .children()
            .filter(|n| n.attribute("class") == Some("stack"))
            .count();
        let mapped = node.attribute("data-node") == Some("counts");
        assert_eq!(stacked, if mapped { 2 } else { 0 });
        assert_eq!(node.attribute("class").unwrap().contains("mapped"), mapped);
    }
    assert!(svg.contains("letters · 4 branches: 3 ran, 0 cached, 1 failed"));

    let html = render::html(&view);
    roxmltree::Document::parse_with_options(&html, xml_with_doctype()).unwrap();
    assert!(html.contains("</span> 4 branches: 3 ran, 0 cached, 1 failed</td>"));

    // From the run's record, as `graph --run` draws it.
    let recorded = GraphView::of_record(first.run_dir().unwrap()).unwrap();
    let map = recorded.nodes[1].map.unwrap();
    assert_eq!((map.branches, map.ran, map.failed), (Some(4), 3, 1));

    // A plan says how many branches there were last time.
    let plan = Runner::new(dir.path()).plan(&p).unwrap();
    let planned = GraphView::of_plan(&p, &plan);
    assert!(
        render::text(&planned).contains("[pending: 4 branches last run]"),
        "{}",
        render::text(&planned)
    );

    // Again: the three good branches are cached, the bad one fails again.
    let second = Runner::new(dir.path()).run(&p).unwrap();
    let map = GraphView::of_run(&p, &second).nodes[1].map.unwrap();
    assert_eq!((map.ran, map.cached, map.failed), (0, 3, 1));
}
