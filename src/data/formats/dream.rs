//! The DREAM challenge's own files (SPEC §2.1, §2.6): tab-separated, no header,
//! `sequence<TAB>expression[<TAB>fold]`. The test file has the same shape, its values on
//! another scale (or absent).

use std::path::Path;

use super::{ReadOptions, Record, parse_fold, parse_label};
use crate::data::dataset::SeqDataset;
use crate::data::encode::is_singleton;
use crate::data::io::{Lines, is_blank};
use crate::error::{Error, Problem, Result};

/// Which DREAM file is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DreamFile {
    /// Training file: every row has an expression value (0–17); integers are singletons.
    Train,
    /// Test file: the measured value is optional (column 2); no singleton flags.
    Test,
}

const HEADER_HINT: &str = " (DREAM files have no header: `sequence<TAB>expression`)";

/// A first line whose sequence is not DNA and whose value is not a number.
fn looks_like_header(fields: &[&[u8]]) -> bool {
    let not_number = |f: &[u8]| String::from_utf8_lossy(f).trim().parse::<f64>().is_err();
    crate::data::alphabet::encode(fields[0]).is_err() && fields.get(1).is_none_or(|f| not_number(f))
}

/// Read a DREAM training or test file.
pub fn read_dream(path: &Path, kind: DreamFile, opts: &ReadOptions) -> Result<SeqDataset> {
    let text = crate::data::io::open_text(path)?;
    super::collect(super::Records::Dream(DreamRecords::new(
        path, text, kind, opts,
    )))
}

/// The rows of a DREAM file, one at a time, each validated.
pub struct DreamRecords<'p> {
    path: &'p Path,
    lines: Lines<'p>,
    kind: DreamFile,
    opts: ReadOptions,
    // The first data row fixes the column count; every row must then match.
    columns: Option<usize>,
    pub(super) stats: crate::data::ReadStats,
}

