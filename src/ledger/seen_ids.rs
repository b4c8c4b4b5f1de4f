//! The (source, id) pairs one input has used, in bounded memory: the first item that reuses
//! an earlier item's id with other bytes is a conflict, however far apart the two lie.
//!
//! Each item becomes a 40-byte entry (128-bit hashes of its (source, id) and of its bytes, and
//! its index). Entries gather in memory up to a run; a full run is sorted and written to an
//! anonymous temporary file (so the input's size is bounded by disk, not memory), keeping only
//! the first entry of each id; when [`RUNS_MAX`] runs exist they are merged into one. Merging
//! keeps the lowest index of each id and notes every later one with other bytes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use assay_events::Hash32;

/// Entries held in memory before they are sorted and written out (10 MiB).
const RUN_ENTRIES_MAX: usize = 1 << 18;
/// Runs on disk before they are merged into one (each read through a 64 KiB buffer).
const RUNS_MAX: usize = 32;
const READ_BUFFER_BYTES: usize = 64 << 10;
const ENTRY_BYTES: usize = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    key: [u8; 16],
    index: u64,
    identity: [u8; 16],
}

impl Entry {
    fn to_bytes(self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[..16].copy_from_slice(&self.key);
        out[16..24].copy_from_slice(&self.index.to_be_bytes());
        out[24..].copy_from_slice(&self.identity);
        out
    }

    fn from_bytes(b: &[u8; ENTRY_BYTES]) -> Entry {
        let mut key = [0u8; 16];
        let mut index = [0u8; 8];
        let mut identity = [0u8; 16];
        key.copy_from_slice(&b[..16]);
        index.copy_from_slice(&b[16..24]);
        identity.copy_from_slice(&b[24..]);
        Entry { key, index: u64::from_be_bytes(index), identity }
    }
}

fn truncated(h: blake3::Hash) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.as_bytes()[..16]);
    out
}

/// See the module documentation.
#[derive(Debug)]
pub struct SeenIds {
    buffer: Vec<Entry>,
    runs: Vec<File>,
    /// The lowest index found so far that reuses an earlier item's id with other bytes.
    conflict: Option<u64>,
    run_entries_max: usize,
    runs_max: usize,
}

impl Default for SeenIds {
    fn default() -> Self {
        SeenIds::with_bounds(RUN_ENTRIES_MAX, RUNS_MAX)
    }
}

impl SeenIds {
    fn with_bounds(run_entries_max: usize, runs_max: usize) -> SeenIds {
        SeenIds {
            buffer: Vec::new(),
            runs: Vec::new(),
            conflict: None,
            run_entries_max,
            runs_max: runs_max.max(2),
        }
    }

    /// Notes item `index` (indexes must grow) with its (source, id) and its bytes (payload
    /// digest, signatures digest).
    pub fn insert(
        &mut self,
        source: &str,
        id: &str,
        identity: (Hash32, Hash32),
        index: u64,
    ) -> std::io::Result<()> {
        let mut k = blake3::Hasher::new();
        k.update(&(source.len() as u64).to_le_bytes());
        k.update(source.as_bytes());
        k.update(id.as_bytes());
        let mut i = blake3::Hasher::new();
        i.update(identity.0.as_bytes());
        i.update(identity.1.as_bytes());
        self.buffer.push(Entry { key: truncated(k.finalize()), index, identity: truncated(i.finalize()) });
        if self.buffer.len() >= self.run_entries_max {
            self.spill()?;
        }
        Ok(())
    }

    /// The lowest index of the items so far whose (source, id) an earlier item holds with
    /// other bytes.
    pub fn first_conflict(&mut self) -> std::io::Result<Option<u64>> {
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        if self.runs.len() > 1 {
            self.merge()?;
        }
        Ok(self.conflict)
    }

    fn note(&mut self, index: u64) {
        self.conflict = Some(self.conflict.map_or(index, |c| c.min(index)));
    }

    /// Sorts the buffer into a run on disk, keeping the first entry of each id.
    fn spill(&mut self) -> std::io::Result<()> {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.sort_unstable();
        let mut out = BufWriter::with_capacity(READ_BUFFER_BYTES, tempfile::tempfile()?);
        let mut last: Option<Entry> = None;
        for e in &buffer {
            match last {
                Some(l) if l.key == e.key => {
                    if l.identity != e.identity {
                        self.note(e.index);
                    }
                }
                _ => {
                    out.write_all(&e.to_bytes())?;
                    last = Some(*e);
                }
            }
        }
        buffer.clear();
        self.buffer = buffer;
        self.runs.push(out.into_inner().map_err(|e| e.into_error())?);
        if self.runs.len() >= self.runs_max {
            self.merge()?;
        }
        Ok(())
    }

