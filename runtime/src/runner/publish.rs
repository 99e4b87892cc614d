//! Publishing: the output files of chosen nodes put at paths the user chose, from the
//! store, after a run.

use std::io;
use std::path::PathBuf;

use crate::cache::Store;
use crate::error::{Error, Result};
use crate::graph::{NodeId, Pipeline};
use crate::outputs::{Published, publish_file};
use crate::report::RunReport;

/// A node whose output files are put at `path` after each run of its pipeline.
#[derive(Debug, Clone)]
pub(super) struct Publication {
    /// The pipeline of the node.
    pub(super) pipeline: u64,
    pub(super) node: NodeId,
    pub(super) path: PathBuf,
    /// Whether `path` is a directory that receives every output file of the node at its
    /// path in the work directory; else it is the node's one output file.
    pub(super) dir: bool,
}

/// Puts the output files of each of `publications` of `pipeline` whose node has an entry in
/// `report` at its path, from `store`; returns what was done at each path. A node that did
/// not succeed, or was not needed, publishes nothing.
pub(super) fn publish(
    store: &Store,
    pipeline: &Pipeline,
    report: &RunReport,
    publications: &[Publication],
) -> Result<Vec<Published>> {
    let mut published = Vec::new();
    for publication in publications.iter().filter(|p| p.pipeline == pipeline.id()) {
        let Some(entry) = report.entry(publication.node) else {
            continue;
        };
        let node = pipeline.node_name(publication.node).to_owned();
        let failed = |path: PathBuf, source: io::Error| Error::Publish {
            node: node.clone(),
            path,
            source,
        };
        let files = store
            .output_files(entry)
            .map_err(|why| failed(publication.path.clone(), io::Error::other(why)))?;
        let work = store.files_dir(entry).unwrap_or_default();
        if !publication.dir && files.len() != 1 {
            return Err(failed(
                publication.path.clone(),
                io::Error::other(format!(
                    "its output holds {} files, not one; publish it with `Runner::publish_dir`",
                    files.len()
                )),
            ));
        }
        for file in &files {
            let path = if publication.dir {
                publication.path.join(&file.path)
            } else {
                publication.path.clone()
            };
            let action = publish_file(&work.join(&file.path), file, &path)
                .map_err(|e| failed(path.clone(), e))?;
            tracing::info!(target: "pipewright", node = %node, path = %path.display(), ?action, "published");
            published.push(Published {
                node: node.clone(),
                path,
                action,
            });
        }
    }
    Ok(published)
}
