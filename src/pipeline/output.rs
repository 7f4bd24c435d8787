//! Where a result is written while it is made: memory for the usual small image, a temporary
//! file once it grows past a threshold (a converted hour of audio), so no result of any size is
//! ever held whole in memory. Encoders write through [`Sink`] (`Write + Seek`: headers whose sizes
//! are known only at the end are written over); the finished [`Output`] is a buffer or a file the
//! caller keeps (the cache renames it into place).

use std::io::{self, BufWriter, Cursor, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where large results go, and from what size.
#[derive(Debug, Clone)]
pub struct Spill {
    /// The directory of the temporary files (on the cache's file system, so keeping one is a
    /// rename). `None` keeps everything in memory (tools, tests).
    pub dir: Option<PathBuf>,
    /// Results larger than this many bytes move to a file.
    pub threshold: usize,
}

impl Spill {
    /// Everything in memory.
    pub fn memory() -> Spill {
        Spill { dir: None, threshold: usize::MAX }
    }
}

impl Default for Spill {
    fn default() -> Spill {
        Spill::memory()
    }
}

/// A finished result.
#[derive(Debug)]
pub enum Output {
    Memory(Vec<u8>),
    /// A temporary file, synced to disk, removed when dropped unless it is kept.
    File {
        path: tempfile::TempPath,
        len: u64,
    },
}

impl Output {
    pub fn len(&self) -> u64 {
        match self {
            Output::Memory(bytes) => bytes.len() as u64,
            Output::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All the bytes in memory (for tools and tests: a file output is read back whole).
    pub fn into_vec(self) -> io::Result<Vec<u8>> {
        match self {
            Output::Memory(bytes) => Ok(bytes),
            Output::File { path, .. } => std::fs::read(&path),
        }
    }
}

impl From<Vec<u8>> for Output {
    fn from(bytes: Vec<u8>) -> Output {
        Output::Memory(bytes)
    }
}

enum Place {
    Memory(Cursor<Vec<u8>>),
    File { file: BufWriter<std::fs::File>, path: tempfile::TempPath },
}

/// A `Write + Seek` target that starts in memory and moves to a file past `spill.threshold`.
pub struct Sink {
    place: Place,
    spill: Spill,
}

impl Sink {
    pub fn new(spill: &Spill) -> Sink {
        Sink { place: Place::Memory(Cursor::new(Vec::new())), spill: spill.clone() }
    }

    /// Everything in memory (tests, encoders' own scratch).
    pub fn memory() -> Sink {
        Sink::new(&Spill::memory())
    }

    /// Cuts the output to `len` bytes (the position is left where it was).
    pub fn truncate(&mut self, len: u64) -> io::Result<()> {
        match &mut self.place {
            Place::Memory(c) => {
                c.get_mut().truncate(len as usize);
                Ok(())
            }
            Place::File { file, .. } => {
                file.flush()?;
                file.get_ref().set_len(len)
            }
        }
    }

    /// Flushes and syncs a file (the cache renames it into place: a crash must find all of it
    /// or none), and hands out the result.
    pub fn finish(self) -> io::Result<Output> {
        match self.place {
            Place::Memory(c) => Ok(Output::Memory(c.into_inner())),
            Place::File { file, path } => {
                let file = file.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                let len = file.metadata()?.len();
                Ok(Output::File { path, len })
            }
        }
    }

    /// Moves the bytes so far to a file once they pass the threshold.
    fn maybe_spill(&mut self) -> io::Result<()> {
        let (Place::Memory(c), Some(dir)) = (&self.place, &self.spill.dir) else { return Ok(()) };
        if c.get_ref().len() <= self.spill.threshold {
            return Ok(());
        }
        let (file, path) = tempfile::Builder::new().prefix(".out").tempfile_in(dir)?.into_parts();
        let mut file = BufWriter::with_capacity(1 << 16, file);
        file.write_all(c.get_ref())?;
        file.seek(SeekFrom::Start(c.position()))?;
        self.place = Place::File { file, path };
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.place {
            Place::Memory(c) => c.write(buf)?,
            Place::File { file, .. } => file.write(buf)?,
        };
        self.maybe_spill()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.place {
            Place::Memory(_) => Ok(()),
            Place::File { file, .. } => file.flush(),
        }
    }
}

impl Seek for Sink {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match &mut self.place {
            Place::Memory(c) => c.seek(pos),
            Place::File { file, .. } => file.seek(pos),
        }
    }
}

/// A [`Sink`] shared with a library that takes its writer by value and never hands it back: the
/// encoder keeps one handle and takes the sink out at the end.
#[derive(Clone)]
pub struct SharedSink(Arc<Mutex<Option<Sink>>>);

impl SharedSink {
    pub fn new(sink: Sink) -> SharedSink {
        SharedSink(Arc::new(Mutex::new(Some(sink))))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Sink) -> io::Result<T>) -> io::Result<T> {
        let mut guard = self.0.lock().map_err(|_| io::Error::other("the output lock is poisoned"))?;
        f(guard.as_mut().ok_or_else(|| io::Error::other("the output was already taken"))?)
    }

    /// Drops everything written so far (a library's failed attempt).
    pub fn clear(&self) -> io::Result<()> {
        self.with(|s| {
            s.truncate(0)?;
            s.seek(SeekFrom::Start(0)).map(drop)
        })
    }

    /// The sink, for the last writes and `finish` (the library's handle must be gone by then).
    pub fn take(&self) -> io::Result<Sink> {
        let mut guard = self.0.lock().map_err(|_| io::Error::other("the output lock is poisoned"))?;
        guard.take().ok_or_else(|| io::Error::other("the output was already taken"))
    }
}

impl Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with(|s| s.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.with(|s| s.flush())
    }
}

impl Seek for SharedSink {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.with(|s| s.seek(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spill_at(dir: &std::path::Path, threshold: usize) -> Spill {
        Spill { dir: Some(dir.to_path_buf()), threshold }
    }

    #[test]
    fn small_results_stay_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Sink::new(&spill_at(dir.path(), 100));
        sink.write_all(b"hello").unwrap();
        assert!(matches!(sink.finish().unwrap(), Output::Memory(b) if b == b"hello"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn large_results_move_to_a_file_and_seeks_still_patch() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Sink::new(&spill_at(dir.path(), 10));
        sink.write_all(b"HEAD").unwrap();
        sink.write_all(&[7u8; 100]).unwrap();
        sink.seek(SeekFrom::Start(0)).unwrap();
        sink.write_all(b"head").unwrap();
        sink.seek(SeekFrom::End(0)).unwrap();
        sink.write_all(b"tail").unwrap();
        sink.truncate(104 + 2).unwrap();
        let out = sink.finish().unwrap();
        assert!(matches!(out, Output::File { len: 106, .. }));
        let bytes = out.into_vec().unwrap();
        assert_eq!(&bytes[..4], b"head");
        assert_eq!(&bytes[104..], b"ta");
    }

    #[test]
    fn a_dropped_file_output_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Sink::new(&spill_at(dir.path(), 1));
        sink.write_all(b"abc").unwrap();
        drop(sink.finish().unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_shared_sink_hands_its_bytes_back_once() {
        let shared = SharedSink::new(Sink::memory());
        let mut writer = shared.clone();
        writer.write_all(b"xy").unwrap();
        drop(writer);
        let sink = shared.take().unwrap();
        assert!(shared.take().is_err());
        assert_eq!(sink.finish().unwrap().into_vec().unwrap(), b"xy");
    }
}
