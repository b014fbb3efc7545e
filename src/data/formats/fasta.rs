//! Plain FASTA (`.fa`, `.fasta`, optionally gzipped): `>id description` then sequence lines.
//!
//! Written here rather than with noodles-fasta because errors must name the line of a bad base
//! inside a multi-line record, which that reader does not report.

use std::path::Path;

use super::{ReadOptions, Record};
use crate::data::dataset::SeqDataset;
use crate::data::io::{Lines, is_blank};
use crate::error::{Error, Problem, Result};

/// Read a FASTA file. Ids (the first word after `>`) must be unique; records are unlabelled.
pub fn read_fasta(path: &Path, opts: &ReadOptions) -> Result<SeqDataset> {
    let text = crate::data::io::open_text(path)?;
    super::collect(super::Records::Fasta(FastaRecords::new(path, text, opts)))
}

/// The records of a FASTA file, one at a time, each validated.
pub struct FastaRecords<'p> {
    path: &'p Path,
    lines: Lines<'p>,
    opts: ReadOptions,
    // The record being read: its header line, id and letters so far.
    current: Option<(usize, String)>,
    letters: Vec<u8>,
    pub(super) stats: crate::data::ReadStats,
}

impl<'p> FastaRecords<'p> {
    /// The file.
    pub fn path(&self) -> &'p Path {
        self.path
    }

    /// Records of `text`, an opened FASTA file.
    pub fn new(path: &'p Path, text: Box<dyn std::io::BufRead + Send>, opts: &ReadOptions) -> Self {
        FastaRecords {
            path,
            lines: Lines::from_text(path, text),
            opts: opts.clone(),
            current: None,
            letters: Vec::new(),
            stats: Default::default(),
        }
    }

    fn finish(&mut self, header: usize, id: String) -> Result<Record> {
        if self.letters.is_empty() {
            return Err(Error::data(self.path, header, Problem::EmptySequence));
        }
        let seq = super::checked_sequence(
            self.path,
            header,
            &self.letters,
            &self.opts,
            &mut self.stats,
        )?;
        self.letters.clear();
        Ok(Record {
            line: header,
            seq,
            targets: Vec::new(),
            id: Some(id),
            is_reverse: false,
            is_singleton: false,
            fold: None,
            other: Vec::new(),
        })
    }

    /// The next record.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        let path = self.path;
        loop {
            let Some((line, text)) = self.lines.next_line()? else {
                return match self.current.take() {
                    Some((h, id)) => self.finish(h, id).map(Some),
                    None => Ok(None),
                };
            };
            self.stats.lines = line;
            if let Some(rest) = text.strip_prefix(b">") {
                let header = String::from_utf8_lossy(rest);
                let id = header.split_whitespace().next().unwrap_or("").to_string();
                if id.is_empty() {
                    return Err(Error::data(
                        path,
                        line,
                        Problem::Other("record header has no id after '>'".into()),
                    ));
                }
                if let Some((h, prev)) = self.current.replace((line, id)) {
                    return self.finish(h, prev).map(Some);
                }
            } else if is_blank(text) {
                self.stats.blank_lines += 1;
            } else if self.current.is_none() {
                return Err(Error::data(
                    path,
                    line,
                    Problem::Other(
                        "sequence data before the first '>' header (is this a FASTA file?)".into(),
                    ),
                ));
            } else {
                let text = text.trim_ascii_end();
                let at = self.letters.len();
                // Validate this line's letters now, so the error names this line.
                if let Err((pos, ch)) = crate::data::alphabet::encode(text) {
                    return Err(Error::data(
                        path,
                        line,
                        Problem::BadBase {
                            ch,
                            position: at + pos,
                        },
                    ));
                }
                self.letters.extend_from_slice(text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::file;
    use super::*;
    use crate::data::alphabet::decode;

    fn read(content: &str) -> Result<SeqDataset> {
        let (_d, p) = file("x.fa", content);
        read_fasta(&p, &ReadOptions::default())
    }

    #[test]
    fn multi_line_records() {
        let ds = read(">a first\nACGT\nacg\n\n>b\nNNA\n").unwrap();
        assert_eq!(ds.ids, Some(vec!["a".into(), "b".into()]));
        assert_eq!(decode(ds.seqs.get(0)), "ACGTACG");
        assert_eq!(decode(ds.seqs.get(1)), "NNA");
        assert_eq!(ds.lines, vec![1, 5]);
    }

    #[test]
    fn bad_base_names_its_own_line() {
        let e = read(">a\nACGT\nACXT\n").unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert_eq!(
            e.problem(),
            Some(&Problem::BadBase {
                ch: 'X',
                position: 6
            })
        );
    }

    #[test]
    fn empty_record_names_its_header() {
        let e = read(">a\nACGT\n>b\n>c\nAC\n").unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert_eq!(e.problem(), Some(&Problem::EmptySequence));
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let e = read(">a\nACGT\n>a\nAC\n").unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(e.to_string().contains("first seen on line 1"), "{e}");
    }

    #[test]
    fn not_fasta_and_empty() {
        assert_eq!(read("ACGT\n").unwrap_err().line(), Some(1));
        assert_eq!(read("").unwrap_err().problem(), Some(&Problem::EmptyFile));
    }
}
