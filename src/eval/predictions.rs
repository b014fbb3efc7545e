//! Reading prediction files for scoring: our `predict` output (TSV with a header and a
//! `prediction` column), a plain file of one value per line in test-row order, or the
//! challenge's JSON `{"0": value, "1": value, ...}`.

use std::path::Path;

use crate::data::io::{Lines, is_blank};
use crate::error::{Error, Problem, Result};

fn bad(path: &Path, line: usize, msg: String) -> Error {
    Error::data(path, line, Problem::Other(msg))
}

fn parse_value(path: &Path, line: usize, text: &str) -> Result<f64> {
    let v: f64 = text.trim().parse().map_err(|_| {
        Error::data(
            path,
            line,
            Problem::NonNumeric {
                column: "prediction".into(),
                value: text.to_string(),
                hint: "",
            },
        )
    })?;
    if !v.is_finite() {
        return Err(Error::data(
            path,
            line,
            Problem::NonFinite {
                column: "prediction".into(),
                value: text.to_string(),
            },
        ));
    }
    Ok(v)
}

/// Read predictions for the rows of `test`, in test-row order. When the file has a
/// `sequence` column (as `prixfixe predict` writes it), every row's sequence must be the test
/// file's row of the same number: a file in another order (shuffled, sorted, another test set)
/// is refused with the first line that differs, never scored.
pub fn read_predictions_for(path: &Path, test: &crate::data::SeqDataset) -> Result<Vec<f64>> {
    let (values, seqs) = read_all(path, test.len())?;
    if let Some(seqs) = seqs {
        for (i, (line, s)) in seqs.iter().enumerate() {
            let same = crate::data::alphabet::encode(s.as_bytes())
                .is_ok_and(|codes| codes.as_slice() == test.seqs.get(i));
            if !same {
                return Err(bad(
                    path,
                    *line,
                    format!(
                        "this row's sequence is not row {i} of the test file {} (line {}): \
                         predictions must be in the test file's order",
                        test.path.display(),
                        test.lines.get(i).copied().unwrap_or(0)
                    ),
                ));
            }
        }
    }
    Ok(values)
}

/// Read predictions for a test file of `rows` rows, in test-row order.
pub fn read_predictions(path: &Path, rows: usize) -> Result<Vec<f64>> {
    read_all(path, rows).map(|(v, _)| v)
}

type Sequences = Option<Vec<(usize, String)>>;

fn read_all(path: &Path, rows: usize) -> Result<(Vec<f64>, Sequences)> {
    let text = {
        let mut lines = Lines::open(path)?;
        let mut first = None;
        while let Some((_, l)) = lines.next_line()? {
            if !is_blank(l) {
                first = Some(String::from_utf8_lossy(l).trim_start().to_string());
                break;
            }
        }
        first.ok_or_else(|| Error::data(path, 0, Problem::EmptyFile))?
    };
    let (values, seqs) = if text.starts_with('{') {
        (read_json(path, rows)?, None)
    } else if text.split('\t').any(|h| h == "prediction") {
        read_tsv(path)?
    } else {
        (read_plain(path)?, None)
    };
    if values.len() != rows {
        return Err(bad(
            path,
            0,
            format!(
                "{} predictions for a test file of {rows} rows; a prediction file must have one \
                 value per test row, in row order",
                values.len()
            ),
        ));
    }
    Ok((values, seqs))
}

fn read_plain(path: &Path) -> Result<Vec<f64>> {
    let mut lines = Lines::open(path)?;
    let mut out = Vec::new();
    while let Some((n, l)) = lines.next_line()? {
        if is_blank(l) {
            continue;
        }
        out.push(parse_value(path, n, &String::from_utf8_lossy(l))?);
    }
    Ok(out)
}

fn read_tsv(path: &Path) -> Result<(Vec<f64>, Sequences)> {
    let mut lines = Lines::open(path)?;
    let mut col = None;
    let mut seq_col = None;
    let mut seqs = Vec::new();
    let mut out = Vec::new();
    while let Some((n, l)) = lines.next_line()? {
        if is_blank(l) {
            continue;
        }
        let text = String::from_utf8_lossy(l);
        let fields: Vec<&str> = text.split('\t').collect();
        match col {
            None => {
                col = fields.iter().position(|&h| h == "prediction");
                seq_col = fields.iter().position(|&h| h == "sequence");
            }
            Some(c) => {
                let field = fields.get(c).ok_or_else(|| {
                    Error::data(
                        path,
                        n,
                        Problem::ColumnCount {
                            expected: format!("at least {} tab-separated fields", c + 1),
                            found: fields.len(),
                        },
                    )
                })?;
                out.push(parse_value(path, n, field)?);
                if let Some(sc) = seq_col {
                    seqs.push((n, fields.get(sc).unwrap_or(&"").to_string()));
                }
            }
        }
    }
    Ok((out, seq_col.map(|_| seqs)))
}

