//! The checkpoint store: where snapshots live, through `object_store` (a local directory
//! by default). Checkpoint `n` is a folder `chk-<n>/` holding one state file per
//! subtask and, written last, `_manifest.json` listing every file with its size and
//! CRC-32: a checkpoint without a manifest never completed. Reading the latest
//! checkpoint verifies every file against its manifest and falls back to the one before
//! when something is missing or damaged. Old checkpoints are retained by count.
//!
//! Incremental checkpoints write their files under `shared/` instead (named by
//! [`shared_name`]): a manifest lists such a file by that name, and later manifests may
//! list it again. A shared file goes when no retained manifest lists it any more.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One file of a checkpoint, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Size in bytes.
    pub size: u64,
    /// CRC-32 of the bytes.
    pub crc32: u32,
}

/// What a complete checkpoint holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The checkpoint's number.
    pub id: u64,
    /// State files by name (e.g. `window-aggregate-3.0`), relative to the checkpoint.
    pub files: BTreeMap<String, FileEntry>,
    /// Free-form facts the runtime records (source offsets, worker count, SQL hash).
    pub meta: BTreeMap<String, String>,
}

/// A checkpoint store over an `object_store`.
pub struct CheckpointStore {
    store: Arc<dyn ObjectStore>,
    /// How many complete checkpoints to keep.
    retain: usize,
    /// The directory of a local store: state files are streamed into it.
    local: Option<std::path::PathBuf>,
}

fn store_error(e: object_store::Error) -> Error {
    Error::Store(e.to_string())
}

fn folder(id: u64) -> String {
    format!("chk-{id:020}")
}

const SHARED: &str = "shared/";

/// The name of a file written for checkpoint `id` that later checkpoints may list too
/// (incremental state): `shared/<stem>-c<id>.arrow`.
pub fn shared_name(stem: &str, id: u64) -> String {
    format!("{SHARED}{stem}-c{id:020}.arrow")
}

/// The checkpoint a shared file (or its temporary file, `….arrow.tmp`) was written for.
fn shared_id(name: &str) -> Option<u64> {
    let name = name.strip_suffix(".tmp").unwrap_or(name);
    let rest = name.strip_prefix(SHARED)?.strip_suffix(".arrow")?;
    rest.rsplit_once("-c")?.1.parse().ok()
}

/// Where file `name` of checkpoint `id` lives: in the checkpoint's folder, or under
/// `shared/` for a shared file.
fn file_path(id: u64, name: &str) -> Path {
    if name.starts_with(SHARED) {
        Path::from(name)
    } else {
        Path::from(format!("{}/{name}", folder(id)))
    }
}

