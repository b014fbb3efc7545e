//! The simulated DREAM test set: eight subsets built as the challenge built them (SPEC §2.6,
//! Table 1 of the paper), in one shuffled test file with a measured value per row.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::library::{CORE_LEN, LibrarySpec, core_range, native_core, wrap};
use super::truth::TruthModel;
use super::{Stage, rng_for, streams};
use crate::data::alphabet::{self, decode};
use crate::design::ga::{self, GaConfig, Seq};
use crate::error::{Error, Result};

/// How many of each kind (defaults: the row counts of the reference release's subset files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSizes {
    /// Random sequences from the library.
    pub random: usize,
    /// GA-designed for high expression.
    pub high: usize,
    /// GA-designed for low expression.
    pub low: usize,
    /// Native-like promoters.
    pub native: usize,
    /// GA-designed to make two models disagree.
    pub challenging: usize,
    /// Single-nucleotide-variant pairs.
    pub snv: usize,
    /// Motif-perturbation pairs.
    pub motif_perturbation: usize,
    /// Motif-tiling pairs.
    pub motif_tiling: usize,
    /// Rows in all; extra random sequences (in no subset but `all`) fill up to it.
    pub total: usize,
}

impl Default for TestSizes {
    fn default() -> Self {
        Self {
            random: 6349,
            high: 968,
            low: 997,
            native: 964,
            challenging: 1981,
            snv: 44_340,
            motif_perturbation: 3527,
            motif_tiling: 2653,
            total: 71_103,
        }
    }
}

impl TestSizes {
    /// A test set of a few thousand rows.
    pub fn small() -> Self {
        Self {
            random: 1000,
            high: 200,
            low: 200,
            native: 200,
            challenging: 200,
            snv: 2000,
            motif_perturbation: 400,
            motif_tiling: 400,
            total: 0,
        }
    }
}

/// One subset as written: file stem and entries pointing at builder rows.
#[derive(Debug, Clone)]
pub enum Entries {
    /// `(tag, row)`.
    Single(Vec<(String, usize)>),
    /// `(alt_tag, ref_tag, alt_row, ref_row)`.
    Pair(Vec<(String, String, usize, usize)>),
}

/// A built test set (before measurement).
#[derive(Debug, Clone, Default)]
pub struct TestSet {
    /// Unique reads.
    pub rows: Vec<Seq>,
    index: HashMap<Seq, usize>,
    /// Subsets by file stem.
    pub subsets: Vec<(&'static str, Entries)>,
}

impl TestSet {
    fn add(&mut self, seq: Seq) -> usize {
        if let Some(&i) = self.index.get(&seq) {
            return i;
        }
        self.rows.push(seq.clone());
        self.index.insert(seq, self.rows.len() - 1);
        self.rows.len() - 1
    }
}

/// Settings of the test-set construction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSpec {
    /// Sizes.
    pub sizes: TestSizes,
    /// GA for the high- and low-expression designs.
    pub ga: GaConfig,
    /// GA for the challenging designs (one run per 20 sequences).
    pub ga_challenging: GaConfig,
    /// Parameter noise of the proxy models that drive the GA.
    pub proxy_strength: f64,
}

fn truths(model: &TruthModel, seqs: &[Seq]) -> Vec<f64> {
    seqs.par_iter().map(|s| model.truth(s)).collect()
}

fn substitute_at(seq: &mut [u8], pos: usize, rng: &mut impl Rng) -> u8 {
    seq[pos] = ga::substitute(seq[pos], rng);
    seq[pos]
}

/// Sites of the motif-perturbation subset.
const REB1_STRONG: &str = "ATTACCCGG";
const REB1_MEDIUM: &str = "ATTACCCGA";
const HSF1_MONO: &str = "TTCTAGAA";
const HSF1_TRI: &str = "GAAGCTTCTAGAA";
/// Motifs of the tiling subset (name, site).
const TILES: [(&str, &str); 6] = [
    ("polyA", "AAAAA"),
    ("Skn7", "GTCTGGCCC"),
    ("Mga1", "TTCT"),
    ("Ume6", "AGCCGCC"),
    ("Mot3", "GCAGGCACG"),
    ("Azf1", "TAAAAGAAA"),
];

fn codes(s: &str) -> Seq {
    alphabet::encode(s.as_bytes()).expect("valid site")
}

fn place(core: &[u8], site: &[u8], at: usize) -> Seq {
    let mut c = core.to_vec();
    c[at..at + site.len()].copy_from_slice(site);
    wrap(&c)
}

