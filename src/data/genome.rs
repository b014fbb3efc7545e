//! A reference genome read by region through its FASTA index (`.fai`, as samtools writes it):
//! memory holds the index and the region asked for, never the genome. A missing index is built
//! (one pass over the FASTA) and written beside it when the directory allows.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use noodles_core::{Position, Region};
use noodles_fasta as fasta;

use crate::data::alphabet;
use crate::error::{Error, Problem, Result};

/// An indexed FASTA genome.
pub struct Genome {
    path: PathBuf,
    reader: fasta::io::IndexedReader<fasta::io::BufReader<File>>,
    lengths: HashMap<String, u64>,
    names: Vec<String>,
}

impl Genome {
    /// Open `path` and its index `path.fai`, building the index if there is none.
    pub fn open(path: &Path) -> Result<Self> {
        let fai = PathBuf::from(format!("{}.fai", path.display()));
        let index = if fai.exists() {
            fasta::fai::fs::read(&fai).map_err(|e| {
                Error::Other(format!(
                    "{}: not a FASTA index ({e}); delete it and it is rebuilt",
                    fai.display()
                ))
            })?
        } else {
            let index = fasta::fs::index(path).map_err(|e| {
                Error::Other(format!(
                    "{}: cannot index this FASTA file ({e}); is it FASTA (uncompressed, or \
                     bgzip with its .fai)?",
                    path.display()
                ))
            })?;
            // Written for the next run; a read-only directory only costs the next run a pass.
            let mut bytes = Vec::new();
            let written = fasta::fai::io::Writer::new(&mut bytes).write_index(&index);
            if written.is_ok() {
                let _ = crate::output::write_atomic(&fai, &bytes);
            }
            index
        };
        let mut lengths = HashMap::new();
        let mut names = Vec::new();
        for r in index.as_ref() {
            let name = String::from_utf8_lossy(r.name()).into_owned();
            lengths.insert(name.clone(), r.length());
            names.push(name);
        }
        let reader = fasta::io::indexed_reader::Builder::default()
            .set_index(index)
            .build_from_path(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Genome {
            path: path.to_path_buf(),
            reader,
            lengths,
            names,
        })
    }

    /// The genome's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The length of a chromosome, if the genome has it.
    pub fn length(&self, chrom: &str) -> Option<u64> {
        self.lengths.get(chrom).copied()
    }

    /// The chromosome names, in file order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Each chromosome's name and length, in file order (a bigWig header's sizes).
    pub fn sizes(&self) -> Vec<(String, u64)> {
        self.names
            .iter()
            .map(|n| (n.clone(), self.lengths[n]))
            .collect()
    }

    /// Bases `[start, end)` (0-based) of `chrom`, as codes.
    pub fn fetch(&mut self, chrom: &str, start: u64, end: u64) -> Result<Vec<u8>> {
        let len = self.length(chrom).ok_or_else(|| {
            Error::Config(format!(
                "{}: no chromosome {chrom:?} (it has {})",
                self.path.display(),
                preview(&self.names)
            ))
        })?;
        if start >= end || end > len {
            return Err(Error::Config(format!(
                "{}: region {chrom}:{}-{end} is outside the chromosome (1-{len})",
                self.path.display(),
                start + 1
            )));
        }
        let position = |p: u64| Position::try_from(p as usize).expect("positive");
        let region = Region::new(chrom, position(start + 1)..=position(end));
        let record = self
            .reader
            .query(&region)
            .map_err(|e| Error::io(&self.path, e))?;
        let letters: &[u8] = record.sequence().as_ref();
        alphabet::encode(letters).map_err(|(pos, ch)| {
            Error::data(
                &self.path,
                0,
                Problem::Other(format!(
                    "{chrom}:{} holds {ch:?}, which is not a base (allowed: A C G T, N and IUPAC codes)",
                    start + 1 + pos as u64
                )),
            )
        })
    }
}

/// The first few names of a list, for messages.
pub fn preview(ids: &[String]) -> String {
    let mut s = ids.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if ids.len() > 5 {
        s.push_str(&format!(", … {} in all", ids.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_by_index_built_on_first_use() {
        let d = tempfile::tempdir().unwrap();
        let fa = d.path().join("g.fa");
        std::fs::write(&fa, ">chrI desc\nAAAACCCC\nGGGGTTTT\nACGT\n>chrII\nGGNG\n").unwrap();
        let mut g = Genome::open(&fa).unwrap();
        assert!(d.path().join("g.fa.fai").exists());
        assert_eq!(g.length("chrI"), Some(20));
        assert_eq!(alphabet::decode(&g.fetch("chrI", 6, 10).unwrap()), "CCGG");
        assert_eq!(alphabet::decode(&g.fetch("chrII", 0, 4).unwrap()), "GGNG");
        let e = g.fetch("chrX", 0, 1).unwrap_err().to_string();
        assert!(e.contains("chrX") && e.contains("chrI, chrII"), "{e}");
        assert!(g.fetch("chrI", 18, 21).is_err());
        // The written index is read back by the next open.
        let mut again = Genome::open(&fa).unwrap();
        assert_eq!(
            alphabet::decode(&again.fetch("chrI", 16, 20).unwrap()),
            "ACGT"
        );
    }
}
