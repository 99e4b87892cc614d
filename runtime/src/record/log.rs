//! The run's `tracing` events, written to its `run.log` through a buffer, each event's
//! line whole.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::cache::StoreError;

/// The file of a run directory that holds its `tracing` events.
pub(crate) const RUN_LOG: &str = "run.log";

/// How many bytes of events are kept before they are written.
const BUFFER: usize = 64 * 1024;

/// The open `run.log` of a run. Flush it when the run ends; dropping it flushes what is
/// left too, ignoring errors.
pub(crate) struct RunLog {
    file: Arc<Mutex<BufWriter<fs::File>>>,
    path: PathBuf,
}

/// What the subscriber writes each event with.
struct MakeLines(Arc<Mutex<BufWriter<fs::File>>>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MakeLines {
    type Writer = Lines<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Lines(&self.0)
    }
}

/// A writer of whole lines into a [`RunLog`]: one event's line is written under one lock.
struct Lines<'a>(&'a Mutex<BufWriter<fs::File>>);

impl Lines<'_> {
    fn lock(&self) -> MutexGuard<'_, BufWriter<fs::File>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Write for Lines<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.lock().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        // The buffer is written when it is full and when the run ends, not per event.
        Ok(())
    }
}

impl RunLog {
    /// Writes what the buffer holds to `run.log`.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
            .map_err(|e| StoreError::new("cannot write", &self.path, e))
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// A `tracing` subscriber that writes the run's events to `run.log` in `dir`, and the log
/// it writes to.
pub(crate) fn log_dispatch(dir: &Path) -> Result<(tracing::Dispatch, RunLog), StoreError> {
    use tracing_subscriber::layer::SubscriberExt;
    let path = dir.join(RUN_LOG);
    let file = fs::File::create(&path).map_err(|e| StoreError::new("cannot create", &path, e))?;
    let file = Arc::new(Mutex::new(BufWriter::with_capacity(BUFFER, file)));
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_thread_names(true)
        .with_writer(MakeLines(file.clone()));
    let subscriber = tracing_subscriber::registry().with(layer);
    Ok((tracing::Dispatch::new(subscriber), RunLog { file, path }))
}
