//! The record of what the broker acknowledged, one line per message, so that a check from outside
//! can compare it with what was stored.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use anyhow::Context;

/// A file of acknowledged messages, written by every connection of a run.
#[derive(Debug)]
pub struct AckedLog {
    path: PathBuf,
    // Buffered: a line costs a copy, not a write to the file.
    writer: Mutex<BufWriter<File>>,
}

impl AckedLog {
    /// Creates the file, or empties it.
    pub fn create(path: &Path) -> anyhow::Result<AckedLog> {
        let file = File::create(path)
            .with_context(|| format!("cannot create the acked log {}", path.display()))?;
        Ok(AckedLog {
            path: path.to_path_buf(),
            writer: Mutex::new(BufWriter::new(file)),
        })
    }

    /// Records that the broker acknowledged the message called `name`.
    pub fn record(&self, name: &str) -> anyhow::Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        writeln!(writer, "{name}").with_context(|| self.cannot_write())
    }

    /// Writes what is still buffered.
    pub fn finish(self) -> anyhow::Result<()> {
        let cannot_write = self.cannot_write();
        self.writer
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
            .context(cannot_write)
    }

    fn cannot_write(&self) -> String {
        format!("cannot write to the acked log {}", self.path.display())
    }
}
