//! Why a node will run: its key's components compared with those of the last entry the
//! node wrote (kept in a small index beside the entries, so no scan of the store is
//! needed).

use std::fmt;

use crate::cache::{EntryMeta, Lookup, Store};
use crate::graph::{NodeId, Pipeline};
use crate::key::{Components, Digest, hex, identity, parse_hex, with_input_files};
use crate::plan::{Decision, Plan};
use crate::record::schema::BranchRecord;
use crate::task::TaskMeta;

/// Why a node will run, or that it will not. Printing it gives one line per reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an explanation only says why a node would run: read or print it"]
#[non_exhaustive]
pub struct Explanation {
    /// The node.
    pub node: String,
    /// What the plan says of it.
    pub decision: Decision,
    /// What changed since the node last wrote an entry, one line each.
    pub changes: Vec<String>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = &self.node;
        match &self.decision {
            Decision::Fresh { key } => {
                return write!(
                    f,
                    "`{node}` is fresh: its entry {} is in the store",
                    &key[..12]
                );
            }
            Decision::Run { reason, .. } => write!(f, "`{node}` will run ({reason})")?,
            Decision::Pending { upstream } => write!(
                f,
                "`{node}` waits on `{upstream}`, which runs; it is decided once its inputs exist"
            )?,
            Decision::Mapped { over, .. } if branch_of(node).is_some() => write!(
                f,
                "`{node}` is a branch: branches are made when `{over}` is ready, and each is decided then"
            )?,
            Decision::Mapped { over, .. } => write!(
                f,
                "`{node}` is a mapped node: its branches are made when `{over}` is ready, and each is decided then"
            )?,
        }
        for change in &self.changes {
            write!(f, "\n  - {change}")?;
        }
        Ok(())
    }
}

pub(crate) fn explain(
    pipeline: &Pipeline,
    store: Option<&Store>,
    plan: &Plan,
    digests: &[Option<Digest>],
    id: NodeId,
) -> Explanation {
    let planned = &plan.nodes()[id.index()];
    let mut explanation = Explanation {
        node: planned.node.clone(),
        decision: planned.decision.clone(),
        changes: Vec::new(),
    };
    if matches!(planned.decision, Decision::Fresh { .. }) {
        return explanation;
    }
    if let Decision::Mapped {
        last_branches: Some(n),
        ..
    } = planned.decision
    {
        explanation.changes.push(format!(
            "it had {n} branches in the last run; explain one as `{}[i]`",
            planned.node
        ));
    }
    if matches!(planned.decision, Decision::Mapped { .. }) {
        return explanation;
    }
    let Some(store) = store else {
        return explanation;
    };
    let node = &pipeline.node_at(id);
    let meta = node.task().meta();
    let Some(last) = store.last_entry(meta.name, node.name()) else {
        explanation.changes.push(format!(
            "no entry of task `{}` was ever written for this node",
            meta.name
        ));
        return explanation;
    };
    let changes = &mut explanation.changes;

    let output_type = node.task().output_type();
    if last.fingerprint != hex(&crate::key::fingerprint(meta, output_type)) {
        let version = meta.version.map(str::to_owned);
        if last.version != version {
            changes.push(format!(
                "version changed ({} → {})",
                shown(last.version.as_deref()),
                shown(meta.version)
            ));
        } else {
            code_changes(meta, output_type, &last, changes);
        }
    }

    let params = node.task().params_json();
    let components = with_input_files(Some(store), || node.components(pipeline.name(), Vec::new()));
    if let Ok(components) = components {
        let files_changed = file_changes(&components, &last, changes);
        for (name, digest) in components.param_hex() {
            match last.param_digests.iter().find(|p| p.name == name) {
                Some(old) if old.digest == digest => {}
                // The same path, whose file changed: said above.
                Some(_)
                    if files_changed
                        && json_field(&last.params, &name) == json_field(&params, &name) => {}
                Some(_) => changes.push(format!(
                    "parameter digest changed (`{name}`: {} → {})",
                    json_field(&last.params, &name),
                    json_field(&params, &name)
                )),
                None => changes.push(format!("parameter `{name}` is new")),
            }
        }
        for old in &last.param_digests {
            if !components.params.iter().any(|(name, _)| *name == old.name) {
                changes.push(format!("parameter `{}` was removed", old.name));
            }
        }
    }

    for (i, spec) in meta.inputs.iter().enumerate() {
        let wired: Vec<NodeId> = node.wire(i).ids().to_vec();
        let now: Option<Vec<String>> = wired
            .iter()
            .map(|up| digests[up.index()].map(|d| hex(&d)))
            .collect();
        let before = last.inputs.get(i).map(|input| &input.digests);
        match now {
            None => changes.push(format!(
                "input `{}` is recomputed first (its upstream runs)",
                spec.name
            )),
            Some(now) if Some(&now) != before => {
                changes.push(format!("input `{}` changed", spec.name));
            }
            Some(_) => {}
        }
    }

    if changes.is_empty() && !matches!(planned.decision, Decision::Pending { .. }) {
        note_unexplained(&last, node.task().codec(), changes);
        if changes.is_empty() && meta.names_in_key {
            changes.push(format!(
                "task `{}` takes `&Ctx`, so its key holds the pipeline's name (now `{}`), which \
                 may have changed",
                meta.name,
                pipeline.name()
            ));
        }
    }
    explanation
}

