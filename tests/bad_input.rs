//! Every bad input we know of, fed to the `prixfixe` binary: each is refused with exit code 1
//! and one clear message (never a panic, never a silent success). The table of cases and
//! messages is `docs/bad-input.md`; this test keeps it true (run it with
//! `PRIXFIXE_UPDATE_DOCS=1` to rewrite the table after a message changed on purpose).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use common::TINY_CNN as TINY;

const READ: &str = "TGCATTTTTTTCACATCCTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTGGGGTTACGGCTGTT";
const READ2: &str = "TGCATTTTTTTCACATCAGCTTGTCACGTAGCGGTTGCTGGAATCGGGGCGTTGCTTAGCTATAGGGCTTTGACTTCGGCTTGCCAAGGGTCTCAAAGGTTACGGCTGTT";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// One bad input: what it is, the files it needs, the command.
struct Case {
    what: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    args: Vec<String>,
}

fn case(what: &'static str, files: &[(&'static str, &str)], args: &str) -> Case {
    Case {
        what,
        files: files
            .iter()
            .map(|(n, t)| (*n, t.as_bytes().to_vec()))
            .collect(),
        args: args.split_whitespace().map(String::from).collect(),
    }
}

fn with_bytes(mut c: Case, name: &'static str, bytes: Vec<u8>) -> Case {
    c.files.push((name, bytes));
    c
}

fn tiny_weights() -> Vec<u8> {
    std::fs::read(fixture("tests/fixtures/tiny_dream-cnn.safetensors")).unwrap()
}

fn nan_weights() -> Vec<u8> {
    let mut map =
        prixfixe::weights::WeightMap::read(&fixture("tests/fixtures/tiny_dream-cnn.safetensors"))
            .unwrap();
    let t = map.tensors.values_mut().next().unwrap();
    t.data[0] = f32::NAN;
    map.to_safetensors_bytes().unwrap()
}

fn truncated_gzip() -> Vec<u8> {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    for i in 0..3000 {
        writeln!(gz, "{READ}\t{}", i % 17).unwrap();
    }
    let b = gz.finish().unwrap();
    b[..b.len() / 2].to_vec()
}