impl CheckpointStore {
    /// The store at `location`: a local directory (or `file://` URL), or
    /// `s3://bucket/prefix` on any S3-compatible store, configured the standard way
    /// through `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` for a store other than
    /// AWS, `AWS_ALLOW_HTTP=true` for plain HTTP).
    pub fn open(location: &str, retain: usize) -> Result<Self> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Store(format!(
                    "'{location}' names no bucket: write s3://bucket/prefix"
                )));
            }
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(store_error)?;
            let prefix = prefix.trim_matches('/');
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
            };
            return Ok(Self::new(store, retain));
        }
        if let Some((scheme, _)) = location.split_once("://")
            && scheme != "file"
        {
            return Err(Error::Store(format!(
                "'{location}': checkpoints go to a local directory or to s3://bucket/prefix, not {scheme}://"
            )));
        }
        let dir = location.strip_prefix("file://").unwrap_or(location);
        Self::local(std::path::Path::new(dir), retain)
    }

    /// A store in local directory `dir` (created if missing), keeping `retain`
    /// complete checkpoints.
    pub fn local(dir: &std::path::Path, retain: usize) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Store(format!("cannot create '{}': {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(store_error)?
            .with_automatic_cleanup(true);
        Ok(CheckpointStore {
            local: Some(dir.to_path_buf()),
            ..Self::new(Arc::new(fs), retain)
        })
    }

    /// A store over any `object_store` (S3-compatible, in memory for tests, …).
    pub fn new(store: Arc<dyn ObjectStore>, retain: usize) -> Self {
        CheckpointStore {
            store,
            retain: retain.max(1),
            local: None,
        }
    }

    /// Writes one state file of checkpoint `id` (a [`shared_name`] goes under
    /// `shared/`); returns its manifest entry.
    pub async fn put(&self, id: u64, name: &str, bytes: Vec<u8>) -> Result<FileEntry> {
        let entry = FileEntry {
            size: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        };
        let path = file_path(id, name);
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(store_error)?;
        Ok(entry)
    }

    /// Encodes `tables` ([`crate::encode`]) as state file `name` of checkpoint `id`;
    /// returns its manifest entry. A local store gets the bytes streamed into a
    /// temporary file, renamed into place when whole; others get them in one put.
    pub async fn put_tables(
        &self,
        id: u64,
        name: &str,
        tables: Vec<crate::TableSnapshot>,
    ) -> Result<FileEntry> {
        let Some(root) = &self.local else {
            let bytes = tokio::task::spawn_blocking(move || crate::encode(&tables))
                .await
                .map_err(|e| Error::Store(e.to_string()))??;
            return self.put(id, name, bytes).await;
        };
        let path = root.join(file_path(id, name).as_ref());
        tokio::task::spawn_blocking(move || stream_to_file(&path, &tables))
            .await
            .map_err(|e| Error::Store(e.to_string()))?
    }

    /// Marks checkpoint `manifest.id` complete by writing its manifest (last), then
    /// drops complete checkpoints beyond the retained count and incomplete older ones.
    pub async fn complete(&self, manifest: &Manifest) -> Result<()> {
        let json = serde_json::to_vec_pretty(manifest)
            .map_err(|e| Error::Store(format!("cannot write the manifest: {e}")))?;
        let path = Path::from(format!("{}/_manifest.json", folder(manifest.id)));
        self.store
            .put(&path, PutPayload::from(json))
            .await
            .map_err(store_error)?;
        self.prune(manifest.id).await
    }

    /// Every checkpoint folder's id, and whether it has a manifest.
    /// The id after the highest one in the store (complete or not), so that a new run's
    /// checkpoints never reuse a folder.
    pub async fn next_id(&self) -> Result<u64> {
        let folders = self.checkpoints().await?.keys().next_back().copied();
        let shared = self
            .shared()
            .await?
            .iter()
            .filter_map(|p| shared_id(p.as_ref()))
            .max();
        Ok(folders.max(shared).map_or(1, |id| id + 1))
    }

    /// Deletes every checkpoint in the store; returns how many there were.
    pub async fn clear(&self) -> Result<usize> {
        let all = self.checkpoints().await?;
        for id in all.keys() {
            self.delete(*id).await?;
        }
        for p in self.shared().await? {
            self.store.delete(&p).await.map_err(store_error)?;
        }
        Ok(all.len())
    }

    /// Every file under `shared/`.
    async fn shared(&self) -> Result<Vec<Path>> {
        let prefix = Path::from(SHARED.trim_end_matches('/'));
        self.store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(store_error)
    }

    async fn delete(&self, id: u64) -> Result<()> {
        let prefix = Path::from(folder(id));
        let paths: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(store_error)?;
        for p in paths {
            self.store.delete(&p).await.map_err(store_error)?;
        }
        Ok(())
    }

    async fn checkpoints(&self) -> Result<BTreeMap<u64, bool>> {
        let mut ids: BTreeMap<u64, bool> = BTreeMap::new();
        let mut list = self.store.list(None);
        while let Some(meta) = list.try_next().await.map_err(store_error)? {
            let mut parts = meta.location.parts();
            let Some(first) = parts.next() else { continue };
            let Some(id) = first
                .as_ref()
                .strip_prefix("chk-")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let is_manifest = parts.next().is_some_and(|p| p.as_ref() == "_manifest.json");
            let e = ids.entry(id).or_insert(false);
            *e |= is_manifest;
        }
        Ok(ids)
    }

    /// The newest complete checkpoint whose files all match its manifest. Damaged or
    /// missing ones are skipped, each with the reason in the returned warnings.
    pub async fn latest(&self) -> Result<(Option<Manifest>, Vec<String>)> {
        let mut warnings = Vec::new();
        for (id, complete) in self.checkpoints().await?.into_iter().rev() {
            if !complete {
                continue;
            }
            match self.verify(id).await {
                Ok(m) => return Ok((Some(m), warnings)),
                Err(e) => warnings.push(format!("checkpoint {id} skipped: {e}")),
            }
        }
        Ok((None, warnings))
    }

    /// The manifests that still parse of the complete checkpoints newer than `id` (ones
    /// [`latest`](Self::latest) skipped because a state file is damaged): what they
    /// committed must be undone when resuming from `id`.
    pub async fn skipped_after(&self, id: u64) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for (newer, complete) in self.checkpoints().await? {
            if complete
                && newer > id
                && let Ok(m) = self.manifest(newer).await
            {
                out.push(m);
            }
        }
        Ok(out)
    }

    async fn verify(&self, id: u64) -> Result<Manifest> {
        let manifest = self.manifest(id).await?;
        for (name, entry) in &manifest.files {
            self.read_checked(id, name, entry).await?;
        }
        Ok(manifest)
    }

    async fn manifest(&self, id: u64) -> Result<Manifest> {
        let path = Path::from(format!("{}/_manifest.json", folder(id)));
        let bytes = self.get_path(&path).await?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt(format!("its manifest does not parse: {e}")))?;
        if manifest.id != id {
            return Err(Error::Corrupt(format!(
                "its manifest names checkpoint {}",
                manifest.id
            )));
        }
        Ok(manifest)
    }

    async fn get_path(&self, path: &Path) -> Result<Vec<u8>> {
        let got = self.store.get(path).await.map_err(store_error)?;
        Ok(got.bytes().await.map_err(store_error)?.to_vec())
    }

    /// Reads state file `name` of checkpoint `id`, checked against its manifest entry.
    pub async fn read_checked(&self, id: u64, name: &str, entry: &FileEntry) -> Result<Vec<u8>> {
        let path = file_path(id, name);
        let bytes = self.get_path(&path).await?;
        if bytes.len() as u64 != entry.size || crc32fast::hash(&bytes) != entry.crc32 {
            return Err(Error::Corrupt(format!(
                "'{name}' does not match its manifest (size or checksum)"
            )));
        }
        Ok(bytes)
    }

    /// Keeps the newest `retain` complete checkpoints (up to `newest`) and deletes
    /// older ones, complete or not, and the shared files written up to `newest` that
    /// none of the kept ones lists.
    async fn prune(&self, newest: u64) -> Result<()> {
        let all = self.checkpoints().await?;
        let keep: Vec<u64> = all
            .iter()
            .rev()
            .filter(|(id, complete)| **complete && **id <= newest)
            .take(self.retain)
            .map(|(id, _)| *id)
            .collect();
        let Some(oldest_kept) = keep.last().copied() else {
            return Ok(());
        };
        for id in all.keys().copied().filter(|id| *id < oldest_kept) {
            self.delete(id).await?;
        }
        let shared = self.shared().await?;
        if shared.is_empty() {
            return Ok(());
        }
        let mut listed = std::collections::HashSet::new();
        for id in keep {
            // A kept manifest that does not parse cannot be restored from anyway.
            if let Ok(m) = self.manifest(id).await {
                listed.extend(m.files.into_keys());
            }
        }
        for p in shared {
            let name = p.as_ref();
            if !listed.contains(name) && shared_id(name).is_some_and(|id| id <= newest) {
                self.store.delete(&p).await.map_err(store_error)?;
            }
        }
        Ok(())
    }
}

