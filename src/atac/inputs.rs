//! The files a ChromBPNet user brings (SPEC_BENCHMARKS §5.1), read as the field writes them:
//! peaks and non-peaks as narrowPeak (`noodles-bed`), the Tn5-insertion signal as bigWig
//! (`bigtools`), chromosome folds as ChromBPNet's JSON. The genome is
//! [`crate::data::genome::Genome`] (FASTA by region through its `.fai`). Tracks are read by
//! region and peaks hold a few numbers each, so memory does not grow with the genome.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use bigtools::BigWigRead;
use serde::{Deserialize, Serialize};

use crate::data::io::{Lines, is_blank};
use crate::error::{Error, Problem, Result};

/// One region of a narrowPeak/BED file: its interval and its summit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peak {
    /// Chromosome.
    pub chrom: String,
    /// 0-based start.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
    /// The window's centre on the chromosome: `start + summit` (column 10).
    pub centre: u64,
    /// The line it was read from (1-based).
    pub line: usize,
}

/// Read a narrowPeak file (10 columns; plain or gzip). The centre is `start + summit`; a
/// summit of `-1` or `.` (no summit called) stands for the interval's middle. `#`, `track`
/// and `browser` lines are skipped.
pub fn read_peaks(path: &Path) -> Result<Vec<Peak>> {
    let mut lines = Lines::open(path)?;
    let mut peaks = Vec::new();
    let mut record = noodles_bed::Record::<3>::default();
    while let Some((line, text)) = lines.next_line()? {
        if is_blank(text)
            || text.starts_with(b"#")
            || text.starts_with(b"track")
            || text.starts_with(b"browser")
        {
            continue;
        }
        let bad = |msg: String| Error::data(path, line, Problem::Other(msg));
        let mut reader = noodles_bed::io::Reader::<3, _>::new(text);
        reader
            .read_record(&mut record)
            .map_err(|e| bad(format!("not a BED line ({e})")))?;
        let chrom = String::from_utf8_lossy(record.reference_sequence_name()).into_owned();
        let start = record
            .feature_start()
            .map_err(|e| bad(format!("column 2 (start): {e}")))?
            .get() as u64
            - 1;
        let end = match record.feature_end() {
            Some(Ok(p)) => p.get() as u64,
            Some(Err(e)) => return Err(bad(format!("column 3 (end): {e}"))),
            None => return Err(bad("column 3 (end) is missing".into())),
        };
        if end <= start {
            return Err(bad(format!(
                "the interval {chrom}:{start}-{end} is empty (end ≤ start)"
            )));
        }
        let others = record.other_fields();
        if others.len() != 7 {
            return Err(Error::data(
                path,
                line,
                Problem::ColumnCount {
                    found: 3 + others.len(),
                    expected: "10 (narrowPeak: chrom, start, end, name, score, strand, signal, p, q, summit)".into(),
                },
            ));
        }
        let summit = others.get(6).map(|s| s.to_vec()).unwrap_or_default();
        let summit = std::str::from_utf8(&summit).unwrap_or("").trim();
        let centre = match summit {
            "-1" | "." => start + (end - start) / 2,
            s => {
                let offset: u64 = s.parse().map_err(|_| {
                    bad(format!(
                        "column 10 (summit) should be an offset from the start, got {s:?}"
                    ))
                })?;
                if offset >= end - start {
                    return Err(bad(format!(
                        "column 10 (summit) {offset} lies outside the {}-nt peak",
                        end - start
                    )));
                }
                start + offset
            }
        };
        peaks.push(Peak {
            chrom,
            start,
            end,
            centre,
            line,
        });
    }
    if peaks.is_empty() {
        return Err(Error::Config(format!(
            "{}: no regions (a narrowPeak file has one per line)",
            path.display()
        )));
    }
    Ok(peaks)
}

/// Which chromosomes train, validate and test a model: ChromBPNet's fold JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChromFolds {
    /// Training chromosomes.
    pub train: Vec<String>,
    /// Validation chromosomes.
    pub valid: Vec<String>,
    /// Test chromosomes.
    pub test: Vec<String>,
}

