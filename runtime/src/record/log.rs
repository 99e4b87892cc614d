//! The run's `tracing` events, written to its `run.log`.

use std::fs;
use std::path::Path;
use std::sync::Mutex;

use crate::cache::StoreError;

/// The file of a run directory that holds its `tracing` events.
pub(crate) const RUN_LOG: &str = "run.log";

/// A `tracing` subscriber that writes the run's events to `run.log`.
pub(crate) fn log_dispatch(dir: &Path) -> Result<tracing::Dispatch, StoreError> {
    use tracing_subscriber::layer::SubscriberExt;
    let path = dir.join(RUN_LOG);
    let file = fs::File::create(&path).map_err(|e| StoreError::new("cannot create", &path, e))?;
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_thread_names(true)
        .with_writer(Mutex::new(file));
    let subscriber = tracing_subscriber::registry().with(layer);
    Ok(tracing::Dispatch::new(subscriber))
}
