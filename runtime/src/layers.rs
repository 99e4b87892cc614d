//! The layers of the runtime, lowest first, and the test that holds every file to them: a
//! file names (`crate::…`) only modules of lower layers, or its own module's files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Every module of the runtime (a file, or a folder and the file of the same name), lowest
/// layer first. A module may name a module only of a lower layer, so the modules cannot
/// import each other in a circle. The most specific entry holds: `record::schema` is
/// below `record`.
const LAYERS: &[(usize, &str)] = &[
    // Foundations: bytes and their digests, errors and panics, knowing nothing of the rest.
    (0, "codec"),
    (0, "text"),
    (0, "chain"),
    (0, "backtrace"),
    (0, "stop"),
    (0, "digest"),
    // Hashing of parameters.
    (1, "hash"),
    // The store.
    (2, "cache"),
    // Input files, hashed through the store's stat cache; tasks; then the keys of their
    // nodes.
    (3, "files"),
    (3, "task"),
    (4, "key"),
    // Files as outputs, committed with their entry, and published.
    (4, "outputs"),
    // The run-level error.
    (5, "error"),
    // What `run.json` holds, read back.
    (6, "record::schema"),
    // The type-erased task, the registry, the graph.
    (7, "erased"),
    // One node decided, computed and committed, wherever it runs.
    (8, "node"),
    (8, "registry"),
    (9, "graph"),
    // Decisions before a run, and why.
    (10, "plan"),
    (11, "explain"),
    // What a run returns.
    (12, "report"),
    (13, "progress"),
    // The executors.
    (14, "exec"),
    // Writing run records, and pictures of runs.
    (15, "record"),
    (16, "render"),
    // Store maintenance, the runner, the command line.
    (17, "gc"),
    (18, "runner"),
    (19, "cli"),
];

/// The runtime's source folder.
fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src`: `record/schema.rs` is `record::schema`,
/// `render/mod.rs` is `render`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The entry of [`LAYERS`] that holds `module`: the longest that is it or contains it.
fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .filter(|(_, name)| {
            module == *name
                || module
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with("::"))
        })
        .max_by_key(|(_, name)| name.len())
        .copied()
}

/// The code of a file without comments and test modules: what it imports when built.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed == "#[cfg(test)]" {
            // A test module ends at the first closing brace as indented as its start.
            let next = lines.next().unwrap_or_default();
            if next.trim_end().ends_with('{') {
                let indent = &next[..next.len() - next.trim_start().len()];
                let end = format!("{indent}}}");
                lines.by_ref().find(|l| l.trim_end() == end);
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The module each root re-export of `lib.rs` comes from: `Error` from `error`.
fn root_exports(lib: &str) -> HashMap<String, String> {
    let public = lib.split("pub mod __private").next().unwrap_or_default();
    let mut exports = HashMap::new();
    for item in public.split("pub use ").skip(1) {
        let item = item.split(';').next().unwrap_or_default();
        let (path, names) = match item.split_once("::{") {
            Some((path, names)) => (path, names.trim_end_matches('}').to_owned()),
            None => match item.rsplit_once("::") {
                Some((path, name)) => (path, name.to_owned()),
                None => continue,
            },
        };
        for name in names.split(',') {
            let name = name.trim();
            if !name.is_empty() {
                exports.insert(name.to_owned(), path.trim().replace(' ', ""));
            }
        }
    }
    exports
}

/// The modules `code` names through `crate::`, each with the path as written.
fn imports(code: &str, src: &Path, exports: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `pipewright_runtime::…` or another crate's path
        }
        let rest = &code[at + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let Some(first) = segments.first() else {
            continue;
        };
        let module = if first.starts_with(char::is_uppercase) {
            match exports.get(*first) {
                Some(module) => module.clone(),
                None => continue,
            }
        } else {
            // The longest prefix of the path that is a file.
            (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("/"))
                .find(|p| {
                    src.join(format!("{p}.rs")).is_file() || src.join(p).join("mod.rs").is_file()
                })
                .map_or_else(|| first.to_string(), |p| p.replace('/', "::"))
        };
        found.push((module, format!("crate::{path}")));
    }
    found
}

/// Every import of the runtime that goes up its layers, or names a module not in them.
fn violations() -> Vec<String> {
    let src = src_dir();
    let exports = root_exports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let module = module_of(&src, &file);
        if module == "lib" || module == "layers" || module.ends_with("::tests") {
            // The crate root declares and re-exports every module; the rest are tests.
            continue;
        }
        let Some((rank, entry)) = layer_of(&module) else {
            found.push(format!("`{module}` is in no layer: add it to `LAYERS`"));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (target, path) in imports(&code(&text), &src, &exports) {
            let Some((target_rank, target_entry)) = layer_of(&target) else {
                found.push(format!("`{module}` names `{path}`, which is in no layer"));
                continue;
            };
            if target_entry != entry && target_rank >= rank {
                found.push(format!(
                    "`{module}` (layer {rank}, `{entry}`) names `{path}` \
                     (layer {target_rank}, `{target_entry}`), which is not below it"
                ));
            }
        }
    }
    found
}

#[test]
fn no_module_names_one_of_its_layer_or_above() {
    let found = violations();
    assert!(
        found.is_empty(),
        "imports against the layers:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_paths_as_written() {
    let src = src_dir();
    let exports = root_exports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let code = code(
        "use crate::record::schema::RunRecord;\n\
         // crate::runner in a comment\n\
         fn f() -> crate::Result<()> { crate::report::nanos(d); }\n\
         #[cfg(test)]\nmod tests {\n    use crate::cli;\n}\n",
    );
    let found: Vec<String> = imports(&code, &src, &exports)
        .into_iter()
        .map(|(module, _)| module)
        .collect();
    assert_eq!(found, ["record::schema", "error", "report"]);
    assert_eq!(layer_of("record::schema"), Some((6, "record::schema")));
    assert_eq!(layer_of("record::write"), Some((15, "record")));
    assert_eq!(layer_of("exec::local"), Some((14, "exec")));
    assert_eq!(layer_of("recorder"), None);
}
