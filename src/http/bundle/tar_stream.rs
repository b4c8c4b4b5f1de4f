//! A tar of files given as readers, produced chunk by chunk as the connection asks for it,
//! with its exact length known before the first byte (so it goes with a `Content-Length`).
//! The bytes are those `tar::Builder` writes for the same headers: the header blocks come
//! from it, the data follows unbuffered.

use std::io::{self, Read};

/// Bytes per chunk handed to the connection.
const CHUNK_BYTES: u64 = 64 << 10;

/// The end of an archive: two zero blocks.
pub(crate) const TRAILER_BYTES: u64 = 1024;

/// One file of the archive: its name, its length, and its bytes.
pub struct Entry {
    pub name: String,
    pub bytes: u64,
    pub data: Box<dyn Read + Send>,
}

/// An archive being read.
pub struct Tar {
    reader: Box<dyn Read + Send>,
    bytes: u64,
}

impl Tar {
    /// The archive of `entries` (mode 0644, modified at `mtime`, Unix seconds).
    pub fn new(entries: Vec<Entry>, mtime: u64) -> io::Result<Tar> {
        let open = Tar::open(entries, mtime)?;
        let bytes = open.bytes + TRAILER_BYTES;
        Ok(Tar { reader: Box::new(open.reader.chain(io::repeat(0).take(TRAILER_BYTES))), bytes })
    }

    /// The entries of an archive without its trailer: more entries (and the trailer) follow
    /// from elsewhere (the HTTP bundle's evidence tar, read from the evidence store).
    pub fn open(entries: Vec<Entry>, mtime: u64) -> io::Result<Tar> {
        let mut reader: Box<dyn Read + Send> = Box::new(io::empty());
        let mut bytes = 0;
        for entry in entries {
            let head = head(&entry.name, entry.bytes, mtime)?;
            let pad = padding(entry.bytes);
            bytes += head.len() as u64 + entry.bytes + pad;
            let data = Exact { inner: entry.data, left: entry.bytes, name: entry.name };
            reader = Box::new(reader.chain(io::Cursor::new(head)).chain(data).chain(io::repeat(0).take(pad)));
        }
        Ok(Tar { reader, bytes })
    }

    /// Bytes of the whole archive.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The archive in chunks of at most [`CHUNK_BYTES`], each read when it is asked for; an
    /// entry whose data is not exactly its declared length ends it with an error, so nothing
    /// beyond [`Tar::bytes`] is ever produced.
    pub fn chunks(self) -> impl Iterator<Item = io::Result<Vec<u8>>> + Send {
        let mut reader = Some(self.reader);
        std::iter::from_fn(move || {
            let mut chunk = Vec::new();
            match reader.as_mut()?.take(CHUNK_BYTES).read_to_end(&mut chunk) {
                Ok(0) => None,
                Ok(_) => Some(Ok(chunk)),
                Err(e) => {
                    reader = None;
                    Some(Err(e))
                }
            }
        })
    }
}

/// The blocks `tar::Builder` writes before an entry's data: a GNU long-name entry when the
/// name does not fit the header, then the header. Given empty data it writes no padding, so
/// what it wrote is exactly those blocks.
pub(crate) fn head(name: &str, bytes: u64, mtime: u64) -> io::Result<Vec<u8>> {
    let mut head = tar::Header::new_ustar();
    head.set_size(bytes);
    head.set_mode(0o644);
    head.set_mtime(mtime);
    head.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut head, name, io::empty())?;
    Ok(std::mem::take(builder.get_mut()))
}

/// Zeros after `bytes` of data, to the next 512-byte block.
pub(crate) fn padding(bytes: u64) -> u64 {
    (512 - bytes % 512) % 512
}

/// A reader that must give exactly `left` more bytes, as its header says.
struct Exact {
    inner: Box<dyn Read + Send>,
    left: u64,
    name: String,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return match self.inner.read(&mut [0; 1])? {
                0 => Ok(0),
                _ => Err(io::Error::other(format!("{} is longer than its tar header says", self.name))),
            };
        }
        let room = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..room])? {
            0 if room > 0 => {
                Err(io::Error::other(format!("{} is shorter than its tar header says", self.name)))
            }
            n => {
                self.left -= n as u64;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, data: &[u8]) -> Entry {
        Entry {
            name: name.to_owned(),
            bytes: data.len() as u64,
            data: Box::new(io::Cursor::new(data.to_vec())),
        }
    }

    fn built(files: &[(&str, &[u8])], mtime: u64) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut head = tar::Header::new_ustar();
            head.set_size(data.len() as u64);
            head.set_mode(0o644);
            head.set_mtime(mtime);
            head.set_cksum();
            tar.append_data(&mut head, name, *data).expect("append");
        }
        tar.into_inner().expect("a tar")
    }

    #[test]
    fn streams_what_the_builder_writes() {
        let long = format!("{}.intoto.jsonl", "a".repeat(140));
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let cases: Vec<Vec<(&str, &[u8])>> = vec![
            vec![("a.intoto.jsonl", b"{}\n"), ("a.intoto.jsonl.proof", b"")],
            vec![("exact", &[7; 512]), ("over", &[8; 513])],
            vec![(long.as_str(), &big), ("x.proof", &big[..1])],
        ];
        for files in cases {
            let tar =
                Tar::new(files.iter().map(|(n, d)| entry(n, d)).collect(), 1_764_000_000).expect("a tar");
            let bytes = tar.bytes();
            let chunks: Vec<Vec<u8>> = tar.chunks().collect::<io::Result<_>>().expect("chunks");
            assert!(chunks.iter().all(|c| c.len() as u64 <= CHUNK_BYTES && !c.is_empty()));
            let streamed = chunks.concat();
            assert_eq!(streamed.len() as u64, bytes, "the declared length");
            assert_eq!(streamed, built(&files, 1_764_000_000));
        }
    }

    #[test]
    fn data_of_another_length_ends_the_stream_with_an_error() {
        for (declared, actual) in [(10u64, 9usize), (10, 11)] {
            let data =
                Entry { name: "f".into(), bytes: declared, data: Box::new(io::Cursor::new(vec![1; actual])) };
            let tar = Tar::new(vec![data], 0).expect("a tar");
            let bytes = tar.bytes();
            let mut sent = 0;
            let mut failed = false;
            for chunk in tar.chunks() {
                match chunk {
                    Ok(c) => sent += c.len() as u64,
                    Err(_) => failed = true,
                }
            }
            assert!(failed, "declared {declared}, gave {actual}");
            assert!(sent < bytes, "nothing past the declared length");
        }
    }
}
