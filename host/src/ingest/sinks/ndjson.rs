//! The NDJSON file sink: one unified event per line, appended to `<dir>/<name>.ndjson`,
//! `fsync`ed before the batch is acknowledged, rotated by size.
//!
//! Rotation: when the next batch would take the current file past `max_file_bytes`
//! (and the file is not empty), `<name>.ndjson` becomes `<name>.1.ndjson`, every older
//! `<name>.<i>.ndjson` becomes `<name>.<i+1>.ndjson`, and the file past `keep_files`
//! rotated ones is deleted. A batch is never split across files, so one batch larger than
//! the limit makes one larger file. Delivery is at-least-once: a batch redelivered after
//! a crash is appended again (consumers dedup by the event `id`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::super::sink::{EventSink, SinkBatch, SinkError};

/// The NDJSON file sink.
pub struct NdjsonSink {
    name: String,
    inner: Arc<parking_lot::Mutex<NdjsonFile>>,
}

impl std::fmt::Debug for NdjsonSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdjsonSink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

struct NdjsonFile {
    dir: PathBuf,
    stem: String,
    max_file_bytes: u64,
    keep_files: usize,
    file: Option<File>,
    size: u64,
}

impl NdjsonFile {
    fn current(&self) -> PathBuf {
        self.dir.join(format!("{}.ndjson", self.stem))
    }

    fn rotated(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.{i}.ndjson", self.stem))
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.current())?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("file not open"))
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let oldest = self.rotated(self.keep_files);
        if oldest.exists() {
            std::fs::remove_file(&oldest)?;
        }
        for i in (1..self.keep_files).rev() {
            let from = self.rotated(i);
            if from.exists() {
                std::fs::rename(&from, self.rotated(i + 1))?;
            }
        }
        if self.keep_files == 0 {
            std::fs::remove_file(self.current())?;
        } else {
            std::fs::rename(self.current(), self.rotated(1))?;
        }
        sync_dir(&self.dir);
        self.size = 0;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.open()?;
        if self.size > 0 && self.size + bytes.len() as u64 > self.max_file_bytes {
            self.rotate()?;
        }
        let created = self.size == 0;
        let f = self.open()?;
        f.write_all(bytes)?;
        f.sync_data()?;
        self.size += bytes.len() as u64;
        if created {
            sync_dir(&self.dir);
        }
        Ok(())
    }
}

/// Make a new or renamed directory entry durable (best effort: not every platform can
/// open a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl NdjsonSink {
    /// A sink writing `<dir>/<stem>.ndjson`, rotating past `max_file_bytes` and keeping
    /// `keep_files` rotated files.
    pub fn new(
        name: impl Into<String>,
        dir: PathBuf,
        stem: impl Into<String>,
        max_file_bytes: u64,
        keep_files: usize,
    ) -> Self {
        NdjsonSink {
            name: name.into(),
            inner: Arc::new(parking_lot::Mutex::new(NdjsonFile {
                dir,
                stem: stem.into(),
                max_file_bytes: max_file_bytes.max(1),
                keep_files,
                file: None,
                size: 0,
            })),
        }
    }
}

#[async_trait::async_trait]
impl EventSink for NdjsonSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, batch: &SinkBatch) -> Result<(), SinkError> {
        if batch.events.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(batch.events.len() * 512);
        for e in &batch.events {
            serde_json::to_writer(&mut bytes, e).map_err(|err| SinkError::Rejected {
                sink: self.name.clone(),
                message: format!("event {} does not serialise: {err}", e.id),
            })?;
            bytes.push(b'\n');
        }
        let inner = self.inner.clone();
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || inner.lock().append(&bytes))
            .await
            .map_err(|e| SinkError::Unavailable {
                sink: name.clone(),
                message: format!("writer task failed: {e}"),
                retry_after: None,
            })?
            .map_err(|e| {
                // Drop the handle: the next attempt reopens (the file may have been moved).
                self.inner.lock().file = None;
                SinkError::Unavailable {
                    sink: name,
                    message: format!("writing the NDJSON file: {e}"),
                    retry_after: None,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn events(prefix: &str, n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                serde_json::from_value(serde_json::json!({
                    "id": format!("{prefix}-{i}"),
                    "time": "2025-02-10T00:00:00Z",
                    "kind": "log",
                    "severity": "low",
                    "severity_id": 2,
                    "title": "t",
                    "source": "con_1",
                    "observables": [],
                    "attributes": {},
                    "raw": "x".repeat(100),
                }))
                .unwrap()
            })
            .collect()
    }

    fn batch(prefix: &str, n: usize) -> SinkBatch {
        SinkBatch {
            org: "o".into(),
            connector_id: "c".into(),
            batch_id: prefix.into(),
            events: events(prefix, n),
        }
    }

    fn ids(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[tokio::test]
    async fn appends_lines_and_rotates_keeping_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let line = serde_json::to_vec(&events("b0", 1)[0]).unwrap().len() as u64 + 1;
        // Room for 3 lines per file; 2 rotated files kept.
        let sink = NdjsonSink::new("archive", dir.path().to_path_buf(), "archive", line * 3, 2);
        for b in 0..5 {
            sink.deliver(&batch(&format!("b{b}"), 2)).await.unwrap();
        }
        // Each 2-event batch fits alone, never with another: 5 files' worth, 3 kept.
        assert_eq!(
            ids(&dir.path().join("archive.ndjson")),
            vec!["b4-0", "b4-1"]
        );
        assert_eq!(
            ids(&dir.path().join("archive.1.ndjson")),
            vec!["b3-0", "b3-1"]
        );
        assert_eq!(
            ids(&dir.path().join("archive.2.ndjson")),
            vec!["b2-0", "b2-1"]
        );
        assert!(!dir.path().join("archive.3.ndjson").exists());
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["archive.1.ndjson", "archive.2.ndjson", "archive.ndjson"]
        );

        // Reopening continues the current file (size known from disk).
        let again = NdjsonSink::new("archive", dir.path().to_path_buf(), "archive", line * 3, 2);
        again.deliver(&batch("b5", 1)).await.unwrap();
        assert_eq!(
            ids(&dir.path().join("archive.ndjson")),
            vec!["b4-0", "b4-1", "b5-0"]
        );
        again.deliver(&batch("b6", 1)).await.unwrap();
        assert_eq!(ids(&dir.path().join("archive.ndjson")), vec!["b6-0"]);
        assert_eq!(
            ids(&dir.path().join("archive.2.ndjson")),
            vec!["b3-0", "b3-1"]
        );
    }

    #[tokio::test]
    async fn unwritable_directory_is_unavailable_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let sink = NdjsonSink::new("archive", blocker.join("sub"), "archive", 1024, 2);
        let err = sink.deliver(&batch("b", 1)).await.unwrap_err();
        assert!(matches!(err, SinkError::Unavailable { .. }), "{err}");
    }
}
