//! Opening text files: gzip is detected by its magic bytes, whatever the file is called.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

const BUF: usize = 1 << 20;

/// Open a plain or gzip-compressed text file for buffered reading.
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::with_capacity(BUF, file);
    let magic = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            BUF,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// Reads a file line by line into a reused buffer, counting lines (1-based) and stripping the
/// line ending (`\n` or `\r\n`).
pub struct Lines<'p> {
    path: &'p Path,
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line: usize,
}

impl<'p> Lines<'p> {
    /// Open `path` (plain or gzip).
    pub fn open(path: &'p Path) -> Result<Self> {
        Ok(Lines {
            path,
            reader: open_text(path)?,
            buf: Vec::with_capacity(512),
            line: 0,
        })
    }

    /// Wrap any reader (used by tests and by callers reading from memory).
    pub fn from_reader(path: &'p Path, reader: impl Read + Send + 'static) -> Self {
        Lines {
            path,
            reader: Box::new(BufReader::new(reader)),
            buf: Vec::with_capacity(512),
            line: 0,
        }
    }

    /// The next line and its 1-based number, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<(usize, &[u8])>> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| Error::io(self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some((self.line, &self.buf)))
    }
}

/// Whether a line holds nothing but whitespace.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}
