//! Readers where prixfixe keeps its own code beside a crate of the field, so the choice stays
//! measured: `cargo bench --bench readers`.
//!
//! - VCF rows: [`VcfRows`] (what `prixfixe variants` reads: CHROM, POS, ID, REF, ALT of each
//!   data line) against `noodles-vcf`'s reader taking the same five fields of each record, on
//!   a 200,000-record VCF with a header, INFO and a sample column, plain and gzipped.

use std::io::Write;
use std::path::{Path, PathBuf};

use divan::Bencher;
use prixfixe::interpret::variants::VcfRows;

fn main() {
    divan::main();
}

const RECORDS: usize = 200_000;

/// A VCF of `RECORDS` records over two chromosomes (SNVs, indels, multi-allelic sites), plain
/// and gzipped, written once.
fn files() -> &'static (PathBuf, PathBuf) {
    static FILES: std::sync::OnceLock<(tempfile::TempDir, (PathBuf, PathBuf))> =
        std::sync::OnceLock::new();
    &FILES
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let mut text = String::from(
                "##fileformat=VCFv4.3\n##contig=<ID=chr1>\n##contig=<ID=chr2>\n\
                 ##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Depth\">\n\
                 ##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n\
                 #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\n",
            );
            let bases = ["A", "C", "G", "T"];
            for i in 0..RECORDS {
                let chrom = if i < RECORDS / 2 { "chr1" } else { "chr2" };
                let (r, alt) = match i % 10 {
                    0 => ("AC", "A".to_string()),
                    1 => ("G", "GTT".to_string()),
                    2 => ("T", "A,C".to_string()),
                    _ => (bases[i % 4], bases[(i + 1) % 4].to_string()),
                };
                text.push_str(&format!(
                    "{chrom}\t{}\trs{i}\t{r}\t{alt}\t50\tPASS\tDP={}\tGT\t0/1\n",
                    100 + 37 * i,
                    i % 90
                ));
            }
            let plain = dir.path().join("v.vcf");
            std::fs::write(&plain, &text).unwrap();
            let gz = dir.path().join("v.vcf.gz");
            let mut enc = flate2::write::GzEncoder::new(
                std::fs::File::create(&gz).unwrap(),
                flate2::Compression::default(),
            );
            enc.write_all(text.as_bytes()).unwrap();
            enc.finish().unwrap();
            (dir, (plain, gz))
        })
        .1
}

/// Our reader: the sum of every POS and the length of every field, so nothing is skipped.
fn ours(path: &Path) -> usize {
    let mut rows = VcfRows::open(path).unwrap();
    let mut total = 0;
    while let Some(r) = rows.next_row().unwrap() {
        total += r.pos as usize + r.chrom.len() + r.id.len() + r.reference.len() + r.alts.len();
    }
    total
}

/// noodles-vcf taking the same five fields of each record.
fn noodles(path: &Path) -> usize {
    use noodles_vcf as vcf;
    let file = std::fs::File::open(path).unwrap();
    let inner: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = vcf::io::Reader::new(std::io::BufReader::new(inner));
    reader.read_header().unwrap();
    let mut total = 0;
    for record in reader.records() {
        let r = record.unwrap();
        let pos = usize::from(r.variant_start().unwrap().unwrap());
        total += pos
            + r.reference_sequence_name().len()
            + r.ids().as_ref().len()
            + r.reference_bases().len()
            + r.alternate_bases().as_ref().len();
    }
    total
}

#[divan::bench(args = ["plain", "gzip"], sample_count = 10)]
fn vcf_rows_prixfixe(bencher: Bencher, kind: &str) {
    let (plain, gz) = files();
    let path = if kind == "plain" { plain } else { gz };
    assert_eq!(
        ours(path),
        noodles(path),
        "both readers see the same fields"
    );
    bencher.bench(|| ours(path));
}

#[divan::bench(args = ["plain", "gzip"], sample_count = 10)]
fn vcf_rows_noodles(bencher: Bencher, kind: &str) {
    let (plain, gz) = files();
    let path = if kind == "plain" { plain } else { gz };
    bencher.bench(|| noodles(path));
}
