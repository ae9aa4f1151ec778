//! A state file written past the page cache. Checkpoints write state once and read it
//! back only on a restart, so copying it into the page cache first is wasted work: on
//! the two-core machine of `bench/RESULTS.md`, writing 2.4 GB through the page cache
//! cost 4 s of kernel CPU (memory-cgroup charging, copies, writeback), direct I/O 0.3 s.
//!
//! Owns: [`DirectFile`], an `io::Write` that collects bytes into an aligned buffer and
//! writes it in whole aligned chunks with `O_DIRECT` (Linux), padding the last chunk and
//! truncating the file back to its length. Where the file system refuses `O_DIRECT`
//! (at open or at the first write), it carries on with ordinary writes.
//! Does not own: what is written (snapshots) or where (the store).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Direct I/O wants buffers, offsets and lengths aligned to the logical block size;
/// 4 KiB covers the devices in use.
const ALIGN: usize = 4096;
/// Bytes per write: large writes keep the device busy with few system calls.
const CHUNK: usize = 4 << 20;

/// A new file written in aligned chunks, bypassing the page cache where it can.
/// Call [`DirectFile::finish`] at the end: dropping it loses the buffered tail.
pub(crate) struct DirectFile {
    file: File,
    path: PathBuf,
    /// Whether the file is open with `O_DIRECT`.
    direct: bool,
    buf: Vec<u8>,
    /// Where the aligned window of `buf` starts.
    start: usize,
    /// Bytes waiting in the window.
    len: usize,
    /// Bytes already in the file.
    written: u64,
}

impl DirectFile {
    /// Creates (or truncates) `path`, with direct I/O where the platform has it.
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        Self::create_with(path, cfg!(target_os = "linux"))
    }

    /// As [`create`](Self::create), with direct I/O only when `direct`.
    pub(crate) fn create_with(path: &Path, direct: bool) -> io::Result<Self> {
        let buf = vec![0u8; CHUNK + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN);
        let direct = direct && start < ALIGN;
        let (file, direct) = match open_direct(path, direct)? {
            Some(f) => (f, true),
            None => (File::create(path)?, false),
        };
        Ok(DirectFile {
            file,
            path: path.to_path_buf(),
            direct,
            buf,
            start: start.min(ALIGN),
            len: 0,
            written: 0,
        })
    }

    /// Writes what is buffered and sets the file's length; returns it.
    pub(crate) fn finish(mut self) -> io::Result<u64> {
        if self.len > 0 {
            if self.direct {
                // The last chunk is padded to the alignment, then cut back.
                let padded = self.len.next_multiple_of(ALIGN);
                let window = self.start..self.start + padded;
                self.buf[self.start + self.len..window.end].fill(0);
                self.write_window(window)?;
            } else {
                self.write_window(self.start..self.start + self.len)?;
            }
            self.written += self.len as u64;
            self.len = 0;
            if self.direct {
                self.file.set_len(self.written)?;
            }
        }
        Ok(self.written)
    }

    /// Writes `buf[window]` at the file's end, leaving direct I/O for good if the file
    /// system refuses it.
    fn write_window(&mut self, window: std::ops::Range<usize>) -> io::Result<()> {
        match self.file.write_all(&self.buf[window.clone()]) {
            Err(e) if self.direct && e.kind() == io::ErrorKind::InvalidInput => {
                let mut file = OpenOptions::new().write(true).open(&self.path)?;
                file.set_len(self.written)?;
                file.seek(SeekFrom::Start(self.written))?;
                self.file = file;
                self.direct = false;
                // Without direct I/O the padding of a last chunk is not written.
                let end = window.start + (window.len()).min(self.len);
                self.file.write_all(&self.buf[window.start..end])
            }
            other => other,
        }
    }
}

impl Write for DirectFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.len);
        let at = self.start + self.len;
        self.buf[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        if self.len == CHUNK {
            self.write_window(self.start..self.start + CHUNK)?;
            self.written += CHUNK as u64;
            self.len = 0;
        }
        Ok(n)
    }

    /// Nothing: only whole chunks can be written before [`DirectFile::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens `path` for writing with `O_DIRECT`, or `None` where that is not to be had.
#[cfg(target_os = "linux")]
fn open_direct(path: &Path, direct: bool) -> io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    if !direct {
        return Ok(None);
    }
    match OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path, _direct: bool) -> io::Result<Option<File>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every position (a misplaced chunk shows).
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
    }

    #[test]
    fn files_of_every_awkward_length_come_out_whole() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let sizes = [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 7,
            2 * CHUNK + ALIGN + 3,
        ];
        for direct in [true, false] {
            for size in sizes {
                let data = pattern(size);
                let path = dir.path().join(format!("f-{direct}-{size}"));
                let mut f = DirectFile::create_with(&path, direct).expect("creates");
                // Odd piece sizes, and one write larger than a chunk.
                let mut rest = &data[..];
                for piece in [3, 5000, CHUNK + 11].iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let n = (*piece).min(rest.len());
                    f.write_all(&rest[..n]).expect("writes");
                    rest = &rest[n..];
                }
                assert_eq!(f.finish().expect("finishes"), size as u64);
                let back = std::fs::read(&path).expect("reads");
                assert!(back == data, "direct={direct} size={size}: contents differ");
            }
        }
    }

    #[test]
    fn a_file_that_exists_is_replaced() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 3 * ALIGN]).expect("writes");
        let mut f = DirectFile::create(&path).expect("creates");
        f.write_all(b"short").expect("writes");
        assert_eq!(f.finish().expect("finishes"), 5);
        assert_eq!(std::fs::read(&path).expect("reads"), b"short");
    }
}
