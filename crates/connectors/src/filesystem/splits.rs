//! Listing input files and cutting them into byte-range splits that subtasks share.

use std::path::{Path, PathBuf};

/// A byte range of one file; a reader owns every line that starts inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileSplit {
    pub(crate) path: PathBuf,
    pub(crate) start: u64,
    /// `None`: to the end of the file.
    pub(crate) end: Option<u64>,
    /// Where a restored reader resumes, if it had begun: the start of a line, or for a
    /// Parquet file (always whole) the number of rows already read.
    pub(crate) resume: Option<u64>,
}

impl FileSplit {
    /// A stable id for checkpoints and dead letters.
    pub(crate) fn id(&self) -> String {
        format!("{}@{}", self.path.display(), self.start)
    }

    /// The split as a checkpoint records it.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path.to_string_lossy(),
            "start": self.start,
            "end": self.end,
            "resume": self.resume,
        })
    }

    /// A split from a checkpoint; `None` if the entry is malformed.
    pub(crate) fn from_json(v: &serde_json::Value) -> Option<FileSplit> {
        let opt = |k: &str| match v.get(k) {
            None | Some(serde_json::Value::Null) => Some(None),
            Some(n) => n.as_u64().map(Some),
        };
        Some(FileSplit {
            path: PathBuf::from(v.get("path")?.as_str()?),
            start: v.get("start")?.as_u64()?,
            end: opt("end")?,
            resume: opt("resume")?,
        })
    }
}

fn hidden(name: &std::ffi::OsStr) -> bool {
    let n = name.to_string_lossy();
    n.starts_with('.') || n.starts_with('_')
}

/// Every regular file under `root` (or `root` itself), sorted, skipping hidden and
/// `_`-prefixed names as Flink does. Errors when `root` does not exist.
pub(crate) fn list_files(root: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let meta = std::fs::metadata(root)?;
    if meta.is_file() {
        return Ok(vec![(root.to_path_buf(), meta.len())]);
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if hidden(&entry.file_name()) {
                continue;
            }
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(entry.path());
            } else if (ty.is_file() || ty.is_symlink())
                && let Ok(m) = std::fs::metadata(entry.path())
                && m.is_file()
            {
                out.push((entry.path(), m.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Cuts files into splits of roughly equal size so that `parallelism` subtasks get
/// similar work: between 4 MiB and 128 MiB each, at least two per subtask when the
/// input is big enough.
pub(crate) fn plan_splits(files: &[(PathBuf, u64)], parallelism: usize) -> Vec<FileSplit> {
    const MIN: u64 = 4 << 20;
    const MAX: u64 = 128 << 20;
    let total: u64 = files.iter().map(|(_, l)| *l).sum();
    let target = (total / (parallelism.max(1) as u64 * 2)).clamp(MIN, MAX);
    let mut out = Vec::new();
    for (path, len) in files {
        let mut start = 0;
        loop {
            let end = start + target;
            if end >= *len {
                out.push(FileSplit {
                    path: path.clone(),
                    start,
                    end: None,
                    resume: None,
                });
                break;
            }
            out.push(FileSplit {
                path: path.clone(),
                start,
                end: Some(end),
                resume: None,
            });
            start = end;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_each_file_contiguously() {
        let files = vec![(PathBuf::from("a"), 20 << 20), (PathBuf::from("b"), 10)];
        let s = plan_splits(&files, 2);
        assert_eq!(s.first().map(|x| x.start), Some(0));
        let a: Vec<_> = s.iter().filter(|x| x.path == Path::new("a")).collect();
        for w in a.windows(2) {
            assert_eq!(w[0].end, Some(w[1].start));
        }
        assert_eq!(a.last().and_then(|x| x.end), None);
        assert_eq!(s.iter().filter(|x| x.path == Path::new("b")).count(), 1);
    }
}