/// The input files and directories whose content changed since the entry was written
/// under the same path; returns whether there is one.
fn file_changes(components: &Components, last: &EntryMeta, changes: &mut Vec<String>) -> bool {
    let mut changed = false;
    for file in &components.files {
        let path = file.path.display().to_string();
        let before = last.input_files.iter().find(|old| old.name == path);
        if before.is_some_and(|old| old.digest != hex(&file.digest)) {
            changes.push(format!("{} `{path}` changed (content)", file.kind));
            changed = true;
        }
    }
    changed
}

/// The task's identity differs from the entry's, with the same `version`: the helpers whose
/// code changed, came or went, and whether the task's own code changed (its identity with
/// the entry's helpers is not the entry's).
fn code_changes(meta: &TaskMeta, output_type: &str, last: &EntryMeta, changes: &mut Vec<String>) {
    let now = meta.helpers();
    let before: Option<Vec<(&str, Digest)>> = last
        .helpers
        .iter()
        .map(|h| parse_hex(&h.digest).map(|d| (h.name.as_str(), d)))
        .collect();
    let Some(mut before) = before else {
        changes.push(format!("code of `{}` changed", meta.name));
        return;
    };
    before.sort_unstable();
    for (name, digest) in &now {
        match before.iter().find(|(old, _)| old == name) {
            Some((_, old)) if old == digest => {}
            Some(_) => changes.push(format!("code of helper `{name}` changed")),
            None => changes.push(format!("helper `{name}` is now used")),
        }
    }
    for (name, _) in &before {
        if !now.iter().any(|(new, _)| new == name) {
            changes.push(format!("helper `{name}` is no longer used"));
        }
    }
    if hex(&identity(meta, output_type, &before)) != last.fingerprint {
        changes.push(format!("code of `{}` changed", meta.name));
    }
}

/// Every component is as before, yet the key differs: the store's format or codec changed.
fn note_unexplained(last: &EntryMeta, codec: &str, changes: &mut Vec<String>) {
    if last.codec != codec {
        changes.push(format!("the codec changed (`{}` → `{codec}`)", last.codec));
    } else if last.format != crate::cache::ENTRY_FORMAT {
        changes.push("the store's entry format changed".to_owned());
    }
}

fn shown(version: Option<&str>) -> String {
    version.map_or_else(|| "none".to_owned(), |v| format!("`{v}`"))
}

/// The JSON text of field `name` of `params`.
fn json_field(params: &serde_json::Value, name: &str) -> String {
    params
        .get(name)
        .map_or_else(|| "?".to_owned(), serde_json::Value::to_string)
}

pub(crate) use crate::graph::branch_of;

/// Why branch `name` of a mapped node (over `over`, running task `task`) will run or not,
/// as far as the last run says: `recorded` is that run's directory, how many branches
/// the node had, and the branch's record, if it had one at that position.
pub(crate) fn branch(
    name: &str,
    over: &str,
    task: &str,
    recorded: Option<(&std::path::Path, usize, Option<&BranchRecord>)>,
    store: Option<&Store>,
) -> Explanation {
    let mut changes = Vec::new();
    let mut last_branches = None;
    match recorded {
        None => changes.push("no finished run of this pipeline is recorded".to_owned()),
        Some((dir, n, branch)) => {
            last_branches = Some(n);
            let run = dir.file_name().map_or_else(
                || dir.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            );
            match branch {
                None => changes.push(format!(
                    "the last run ({run}) had {n} branches, not this one"
                )),
                Some(branch) => {
                    let element = branch.element.as_deref().unwrap_or("?");
                    let reason = branch
                        .reason
                        .as_deref()
                        .map_or_else(String::new, |r| format!(" ({r})"));
                    changes.push(format!(
                        "in the last run ({run}) it took the element with digest {element} and {}{reason}",
                        branch.status.as_str()
                    ));
                    if let (Some(key), Some(store)) = (&branch.key, store) {
                        let short = &key[..key.len().min(12)];
                        changes.push(match store.lookup_fresh(task, key) {
                            Lookup::Present(_) => format!(
                                "its entry {short} is in the store: the same element at any position is cached"
                            ),
                            _ => format!("its entry {short} is no longer in the store"),
                        });
                    }
                    if let Some(upstream) = &branch.upstream_failed {
                        changes.push(format!("it waited on `{upstream}`, which failed"));
                    }
                    if let Some(error) = branch.error.first() {
                        changes.push(format!("it failed: {error}"));
                    }
                }
            }
        }
    }
    Explanation {
        node: name.to_owned(),
        decision: Decision::Mapped {
            over: over.to_owned(),
            last_branches,
        },
        changes,
    }
}

#[cfg(test)]
mod tests {
    use super::branch_of;

    #[test]
    fn a_branch_name_is_its_mapped_node_and_position() {
        assert_eq!(branch_of("counts[3]"), Some(("counts", 3)));
        assert_eq!(branch_of("a[b][12]"), Some(("a[b]", 12)));
        assert_eq!(branch_of("counts"), None);
        assert_eq!(branch_of("counts[x]"), None);
        assert_eq!(branch_of("counts[-1]"), None);
        // Only as reports write it.
        assert_eq!(branch_of("counts[0]"), Some(("counts", 0)));
        for name in ["counts[+3]", "counts[03]", "counts[]", "counts[ 3]"] {
            assert_eq!(branch_of(name), None, "{name}");
        }
    }
}
