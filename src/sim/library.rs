//! Reads of the simulated library: the 17-nt left adapter, a random region, the 13-nt right
//! adapter (SPEC §2.1). Random-region lengths follow the bundled real sample by default (80 nt
//! in 82% of reads, down to 57 and up to 81), its base composition too; `N` calls at its rate.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::data::YEAST_SAMPLE;
use crate::data::alphabet::{self, N};

/// The read's 5′ adapter.
pub const LEFT_ADAPTER: &str = "TGCATTTTTTTCACATC";
/// The read's 3′ adapter.
pub const RIGHT_ADAPTER: &str = "GGTTACGGCTGTT";
/// The designed random region's length.
pub const CORE_LEN: usize = 80;

/// How random regions are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibrarySpec {
    /// Base probabilities in code order `A, G, C, T`.
    pub composition: [f64; 4],
    /// Probability that a base is called `N`.
    pub n_rate: f64,
    /// Random-region lengths and their weights.
    pub core_lengths: Vec<(usize, f64)>,
}

impl LibrarySpec {
    /// Measured on the bundled 6,370-row real sample: composition of the random regions
    /// (A 0.225, G 0.281, C 0.192, T 0.301), its `N` rate, and its length histogram.
    pub fn from_sample() -> Self {
        let left = LEFT_ADAPTER.len();
        let right = RIGHT_ADAPTER.len();
        let mut counts = [0u64; 5];
        let mut lengths = std::collections::BTreeMap::<usize, u64>::new();
        for line in YEAST_SAMPLE.lines() {
            let Some(seq) = line.split('\t').next().filter(|s| s.len() > left + right) else {
                continue;
            };
            let core = &seq.as_bytes()[left..seq.len() - right];
            *lengths.entry(core.len()).or_default() += 1;
            for &b in core {
                counts[usize::from(alphabet::code(b).unwrap_or(N).min(N))] += 1;
            }
        }
        let bases: u64 = counts[..4].iter().sum();
        let total = bases + counts[4];
        let mut composition = [0.0; 4];
        for (c, n) in composition.iter_mut().zip(counts) {
            *c = n as f64 / bases as f64;
        }
        let reads: u64 = lengths.values().sum();
        Self {
            composition,
            n_rate: counts[4] as f64 / total as f64,
            core_lengths: lengths
                .into_iter()
                .map(|(l, n)| (l, n as f64 / reads as f64))
                .collect(),
        }
    }

    /// Uniform bases, no `N`, every random region 80 nt (the test set's designs).
    pub fn uniform() -> Self {
        Self {
            composition: [0.25; 4],
            n_rate: 0.0,
            core_lengths: vec![(CORE_LEN, 1.0)],
        }
    }

    /// Reject what cannot be sampled.
    pub fn check(&self) -> Result<(), String> {
        if self
            .composition
            .iter()
            .any(|p| !(p.is_finite() && *p >= 0.0))
            || self.composition.iter().sum::<f64>() <= 0.0
        {
            return Err(format!(
                "base composition must be four non-negative numbers (A, G, C, T), got {:?}",
                self.composition
            ));
        }
        if !(0.0..1.0).contains(&self.n_rate) {
            return Err(format!("N rate must be in [0, 1), got {}", self.n_rate));
        }
        if self.core_lengths.is_empty() || self.core_lengths.iter().any(|&(l, w)| l == 0 || w < 0.0)
        {
            return Err("random-region lengths must be positive with non-negative weights".into());
        }
        Ok(())
    }

    fn pick<T: Copy>(rng: &mut impl Rng, items: impl Iterator<Item = (T, f64)> + Clone) -> T {
        let total: f64 = items.clone().map(|x| x.1).sum();
        let mut u = rng.random::<f64>() * total;
        let mut last = None;
        for (x, w) in items {
            last = Some(x);
            if u < w {
                return x;
            }
            u -= w;
        }
        last.expect("non-empty")
    }

