//! The input of `assay append`, read a chunk of lines at a time so that memory does not grow
//! with it, and read twice by the local append (check, then append): a FILE is opened again;
//! stdin, and the envelopes signed from NDJSON, are spooled to an anonymous temporary file on
//! the first pass (bounded by disk, not memory).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use anyhow::Context;

/// The longest line read: an envelope of the largest payload (1 MiB, base64) with its
/// signatures fits well within it.
const LINE_BYTES_MAX: usize = 4 << 20;
/// Lines one input may hold (its ids spill to disk at 40 bytes a line).
const INPUT_LINES_MAX: usize = 1_000_000_000;
const BUFFER_BYTES: usize = 256 << 10;

/// Non-blank lines of an input with their line numbers (from 1).
pub type Chunk = Vec<(usize, Vec<u8>)>;

/// Reads non-blank lines, a chunk at a time.
pub struct Lines {
    name: String,
    reader: Box<dyn BufRead + Send>,
    lineno: usize,
    /// The end was read: nothing more is read, even from a pipe that a new writer reopens.
    ended: bool,
}

impl Lines {
    /// `src` is a path, or `-` for stdin.
    pub fn open(src: &str) -> anyhow::Result<Lines> {
        let reader: Box<dyn BufRead + Send> = if src == "-" {
            Box::new(BufReader::with_capacity(BUFFER_BYTES, std::io::stdin()))
        } else {
            let file = File::open(src).with_context(|| format!("opening {src}"))?;
            Box::new(BufReader::with_capacity(BUFFER_BYTES, file))
        };
        Ok(Lines { name: src.to_owned(), reader, lineno: 0, ended: false })
    }

    fn spooled(spool: &File) -> anyhow::Result<Lines> {
        let mut file = spool.try_clone().context("reading the spooled input again")?;
        file.seek(SeekFrom::Start(0)).context("reading the spooled input again")?;
        Ok(Lines {
            name: "the spooled input".to_owned(),
            reader: Box::new(BufReader::with_capacity(BUFFER_BYTES, file)),
            lineno: 0,
            ended: false,
        })
    }

    /// The next `n` non-blank lines (fewer at the end; none when it is over).
    pub fn next_chunk(&mut self, n: usize) -> anyhow::Result<Chunk> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n && !self.ended {
            let mut line = Vec::new();
            let read = (&mut self.reader)
                .take(LINE_BYTES_MAX as u64 + 1)
                .read_until(b'\n', &mut line)
                .with_context(|| format!("{}: reading line {}", self.name, self.lineno + 1))?;
            if read == 0 {
                self.ended = true;
                break;
            }
            self.lineno += 1;
            anyhow::ensure!(
                self.lineno <= INPUT_LINES_MAX,
                "{}: more than {INPUT_LINES_MAX} lines",
                self.name
            );
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            } else {
                anyhow::ensure!(
                    line.len() <= LINE_BYTES_MAX,
                    "{}: line {} is longer than {LINE_BYTES_MAX} bytes",
                    self.name,
                    self.lineno
                );
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.push((self.lineno, line));
            }
        }
        Ok(out)
    }
}

/// blake3 of a chunk's line numbers and bytes: the second pass appends a chunk only when it
/// reads what the first pass checked.
pub fn chunk_digest(chunk: &[(usize, Vec<u8>)]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for (n, line) in chunk {
        h.update(&(*n as u64).to_le_bytes());
        h.update(&(line.len() as u64).to_le_bytes());
        h.update(line);
    }
    *h.finalize().as_bytes()
}

/// Where the second pass reads the envelopes from.
pub enum Reread {
    File(String),
    Spool(File),
}

impl Reread {
    pub fn open(&self) -> anyhow::Result<Lines> {
        match self {
            Reread::File(src) => Lines::open(src),
            Reread::Spool(file) => Lines::spooled(file),
        }
    }
}

/// Envelope lines written to an anonymous temporary file, each at its input line number
/// (blank lines where the input had one), so that errors of the second pass name the
/// input's lines.
pub struct Spool {
    out: BufWriter<File>,
    lineno: usize,
}

impl Spool {
    pub fn new() -> anyhow::Result<Spool> {
        let file = tempfile::tempfile().context("creating a temporary file to spool the input")?;
        Ok(Spool { out: BufWriter::with_capacity(BUFFER_BYTES, file), lineno: 0 })
    }

    /// Writes `line` as input line `lineno` (numbers must grow).
    pub fn write(&mut self, lineno: usize, line: &[u8]) -> anyhow::Result<()> {
        let spooling = |e| anyhow::Error::new(e).context("spooling the input to a temporary file");
        while self.lineno + 1 < lineno {
            self.out.write_all(b"\n").map_err(spooling)?;
            self.lineno += 1;
        }
        self.out.write_all(line).map_err(spooling)?;
        self.out.write_all(b"\n").map_err(spooling)?;
        self.lineno = lineno;
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<Reread> {
        let file = self.out.into_inner().map_err(|e| e.into_error()).context("spooling the input")?;
        Ok(Reread::Spool(file))
    }
}