impl<'p> DreamRecords<'p> {
    /// The file.
    pub fn path(&self) -> &'p Path {
        self.path
    }

    /// Rows of `text`, an opened DREAM file.
    pub fn new(
        path: &'p Path,
        text: Box<dyn std::io::BufRead + Send>,
        kind: DreamFile,
        opts: &ReadOptions,
    ) -> Self {
        DreamRecords {
            path,
            lines: Lines::from_text(path, text),
            kind,
            opts: opts.clone(),
            columns: None,
            stats: Default::default(),
        }
    }

    /// Label names once the first row is read.
    pub fn task_names(&self) -> Vec<String> {
        if self.columns.unwrap_or(0) >= 2 {
            vec![match self.kind {
                DreamFile::Train => "expression".into(),
                DreamFile::Test => "measured".into(),
            }]
        } else {
            Vec::new()
        }
    }

    /// Whether rows carry a fold.
    pub fn has_folds(&self) -> bool {
        self.columns == Some(3)
    }

    /// The next row.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        let path = self.path;
        let kind = self.kind;
        while let Some((line, text)) = self.lines.next_line()? {
            self.stats.lines = line;
            if is_blank(text) {
                self.stats.blank_lines += 1;
                continue;
            }
            let fields: Vec<&[u8]> = text.split(|&b| b == b'\t').collect();
            let allowed = match kind {
                DreamFile::Train => 2..=3,
                DreamFile::Test => 1..=2,
            };
            if self.columns.is_none() && looks_like_header(&fields) {
                return Err(Error::data(
                    path,
                    line,
                    Problem::Other(format!(
                        "this looks like a header line ({:?}){HEADER_HINT}; delete the line, or \
                         read the file as a table (`--format table --seq-col NAME`)",
                        String::from_utf8_lossy(text)
                    )),
                ));
            }
            let expected = match self.columns {
                Some(c) => c..=c,
                None => allowed.clone(),
            };
            if !expected.contains(&fields.len()) {
                let expected = match (self.columns, kind) {
                    (Some(c), _) => format!("{c} tab-separated fields (as on the first row)"),
                    (None, DreamFile::Train) => {
                        "2 or 3 tab-separated fields (sequence, expression[, fold])".into()
                    }
                    (None, DreamFile::Test) => {
                        "1 or 2 tab-separated fields (sequence[, measured])".into()
                    }
                };
                return Err(Error::data(
                    path,
                    line,
                    Problem::ColumnCount {
                        expected,
                        found: fields.len(),
                    },
                ));
            }
            self.columns = Some(fields.len());
            let seq = super::checked_sequence(path, line, fields[0], &self.opts, &mut self.stats)?;
            let label = match fields.get(1) {
                Some(f) => Some(parse_label(path, line, "expression", f, HEADER_HINT)?),
                None => None,
            };
            if let Some(v) = label
                && kind == DreamFile::Train
                && !(0.0..=17.0).contains(&v)
            {
                return Err(Error::data(
                    path,
                    line,
                    Problem::Other(format!(
                        "expression {v} is outside the sort-bin range 0–17 of the DREAM training file"
                    )),
                ));
            }
            let fold = match fields.get(2) {
                Some(f) => Some(parse_fold(path, line, "fold", f)?),
                None => None,
            };
            return Ok(Some(Record {
                line,
                seq,
                targets: label.into_iter().collect(),
                id: None,
                is_reverse: false,
                is_singleton: kind == DreamFile::Train && label.is_some_and(is_singleton),
                fold,
                other: Vec::new(),
            }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::file;
    use super::*;
    use crate::data::pad::Padding;

    const READ: &str = "TGCATTTTTTTCACATCCTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTGGGGTTACGGCTGTT";

    fn err(content: &str) -> crate::error::Error {
        let (_d, p) = file("train.txt", content);
        read_dream(&p, DreamFile::Train, &ReadOptions::default()).unwrap_err()
    }

    #[test]
    fn reads_rows_labels_and_singletons() {
        let (_d, p) = file(
            "t.txt",
            &format!("{READ}\t15.18\n\n{READ}\t12\r\nacgtn\t0\n"),
        );
        let ds = read_dream(&p, DreamFile::Train, &ReadOptions::default()).unwrap();
        assert_eq!(ds.len(), 3);
        assert_eq!(ds.targets, vec![15.18, 12.0, 0.0]);
        assert_eq!(ds.is_singleton, vec![false, true, true]);
        assert_eq!(ds.lines, vec![1, 3, 4]);
        assert_eq!(ds.stats.blank_lines, 1);
        assert!(ds.folds.is_none());
    }

    #[test]
    fn optional_fold_column() {
        let (_d, p) = file("t.txt", &format!("{READ}\t1.5\t3\n{READ}\t2\t7\n"));
        let ds = read_dream(&p, DreamFile::Train, &ReadOptions::default()).unwrap();
        assert_eq!(ds.folds, Some(vec![3, 7]));
    }

    #[test]
    fn bad_base_names_the_line() {
        let e = err(&format!("{READ}\t1\nACGTXACGT\t2\n"));
        assert_eq!(e.line(), Some(2));
        assert!(matches!(
            e.problem(),
            Some(Problem::BadBase {
                ch: 'X',
                position: 4
            })
        ));
        assert!(
            e.to_string().contains("train.txt:2: invalid base 'X'"),
            "{e}"
        );
    }

    #[test]
    fn wrong_column_count_names_the_line() {
        let e = err(&format!("{READ}\t1\n{READ}\t1\t2\t3\n"));
        assert_eq!(e.line(), Some(2));
        assert!(matches!(
            e.problem(),
            Some(Problem::ColumnCount { found: 4, .. })
        ));
        let e = err(&format!("{READ}\t1\t0\n{READ}\t1\n"));
        assert_eq!(e.line(), Some(2));
        let e = err(&format!("{READ}\n"));
        assert_eq!(e.line(), Some(1));
    }

    #[test]
    fn non_numeric_label_names_the_line() {
        let e = err(&format!("{READ}\t1\n{READ}\t1\n{READ}\thigh\n"));
        assert_eq!(e.line(), Some(3));
        assert!(e.to_string().contains("\"high\" is not a number"), "{e}");
        // A header line gets a hint.
        let e = err(&format!("sequence\texpression\n{READ}\t1\n"));
        assert!(
            e.line() == Some(1) && e.to_string().contains("no header"),
            "{e}"
        );
    }

    #[test]
    fn non_finite_label_names_the_line() {
        for bad in ["nan", "inf", "-inf", "NaN"] {
            let e = err(&format!("{READ}\t1\n{READ}\t{bad}\n"));
            assert_eq!(e.line(), Some(2), "{bad}");
            assert!(
                matches!(e.problem(), Some(Problem::NonFinite { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn out_of_range_label_names_the_line() {
        let e = err(&format!("{READ}\t1\n{READ}\t18.5\n"));
        assert_eq!(e.line(), Some(2));
    }

    #[test]
    fn empty_sequence_names_the_line() {
        let e = err(&format!("{READ}\t1\n\t4\n"));
        assert_eq!(e.line(), Some(2));
        assert_eq!(e.problem(), Some(&Problem::EmptySequence));
    }

    #[test]
    fn too_long_for_the_model_names_the_line() {
        let (_d, p) = file("t.txt", &format!("{READ}\t1\n{READ}A\t1\n"));
        let opts = ReadOptions {
            padding: Some(Padding::exact(110)),
        };
        let e = read_dream(&p, DreamFile::Train, &opts).unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert_eq!(
            e.problem(),
            Some(&Problem::TooLong {
                length: 111,
                max: 110
            })
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        for content in ["", "\n\n  \n"] {
            let e = err(content);
            assert_eq!(e.problem(), Some(&Problem::EmptyFile));
            assert!(
                e.to_string()
                    .contains("train.txt: the file holds no records")
            );
        }
    }

    #[test]
    fn gzip_is_read_transparently() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.txt.gz");
        let mut gz = GzEncoder::new(std::fs::File::create(&path).unwrap(), Compression::fast());
        gz.write_all(format!("{READ}\t3.5\n{READ}\t4\n").as_bytes())
            .unwrap();
        gz.finish().unwrap();
        let ds = read_dream(&path, DreamFile::Train, &ReadOptions::default()).unwrap();
        assert_eq!(ds.targets, vec![3.5, 4.0]);
    }

    #[test]
    fn test_file_measured_column_is_optional() {
        let (_d, p) = file("test.txt", &format!("{READ}\t-0.25\n{READ}\t1.3\n"));
        let ds = read_dream(&p, DreamFile::Test, &ReadOptions::default()).unwrap();
        assert_eq!(ds.task_names, vec!["measured"]);
        assert_eq!(ds.is_singleton, vec![false, false]);
        let (_d, p) = file("test.txt", &format!("{READ}\n{READ}\n"));
        let ds = read_dream(&p, DreamFile::Test, &ReadOptions::default()).unwrap();
        assert_eq!((ds.len(), ds.n_tasks()), (2, 0));
    }

    #[test]
    fn no_panic_on_binary_garbage() {
        let garbage: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.bin");
        std::fs::write(&p, garbage).unwrap();
        assert!(read_dream(&p, DreamFile::Train, &ReadOptions::default()).is_err());
    }
}