fn read_json(path: &Path, rows: usize) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| {
            bad(
                path,
                e.line(),
                format!("not a JSON object of id → value: {e}"),
            )
        })?;
    let mut out = vec![f64::NAN; rows];
    for (k, v) in &map {
        let id: usize = k
            .parse()
            .map_err(|_| bad(path, 0, format!("key {k:?} is not a test-row id")))?;
        if id >= rows {
            return Err(bad(
                path,
                0,
                format!("id {id} is outside the test file ({rows} rows)"),
            ));
        }
        let value = v
            .as_f64()
            .ok_or_else(|| bad(path, 0, format!("the value of id {id} is not a number")))?;
        if !value.is_finite() {
            return Err(bad(path, 0, format!("the value of id {id} is not finite")));
        }
        out[id] = value;
    }
    if let Some(missing) = out.iter().position(|v| v.is_nan()) {
        return Err(bad(
            path,
            0,
            format!(
                "{} of {rows} test rows have no prediction (the first is id {missing})",
                out.iter().filter(|v| v.is_nan()).count()
            ),
        ));
    }
    Ok(out)
}

/// Two columns of a table (tab- or comma-separated, with a header), by name, as numbers:
/// the measured values and the predictions of `predict`'s output, say. Rows whose measured
/// field is `NA` or empty are left out; any other field that is not a finite number is an
/// error naming its line (the readers' label check).
pub fn read_column_pair(
    path: &Path,
    measured: &str,
    predicted: &str,
) -> Result<(Vec<f64>, Vec<f64>)> {
    use crate::data::formats::parse_label;
    use crate::data::formats::table::{
        column_index, csv_error, csv_reader, record_line, sniff_header,
    };
    let (delim, header) = sniff_header(path)?;
    let (m, p) = (
        column_index(path, &header, measured)?,
        column_index(path, &header, predicted)?,
    );
    let mut rdr = csv_reader(path, delim)?;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut rec = csv::ByteRecord::new();
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(path, e))?
    {
        let line = record_line(&rec);
        let field = |c: usize| rec.get(c).unwrap_or_default();
        let x = field(m).trim_ascii();
        if x.is_empty() || x == b"NA" {
            continue;
        }
        xs.push(parse_label(path, line, measured, x, "")?);
        ys.push(parse_label(path, line, predicted, field(p), "")?);
    }
    Ok((xs, ys))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    /// NA rows are left out; a field that is not a finite number names its file, line and
    /// column.
    #[test]
    fn column_pairs_skip_na_and_name_bad_fields() {
        let (_d, p) = write(
            "p.tsv",
            "sequence\tmeasured\tprediction\nACGT\t1.5\t2\nAAAA\tNA\t3\nCCCC\t-1\t0.5\n",
        );
        let (x, y) = read_column_pair(&p, "measured", "prediction").unwrap();
        assert_eq!((x, y), (vec![1.5, -1.0], vec![2.0, 0.5]));
        for (bad, column) in [
            ("ACGT\t1\tx\n", "prediction"),
            ("ACGT\tnan\t1\n", "measured"),
        ] {
            let (_d, p) = write(
                "b.tsv",
                &format!("sequence\tmeasured\tprediction\nAAAA\t1\t1\n{bad}"),
            );
            let e = read_column_pair(&p, "measured", "prediction").unwrap_err();
            assert_eq!(e.line(), Some(3), "{e}");
            assert!(
                e.to_string().contains("b.tsv:3") && e.to_string().contains(column),
                "{e}"
            );
        }
    }

    #[test]
    fn three_formats() {
        let (_d, p) = write("a.tsv", "sequence\tprediction\nACGT\t1.5\nAAAA\t2\n");
        assert_eq!(read_predictions(&p, 2).unwrap(), vec![1.5, 2.0]);
        let (_d, p) = write("b.txt", "1.5\n2\n");
        assert_eq!(read_predictions(&p, 2).unwrap(), vec![1.5, 2.0]);
        let (_d, p) = write("c.json", r#"{"1": 2, "0": 1.5}"#);
        assert_eq!(read_predictions(&p, 2).unwrap(), vec![1.5, 2.0]);
    }

    #[test]
    fn a_prediction_file_in_another_order_is_refused() {
        let (_d, test) = write("test.txt", "ACGT\t1\nGGGG\t2\n");
        let ds = crate::data::read_dream(
            &test,
            crate::data::DreamFile::Test,
            &crate::data::ReadOptions::default(),
        )
        .unwrap();
        let (_d2, p) = write("a.tsv", "sequence\tprediction\nacgt\t1.5\nGGGG\t2\n");
        assert_eq!(read_predictions_for(&p, &ds).unwrap(), vec![1.5, 2.0]);
        let (_d3, p) = write("b.tsv", "sequence\tprediction\nGGGG\t2\nACGT\t1.5\n");
        let e = read_predictions_for(&p, &ds).unwrap_err().to_string();
        assert!(
            e.contains("b.tsv:2:") && e.contains("not row 0 of the test file"),
            "{e}"
        );
    }

    #[test]
    fn wrong_length_and_bad_values_are_clear() {
        let (_d, p) = write("b.txt", "1.5\n2\n");
        let e = read_predictions(&p, 3).unwrap_err().to_string();
        assert!(e.contains("2 predictions for a test file of 3 rows"), "{e}");
        let (_d, p) = write("b.txt", "1.5\nnan\n");
        let e = read_predictions(&p, 2).unwrap_err();
        assert_eq!(e.line(), Some(2));
        let (_d, p) = write("c.json", r#"{"0": 1.5, "5": 2}"#);
        let e = read_predictions(&p, 2).unwrap_err().to_string();
        assert!(e.contains("id 5 is outside"), "{e}");
        let (_d, p) = write("c.json", r#"{"0": 1.5}"#);
        let e = read_predictions(&p, 2).unwrap_err().to_string();
        assert!(e.contains("1 of 2 test rows have no prediction"), "{e}");
    }
}