/// At most `n` of `items`: a seeded selection, in their order.
fn keep_some<T>(items: Vec<T>, n: usize, rng: &mut impl Rng) -> Vec<T> {
    if items.len() <= n {
        return items;
    }
    let mut keep: Vec<usize> = (0..items.len()).collect();
    keep.shuffle(rng);
    keep.truncate(n);
    keep.sort_unstable();
    let mut keep = keep.into_iter().peekable();
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, x)| {
            (keep.peek() == Some(&i)).then(|| {
                keep.next();
                x
            })
        })
        .collect()
}

/// Build every subset. `proxies` are the two mis-specified models that drive the GA.
pub fn build(
    spec: &TestSpec,
    seed: u64,
    truth: &TruthModel,
    on: &mut dyn FnMut(Stage),
) -> Result<TestSet> {
    let sizes = &spec.sizes;
    let proxy_a = truth.perturbed(seed ^ 0xa, spec.proxy_strength);
    let proxy_b = truth.perturbed(seed ^ 0xb, spec.proxy_strength);
    let lib = LibrarySpec::uniform();
    let mut t = TestSet::default();
    let mut rng = ChaCha8Rng::seed_from_u64(rng_for(seed, streams::TEST_DESIGN, 0).random());

    // Random and native-like.
    let mut random = Vec::new();
    for i in 0..sizes.random {
        let row = t.add(wrap(&lib.core(&mut rng, CORE_LEN)));
        random.push((format!("rand{i}"), row));
    }
    let mut native = Vec::new();
    for i in 0..sizes.native {
        let row = t.add(wrap(&native_core(&mut rng)));
        native.push((format!("native{i}"), row));
    }

    // High and low expression: GA on proxy A from random reads.
    let read_len = CORE_LEN + 30;
    let mutable = core_range(read_len);
    let mut designed = |name: &str,
                        n: usize,
                        sign: f64,
                        stream: u64,
                        t: &mut TestSet|
     -> Result<Vec<(String, usize)>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut r = rng_for(seed, stream, 0);
        let init: Vec<Seq> = (0..spec.ga.population.min(10_000).max(n))
            .map(|_| wrap(&lib.core(&mut r, CORE_LEN)))
            .collect();
        let cfg = GaConfig {
            population: spec.ga.population.max(n),
            seed: r.random(),
            ..spec.ga.clone()
        };
        on(Stage::Message(format!(
            "    GA {name}: population {}, {} generations on a proxy model",
            cfg.population, cfg.generations
        )));
        let pop = ga::evolve(
            &init,
            mutable.clone(),
            &cfg,
            |s| Ok(truths(&proxy_a, s).into_iter().map(|v| sign * v).collect()),
            |g| on(Stage::Generation(g)),
        )?;
        Ok(ga::best_distinct(&pop, n)
            .into_iter()
            .enumerate()
            .map(|(i, ind)| (format!("GA.{name}_{i}"), t.add(ind.seq)))
            .collect())
    };
    let high = designed("high", sizes.high, 1.0, streams::GA_HIGH, &mut t)?;
    let low = designed("low", sizes.low, -1.0, streams::GA_LOW, &mut t)?;

    // Challenging: maximise |proxy A − proxy B|, many small runs, 20 sequences from each.
    let per_run = 20;
    let runs = sizes.challenging.div_ceil(per_run);
    on(Stage::Message(format!(
        "    GA challenging: {runs} runs, population {}, {} generations, |proxy A − proxy B|",
        spec.ga_challenging.population, spec.ga_challenging.generations
    )));
    let results: Vec<Result<Vec<ga::Individual>>> = (0..runs)
        .into_par_iter()
        .map(|run| {
            let mut r = rng_for(seed, streams::GA_CHALLENGING, run as u64);
            let init: Vec<Seq> = (0..spec.ga_challenging.population)
                .map(|_| wrap(&lib.core(&mut r, CORE_LEN)))
                .collect();
            let cfg = GaConfig {
                seed: r.random(),
                ..spec.ga_challenging.clone()
            };
            let pop = ga::evolve(
                &init,
                mutable.clone(),
                &cfg,
                |s| {
                    Ok(s.iter()
                        .map(|x| (proxy_a.truth(x) - proxy_b.truth(x)).abs())
                        .collect())
                },
                |_| {},
            )?;
            Ok(ga::best_distinct(&pop, per_run))
        })
        .collect();
    let mut challenging = Vec::new();
    for (run, res) in results.into_iter().enumerate() {
        for (i, ind) in res?.into_iter().enumerate() {
            if challenging.len() < sizes.challenging {
                challenging.push((format!("GA.challenging_{run}_{i}"), t.add(ind.seq)));
            }
        }
    }

    // SNVs: mutation trajectories (1–8 steps) from every kind of single sequence.
    let mut snv = Vec::new();
    let bases: Vec<(String, usize)> = random
        .iter()
        .chain(&native)
        .chain(&high)
        .chain(&low)
        .chain(&challenging)
        .cloned()
        .collect();
    let mut traj = 0;
    while snv.len() < sizes.snv && !bases.is_empty() {
        let (tag, row) = bases[rng.random_range(0..bases.len())].clone();
        let steps = rng.random_range(1..=8);
        let mut seq = t.rows[row].clone();
        let (mut ref_tag, mut ref_row) = (tag.clone(), row);
        for step in 0..steps {
            if snv.len() >= sizes.snv {
                break;
            }
            let pos = rng.random_range(mutable.clone());
            let b = substitute_at(&mut seq, pos, &mut rng);
            let alt_tag = format!(
                "{tag}_snv{traj}.{step}_{}{}",
                pos - mutable.start,
                alphabet::LETTERS[usize::from(b)] as char
            );
            let alt_row = t.add(seq.clone());
            snv.push((alt_tag.clone(), ref_tag, alt_row, ref_row));
            (ref_tag, ref_row) = (alt_tag, alt_row);
        }
        traj += 1;
    }

    // Motif perturbation in 10 random backgrounds.
    let backgrounds: Vec<(String, usize)> = random.iter().take(10).cloned().collect();
    let mut perturbation = Vec::new();
    if !backgrounds.is_empty() && sizes.motif_perturbation > 0 {
        let add_pair =
            |t: &mut TestSet, v: &mut Vec<_>, alt_tag: String, alt: Seq, bg: &(String, usize)| {
                let alt_row = t.add(alt);
                v.push((alt_tag, bg.0.clone(), alt_row, bg.1));
            };
        let core = |t: &TestSet, row: usize| t.rows[row][mutable.clone()].to_vec();
        // Hsf1 monomers tiled 1–10 from the left or the right; trimers 1–4 (a fifth of the
        // subset at most).
        let mut hsf = Vec::new();
        for bg in &backgrounds {
            let c = core(&t, bg.1);
            for (unit, name, count, step) in
                [(HSF1_MONO, "Hsf1mono", 10, 8), (HSF1_TRI, "Hsf1tri", 4, 20)]
            {
                let site = codes(unit);
                for k in 1..=count {
                    for side in ["L", "R"] {
                        let mut s = c.clone();
                        for j in 0..k {
                            let at = if side == "L" {
                                j * step
                            } else {
                                CORE_LEN - (j + 1) * step
                            };
                            s[at..at + site.len()].copy_from_slice(&site);
                        }
                        hsf.push((format!("{}_{name}.{k}{side}", bg.0), wrap(&s), bg));
                    }
                }
            }
        }
        for (tag, alt, bg) in keep_some(hsf, sizes.motif_perturbation / 5, &mut rng) {
            add_pair(&mut t, &mut perturbation, tag, alt, bg);
        }
        // Reb1 strong/medium, both orientations, at 20 or ending at 80, with 0–3 substitutions.
        let mut variants = Vec::new();
        for bg in &backgrounds {
            for (strength, site) in [("s", REB1_STRONG), ("m", REB1_MEDIUM)] {
                for rc in [false, true] {
                    for at in [20, CORE_LEN - site.len()] {
                        variants.push((bg.clone(), strength, site, rc, at));
                    }
                }
            }
        }
        let mut round = 0;
        while perturbation.len() < sizes.motif_perturbation {
            for (bg, strength, site, rc, at) in &variants {
                if perturbation.len() >= sizes.motif_perturbation {
                    break;
                }
                let mut s = codes(site);
                if *rc {
                    s = alphabet::reverse_complement(&s);
                }
                let subs = if round == 0 {
                    0
                } else {
                    rng.random_range(1..=3)
                };
                let mut label = Vec::new();
                for _ in 0..subs {
                    let p = rng.random_range(0..s.len());
                    let b = substitute_at(&mut s, p, &mut rng);
                    label.push(format!("{p}{}", alphabet::LETTERS[usize::from(b)] as char));
                }
                let label = if label.is_empty() {
                    "intact".into()
                } else {
                    label.join(".")
                };
                let tag = format!(
                    "{}_Reb1.{strength}{}_{label}_{at}",
                    bg.0,
                    if *rc { ".RC" } else { "" }
                );
                let alt = place(&core(&t, bg.1), &s, *at);
                add_pair(&mut t, &mut perturbation, tag, alt, bg);
            }
            round += 1;
        }
    }

    // Motif tiling: six motifs at every position and orientation in 3 backgrounds.
    let mut tiles = Vec::new();
    for bg in random.iter().skip(10).take(3) {
        let c = t.rows[bg.1][mutable.clone()].to_vec();
        for (name, site) in TILES {
            let fwd = codes(site);
            for (orient, s) in [
                ("F", fwd.clone()),
                ("R", alphabet::reverse_complement(&fwd)),
            ] {
                for at in 0..=CORE_LEN - s.len() {
                    tiles.push((
                        format!("{}_{name}_{at}{orient}", bg.0),
                        place(&c, &s, at),
                        bg,
                    ));
                }
            }
        }
    }
    let mut tiling = Vec::new();
    for (tag, alt, bg) in keep_some(tiles, sizes.motif_tiling, &mut rng) {
        let alt_row = t.add(alt);
        tiling.push((tag, bg.0.clone(), alt_row, bg.1));
    }

    // Fill up to the total with further random sequences (scored only in `all`).
    while t.rows.len() < sizes.total {
        t.add(wrap(&lib.core(&mut rng, CORE_LEN)));
    }

    t.subsets = vec![
        ("high_exp_seqs", Entries::Single(high)),
        ("low_exp_seqs", Entries::Single(low)),
        ("yeast_seqs", Entries::Single(native)),
        ("all_random_seqs", Entries::Single(random)),
        ("challenging_seqs", Entries::Single(challenging)),
        ("all_SNVs_seqs", Entries::Pair(snv)),
        ("motif_perturbation_seqs", Entries::Pair(perturbation)),
        ("motif_tiling_seqs", Entries::Pair(tiling)),
    ];
    Ok(t)
}