/// Counts and checksums what passes through to a file.
struct Checked<W> {
    inner: W,
    crc: crc32fast::Hasher,
    size: u64,
}

impl<W: std::io::Write> std::io::Write for Checked<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `tables` to `path` through a temporary file in the same folder, past the
/// page cache ([`crate::direct`]).
fn stream_to_file(path: &std::path::Path, tables: &[crate::TableSnapshot]) -> Result<FileEntry> {
    let fail = |e: std::io::Error| Error::Store(format!("cannot write '{}': {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let file = crate::direct::DirectFile::create(&tmp).map_err(fail)?;
    let mut w = Checked {
        inner: file,
        crc: crc32fast::Hasher::new(),
        size: 0,
    };
    let written =
        crate::encode_to(tables, &mut w).and_then(|()| w.inner.finish().map_err(fail).map(drop));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(fail)?;
    Ok(FileEntry {
        size: w.size,
        crc32: w.crc.finalize(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn write(store: &CheckpointStore, id: u64) -> Manifest {
        let mut files = BTreeMap::new();
        for task in ["agg-0", "agg-1"] {
            let bytes = format!("state of {task} at {id}").into_bytes();
            files.insert(
                task.to_string(),
                store.put(id, task, bytes).await.expect("puts"),
            );
        }
        let m = Manifest {
            id,
            files,
            meta: BTreeMap::from([("workers".to_string(), "2".to_string())]),
        };
        store.complete(&m).await.expect("completes");
        m
    }

    #[tokio::test]
    async fn the_latest_intact_checkpoint_is_found_and_old_ones_go() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = CheckpointStore::local(dir.path(), 2).expect("a store");
        assert!(store.latest().await.expect("lists").0.is_none());
        for id in 1..=3 {
            write(&store, id).await;
        }
        // An incomplete checkpoint (no manifest) is ignored.
        store.put(4, "agg-0", b"half".to_vec()).await.expect("puts");
        let (latest, warnings) = store.latest().await.expect("reads");
        assert_eq!(latest.map(|m| m.id), Some(3));
        assert!(warnings.is_empty());
        // Retention: checkpoints 2 and 3 remain.
        assert!(!dir.path().join(folder(1)).join("agg-0").exists());
        assert!(dir.path().join(folder(2)).join("agg-0").exists());

        // Damage the newest: the one before is used, with a warning.
        std::fs::write(dir.path().join(folder(3)).join("agg-1"), b"flipped").expect("writes");
        let (latest, warnings) = store.latest().await.expect("reads");
        assert_eq!(latest.map(|m| m.id), Some(2));
        assert!(warnings[0].contains("checkpoint 3 skipped"), "{warnings:?}");
        // A truncated manifest, too.
        std::fs::write(
            dir.path().join(folder(2)).join("_manifest.json"),
            b"{\"id\":",
        )
        .expect("writes");
        let (latest, warnings) = store.latest().await.expect("reads");
        assert!(latest.is_none());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[tokio::test]
    async fn shared_files_live_while_a_kept_checkpoint_lists_them() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = CheckpointStore::local(dir.path(), 2).expect("a store");
        let mut chain: Vec<(String, FileEntry)> = Vec::new();
        for id in 1..=4u64 {
            let name = shared_name("n1-s0", id);
            let entry = store
                .put(id, &name, format!("delta {id}").into_bytes())
                .await
                .expect("puts");
            chain.push((name, entry));
            // Checkpoint 3 starts a new chain (a full snapshot).
            if id == 3 {
                chain.drain(..chain.len() - 1);
            }
            let m = Manifest {
                id,
                files: chain.iter().cloned().collect(),
                meta: BTreeMap::new(),
            };
            store.complete(&m).await.expect("completes");
        }
        let shared = dir.path().join("shared");
        let mut left: Vec<String> = std::fs::read_dir(&shared)
            .expect("lists")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        left.sort();
        // Checkpoints 3 and 4 are kept; they list deltas 3 and 4 only.
        assert_eq!(
            left,
            vec![
                "n1-s0-c00000000000000000003.arrow",
                "n1-s0-c00000000000000000004.arrow"
            ]
        );
        let (latest, _) = store.latest().await.expect("reads");
        let latest = latest.expect("a checkpoint");
        let (name, entry) = &chain[0];
        let bytes = store.read_checked(4, name, entry).await.expect("reads");
        assert_eq!(bytes, b"delta 3");
        assert_eq!(latest.files.len(), 2);
        // A file written for a checkpoint not yet complete is not pruned.
        store
            .put(6, &shared_name("n1-s0", 6), b"in flight".to_vec())
            .await
            .expect("puts");
        assert_eq!(store.next_id().await.expect("lists"), 7);
        store.complete(&latest).await.expect("completes again");
        assert!(shared.join("n1-s0-c00000000000000000006.arrow").exists());
        assert_eq!(store.clear().await.expect("clears"), 2);
        assert_eq!(std::fs::read_dir(&shared).map_or(0, |d| d.count()), 0);
    }

    #[tokio::test]
    async fn state_files_read_back_checked() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = CheckpointStore::local(dir.path(), 3).expect("a store");
        let m = write(&store, 7).await;
        let bytes = store
            .read_checked(7, "agg-1", &m.files["agg-1"])
            .await
            .expect("reads");
        assert_eq!(bytes, b"state of agg-1 at 7");
        let wrong = FileEntry { size: 3, crc32: 0 };
        assert!(store.read_checked(7, "agg-1", &wrong).await.is_err());
        assert!(store.read_checked(7, "missing", &wrong).await.is_err());
    }
}
