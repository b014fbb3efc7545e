//! Fold files: a fold per row of a data file, written once by `prixfixe cv plan` (the
//! Drosophila protocol's region-grouped folds) and read by every fold run. Text, header
//! `fold`, one whole number per data row in file order.

use std::io::BufRead;
use std::path::Path;

use crate::error::{Error, Problem, Result};

/// The header line of a fold file.
pub const HEADER: &str = "fold";

/// Write `folds` to `path` atomically.
pub fn write(path: &Path, folds: &[u16]) -> Result<()> {
    let mut text = String::with_capacity(folds.len() * 3 + 5);
    text.push_str(HEADER);
    text.push('\n');
    for f in folds {
        text.push_str(&f.to_string());
        text.push('\n');
    }
    crate::output::write_atomic(path, text.as_bytes())
}

/// Read the folds of `path`, which must hold one per row of a file of `rows` rows.
pub fn read(path: &Path, rows: usize) -> Result<Vec<u16>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut lines = std::io::BufReader::new(file).lines();
    match lines.next() {
        Some(Ok(h)) if h.trim() == HEADER => {}
        Some(Ok(h)) => {
            return Err(Error::data(
                path,
                1,
                Problem::Other(format!(
                    "a fold file starts with the header {HEADER:?}, not {h:?}"
                )),
            ));
        }
        Some(Err(e)) => return Err(Error::io(path, e)),
        None => return Err(Error::data(path, 0, Problem::EmptyFile)),
    }
    let mut folds = Vec::with_capacity(rows);
    for (i, line) in lines.enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        let n = i + 2;
        let fold = line.trim().parse().map_err(|_| {
            Error::data(
                path,
                n,
                Problem::Other(format!(
                    "{line:?} is not a fold id (a whole number 0–65535)"
                )),
            )
        })?;
        folds.push(fold);
    }
    if folds.len() != rows {
        return Err(Error::Config(format!(
            "{}: {} folds for a data file of {rows} rows; a fold file gives one fold per row",
            path.display(),
            folds.len()
        )));
    }
    Ok(folds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.tsv");
        write(&p, &[0, 3, 10]).unwrap();
        assert_eq!(read(&p, 3).unwrap(), vec![0, 3, 10]);
        assert!(read(&p, 4).unwrap_err().to_string().contains("3 folds"));
        std::fs::write(&p, "fold\n1\nx\n").unwrap();
        let e = read(&p, 2).unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("\"x\""), "{e}");
        std::fs::write(&p, "folds\n1\n").unwrap();
        assert!(read(&p, 1).unwrap_err().to_string().contains("header"));
    }
}