/// The split a region belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training.
    Train,
    /// Validation.
    Valid,
    /// Test.
    Test,
}

impl ChromFolds {
    /// Read a fold file, refusing a chromosome in two lists or an empty train list.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let folds: ChromFolds = serde_json::from_str(&text).map_err(|e| {
            Error::data(
                path,
                e.line(),
                Problem::Other(format!(
                    "not a fold file ({e}); expected {{\"train\": [\"chr2\", …], \"valid\": [\"chr8\", …], \"test\": [\"chr1\", …]}}"
                )),
            )
        })?;
        folds
            .check()
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Ok(folds)
    }

    /// Each chromosome in one list at most; at least one training and one validation
    /// chromosome.
    pub fn check(&self) -> std::result::Result<(), String> {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (list, names) in [
            ("train", &self.train),
            ("valid", &self.valid),
            ("test", &self.test),
        ] {
            for name in names {
                if let Some(other) = seen.insert(name, list) {
                    return Err(format!(
                        "the folds overlap: {name} is in both \"{other}\" and \"{list}\""
                    ));
                }
            }
        }
        if self.train.is_empty() || self.valid.is_empty() {
            return Err(
                "the folds need at least one \"train\" and one \"valid\" chromosome".into(),
            );
        }
        Ok(())
    }

    /// The split of `chrom`, if a list holds it.
    pub fn split(&self, chrom: &str) -> Option<Split> {
        let has = |l: &Vec<String>| l.iter().any(|c| c == chrom);
        if has(&self.train) {
            Some(Split::Train)
        } else if has(&self.valid) {
            Some(Split::Valid)
        } else if has(&self.test) {
            Some(Split::Test)
        } else {
            None
        }
    }

    /// Every chromosome named.
    pub fn chromosomes(&self) -> BTreeSet<&str> {
        self.train
            .iter()
            .chain(&self.valid)
            .chain(&self.test)
            .map(String::as_str)
            .collect()
    }

    /// Write as JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("json");
        crate::output::write_atomic(path, format!("{text}\n").as_bytes())
    }
}

/// A bigWig track read by region.
pub struct Signal {
    path: PathBuf,
    reader: BigWigRead<File>,
    lengths: HashMap<String, u64>,
}

impl Signal {
    /// Open a bigWig file.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = BigWigRead::open(file)
            .map_err(|e| Error::Other(format!("{}: not a bigWig file ({e})", path.display())))?;
        let lengths = reader
            .chroms()
            .iter()
            .map(|c| (c.name.clone(), c.length as u64))
            .collect();
        Ok(Signal {
            path: path.to_path_buf(),
            reader,
            lengths,
        })
    }

    /// The track's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The length of a chromosome in the track's header.
    pub fn length(&self, chrom: &str) -> Option<u64> {
        self.lengths.get(chrom).copied()
    }

    /// Values over `[start, end)` of `chrom`; positions without data (and NaN) read as 0.
    pub fn values(&mut self, chrom: &str, start: u64, end: u64) -> Result<Vec<f32>> {
        let len = self.length(chrom).ok_or_else(|| {
            Error::Config(format!(
                "{}: the bigWig has no chromosome {chrom:?}",
                self.path.display()
            ))
        })?;
        if end > len {
            return Err(Error::Config(format!(
                "{}: region {chrom}:{}-{end} runs past the chromosome's end ({len})",
                self.path.display(),
                start + 1
            )));
        }
        let mut v = self
            .reader
            .values(chrom, start as u32, end as u32)
            .map_err(|e| Error::Other(format!("{}: {e}", self.path.display())))?;
        for x in &mut v {
            if !x.is_finite() {
                *x = 0.0;
            }
        }
        Ok(v)
    }
}

