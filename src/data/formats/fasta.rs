//! Plain FASTA (`.fa`, `.fasta`, optionally gzipped): `>id description` then sequence lines.
//!
//! Written here rather than with noodles-fasta because errors must name the line of a bad base
//! inside a multi-line record, which that reader does not report.

use std::path::Path;

use super::{ReadOptions, UniqueIds, empty_file};
use crate::data::dataset::SeqDataset;
use crate::data::io::{Lines, is_blank};
use crate::error::{Error, Problem, Result};

/// Read a FASTA file. Ids (the first word after `>`) must be unique; records are unlabelled.
pub fn read_fasta(path: &Path, opts: &ReadOptions) -> Result<SeqDataset> {
    let mut lines = Lines::open(path)?;
    let mut ds = SeqDataset {
        path: path.to_path_buf(),
        ..Default::default()
    };
    let mut ids = Vec::new();
    let mut seen = UniqueIds::default();
    // The record being read: its header line and letters so far.
    let mut current: Option<usize> = None;
    let mut letters: Vec<u8> = Vec::new();

    let finish = |ds: &mut SeqDataset, header: usize, letters: &mut Vec<u8>| -> Result<()> {
        if letters.is_empty() {
            return Err(Error::data(path, header, Problem::EmptySequence));
        }
        ds.seqs.push_letters(letters).expect("validated per line");
        if let Some(p) = &opts.padding
            && let Err(problem) = p.check(letters.len())
        {
            return Err(Error::data(path, header, problem));
        }
        ds.lines.push(header as u32);
        ds.is_reverse.push(false);
        ds.is_singleton.push(false);
        letters.clear();
        Ok(())
    };

    while let Some((line, text)) = lines.next_line()? {
        ds.stats.lines = line;
        if let Some(rest) = text.strip_prefix(b">") {
            if let Some(h) = current.take() {
                finish(&mut ds, h, &mut letters)?;
            }
            let header = String::from_utf8_lossy(rest);
            let id = header.split_whitespace().next().unwrap_or("").to_string();
            if id.is_empty() {
                return Err(Error::data(
                    path,
                    line,
                    Problem::Other("record header has no id after '>'".into()),
                ));
            }
            seen.insert(path, line, &id)?;
            ids.push(id);
            current = Some(line);
        } else if is_blank(text) {
            ds.stats.blank_lines += 1;
        } else if current.is_none() {
            return Err(Error::data(
                path,
                line,
                Problem::Other(
                    "sequence data before the first '>' header (is this a FASTA file?)".into(),
                ),
            ));
        } else {
            let text = text.trim_ascii_end();
            let at = letters.len();
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
            letters.extend_from_slice(text);
        }
    }
    if let Some(h) = current.take() {
        finish(&mut ds, h, &mut letters)?;
    }
    if ds.is_empty() {
        return Err(empty_file(path));
    }
    ds.ids = Some(ids);
    ds.finish();
    Ok(ds)
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
