//! Zero panics on any input: every reader is driven with arbitrary bytes and with mutated
//! valid files (proptest, stable Rust; `PROPTEST_CASES` sets the count, 256 by default). A
//! reader may refuse what it is given — it must do so with an error, never a panic.
//! For a long run: `PROPTEST_CASES=100000 cargo test --release --test suite fuzz_readers`.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use crate::common;
use common::TINY_CNN;

use prixfixe::data::formats::detect::{detect_format, read_any, read_sequences};
use prixfixe::data::{DreamFile, Padding, ReadOptions, TableSpec};
use prixfixe::data::{read_dream, read_fasta, read_subset, read_table};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn text(name: &str, lines: usize) -> Vec<u8> {
    let t = std::fs::read_to_string(fixture(name)).unwrap();
    (t.lines().take(lines).collect::<Vec<_>>().join("\n") + "\n").into_bytes()
}

/// Valid files of every kind the readers take, to mutate.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("train.txt", text("tests/data/yeast_demo_train.txt", 6)),
        ("human.tsv", text("tests/data/human_train_200.txt", 4)),
        ("dros.tsv", text("tests/data/drosophila_train_200.txt", 4)),
        ("high_exp_seqs.csv", text("tests/data/high_exp_seqs.csv", 5)),
        ("motif_tiling_seqs.csv", text("tests/data/motif_tiling_seqs.csv", 5)),
        ("x.fa", b">a desc\nACGTNACGT\nacgt\n>b\nGGGG\n".to_vec()),
        (
            "v.vcf",
            b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\nchrI\t5\trs1\tC\tT,G\nchrI\t3\t.\tAAC\tA\n"
                .to_vec(),
        ),
        ("p.tsv", b"id\tref\talt\nv1\tACGT\tACGA\n".to_vec()),
        ("pred.tsv", b"sequence\tprediction\nACGT\t1.5\nGGGG\t2\n".to_vec()),
        (
            "model.toml",
            prixfixe::NetConfig::preset("dream-cnn", prixfixe::DataKind::Yeast)
                .unwrap()
                .to_toml()
                .into_bytes(),
        ),
        (
            "params.toml",
            b"match_prob = 0.7\nbaseline = -1.0\nsaturation = 2.5\nfactors = []\ncooperation = []\n"
                .to_vec(),
        ),
    ]
}

/// Apply a few random edits: replace, insert or delete a byte, cut the tail, repeat a span.
fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(kind, at, b) in edits {
        let n = bytes.len().max(1);
        let i = at % n;
        match kind % 5 {
            0 if !bytes.is_empty() => bytes[i] = b,
            1 => bytes.insert(i.min(bytes.len()), b),
            2 if !bytes.is_empty() => {
                bytes.remove(i);
            }
            3 => bytes.truncate(i),
            _ => {
                let span: Vec<u8> = bytes[i.min(bytes.len())..]
                    .iter()
                    .take(40)
                    .copied()
                    .collect();
                bytes.splice(i.min(bytes.len())..i.min(bytes.len()), span);
            }
        }
    }
    bytes
}

/// Every reader on one file. Results are ignored: only a panic fails.
fn read_everything(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let yeast = ReadOptions {
        padding: Some(Padding::yeast()),
    };
    let exact = ReadOptions {
        padding: Some(Padding::exact(230)),
    };
    for opts in [&ReadOptions::default(), &yeast, &exact] {
        let _ = read_dream(&path, DreamFile::Train, opts);
        let _ = read_dream(&path, DreamFile::Test, opts);
        let _ = read_fasta(&path, opts);
        let _ = read_table(&path, &TableSpec::human(), opts);
        let _ = read_table(&path, &TableSpec::drosophila(), opts);
        let _ = read_sequences(&path, opts);
        if let Ok(f) = detect_format(&path) {
            let _ = read_any(&path, &f, opts);
        }
    }
    let _ = read_subset(&path);
    let _ = prixfixe::interpret::read_pairs(&path);
    let genome = dir.join("genome.fa");
    let _ = prixfixe::interpret::read_vcf(&path, &genome, 8, false);
    let _ = prixfixe::interpret::read_vcf(&path, &genome, 1, true);
    let _ = prixfixe::eval::read_predictions(&path, 2);
    let _ = prixfixe::eval::report::read_exclusion(&path, 10);
    let _ = prixfixe::weights::WeightMap::read(&path);
    let s = String::from_utf8_lossy(bytes);
    if let Ok(c) = prixfixe::NetConfig::from_toml(&s) {
        let _ = c.check();
    }
    if let Ok(c) = prixfixe::train::TrainConfig::from_toml(&s) {
        let _ = c.model.check();
        let _ = c.recipe.check();
    }
    if let Ok(t) = toml::from_str::<prixfixe::sim::truth::TruthParams>(&s) {
        let _ = t.check();
    }
    if let Ok(m) = toml::from_str::<prixfixe::sim::measure::MeasureParams>(&s) {
        let _ = m.check();
    }
    // As a genome: indexed (or refused), then read by region.
    let fa = dir.join("fuzz.fa");
    std::fs::write(&fa, bytes).unwrap();
    let _ = std::fs::remove_file(dir.join("fuzz.fa.fai"));
    if let Ok(mut g) = prixfixe::data::genome::Genome::open(&fa) {
        let names = g.names().to_vec();
        for n in names {
            let len = g.length(&n).unwrap_or(0);
            let _ = g.fetch(&n, 0, len.min(7));
            let _ = g.fetch(&n, len / 2, len);
        }
    }
}

fn genome_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("genome.fa"),
        ">chrI\nAAAACCCCGGGGTTTT\nACGT\n",
    )
    .unwrap();
    dir
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000), which in 0usize..11) {
        let dir = genome_dir();
        let name = seeds()[which].0;
        read_everything(dir.path(), name, &bytes);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        which in 0usize..11,
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6),
    ) {
        let dir = genome_dir();
        let (name, seed) = seeds().swap_remove(which);
        read_everything(dir.path(), name, &mutate(seed, &edits));
    }

    #[test]
    fn mutated_weight_files_never_panic(
        which in 0usize..3,
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..4),
    ) {
        let files = [
            "tests/fixtures/tiny_dream-cnn.safetensors",
            "tests/fixtures/tiny_dream-cnn.pth",
            "tests/fixtures/tiny_dream-rnn.pth",
        ];
        let bytes = std::fs::read(fixture(files[which])).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        std::fs::write(&path, mutate(bytes, &edits)).unwrap();
        if let Ok(map) = prixfixe::weights::WeightMap::read(&path) {
            let device = burn::tensor::Device::flex();
            let config = prixfixe::NetConfig::from_toml(TINY_CNN).unwrap();
            let mut net = config.init(&device).unwrap();
            let _ = map.apply_to(&mut net, "", &device);
        }
    }
}
