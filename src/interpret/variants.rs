//! Variant effects (SPEC §6): `pred(alt) − pred(ref)` for sequence pairs, given directly or
//! cut from a genome around the records of a VCF.

use std::fmt::Write as _;
use std::path::Path;

use crate::data::alphabet;
use crate::data::formats::sequence_codes;
use crate::data::formats::table::{
    check_width, column_index, csv_error, csv_reader, record_line, sniff_header,
};
use crate::data::genome::{Genome, preview};
use crate::data::io::{Lines, is_blank};
use crate::error::{Error, Problem, Result};
use crate::predict::{Predictor, predict_codes};

/// A reference / alternative pair.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantPair {
    /// Name (a column of the pairs file; from a VCF its ID, or `chrom:pos:ref>alt`).
    pub id: String,
    /// Reference sequence (base codes).
    pub reference: Vec<u8>,
    /// Alternative sequence (base codes).
    pub alternative: Vec<u8>,
    /// Where it is, when it came from a VCF record.
    pub site: Option<Site>,
}

/// A VCF record's site and the one alternative allele a pair stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// CHROM.
    pub chrom: String,
    /// POS (1-based).
    pub pos: u64,
    /// ID (`.` when none).
    pub id: String,
    /// REF.
    pub reference: String,
    /// The ALT allele of this pair (one of a multi-allelic record's).
    pub alt: String,
}

/// Read pairs from a table (tab- or comma-separated, with a header) holding `ref` and `alt`
/// columns — or `ref_sequence` and `alt_sequence`, as in the DREAM pair subsets — and an
/// optional `id` (or `alt_tag`) column.
pub fn read_pairs(path: &Path) -> Result<Vec<VariantPair>> {
    let (delim, header) = sniff_header(path)?;
    let pick = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| header.iter().position(|h| h == n))
            .map_or_else(|| column_index(path, &header, names[0]), Ok)
    };
    let r = pick(["ref", "ref_sequence"])?;
    let a = pick(["alt", "alt_sequence"])?;
    let id = ["id", "alt_tag", "name"]
        .iter()
        .find_map(|n| header.iter().position(|h| h == n));
    let mut reader = csv_reader(path, delim)?;
    let mut out = Vec::new();
    for rec in reader.byte_records() {
        let rec = rec.map_err(|e| csv_error(path, e))?;
        let line = record_line(&rec);
        check_width(path, &rec, &header, delim)?;
        let name = id.map_or_else(
            || format!("line{line}"),
            |i| String::from_utf8_lossy(&rec[i]).into_owned(),
        );
        out.push(VariantPair {
            id: name,
            reference: sequence_codes(path, line, &rec[r])?,
            alternative: sequence_codes(path, line, &rec[a])?,
            site: None,
        });
    }
    if out.is_empty() {
        return Err(Error::data(path, 0, Problem::EmptyFile));
    }
    Ok(out)
}

/// A VCF allele [`read_vcf`] left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// The VCF line.
    pub line: usize,
    /// `CHROM:POS REF>ALT`.
    pub site: String,
    /// Why.
    pub reason: String,
}

/// One data line of a VCF: its first five fields, as [`read_vcf`] takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct VcfRow {
    /// The 1-based line of the file.
    pub line: usize,
    /// CHROM.
    pub chrom: String,
    /// POS, 1-based (checked to be at least 1).
    pub pos: u64,
    /// ID (`.` when none).
    pub id: String,
    /// REF.
    pub reference: String,
    /// ALT, as written (alleles separated by commas).
    pub alts: String,
}

/// The data lines of a VCF (plain, gzip or bgzip, or `-`), streamed: `#` lines and blank
/// lines are passed over, and a row with fewer than five tab-separated fields or a POS that is
/// not a 1-based position is an error naming its line. The columns after ALT are not read.
pub struct VcfRows<'p> {
    path: &'p Path,
    lines: Lines<'p>,
}

impl<'p> VcfRows<'p> {
    /// Open `path`.
    pub fn open(path: &'p Path) -> Result<Self> {
        Ok(VcfRows {
            path,
            lines: Lines::open(path)?,
        })
    }