fn cases() -> Vec<Case> {
    let two = format!("{READ}\t11.5\n{READ2}\t9\n");
    let long = format!("TGCATTTTTTTCACATC{}GGTTACGGCTGTT\n", "ACGT".repeat(45));
    let model = "--weights model.safetensors --config tiny.toml";
    let vcf_genome = ">chrI\nAAAACCCCGGGGTTTT\nACGT\n";
    vec![
        case(
            "a character that is not a base",
            &[("train.txt", "ACGTACGT\t1.5\nACGTZCGT\t2\n")],
            "inspect-data train.txt",
        ),
        case(
            "a row with another number of columns",
            &[("train.txt", &format!("{READ}\t1\n{READ}\t1\t2\t3\n"))],
            "inspect-data train.txt",
        ),
        case(
            "a label that is not a number",
            &[("train.txt", &format!("{READ}\t1\n{READ}\thigh\n"))],
            "inspect-data train.txt",
        ),
        case(
            "a NaN label",
            &[("train.txt", &format!("{READ}\t1\n{READ}\tnan\n"))],
            "inspect-data train.txt",
        ),
        case(
            "a DREAM training value outside 0–17",
            &[("train.txt", &format!("{READ}\t18.5\n"))],
            "inspect-data train.txt",
        ),
        case(
            "a header line in a DREAM file",
            &[("train.txt", &format!("sequence\texpression\n{READ}\t1\n"))],
            "train --train train.txt --out run",
        ),
        case(
            "an empty file",
            &[("train.txt", "")],
            "inspect-data train.txt",
        ),
        case(
            "an empty sequence",
            &[("train.txt", &format!("{READ}\t1\n\t4\n"))],
            "inspect-data train.txt",
        ),
        case(
            "FASTA: sequence before the first header",
            &[("x.fa", "ACGT\n>a\nACGT\n")],
            "inspect-data x.fa",
        ),
        case(
            "FASTA: a duplicate id",
            &[("x.fa", ">a\nACGT\n>a\nAC\n")],
            "inspect-data x.fa",
        ),
        case(
            "FASTA: a record without sequence",
            &[("x.fa", ">a\nACGT\n>b\n>c\nAC\n")],
            "inspect-data x.fa",
        ),
        case(
            "a table without the named column",
            &[("t.csv", "name,dna,y\na,ACGT,1\n")],
            "inspect-data t.csv --seq-col seq",
        ),
        with_bytes(
            case("a truncated gzip file", &[], "inspect-data train.txt.gz"),
            "train.txt.gz",
            truncated_gzip(),
        ),
        with_bytes(
            case("binary garbage", &[], "inspect-data junk.txt"),
            "junk.txt",
            (0..=255u8).cycle().take(4000).collect(),
        ),
        case(
            "a test-subset file given as training data",
            &[("high_exp_seqs.csv", ",tag,sequence,pos,exp\n0,a,ACGT,0,1\n")],
            "train --train high_exp_seqs.csv --out run",
        ),
        case(
            "a config with kernel = 0",
            &[
                ("train.txt", &two),
                (
                    "run.toml",
                    "[model.input]\npadding = { kind = \"plasmid\", length = 150 }\nchannels = { is_reverse = true, is_singleton = true }\n[model.first]\nblock = \"autosome\"\nkernel = 0\n[model.core]\nblock = \"autosome\"\n[model.final]\nblock = \"soft-class\"\n[data]\ntrain = \"train.txt\"\n",
                ),
            ],
            "train --config run.toml --out run",
        ),
        case(
            "a config with dropout = 2.0",
            &[
                ("train.txt", &two),
                (
                    "run.toml",
                    "[model.input]\npadding = { kind = \"plasmid\", length = 150 }\nchannels = { is_reverse = true, is_singleton = true }\n[model.first]\nblock = \"bhi\"\ndropout = 2.0\n[model.core]\nblock = \"autosome\"\n[model.final]\nblock = \"soft-class\"\n[data]\ntrain = \"train.txt\"\n",
                ),
            ],
            "train --config run.toml --out run",
        ),
        case(
            "an unknown key in a config",
            &[
                ("train.txt", &two),
                (
                    "run.toml",
                    "[model]\npreset = \"dream-cnn\"\n[data]\ntrain = \"train.txt\"\n[recipe]\nepoch = 3\n",
                ),
            ],
            "train --config run.toml --out run",
        ),
        case(
            "the BHI trainer with row doubling",
            &[
                ("train.txt", &two),
                (
                    "run.toml",
                    "[model]\npreset = \"dream-cnn\"\n[data]\ntrain = \"train.txt\"\n[recipe]\ntrainer = \"bhi\"\n",
                ),
            ],
            "train --config run.toml --out run",
        ),
        case(
            "the Unlock_DNA final block under another trainer",
            &[
                ("train.txt", &two),
                (
                    "run.toml",
                    "[model.input]\npadding = { kind = \"unlock-dna\" }\nchannels = { is_reverse = false, is_singleton = false, tokens = true }\n[model.first]\nblock = \"bhi\"\nout_channels = 8\n[model.core]\nblock = \"bhi\"\nhidden = 4\nout_channels = 8\n[model.final]\nblock = \"unlock-dna\"\n[data]\ntrain = \"train.txt\"\n[recipe]\nrc_double = false\n",
                ),
            ],
            "train --config run.toml --out run",
        ),
        case(
            "a read too short for the BHI padding",
            &[
                ("train.txt", "ACGTACGTAC\t3.0\n"),
                (
                    "run.toml",
                    "[model.input]\npadding = { kind = \"bhi\", length = 110 }\nchannels = { is_reverse = false, is_singleton = false }\n[model.first]\nblock = \"bhi\"\nout_channels = 8\n[model.core]\nblock = \"bhi\"\nhidden = 4\nout_channels = 8\n[model.final]\nblock = \"bhi\"\nhidden = 4\n[data]\ntrain = \"train.txt\"\n[recipe]\ntrainer = \"bhi\"\nrc_double = false\n",
                ),
            ],
            "train --config run.toml --out run",
        ),
        case(
            "a TOML syntax error",
            &[
                ("train.txt", &two),
                (
                    "run.toml",
                    "[model]\npreset = \"dream-cnn\"\n[data]\ntrain = train.txt\n",
                ),
            ],
            "train --config run.toml --out run",
        ),
        case(
            "--config together with --data",
            &[
                ("train.txt", &two),
                (
                    "run.toml",
                    "[model]\npreset = \"dream-rnn\"\n[data]\ntrain = \"train.txt\"\n",
                ),
            ],
            "train --config run.toml --data yeast --out run",
        ),
        case(
            "--resume where there is no run",
            &[],
            "train --resume --out run",
        ),
        case(
            "a yeast padding of 3 nt for 110-nt reads",
            &[
                ("train.txt", &two),
                (
                    "run.toml",
                    "[model.input]\npadding = { kind = \"plasmid\", length = 3 }\nchannels = { is_reverse = true, is_singleton = true }\n[model.first]\nblock = \"bhi\"\nout_channels = 16\n[model.core]\nblock = \"autosome\"\nwidths = [8]\n[model.final]\nblock = \"soft-class\"\n[data]\ntrain = \"train.txt\"\n",
                ),
            ],
            "train --config run.toml --out run",
        ),
        case(
            "simulator parameters with an unknown key",
            &[(
                "p.toml",
                "[measure]\ncell_noise = 0.7\nsequence_noise = 0.1\nsingleton_fraction = 0.3\ntest_cells = 100\ntarget_mean = 11\ntarget_sd = 2\nnoise = 1\n",
            )],
            "simulate --small --out sim --params p.toml",
        ),
        case(
            "simulator parameters with NaN",
            &[(
                "p.toml",
                "[measure]\ncell_noise = nan\nsequence_noise = 0.1\nsingleton_fraction = 0.3\ntest_cells = 100\ntarget_mean = 11\ntarget_sd = 2\n",
            )],
            "simulate --small --out sim --params p.toml",
        ),
        with_bytes(
            case(
                "predict: the output is the input",
                &[("seqs.txt", &two), ("tiny.toml", TINY)],
                &format!("predict {model} --input seqs.txt --output seqs.txt"),
            ),
            "model.safetensors",
            tiny_weights(),
        ),
        with_bytes(
            case(
                "predict: a read longer than the model input",
                &[("seqs.txt", &long), ("tiny.toml", TINY)],
                &format!("predict {model} --input seqs.txt --output p.tsv"),
            ),
            "model.safetensors",
            tiny_weights(),
        ),
        with_bytes(
            case(
                "predict: weights holding NaN",
                &[("seqs.txt", &two), ("tiny.toml", TINY)],
                &format!("predict {model} --input seqs.txt --output p.tsv"),
            ),
            "model.safetensors",
            nan_weights(),
        ),
        with_bytes(
            case(
                "predict: weights of another model",
                &[("seqs.txt", &two), ("tiny.toml", TINY)],
                "predict --weights model.safetensors --model dream-rnn --input seqs.txt --output p.tsv",
            ),
            "model.safetensors",
            tiny_weights(),
        ),
        case(
            "predict: a file that is not weights",
            &[
                ("seqs.txt", &two),
                ("tiny.toml", TINY),
                ("model.safetensors", "hello"),
            ],
            &format!("predict {model} --input seqs.txt --output p.tsv"),
        ),
        case(
            "predict: a run directory that holds no run",
            &[("seqs.txt", &two)],
            "predict --model-dir nowhere --input seqs.txt --output p.tsv",
        ),
        case(
            "a sequence shorter than a fixed-length model's input",
            &[("seqs.txt", "ACGT\n")],
            "inspect-data seqs.txt --model dream-cnn --data human",
        ),
        case(
            "score: predictions in another order",
            &[
                ("test.txt", &format!("{READ}\t0.5\n{READ2}\t-0.2\n")),
                (
                    "pred.tsv",
                    &format!("sequence\tprediction\n{READ2}\t1\n{READ}\t2\n"),
                ),
            ],
            "score --test test.txt --predictions pred.tsv",
        ),
        case(
            "score: fewer predictions than test rows",
            &[
                ("test.txt", &format!("{READ}\t0.5\n{READ2}\t-0.2\n")),
                ("pred.txt", "1.5\n"),
            ],
            "score --test test.txt --predictions pred.txt",
        ),
        with_bytes(
            case(
                "ism --npy with sequences of several lengths",
                &[
                    ("seqs.txt", &format!("{READ}\n{READ}A\n")),
                    ("tiny.toml", TINY),
                ],
                &format!("ism {model} --input seqs.txt --out ism --npy"),
            ),
            "model.safetensors",
            tiny_weights(),
        ),
        with_bytes(
            case(
                "variants: --window 0",
                &[
                    ("g.fa", vcf_genome),
                    ("v.vcf", "chrI\t5\t.\tC\tT\n"),
                    ("tiny.toml", TINY),
                ],
                &format!("variants {model} --vcf v.vcf --fasta g.fa --window 0"),
            ),
            "model.safetensors",
            tiny_weights(),
        ),
        with_bytes(
            case(
                "variants: a REF allele the genome does not have",
                &[
                    ("g.fa", vcf_genome),
                    ("v.vcf", "chrI\t5\t.\tG\tT\n"),
                    ("tiny.toml", TINY),
                ],
                &format!("variants {model} --vcf v.vcf --fasta g.fa"),
            ),
            "model.safetensors",
            tiny_weights(),
        ),
        with_bytes(
            case(
                "variants: a chromosome the genome does not have",
                &[
                    ("g.fa", vcf_genome),
                    ("v.vcf", "chrX\t5\t.\tG\tT\n"),
                    ("tiny.toml", TINY),
                ],
                &format!("variants {model} --vcf v.vcf --fasta g.fa"),
            ),
            "model.safetensors",
            tiny_weights(),
        ),
        with_bytes(
            case(
                "variants: a VCF row with too few columns",
                &[
                    ("g.fa", vcf_genome),
                    ("v.vcf", "chrI\t5\tC\n"),
                    ("tiny.toml", TINY),
                ],
                &format!("variants {model} --vcf v.vcf --fasta g.fa"),
            ),
            "model.safetensors",
            tiny_weights(),
        ),
    ]
}

