//! An error's chain of sources as lines of text, as run records and worker status files
//! keep it, and an error read back from such lines.

/// An error and its sources, outermost first.
pub(crate) fn chain(error: &dyn std::error::Error) -> Vec<String> {
    let mut lines = vec![error.to_string()];
    let mut source = std::error::Error::source(error);
    while let Some(err) = source {
        let text = err.to_string();
        if lines.last() != Some(&text) {
            lines.push(text);
        }
        source = err.source();
    }
    lines
}

/// An error read back from a record: its message and, as its source, the rest of the chain.
#[derive(Debug)]
pub(crate) struct RecordedError {
    message: String,
    source: Option<Box<RecordedError>>,
}

impl RecordedError {
    pub(crate) fn from_chain(chain: &[String]) -> Option<Box<Self>> {
        let (message, rest) = chain.split_first()?;
        Some(Box::new(RecordedError {
            message: message.clone(),
            source: Self::from_chain(rest),
        }))
    }
}

impl std::fmt::Display for RecordedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RecordedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