    /// The next data line, `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<VcfRow>> {
        while let Some((n, l)) = self.lines.next_line()? {
            if is_blank(l) || l.starts_with(b"#") {
                continue;
            }
            let text = String::from_utf8_lossy(l);
            // The columns after ALT stay unsplit.
            let cols: Vec<&str> = text.trim_end().splitn(6, '\t').collect();
            let [chrom, pos, id, reference, alts, ..] = cols[..] else {
                return Err(Error::data(
                    self.path,
                    n,
                    Problem::ColumnCount {
                        expected: "at least 5 tab-separated fields (CHROM POS ID REF ALT)".into(),
                        found: cols.len(),
                    },
                ));
            };
            let pos = pos.parse().ok().filter(|&p| p >= 1).ok_or_else(|| {
                Error::data(
                    self.path,
                    n,
                    Problem::Other(format!("POS {pos:?} is not a 1-based position")),
                )
            })?;
            return Ok(Some(VcfRow {
                line: n,
                chrom: chrom.to_string(),
                pos,
                id: id.to_string(),
                reference: reference.to_string(),
                alts: alts.to_string(),
            }));
        }
        Ok(None)
    }
}

/// Cut `window`-nt reference sequences centred on each VCF record from the indexed genome
/// `fasta`, check REF against it, and make one pair per ALT allele (a multi-allelic record
/// gives one pair per allele). A REF mismatch is an error naming the VCF line, the position
/// and both alleles — unless `allow_mismatch`, when such records are skipped. Symbolic alleles
/// (`<DEL>`, `*`, `.`) and REF alleles longer than the window are skipped; every skip is listed.
///
/// The VCF rows are read by [`VcfRows`] rather than by `noodles-vcf` 0.96, which was tried on
/// the same inputs: it refuses the bare `CHROM POS ID REF ALT` rows people write by hand ("empty
/// input" without `##fileformat`, "invalid record" with only a `#CHROM` line, "unexpected EOL"
/// for five columns under a full header), and its errors name no line ("invalid digit found
/// in string" for a bad POS). Speed is no reason either way: `cargo bench --bench readers`
/// (200,000 records with INFO and a sample) measured medians of 49 ms for ours and 60 ms for
/// noodles on the plain file, 69 and 71 ms gzipped, on 2 cores with a build running beside.
/// Plain, gzip and bgzip files all stream through the crate's multi-member gzip reader. The
/// genome is read by `noodles-fasta` with its index.
pub fn read_vcf(
    vcf: &Path,
    fasta: &Path,
    window: usize,
    allow_mismatch: bool,
) -> Result<(Vec<VariantPair>, Vec<Skipped>)> {
    if window == 0 {
        return Err(Error::Config("--window must be at least 1 nt".into()));
    }
    let mut genome = Genome::open(fasta)?;
    let mut rows = VcfRows::open(vcf)?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let bad = |line: usize, msg: String| Error::data(vcf, line, Problem::Other(msg));
    while let Some(row) = rows.next_row()? {
        let (n, pos) = (row.line, row.pos);
        let (c, id, r, alts) = (&*row.chrom, &*row.id, &*row.reference, &*row.alts);
        let chrom_len = genome.length(c).ok_or_else(|| {
            bad(
                n,
                format!(
                    "chromosome {c:?} is not in {} (it has {})",
                    fasta.display(),
                    preview(genome.names())
                ),
            )
        })?;
        let start = pos - 1;
        let ref_codes = sequence_codes(vcf, n, r.as_bytes())?;
        let ref_len = ref_codes.len() as u64;
        if start + ref_len > chrom_len {
            return Err(bad(
                n,
                format!("{c}:{pos} {r} runs past the end of {c} ({chrom_len} nt)"),
            ));
        }
        let site = |alt: &str| format!("{c}:{pos} {r}>{alt}");
        if ref_len > window as u64 {
            for alt in alts.split(',') {
                skipped.push(Skipped {
                    line: n,
                    site: site(alt),
                    reason: format!(
                        "REF allele of {ref_len} nt is longer than the {window}-nt window"
                    ),
                });
            }
            continue;
        }
        // Window centred on the REF allele, clamped to the chromosome; it holds all of REF.
        let window = (window as u64).min(chrom_len);
        let centre = start + ref_len / 2;
        let w_start = centre
            .saturating_sub(window / 2)
            .min(chrom_len - window)
            .min(start);
        let w_end = (w_start + window).max(start + ref_len).min(chrom_len);
        let seq = genome.fetch(c, w_start, w_end)?;
        let at = (start - w_start) as usize;
        let found = &seq[at..at + ref_codes.len()];
        if found != ref_codes.as_slice() {
            let msg = format!(
                "REF {r} at {c}:{pos} does not match the genome, which has {} there ({})",
                alphabet::decode(found),
                fasta.display()
            );
            if allow_mismatch {
                for alt in alts.split(',') {
                    skipped.push(Skipped {
                        line: n,
                        site: site(alt),
                        reason: msg.clone(),
                    });
                }
                continue;
            }
            return Err(bad(
                n,
                format!("{msg}; pass --skip-mismatches to leave such records out"),
            ));
        }
        for alt in alts.split(',') {
            let symbolic = alt.starts_with('<')
                || alt == "*"
                || alt == "."
                || alt.contains('[')
                || alt.contains(']');
            if symbolic {
                skipped.push(Skipped {
                    line: n,
                    site: site(alt),
                    reason: "symbolic or missing allele: no sequence to predict".into(),
                });
                continue;
            }
            let alt_codes = sequence_codes(vcf, n, alt.as_bytes())?;
            let alternative = if alt_codes.len() == ref_codes.len() {
                let mut a = seq.clone();
                a[at..at + alt_codes.len()].copy_from_slice(&alt_codes);
                a
            } else {
                // An indel: the alternative allele centred in a window of the reference's
                // length, cut from the genome around it (as gReLU and tangermeme do): an
                // insertion is trimmed at both ends, a deletion filled from both flanks.
                let want = seq.len() as u64;
                let extra = want.saturating_sub(alt_codes.len() as u64) / 2 + 1;
                let left = start.saturating_sub(want / 2 + extra);
                let right = (start + ref_len + want / 2 + extra).min(chrom_len);
                let mut flank = |from: u64, to: u64| -> Result<Vec<u8>> {
                    if from < to {
                        genome.fetch(c, from, to)
                    } else {
                        Ok(Vec::new())
                    }
                };
                let mut full = flank(left, start)?;
                let alt_at = full.len();
                full.extend_from_slice(&alt_codes);
                full.extend(flank(start + ref_len, right)?);
                let w = seq.len().min(full.len());
                let centre = alt_at + alt_codes.len() / 2;
                let from = centre.saturating_sub(w / 2).min(full.len() - w);
                full[from..from + w].to_vec()
            };
            let name = match (id, alts.contains(',')) {
                (".", _) => format!("{c}:{pos}:{r}>{alt}"),
                (_, true) => format!("{id}:{alt}"),
                _ => id.to_string(),
            };
            out.push(VariantPair {
                id: name,
                reference: seq.clone(),
                alternative,
                site: Some(Site {
                    chrom: c.to_string(),
                    pos,
                    id: id.to_string(),
                    reference: r.to_string(),
                    alt: alt.to_string(),
                }),
            });
        }
    }
    Ok((out, skipped))
}

