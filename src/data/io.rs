//! Opening text inputs: a file, `-` for standard input, or any pipe (`<(…)`); gzip is detected
//! by its magic bytes, whatever the input is called; a UTF-8 byte-order mark is dropped.
//!
//! Every input is read once, front to back, so pipes work: the format is told from the first
//! line, which is peeked without being consumed.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Problem, Result};

const BUF: usize = 1 << 20;

/// Whether `path` means standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Whether `path` is a regular file (one that can be read twice), not a pipe or a terminal.
pub fn is_regular_file(path: &Path) -> bool {
    !is_stdin(path) && std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// Read the first bytes of `r` (up to `buf.len()`, fewer only at the end), however a pipe
/// hands them over.
fn read_head(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Open a plain or gzip-compressed text input for buffered reading, past any byte-order mark.
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let mut raw: Box<dyn Read + Send> = if is_stdin(path) {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(path).map_err(|e| Error::io(path, e))?)
    };
    let mut magic = [0u8; 2];
    let n = read_head(&mut raw, &mut magic).map_err(|e| Error::io(path, e))?;
    let raw = Cursor::new(magic[..n].to_vec()).chain(raw);
    let mut text: Box<dyn Read + Send> = if magic[..n] == [0x1f, 0x8b] {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(BUF, raw)))
    } else {
        Box::new(raw)
    };
    let mut bom = [0u8; 3];
    let n = read_head(&mut text, &mut bom).map_err(|e| gzip_error(path, 1, e))?;
    let head = if bom[..n] == *b"\xEF\xBB\xBF" {
        Vec::new()
    } else {
        bom[..n].to_vec()
    };
    Ok(Box::new(BufReader::with_capacity(
        BUF,
        Cursor::new(head).chain(text),
    )))
}

/// A read error at `line`: for gzip input usually a corrupt or truncated stream.
fn gzip_error(path: &Path, line: usize, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::InvalidInput
        | std::io::ErrorKind::InvalidData
        | std::io::ErrorKind::UnexpectedEof => Error::data(
            path,
            line,
            Problem::Other(format!(
                "the compressed data is corrupt or truncated here ({e}); the file is damaged \
                 or was not fully written"
            )),
        ),
        _ => Error::io(path, e),
    }
}

/// Reads an input line by line into a reused buffer, counting lines (1-based) and stripping
/// the line ending (`\n` or `\r\n`).
pub struct Lines<'p> {
    path: &'p Path,
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line: usize,
}

impl<'p> Lines<'p> {
    /// Open `path` (plain or gzip; `-` for standard input).
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

    /// Wrap an opened text reader.
    pub fn from_text(path: &'p Path, reader: Box<dyn BufRead + Send>) -> Self {
        Lines {
            path,
            reader,
            buf: Vec::with_capacity(512),
            line: 0,
        }
    }

    /// The next line and its 1-based number, or `None` at the end of the input.
    pub fn next_line(&mut self) -> Result<Option<(usize, &[u8])>> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| gzip_error(self.path, self.line + 1, e))?;
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

    /// The number of the last line returned.
    pub fn line(&self) -> usize {
        self.line
    }
}

/// An input opened once, whose first non-blank line can be looked at before it is read.
pub struct Peeked {
    /// The first non-blank line (without its ending), if there is one.
    pub first: Option<Vec<u8>>,
    /// Everything, the peeked lines included.
    pub reader: Box<dyn BufRead + Send>,
}

/// Open `path` and peek at its first non-blank line.
pub fn peek(path: &Path) -> Result<Peeked> {
    let mut reader = open_text(path)?;
    let mut prefix = Vec::new();
    let mut first = None;
    let mut line = 0;
    loop {
        let start = prefix.len();
        let n = reader
            .read_until(b'\n', &mut prefix)
            .map_err(|e| gzip_error(path, line + 1, e))?;
        if n == 0 {
            break;
        }
        line += 1;
        let mut l = &prefix[start..];
        if l.last() == Some(&b'\n') {
            l = &l[..l.len() - 1];
        }
        if l.last() == Some(&b'\r') {
            l = &l[..l.len() - 1];
        }
        if !is_blank(l) {
            first = Some(l.to_vec());
            break;
        }
    }
    Ok(Peeked {
        first,
        reader: Box::new(BufReader::with_capacity(
            BUF,
            Cursor::new(prefix).chain(reader),
        )),
    })
}

/// Whether a line holds nothing but whitespace.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_is_dropped_and_the_peeked_line_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.txt");
        std::fs::write(&p, b"\xEF\xBB\xBF\n\nACGT\t1\nGG\t2\n").unwrap();
        let mut pk = peek(&p).unwrap();
        assert_eq!(pk.first.as_deref(), Some(&b"ACGT\t1"[..]));
        let mut all = String::new();
        pk.reader.read_to_string(&mut all).unwrap();
        assert_eq!(all, "\n\nACGT\t1\nGG\t2\n");
    }

    #[test]
    fn truncated_gzip_names_the_line() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.txt.gz");
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        for i in 0..20000 {
            writeln!(gz, "ACGTACGTACGT{i}\t1").unwrap();
        }
        let bytes = gz.finish().unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let mut lines = Lines::open(&p).unwrap();
        let e = loop {
            match lines.next_line() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("a truncated stream must not read as complete"),
                Err(e) => break e,
            }
        };
        assert!(e.line().is_some_and(|l| l > 1), "{e}");
        assert!(e.to_string().contains("corrupt or truncated"), "{e}");
    }
}