    /// Merges every run into one, keeping the first entry of each id.
    fn merge(&mut self) -> std::io::Result<()> {
        let mut readers = Vec::with_capacity(self.runs.len());
        for run in self.runs.drain(..) {
            let mut run = run;
            run.seek(SeekFrom::Start(0))?;
            readers.push(BufReader::with_capacity(READ_BUFFER_BYTES, run));
        }
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (r, reader) in readers.iter_mut().enumerate() {
            if let Some(e) = read_entry(reader)? {
                heap.push(Reverse((e, r)));
            }
        }
        let mut out = BufWriter::with_capacity(READ_BUFFER_BYTES, tempfile::tempfile()?);
        let mut last: Option<Entry> = None;
        while let Some(Reverse((e, r))) = heap.pop() {
            match last {
                Some(l) if l.key == e.key => {
                    if l.identity != e.identity {
                        self.note(e.index);
                    }
                }
                _ => {
                    out.write_all(&e.to_bytes())?;
                    last = Some(e);
                }
            }
            if let Some(next) = read_entry(&mut readers[r])? {
                heap.push(Reverse((next, r)));
            }
        }
        self.runs.push(out.into_inner().map_err(|e| e.into_error())?);
        Ok(())
    }
}

fn read_entry(r: &mut BufReader<File>) -> std::io::Result<Option<Entry>> {
    let mut b = [0u8; ENTRY_BYTES];
    match r.read_exact(&mut b) {
        Ok(()) => Ok(Some(Entry::from_bytes(&b))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn identity(n: u8) -> (Hash32, Hash32) {
        (Hash32::blake3(&[n]), Hash32::blake3(b"s"))
    }

    /// What a map of every id finds, against runs of 3 entries merged every 3 runs: the
    /// first reuse with other bytes, found across runs and across merges alike.
    #[test]
    fn finds_the_first_reuse_with_other_bytes_across_runs_and_merges() {
        // (id, bytes): ids repeat with the same bytes (allowed) and, later, with others.
        let mut items: Vec<(String, u8)> = (0..200).map(|i| (format!("id-{}", i % 70), 1)).collect();
        items[150].1 = 2; // id-10 again, other bytes
        items[180].1 = 3; // id-40 again, other bytes
        let oracle = |upto: usize| {
            let mut first: HashMap<&str, u8> = HashMap::new();
            items[..upto].iter().enumerate().find_map(|(i, (id, b))| match first.get(id.as_str()) {
                Some(f) if f != b => Some(i as u64),
                Some(_) => None,
                None => {
                    first.insert(id, *b);
                    None
                }
            })
        };
        for upto in [0, 100, 151, 170, 200] {
            let mut seen = SeenIds::with_bounds(3, 3);
            for (i, (id, b)) in items[..upto].iter().enumerate() {
                seen.insert("assay:key/w", id, identity(*b), i as u64).expect("kept");
            }
            assert_eq!(seen.first_conflict().expect("merged"), oracle(upto), "first {upto} items");
            // Asking again (after everything is one run) gives the same answer.
            assert_eq!(seen.first_conflict().expect("merged"), oracle(upto), "again, first {upto} items");
        }
        assert_eq!(oracle(200), Some(150));
    }

    /// The same id under another source is another id.
    #[test]
    fn the_source_is_part_of_the_id() {
        let mut seen = SeenIds::with_bounds(2, 2);
        seen.insert("assay:key/a", "x", identity(1), 0).expect("kept");
        seen.insert("assay:key/b", "x", identity(2), 1).expect("kept");
        seen.insert("assay:key/a", "bx", identity(3), 2).expect("kept");
        seen.insert("assay:key/ab", "x", identity(4), 3).expect("kept");
        assert_eq!(seen.first_conflict().expect("merged"), None);
        seen.insert("assay:key/b", "x", identity(5), 4).expect("kept");
        assert_eq!(seen.first_conflict().expect("merged"), Some(4));
    }
}