/// Write a bigWig of `chrom_sizes` from `(chrom, start, end, value)` runs, sorted by
/// chromosome (in `chrom_sizes` order) and position, atomically.
pub fn write_bigwig(
    path: &Path,
    chrom_sizes: &[(String, u64)],
    runs: impl Iterator<Item = (String, u32, u32, f32)> + Send + 'static,
) -> Result<()> {
    use bigtools::beddata::BedParserStreamingIterator;
    let sizes: HashMap<String, u32> = chrom_sizes
        .iter()
        .map(|(c, l)| (c.clone(), *l as u32))
        .collect();
    let tmp = crate::output::temporary_path(path);
    let out = bigtools::BigWigWrite::create_file(&tmp, sizes).map_err(|e| Error::io(&tmp, e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the bigWig writer: {e}")))?;
    let values = runs.map(|(c, start, end, value)| (c, bigtools::Value { start, end, value }));
    let data = BedParserStreamingIterator::wrap_infallible_iter(values, true);
    out.write(data, runtime).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Other(format!("{}: cannot write the bigWig ({e})", path.display()))
    })?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowpeak_summits_and_errors_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("p.narrowPeak");
        std::fs::write(
            &p,
            "track name=x\nchr1\t100\t300\t.\t0\t.\t5.0\t-1\t-1\t50\nchr2\t10\t20\tp\t0\t.\t0\t0\t0\t-1\n",
        )
        .unwrap();
        let peaks = read_peaks(&p).unwrap();
        assert_eq!(peaks[0].centre, 150);
        assert_eq!((peaks[0].line, peaks[1].centre), (2, 15));
        std::fs::write(&p, "chr1\t100\t300\t.\t0\t.\t5.0\t-1\t-1\t500\n").unwrap();
        let e = read_peaks(&p).unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("summit"), "{e}");
        std::fs::write(&p, "chr1\t100\t300\n").unwrap();
        let e = read_peaks(&p).unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("10"), "{e}");
        std::fs::write(&p, "chr1\tx\t300\t.\t0\t.\t5.0\t-1\t-1\t5\n").unwrap();
        let e = read_peaks(&p).unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("start"), "{e}");
    }

    #[test]
    fn folds_refuse_overlap() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        std::fs::write(
            &p,
            r#"{"train":["chr2","chr3"],"valid":["chr3"],"test":["chr1"]}"#,
        )
        .unwrap();
        let e = ChromFolds::read(&p).unwrap_err().to_string();
        assert!(e.contains("chr3") && e.contains("overlap"), "{e}");
        std::fs::write(&p, r#"{"train":["chr2"],"valid":["chr3"],"test":["chr1"]}"#).unwrap();
        let f = ChromFolds::read(&p).unwrap();
        assert_eq!(f.split("chr1"), Some(Split::Test));
        assert_eq!(f.split("chrY"), None);
    }

    #[test]
    fn bigwig_written_reads_back() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.bw");
        let sizes = vec![("chrA".to_string(), 1000u64), ("chrB".to_string(), 500)];
        let runs = vec![
            ("chrA".to_string(), 10u32, 12u32, 3.0f32),
            ("chrA".to_string(), 500, 501, 1.0),
            ("chrB".to_string(), 0, 1, 2.5),
        ];
        write_bigwig(&p, &sizes, runs.into_iter()).unwrap();
        let mut s = Signal::open(&p).unwrap();
        assert_eq!(s.length("chrA"), Some(1000));
        let v = s.values("chrA", 9, 13).unwrap();
        assert_eq!(v, vec![0.0, 3.0, 3.0, 0.0]);
        assert_eq!(s.values("chrB", 0, 2).unwrap(), vec![2.5, 0.0]);
        assert!(s.values("chrC", 0, 2).is_err());
        assert!(s.values("chrB", 0, 501).is_err());
    }

    /// A real bigWig from the field (bigtools' test file, UCSC-written) reads.
    #[test]
    fn a_ucsc_bigwig_reads() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ucsc_valid.bigWig");
        let mut s = Signal::open(&p).unwrap();
        let chrom = s.reader.chroms()[0].name.clone();
        let v = s.values(&chrom, 0, 100_000).unwrap();
        assert!(v.iter().any(|&x| x != 0.0));
    }
}