fn run(dir: &Path, c: &Case) -> (Option<i32>, String) {
    for (name, bytes) in &c.files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_prixfixe"))
        .args(&c.args)
        .current_dir(dir)
        .env_remove("PRIXFIXE_CRASH_AT")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // The error and its detail lines, as one line.
    let message = match err.find("error: ") {
        Some(at) => err[at + 7..]
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "|")
            .collect::<Vec<_>>()
            .join(" ")
            .replace(&dir.display().to_string(), "."),
        None => String::new(),
    };
    (out.status.code(), message)
}

#[test]
fn every_bad_input_is_refused_clearly_and_the_table_says_so() {
    let mut table =
        String::from("| bad input | command | what prixfixe says (exit code 1) |\n|---|---|---|\n");
    for c in cases() {
        let dir = tempfile::tempdir().unwrap();
        let (code, message) = run(dir.path(), &c);
        assert_eq!(
            code,
            Some(1),
            "{}: exit {code:?}, message {message:?}",
            c.what
        );
        assert!(!message.is_empty(), "{}: no error message", c.what);
        assert!(!message.contains("panicked"), "{}: {message}", c.what);
        // Nothing half-made is left behind: no temporary file, no run directory of a run
        // that never started.
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".tmp-"), "{}: left {name}", c.what);
            assert!(
                name != "run" && name != "ism" && name != "sim" || c.what.contains("--resume"),
                "{}: left the directory {name}",
                c.what
            );
        }
        let cmd = format!("`prixfixe {}`", c.args.join(" "));
        let msg = message.replace('|', "\\|").replace('\n', " ");
        table.push_str(&format!("| {} | {cmd} | {msg} |\n", c.what));
    }
    let doc_path = fixture("docs/bad-input.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap_or_default();
    let start = doc.find("| bad input |").unwrap_or(doc.len());
    let end = doc[start..]
        .find("\n\n")
        .map_or(doc.len(), |e| start + e + 1);
    if std::env::var_os("PRIXFIXE_UPDATE_DOCS").is_some() {
        let new = format!("{}{}{}", &doc[..start], table, &doc[end..]);
        std::fs::write(&doc_path, new).unwrap();
        return;
    }
    assert_eq!(
        &doc[start..end],
        table,
        "docs/bad-input.md is out of date: run PRIXFIXE_UPDATE_DOCS=1 cargo test --test suite bad_input"
    );
}