/// Predictions of every model for references and alternatives: `[model](ref, alt)`, each
/// `pairs × tasks`.
pub fn predict_pairs(
    models: &[&dyn Predictor],
    pairs: &[VariantPair],
    batch: usize,
) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
    let refs: Vec<&[u8]> = pairs.iter().map(|p| p.reference.as_slice()).collect();
    let alts: Vec<&[u8]> = pairs.iter().map(|p| p.alternative.as_slice()).collect();
    models
        .iter()
        .map(|m| {
            Ok((
                predict_codes(*m, &refs, batch)?,
                predict_codes(*m, &alts, batch)?,
            ))
        })
        .collect()
}

/// Variant effects with every model of `ensemble`: each sequence checked against the models'
/// input first (a clear error naming the variant), then [`predict_pairs`]; write the result
/// with [`effects_table`].
pub fn run(
    ensemble: &crate::predict::Ensemble,
    pairs: &[VariantPair],
    batch: usize,
) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
    let padding = ensemble.encoder().padding();
    for p in pairs {
        for s in [&p.reference, &p.alternative] {
            padding
                .check(s)
                .map_err(|e| crate::Error::Other(format!("variant {}: {e}", p.id)))?;
        }
    }
    let members: Vec<&dyn Predictor> = ensemble
        .models()
        .iter()
        .map(|m| m as &dyn Predictor)
        .collect();
    predict_pairs(&members, pairs, batch)
}