    /// One random base code.
    pub fn base(&self, rng: &mut impl Rng) -> u8 {
        if self.n_rate > 0.0 && rng.random_bool(self.n_rate) {
            return N;
        }
        Self::pick(rng, (0u8..4).zip(self.composition.iter().copied()))
    }

    /// A random region of `len` bases.
    pub fn core(&self, rng: &mut impl Rng, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.base(rng)).collect()
    }

    /// A whole read: adapter, random region of a sampled length, adapter.
    pub fn read(&self, rng: &mut impl Rng) -> Vec<u8> {
        let len = Self::pick(rng, self.core_lengths.iter().copied());
        wrap(&self.core(rng, len))
    }
}

/// Put a random region between the adapters.
pub fn wrap(core: &[u8]) -> Vec<u8> {
    let mut out = alphabet::encode(LEFT_ADAPTER.as_bytes()).expect("adapter");
    out.extend_from_slice(core);
    out.extend(alphabet::encode(RIGHT_ADAPTER.as_bytes()).expect("adapter"));
    out
}

/// The random region of a read made by [`wrap`].
pub fn core_range(read_len: usize) -> std::ops::Range<usize> {
    LEFT_ADAPTER.len()..read_len - RIGHT_ADAPTER.len()
}

/// Sites enriched in native-like promoters (consensus, IUPAC).
const NATIVE_SITES: [&str; 7] = [
    "TTACCCGG",
    "RTCRYNNNNNACG",
    "ACACCCATACAT",
    "TATAWAWR",
    "AAAAAAAA",
    "AGGGG",
    "TGACTCA",
];

/// A native-like 80-nt random region: AT-rich (65%) background with 1–4 sites of yeast factors
/// planted at random positions and orientations.
pub fn native_core(rng: &mut impl Rng) -> Vec<u8> {
    let bg = LibrarySpec {
        composition: [0.325, 0.175, 0.175, 0.325],
        n_rate: 0.0,
        core_lengths: vec![(CORE_LEN, 1.0)],
    };
    let mut core = bg.core(rng, CORE_LEN);
    let sites = rng.random_range(1..=4);
    for _ in 0..sites {
        let consensus = NATIVE_SITES[rng.random_range(0..NATIVE_SITES.len())];
        let mut site: Vec<u8> = consensus
            .bytes()
            .map(|l| {
                let opts = super::truth::iupac(l).expect("IUPAC");
                opts[rng.random_range(0..opts.len())]
            })
            .collect();
        if rng.random_bool(0.5) {
            site = alphabet::reverse_complement(&site);
        }
        let at = rng.random_range(0..=CORE_LEN - site.len());
        core[at..at + site.len()].copy_from_slice(&site);
    }
    core
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn sample_spec_matches_the_sample() {
        let s = LibrarySpec::from_sample();
        s.check().unwrap();
        let w80 = s.core_lengths.iter().find(|x| x.0 == 80).unwrap().1;
        assert!((w80 - 5219.0 / 6370.0).abs() < 1e-9, "{w80}");
        assert!(
            (s.composition[1] - 0.281).abs() < 0.002,
            "{:?}",
            s.composition
        );
        assert!(s.n_rate > 0.0 && s.n_rate < 0.002);
    }

    #[test]
    fn reads_have_adapters_and_lengths() {
        let s = LibrarySpec::from_sample();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let reads: Vec<Vec<u8>> = (0..2000).map(|_| s.read(&mut rng)).collect();
        let n110 = reads.iter().filter(|r| r.len() == 110).count();
        assert!((1500..1780).contains(&n110), "{n110}");
        for r in &reads {
            let text = alphabet::decode(r);
            assert!(text.starts_with(LEFT_ADAPTER) && text.ends_with(RIGHT_ADAPTER));
        }
        let core = native_core(&mut rng);
        assert_eq!(core.len(), CORE_LEN);
    }
}
