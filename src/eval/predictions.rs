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

/// Read predictions for a test file of `rows` rows, in test-row order.
pub fn read_predictions(path: &Path, rows: usize) -> Result<Vec<f64>> {
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
    let values = if text.starts_with('{') {
        read_json(path, rows)?
    } else if text.split('\t').any(|h| h == "prediction") {
        read_tsv(path)?
    } else {
        read_plain(path)?
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
    Ok(values)
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

fn read_tsv(path: &Path) -> Result<Vec<f64>> {
    let mut lines = Lines::open(path)?;
    let mut col = None;
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
            }
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        (d, p)
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
