//! Message bytes, kept once per content (BLAKE3 of the bytes as the key).
//!
//! Two places to keep them: files under `blobs/ab/cd/<hash>` (the default with
//! SQLite), written tmp → fsync → rename before the database commit that
//! refers to them; or the `blobs.data` column (the default with PostgreSQL, so
//! every node sees every blob). With files, messages up to [`INLINE_MAX`]
//! still go into the database: a small row costs less to write and read than
//! a file of its own (and its two fsyncs), and most mail is small. The
//! `blobs` table row exists in every case and is what messages reference; a
//! row with `data` is read from the row, one without from its file.

use crate::error::{Result, StoreError};
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) struct BlobStore {
    dir: Option<PathBuf>,
}

/// Messages up to this size are kept in the database even when larger ones
/// go to files.
pub const INLINE_MAX: usize = 128 * 1024;

/// The content hash of a blob, as lowercase hex.
pub fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

impl BlobStore {
    pub(crate) fn new(dir: Option<PathBuf>) -> BlobStore {
        BlobStore { dir }
    }

    /// True when a blob of `len` bytes goes into the database row, false
    /// when to a file.
    pub(crate) fn in_row(&self, len: usize) -> bool {
        self.dir.is_none() || len <= INLINE_MAX
    }

    fn path_of(dir: &Path, hash: &str) -> PathBuf {
        dir.join(&hash[0..2]).join(&hash[2..4]).join(hash)
    }

    /// Makes the bytes durable on disk (when on disk). Idempotent: an existing
    /// file with this hash is the same content (files appear only by a
    /// rename after their bytes were synced), so it is left as it is.
    pub(crate) async fn write_file(&self, hash: &str, bytes: &bytes::Bytes) -> Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let path = Self::path_of(dir, hash);
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(|e| StoreError::Blob {
                path: String::new(),
                source: std::io::Error::other(e),
            })?
    }

    pub(crate) async fn read_file(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let path = Self::path_of(dir, hash);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::BlobMissing(hash.to_string()))
            }
            Err(source) => Err(StoreError::Blob {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Removes a blob's file (the sweeps in `gc.rs`, holding its row).
    pub(crate) async fn remove_file(&self, hash: &str) -> Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let path = Self::path_of(dir, hash);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Blob {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Removes temporary files (`.tmp-…`) older than `min_age`: a write
    /// that a crash interrupted. Returns how many went.
    pub(crate) async fn remove_stale_temporaries(
        &self,
        min_age: std::time::Duration,
    ) -> Result<usize> {
        let Some(dir) = self.dir.clone() else {
            return Ok(0);
        };
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            for level1 in read_dir_or_empty(&dir)? {
                for level2 in read_dir_or_empty(&level1)? {
                    for file in read_dir_or_empty(&level2)? {
                        let temporary = file
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(".tmp-"));
                        let old = std::fs::metadata(&file)
                            .and_then(|m| m.modified())
                            .ok()
                            .and_then(|t| t.elapsed().ok())
                            .is_some_and(|age| age >= min_age);
                        if temporary && old && std::fs::remove_file(&file).is_ok() {
                            removed += 1;
                        }
                    }
                }
            }
            Ok(removed)
        })
        .await
        .map_err(|e| StoreError::Blob {
            path: String::new(),
            source: std::io::Error::other(e),
        })?
    }

    /// Every hash with a file on disk (for the orphan sweep).
    pub(crate) async fn list_files(&self) -> Result<Vec<String>> {
        let Some(dir) = self.dir.clone() else {
            return Ok(Vec::new());
        };
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for level1 in read_dir_or_empty(&dir)? {
                for level2 in read_dir_or_empty(&level1)? {
                    for file in read_dir_or_empty(&level2)? {
                        if let Some(name) = file.file_name().and_then(|n| n.to_str())
                            && name.len() == 64
                            && name.bytes().all(|b| b.is_ascii_hexdigit())
                        {
                            out.push(name.to_string());
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Blob {
            path: String::new(),
            source: std::io::Error::other(e),
        })?
    }
}

fn read_dir_or_empty(dir: &Path) -> Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(|e| e.ok().map(|e| e.path())).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(StoreError::Blob {
            path: dir.display().to_string(),
            source,
        }),
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let blob_err = |source| StoreError::Blob {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        return Ok(());
    }
    let parent = path
        .parent()
        .ok_or_else(|| blob_err(std::io::Error::other("no parent")))?;
    let tmp = parent.join(format!(".tmp-{}-{}", std::process::id(), rand_suffix()));
    let mut file = match std::fs::File::create(&tmp) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_dirs_durably(parent).map_err(blob_err)?;
            std::fs::File::create(&tmp).map_err(blob_err)?
        }
        Err(e) => return Err(blob_err(e)),
    };
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename is durable only once the directory is synced.
        std::fs::File::open(parent)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(blob_err)
}

/// Creates `dir` and any missing parents, syncing each parent after a new
/// entry appears in it, so the directories survive a power loss with the
/// file about to be written in them.
fn create_dirs_durably(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent"))?;
    create_dirs_durably(parent)?;
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::File::open(parent)?.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    (nanos << 20) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

impl BlobStore {
    /// How long ago the blob file was last written, if it exists.
    pub(crate) async fn file_age(&self, hash: &str) -> Option<std::time::Duration> {
        let dir = self.dir.as_ref()?;
        let modified = tokio::fs::metadata(Self::path_of(dir, hash))
            .await
            .ok()?
            .modified()
            .ok()?;
        modified.elapsed().ok()
    }
}
