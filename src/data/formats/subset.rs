//! The DREAM test-subset CSVs (SPEC §2.6): a leading pandas index column, then either
//! `tag,sequence,pos,exp` (single-sequence subsets) or
//! `alt_tag,ref_tag,alt_sequence,ref_sequence,alt_pos,ref_pos,alt_exp,ref_exp` (pair subsets).
//! `pos` is the 0-based row of the test file. Repeated positions or pairs are kept once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::table::{check_width, column_index, csv_error, csv_reader, record_line, sniff_header};
use super::{empty_file, sequence_codes};
use crate::data::dataset::SeqDataset;
use crate::error::{Error, Problem, Result};

/// The unique rows a subset scores.
#[derive(Debug, Clone, PartialEq)]
pub enum SubsetRows {
    /// Test-file rows scored on their own.
    Single(Vec<usize>),
    /// `(alt, ref)` test-file rows scored on differences `alt − ref`.
    Pair(Vec<(usize, usize)>),
}

/// One subset file, deduplicated.
#[derive(Debug, Clone)]
pub struct Subset {
    /// The file it came from.
    pub path: PathBuf,
    /// The file name without `.csv` (e.g. `high_exp_seqs`).
    pub name: String,
    /// The unique rows.
    pub rows: SubsetRows,
    /// The sequence given for each test row named, with the line naming it (for checking
    /// against the test file).
    pub sequences: Vec<(usize, Vec<u8>, usize)>,
    /// Rows that repeated an earlier position or pair.
    pub repeats: usize,
}

impl Subset {
    /// Number of unique entries.
    pub fn len(&self) -> usize {
        match &self.rows {
            SubsetRows::Single(v) => v.len(),
            SubsetRows::Pair(v) => v.len(),
        }
    }

    /// Whether it holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Check every position against the test file: in range, and the subset's sequence equal
    /// to the test file's row.
    pub fn check_against(&self, test: &SeqDataset) -> Result<()> {
        for (pos, seq, line) in &self.sequences {
            if *pos >= test.len() {
                return Err(Error::data(
                    &self.path,
                    *line,
                    Problem::Other(format!(
                        "position {pos} is outside the test file {} ({} rows)",
                        test.path.display(),
                        test.len()
                    )),
                ));
            }
            if test.seqs.get(*pos) != seq.as_slice() {
                return Err(Error::data(
                    &self.path,
                    *line,
                    Problem::Other(format!(
                        "the sequence differs from row {pos} of the test file {}",
                        test.path.display()
                    )),
                ));
            }
        }
        Ok(())
    }
}

fn parse_pos(path: &Path, line: usize, column: &str, field: &[u8]) -> Result<usize> {
    let text = String::from_utf8_lossy(field);
    let t = text.trim();
    // pandas may write integer columns as floats ("12.0").
    let t = t.strip_suffix(".0").unwrap_or(t);
    t.parse().map_err(|_| {
        Error::data(
            path,
            line,
            Problem::Other(format!(
                "{column} {text:?} is not a test-file row number (a whole number from 0)"
            )),
        )
    })
}

/// Read one subset file.
pub fn read_subset(path: &Path) -> Result<Subset> {
    let (delim, header) = sniff_header(path)?;
    let is_pair = header.iter().any(|h| h == "alt_pos");
    let cols: Vec<&str> = if is_pair {
        vec!["alt_pos", "ref_pos", "alt_sequence", "ref_sequence"]
    } else {
        vec!["pos", "sequence"]
    };
    let idx = cols
        .iter()
        .map(|c| column_index(path, &header, c))
        .collect::<Result<Vec<_>>>()?;
    let mut rdr = csv_reader(path, delim)?;
    let mut rec = csv::ByteRecord::new();
    let mut singles = Vec::new();
    let mut pairs = Vec::new();
    let mut seen_pos: HashSet<usize> = HashSet::new();
    let mut seen_pair: HashSet<(usize, usize)> = HashSet::new();
    let mut sequences = Vec::new();
    let mut repeats = 0;
    let mut rows = 0;
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(path, e))?
    {
        let line = record_line(&rec);
        check_width(path, &rec, &header, delim)?;
        rows += 1;
        // Returns whether `pos` is new; the first sequence given for a position is kept.
        let mut note_seq = |pos: usize, field: &[u8]| -> Result<bool> {
            let new = seen_pos.insert(pos);
            if new {
                sequences.push((pos, sequence_codes(path, line, field)?, line));
            }
            Ok(new)
        };
        if is_pair {
            let alt = parse_pos(path, line, "alt_pos", &rec[idx[0]])?;
            let reference = parse_pos(path, line, "ref_pos", &rec[idx[1]])?;
            note_seq(alt, &rec[idx[2]])?;
            note_seq(reference, &rec[idx[3]])?;
            if seen_pair.insert((alt, reference)) {
                pairs.push((alt, reference));
            } else {
                repeats += 1;
            }
        } else {
            let pos = parse_pos(path, line, "pos", &rec[idx[0]])?;
            if note_seq(pos, &rec[idx[1]])? {
                singles.push(pos);
            } else {
                repeats += 1;
            }
        }
    }
    if rows == 0 {
        return Err(empty_file(path));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default()
        .trim_end_matches(".gz")
        .trim_end_matches(".csv")
        .to_string();
    Ok(Subset {
        path: path.to_path_buf(),
        name,
        rows: if is_pair {
            SubsetRows::Pair(pairs)
        } else {
            SubsetRows::Single(singles)
        },
        sequences,
        repeats,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::file;
    use super::*;

    #[test]
    fn single_subset_keeps_unique_positions() {
        let (_d, p) = file(
            "high_exp_seqs.csv",
            ",tag,sequence,pos,exp\n0,a,ACGT,5,\n1,b,ACGA,2,\n2,a,ACGT,5,\n",
        );
        let s = read_subset(&p).unwrap();
        assert_eq!(s.name, "high_exp_seqs");
        assert_eq!(s.rows, SubsetRows::Single(vec![5, 2]));
        assert_eq!(s.repeats, 1);
    }

    #[test]
    fn pair_subset_keeps_unique_pairs() {
        let head = ",alt_tag,ref_tag,alt_sequence,ref_sequence,alt_pos,ref_pos,alt_exp,ref_exp\n";
        let (_d, p) = file(
            "motif_tiling_seqs.csv",
            &format!("{head}0,x,r,AAAA,CCCC,3,1,,\n1,y,r,AAAT,CCCC,4,1,,\n2,x,r,AAAA,CCCC,3,1,,\n"),
        );
        let s = read_subset(&p).unwrap();
        assert_eq!(s.rows, SubsetRows::Pair(vec![(3, 1), (4, 1)]));
        assert_eq!(s.repeats, 1);
        assert_eq!(s.sequences.len(), 3);
    }

    #[test]
    fn bad_position_names_the_line() {
        let (_d, p) = file("s.csv", ",tag,sequence,pos,exp\n0,a,ACGT,5,\n1,b,ACGT,x,\n");
        let e = read_subset(&p).unwrap_err();
        assert_eq!(e.line(), Some(3));
    }

    #[test]
    fn position_outside_the_test_file_names_the_line() {
        let (_d, p) = file("s.csv", ",tag,sequence,pos,exp\n0,a,ACGT,0,\n1,b,ACGT,9,\n");
        let s = read_subset(&p).unwrap();
        let mut test = SeqDataset::default();
        test.seqs.push_letters(b"ACGT").unwrap();
        let e = s.check_against(&test).unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(e.to_string().contains("outside the test file"), "{e}");
    }
}
