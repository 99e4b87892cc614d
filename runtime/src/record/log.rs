//! The run's `tracing` events, written to its `run.log` through a buffer, each event's
//! line whole, as `tracing_subscriber`'s full format writes it without colours, but with
//! fewer formatting calls: a run writes two lines per node.

use std::fmt;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

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
        .event_format(Line)
        .with_writer(MakeLines(file.clone()));
    let subscriber = tracing_subscriber::registry().with(layer);
    Ok((tracing::Dispatch::new(subscriber), RunLog { file, path }))
}

/// The line of one event: its time (UTC, in microseconds), level, thread, spans with their
/// fields, target and fields, as `tracing_subscriber`'s full format writes them with thread
/// names and without colours:
/// `2026-01-02T03:04:05.123456Z  INFO pipewright-0 run{pipeline="p"}:node{node=a task=t}: pipewright: finished duration=1ms`.
struct Line;

/// The longest thread name a line has shown: names are aligned to its length.
static THREAD_NAME_WIDTH: AtomicUsize = AtomicUsize::new(0);

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(
            writer,
            "{} ",
            humantime::format_rfc3339_micros(std::time::SystemTime::now())
        )?;
        writer.write_str(match *meta.level() {
            Level::TRACE => "TRACE ",
            Level::DEBUG => "DEBUG ",
            Level::INFO => " INFO ",
            Level::WARN => " WARN ",
            Level::ERROR => "ERROR ",
        })?;
        let thread = std::thread::current();
        match thread.name() {
            Some(name) => {
                let width = THREAD_NAME_WIDTH.fetch_max(name.len(), Ordering::Relaxed);
                // Aligned as `{:>width$}` aligns: by characters, to a width in bytes.
                for _ in name.chars().count()..width {
                    writer.write_char(' ')?;
                }
                writer.write_str(name)?;
                writer.write_char(' ')?;
            }
            None => write!(writer, "{:0>2?} ", thread.id())?,
        }
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer the subscriber under test writes its lines into.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The lines a subscriber with `layer` writes for the same events, in two spans, on two
    /// named threads.
    fn lines<L>(layer: impl FnOnce(Buffer) -> L) -> Vec<String>
    where
        L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    {
        use tracing_subscriber::layer::SubscriberExt;
        let buffer = Buffer::default();
        let dispatch =
            tracing::Dispatch::new(tracing_subscriber::registry().with(layer(buffer.clone())));
        for thread in ["a-longer-thread-name", "short"] {
            let dispatch = dispatch.clone();
            std::thread::Builder::new()
                .name(thread.to_owned())
                .spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        tracing::info!(target: "pipewright", nodes = 3, "run started");
                        let run = tracing::info_span!("run", pipeline = "the \"p\"");
                        let _run = run.enter();
                        let node = tracing::info_span!("node", node = "a", task = "t");
                        let _node = node.enter();
                        let duration = std::time::Duration::from_micros(1234);
                        tracing::debug!(target: "pipewright", attempt = 1, "started");
                        tracing::info!(target: "pipewright", ?duration, "finished");
                        tracing::warn!(target: "pipewright::x", "damaged: {}", "why");
                        let _empty = tracing::error_span!("empty").entered();
                        tracing::error!(target: "pipewright", "failed");
                    });
                })
                .unwrap()
                .join()
                .unwrap();
        }
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    /// A line's time, and the rest with its spaces collapsed (thread names are aligned to
    /// the longest each formatter has seen in the process).
    fn split(line: &str) -> (&str, String) {
        let (time, rest) = line.split_once(' ').unwrap();
        (time, rest.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    #[test]
    fn a_line_is_written_as_the_full_format_writes_it() {
        let ours = lines(|buffer| {
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(Line)
                .with_writer(move || buffer.clone())
        });
        let theirs = lines(|buffer| {
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_thread_names(true)
                .with_writer(move || buffer.clone())
        });
        assert_eq!(ours.len(), 10, "{ours:#?}");
        assert_eq!(ours.len(), theirs.len());
        for (ours, theirs) in ours.iter().zip(&theirs) {
            let ((our_time, ours), (their_time, theirs)) = (split(ours), split(theirs));
            assert_eq!(ours, theirs);
            assert_eq!(our_time.len(), their_time.len(), "{our_time} {their_time}");
            assert!(our_time.ends_with('Z') && our_time.as_bytes()[10] == b'T');
        }
        assert!(
            ours[2].ends_with(
                " INFO a-longer-thread-name run{pipeline=\"the \\\"p\\\"\"}:node{node=\"a\" \
                 task=\"t\"}: pipewright: finished duration=1.234ms"
            ),
            "{}",
            ours[2]
        );
    }
}