/// Counts per subset, for summaries.
pub fn counts(t: &TestSet) -> Vec<(String, usize)> {
    t.subsets
        .iter()
        .map(|(name, e)| {
            let n = match e {
                Entries::Single(v) => v.len(),
                Entries::Pair(v) => v.len(),
            };
            (name.to_string(), n)
        })
        .collect()
}

/// Write the test file, the subset CSVs and the truth file. Rows are written in a seeded
/// shuffled order (`order[i]` = builder row at test-file row `i`); `measured` and `truth` are per
/// builder row.
pub fn write(
    dir: &Path,
    t: &TestSet,
    order: &[usize],
    measured: &[f64],
    truth_log: &[f64],
    truth_test: &[f64],
) -> Result<()> {
    let mut pos = vec![0usize; t.rows.len()];
    for (i, &r) in order.iter().enumerate() {
        pos[r] = i;
    }
    let texts: Vec<String> = t.rows.iter().map(|r| decode(r)).collect();
    let mut test = String::new();
    let mut truth = String::from("sequence\tprediction\tlog_expression\n");
    for &r in order {
        let _ = writeln!(test, "{}\t{}", texts[r], measured[r]);
        let _ = writeln!(truth, "{}\t{}\t{}", texts[r], truth_test[r], truth_log[r]);
    }
    super::write_atomic(&dir.join("test.txt"), test.as_bytes())?;
    super::write_atomic(&dir.join("test_truth.tsv"), truth.as_bytes())?;
    let sub = dir.join("test_subsets");
    std::fs::create_dir_all(&sub).map_err(|e| Error::io(&sub, e))?;
    for (name, entries) in &t.subsets {
        let mut s = String::new();
        match entries {
            Entries::Single(v) => {
                s.push_str(",tag,sequence,pos,exp\n");
                for (i, (tag, r)) in v.iter().enumerate() {
                    let _ = writeln!(s, "{i},{tag},{},{},{}", texts[*r], pos[*r], measured[*r]);
                }
            }
            Entries::Pair(v) => {
                s.push_str(
                    ",alt_tag,ref_tag,alt_sequence,ref_sequence,alt_pos,ref_pos,alt_exp,ref_exp\n",
                );
                for (i, (at, rt, a, r)) in v.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "{i},{at},{rt},{},{},{},{},{},{}",
                        texts[*a], texts[*r], pos[*a], pos[*r], measured[*a], measured[*r]
                    );
                }
            }
        }
        super::write_atomic(&sub.join(format!("{name}.csv")), s.as_bytes())?;
    }
    Ok(())
}