/// The output table: `id` (for a VCF `chrom pos id ref alt`), then per task `ref_pred`,
/// `alt_pred`, `effect` (means over the models; with several tasks suffixed by the task's
/// column name, `effect_0` or `effect_dev`), and with several models each model's `effect_m{k}`.
pub fn effects_table(
    pairs: &[VariantPair],
    preds: &[(Vec<f32>, Vec<f32>)],
    columns: &[String],
) -> String {
    let tasks = columns.len();
    let suffix = |t: usize| {
        if tasks > 1 {
            // `prediction_0` → `_0`; a named task (`dev`) → `_dev`.
            let c = &columns[t];
            format!("_{}", c.strip_prefix("prediction_").unwrap_or(c))
        } else {
            String::new()
        }
    };
    let vcf = pairs.iter().any(|p| p.site.is_some());
    let mut s = String::from(if vcf {
        "chrom\tpos\tid\tref\talt"
    } else {
        "id"
    });
    for t in 0..tasks {
        let x = suffix(t);
        let _ = write!(s, "\tref_pred{x}\talt_pred{x}\teffect{x}");
        if preds.len() > 1 {
            for k in 0..preds.len() {
                let _ = write!(s, "\teffect{x}_m{}", k + 1);
            }
        }
    }
    s.push('\n');
    let n = preds.len() as f32;
    for (i, p) in pairs.iter().enumerate() {
        match &p.site {
            Some(site) => {
                let _ = write!(
                    s,
                    "{}\t{}\t{}\t{}\t{}",
                    site.chrom, site.pos, site.id, site.reference, site.alt
                );
            }
            None if vcf => {
                let _ = write!(s, ".\t.\t{}\t.\t.", p.id);
            }
            None => s.push_str(&p.id),
        }
        for t in 0..tasks {
            let j = i * tasks + t;
            let r = preds.iter().map(|m| m.0[j]).sum::<f32>() / n;
            let a = preds.iter().map(|m| m.1[j]).sum::<f32>() / n;
            let _ = write!(s, "\t{r}\t{a}\t{}", a - r);
            if preds.len() > 1 {
                for m in preds {
                    let _ = write!(s, "\t{}", m.1[j] - m.0[j]);
                }
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::formats::test_util::file;

    #[test]
    fn pairs_from_tables_and_subset_files() {
        let (_d, p) = file("p.tsv", "id\tref\talt\nv1\tACGT\tACGA\n");
        let v = read_pairs(&p).unwrap();
        assert_eq!(v[0].id, "v1");
        assert_eq!(alphabet::decode(&v[0].alternative), "ACGA");
        let (_d, p) = file(
            "s.csv",
            ",alt_tag,ref_tag,alt_sequence,ref_sequence,alt_pos,ref_pos,alt_exp,ref_exp\n0,a,r,ACGA,ACGT,1,2,,\n",
        );
        assert_eq!(read_pairs(&p).unwrap()[0].id, "a");
        let (_d, p) = file("p.tsv", "id\tref\talt\nv1\tACGT\tACXA\n");
        let e = read_pairs(&p).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains('X'), "{e}");
        let (_d, p) = file("p.tsv", "id\tref\talt\nv1\tACGT\n");
        let e = read_pairs(&p).unwrap_err().to_string();
        assert!(
            e.contains("p.tsv:2:") && e.contains("3 tab-separated fields"),
            "{e}"
        );
        let (_d, p) = file("p.tsv", "id\tsequence\nv1\tACGT\n");
        assert!(read_pairs(&p).unwrap_err().to_string().contains("ref"));
    }

    /// What noodles-vcf refuses, the rows reader takes: bare five-column rows without a
    /// header, and full rows under one; a bad POS and a short row name their line.
    #[test]
    fn vcf_rows_take_bare_and_full_rows_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let vcf = dir.path().join("v.vcf");
        std::fs::write(
            &vcf,
            "chr1\t5\t.\tA\tG\n\n##x\nchr2\t7\trs2\tAC\tA,T\t50\tPASS\tDP=3\tGT\t0/1\r\n",
        )
        .unwrap();
        let mut rows = VcfRows::open(&vcf).unwrap();
        let a = rows.next_row().unwrap().unwrap();
        assert_eq!(
            (
                a.line,
                a.chrom.as_str(),
                a.pos,
                a.id.as_str(),
                a.reference.as_str()
            ),
            (1, "chr1", 5, ".", "A")
        );
        let b = rows.next_row().unwrap().unwrap();
        assert_eq!((b.line, b.pos, b.alts.as_str()), (4, 7, "A,T"));
        assert!(rows.next_row().unwrap().is_none());
        for (text, want) in [
            (
                "chr1\t5\t.\tA\tG\nchr1\tx\t.\tA\tG\n",
                "v.vcf:2: POS \"x\" is not a 1-based",
            ),
            ("#h\nchr1\t0\t.\tA\tG\n", "v.vcf:2: POS \"0\""),
            (
                "chr1\t5\tA\n",
                "v.vcf:1: expected at least 5 tab-separated fields",
            ),
        ] {
            std::fs::write(&vcf, text).unwrap();
            let mut rows = VcfRows::open(&vcf).unwrap();
            let err = loop {
                match rows.next_row() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("{text:?} should be refused"),
                    Err(e) => break e.to_string(),
                }
            };
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn vcf_windows_and_ref_check() {
        let dir = tempfile::tempdir().unwrap();
        let fa = dir.path().join("g.fa");
        std::fs::write(&fa, ">chrI\nAAAACCCCGGGGTTTT\nACGT\n>chrII\nGGGG\n").unwrap();
        let vcf = dir.path().join("v.vcf");
        std::fs::write(
            &vcf,
            "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\nchrI\t5\t.\tC\tT,<DEL>\nchrI\t9\trs1\tG\tGA\n",
        )
        .unwrap();
        let (v, skips) = read_vcf(&vcf, &fa, 8, false).unwrap();
        assert_eq!(skips.len(), 1);
        assert_eq!(
            (skips[0].line, skips[0].site.as_str()),
            (3, "chrI:5 C><DEL>")
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].id, "chrI:5:C>T");
        let site = v[0].site.as_ref().unwrap();
        assert_eq!(
            (site.chrom.as_str(), site.pos, site.alt.as_str()),
            ("chrI", 5, "T")
        );
        assert_eq!(alphabet::decode(&v[0].reference), "AAAACCCC");
        assert_eq!(alphabet::decode(&v[0].alternative), "AAAATCCC");
        assert_eq!(v[1].id, "rs1");
        assert_eq!(alphabet::decode(&v[1].reference), "CCCCGGGG");
        // An insertion: the alternative centred in a window of the same length, trimmed at
        // both ends; a deletion: filled from both flanks.
        assert_eq!(alphabet::decode(&v[1].alternative), "CCCGAGGG");
        std::fs::write(&vcf, "chrI\t9\tdel\tGGGG\tG\n").unwrap();
        let (v, _) = read_vcf(&vcf, &fa, 8, false).unwrap();
        assert_eq!(alphabet::decode(&v[0].reference), "CCGGGGTT");
        assert_eq!(alphabet::decode(&v[0].alternative), "CCCCGTTT");

        std::fs::write(&vcf, "chrI\t5\t.\tG\tT\n").unwrap();
        let e = read_vcf(&vcf, &fa, 8, false).unwrap_err().to_string();
        assert!(
            e.contains("v.vcf:1:") && e.contains("REF G at chrI:5") && e.contains("has C"),
            "{e}"
        );
        let (v, skips) = read_vcf(&vcf, &fa, 8, true).unwrap();
        assert!(v.is_empty() && skips.len() == 1);
        std::fs::write(&vcf, "chrX\t5\t.\tG\tT\n").unwrap();
        let e = read_vcf(&vcf, &fa, 8, false).unwrap_err().to_string();
        assert!(e.contains("chrX") && e.contains("chrI, chrII"), "{e}");
    }

    #[test]
    fn multi_allelic_records_split_and_long_deletions_and_window_0_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let fa = dir.path().join("g.fa");
        std::fs::write(&fa, ">chrI\nAAAACCCCGGGGTTTT\nACGT\n").unwrap();
        let vcf = dir.path().join("v.vcf");
        std::fs::write(
            &vcf,
            "chrI\t5\trs7\tC\tT,G\nchrI\t2\t.\tAAACCCCGGGG\tA\nchrI\t1\t.\tAAAACCCCGGGGTTTTACGT\tA\n",
        )
        .unwrap();
        let (v, skips) = read_vcf(&vcf, &fa, 8, false).unwrap();
        assert_eq!(v[0].id, "rs7:T");
        assert_eq!(v[1].id, "rs7:G");
        assert_eq!(alphabet::decode(&v[1].alternative), "AAAAGCCC");
        // An 11-nt deletion in an 8-nt window, and one as long as the chromosome: skipped.
        assert_eq!(v.len(), 2);
        assert_eq!(skips.len(), 2);
        assert!(
            skips[0].reason.contains("longer than the 8-nt window"),
            "{:?}",
            skips[0]
        );
        let (v, _) = read_vcf(&vcf, &fa, 40, false).unwrap();
        assert_eq!(v.len(), 4);
        assert!(read_vcf(&vcf, &fa, 0, false).is_err());
        let table = effects_table(&v[..1], &[(vec![1.0], vec![1.5])], &["prediction".into()]);
        assert!(
            table.starts_with("chrom\tpos\tid\tref\talt\tref_pred"),
            "{table}"
        );
        assert!(table.contains("chrI\t5\trs7\tC\tT\t1\t1.5\t0.5"), "{table}");
    }
}
