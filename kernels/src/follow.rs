//! `tail -f` for a file another process appends to: complete lines as they appear, from the
//! beginning or from the end; a truncated file is read again from its start, and a replaced
//! one (log rotation: a new inode at the path) is finished and then followed from its start.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Longest line kept; longer ones are skipped (and reported).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Most bytes read in one poll (the rest waits for the next).
const READ_PER_POLL: u64 = 4 * 1024 * 1024;

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent {
    /// A complete line (without its newline or a trailing `\r`), numbered from 1 in the
    /// current file.
    Line {
        /// Line number.
        number: u64,
        /// The text (invalid UTF-8 replaced).
        text: String,
    },
    /// The file shrank; it is read again from its beginning and numbering restarts.
    Truncated,
    /// A line that was not kept.
    Skipped {
        /// Line number.
        number: u64,
        /// Why.
        reason: String,
    },
}

/// Follows one path.
#[derive(Debug)]
pub struct FileFollower {
    path: PathBuf,
    file: Option<File>,
    identity: Option<(u64, u64)>,
    offset: u64,
    partial: Vec<u8>,
    /// The current line is too long and is being discarded up to its newline.
    discarding: bool,
    lines: u64,
    /// Where to start in a file opened for the first time.
    start_at_end: bool,
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

impl FileFollower {
    /// Follows `path` from its beginning; it need not exist yet.
    pub fn from_start(path: PathBuf) -> Self {
        FileFollower {
            path,
            file: None,
            identity: None,
            offset: 0,
            partial: Vec::new(),
            discarding: false,
            lines: 0,
            start_at_end: false,
        }
    }

    /// Follows `path` from its current end (only lines appended from now on). If it does not
    /// exist yet, everything written to it once it appears is new.
    pub fn from_end(path: PathBuf) -> io::Result<Self> {
        let mut follower = FileFollower::from_start(path);
        follower.start_at_end = true;
        follower.open()?;
        Ok(follower)
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the current file consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Opens the path if it exists; `Ok(false)` if it does not.
    fn open(&mut self) -> io::Result<bool> {
        match File::open(&self.path) {
            Ok(file) => {
                let meta = file.metadata()?;
                self.identity = Some(identity(&meta));
                self.offset = if self.start_at_end { meta.len() } else { 0 };
                // Only the first file starts at the end; later ones (rotations) are new.
                self.start_at_end = false;
                self.file = Some(file);
                self.partial.clear();
                self.discarding = false;
                self.lines = 0;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.start_at_end = false;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Lines completed since the last poll. With `finish`, a last line without a newline is
    /// returned too (the writer is done).
    pub fn poll(&mut self, finish: bool) -> io::Result<Vec<FollowEvent>> {
        let mut out = Vec::new();
        if self.file.is_none() && !self.open()? {
            return Ok(out);
        }
        // Replaced by a new file at the same path: finish the old one first.
        let replaced = match std::fs::metadata(&self.path) {
            Ok(meta) => Some(identity(&meta)) != self.identity,
            Err(_) => false,
        };
        self.read_available(&mut out)?;
        if replaced {
            self.flush_partial(&mut out);
            self.file = None;
            if self.open()? {
                self.read_available(&mut out)?;
            }
        }
        if finish {
            self.flush_partial(&mut out);
        }
        Ok(out)
    }

    fn read_available(&mut self, out: &mut Vec<FollowEvent>) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let len = file.metadata()?.len();
        if len < self.offset {
            out.push(FollowEvent::Truncated);
            self.offset = 0;
            self.partial.clear();
            self.discarding = false;
            self.lines = 0;
        }
        if len == self.offset {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.take(READ_PER_POLL).read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let complete = piece.last() == Some(&b'\n');
            let body = if complete { &piece[..piece.len() - 1] } else { piece };
            if !self.discarding {
                if self.partial.len() + body.len() > MAX_LINE_BYTES {
                    self.discarding = true;
                    self.partial.clear();
                } else {
                    self.partial.extend_from_slice(body);
                }
            }
            if complete {
                self.lines += 1;
                if self.discarding {
                    out.push(FollowEvent::Skipped {
                        number: self.lines,
                        reason: format!("line longer than {MAX_LINE_BYTES} bytes"),
                    });
                    self.discarding = false;
                } else {
                    out.push(self.take_line());
                }
            }
        }
        Ok(())
    }

    fn take_line(&mut self) -> FollowEvent {
        let mut text = String::from_utf8_lossy(&self.partial).into_owned();
        if text.ends_with('\r') {
            text.pop();
        }
        self.partial.clear();
        FollowEvent::Line { number: self.lines, text }
    }

    fn flush_partial(&mut self, out: &mut Vec<FollowEvent>) {
        if self.discarding {
            self.lines += 1;
            out.push(FollowEvent::Skipped {
                number: self.lines,
                reason: format!("line longer than {MAX_LINE_BYTES} bytes"),
            });
            self.discarding = false;
        } else if !self.partial.is_empty() {
            self.lines += 1;
            let line = self.take_line();
            out.push(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("assay-follow-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn lines(events: &[FollowEvent]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                FollowEvent::Line { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn from_end_sees_only_appended_lines_and_survives_truncation() {
        let dir = dir("end");
        let path = dir.join("log");
        std::fs::write(&path, "old 1\nold 2\n").expect("write");
        let mut f = FileFollower::from_end(path.clone()).expect("open");
        assert!(f.poll(false).expect("poll").is_empty());
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(b"new 1\r\nnew").expect("append");
        assert_eq!(lines(&f.poll(false).expect("poll")), vec!["new 1"]);
        file.write_all(b" 2\n").expect("append");
        assert_eq!(lines(&f.poll(false).expect("poll")), vec!["new 2"]);
        // Truncate and write something shorter.
        std::fs::write(&path, "x\n").expect("truncate");
        let events = f.poll(false).expect("poll");
        assert_eq!(events[0], FollowEvent::Truncated);
        assert_eq!(events[1], FollowEvent::Line { number: 1, text: "x".into() });
        // Rotation: a new file at the path.
        std::fs::rename(&path, dir.join("log.1")).expect("rotate");
        std::fs::write(&path, "rotated\n").expect("new file");
        assert_eq!(lines(&f.poll(false).expect("poll")), vec!["rotated"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn long_lines_are_skipped_and_missing_files_wait() {
        let dir = dir("long");
        let path = dir.join("log");
        let mut f = FileFollower::from_end(path.clone()).expect("absent is fine");
        assert!(f.poll(true).expect("poll").is_empty());
        let long = "y".repeat(MAX_LINE_BYTES + 10);
        std::fs::write(&path, format!("first\n{long}\nlast")).expect("write");
        let events = f.poll(false).expect("poll");
        assert_eq!(
            events.len(),
            2,
            "{:?}",
            events.iter().map(|e| format!("{e:?}").len()).collect::<Vec<_>>()
        );
        assert!(matches!(events[1], FollowEvent::Skipped { number: 2, .. }));
        assert_eq!(f.poll(true).expect("finish"), vec![FollowEvent::Line { number: 3, text: "last".into() }]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
