//! The ground-truth regulatory model of the simulator: a small thermodynamic model of a yeast
//! promoter.
//!
//! **Factors.** Each transcription factor `f` has a position weight matrix built from its
//! consensus (IUPAC letters): a consensus base has probability [`TruthParams::match_prob`], the
//! others share the rest; a degenerate letter shares `match_prob` among its bases; `N` is
//! uniform. The log-odds against a uniform background give a site score `s`, and a site's
//! relative affinity is `K = exp(s − s_max)` (1 for the consensus, e^−1.95 per mismatch at the
//! default 0.7).
//!
//! **Occupancy.** Every start position and both strands of the read are sites. The factor's
//! statistical weight is `Z_f = exp(μ_f) · Σ_sites K · g_f(x) · o_f(strand)` where `μ_f` is its
//! chemical potential (log concentration), `g_f` a position profile over `x`, the distance of
//! the site's centre from the 3′ end of the random region (the end nearest the transcription
//! start) in units of its 80 nt, and `o_f` the weight of a site on the reverse strand (1 for
//! orientation-blind factors). Its occupancy `θ_f = Z_f / (1 + Z_f)` saturates: a strong site
//! nearly fills it, and many weak (low-affinity) sites add up to a real contribution.
//!
//! **Activity.** `L = b₀ + Σ_f β_f θ_f + Σ_pairs β_ab θ_a θ_b`: activators have `β > 0`,
//! repressors `β < 0`, cooperative pairs add only when both are bound. Log expression is
//! `y = L − softplus(L − L_sat)`, which follows `L` at low activity and saturates near
//! `L_sat` (the promoter cannot exceed the transcription machinery's maximum rate).
//!
//! [`TruthModel::perturbed`] gives a *proxy* model (the same kind of model with mis-estimated
//! parameters and a missing factor), used to design the test set's GA sequences so that they
//! exploit a model's errors as the challenge's did.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::alphabet::{A, C, G, T};

/// How a factor's effect depends on where its site sits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PositionProfile {
    /// The same everywhere.
    Flat,
    /// `exp(−(x − centre)² / (2 width²))`, `x` in units of the 80-nt random region from its 3′ end.
    Gaussian {
        /// Most effective distance from the 3′ end.
        centre: f64,
        /// Spread.
        width: f64,
    },
}

impl PositionProfile {
    fn at(&self, x: f64) -> f64 {
        match *self {
            Self::Flat => 1.0,
            Self::Gaussian { centre, width } => {
                (-(x - centre).powi(2) / (2.0 * width * width)).exp()
            }
        }
    }
}

/// One transcription factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Factor {
    /// Name (e.g. `Reb1`).
    pub name: String,
    /// Consensus in IUPAC letters, forward orientation.
    pub consensus: String,
    /// Chemical potential μ (log of concentration × affinity of the consensus site).
    pub mu: f64,
    /// Effect β on log activity when fully bound (> 0 activates, < 0 represses).
    pub effect: f64,
    /// Position dependence.
    pub profile: PositionProfile,
    /// Weight of sites on the reverse strand relative to the forward strand.
    pub reverse_weight: f64,
}

/// Two factors whose joint binding adds `effect · θ_a · θ_b`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cooperation {
    /// First factor's name.
    pub a: String,
    /// Second factor's name.
    pub b: String,
    /// Extra log activity when both are bound.
    pub effect: f64,
}

/// All parameters of the truth model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthParams {
    /// Probability of the consensus base at a non-degenerate PWM position.
    pub match_prob: f64,
    /// Baseline log activity `b₀`.
    pub baseline: f64,
    /// Log activity at which expression saturates, `L_sat`.
    pub saturation: f64,
    /// The factors.
    pub factors: Vec<Factor>,
    /// Cooperative pairs.
    pub cooperation: Vec<Cooperation>,
}

impl TruthParams {
    /// Whether every value can work; the key and the problem if not.
    pub fn check(&self) -> Result<(), String> {
        use crate::blocks::limits::within;
        within("[truth] match_prob", self.match_prob, 0.25, 1.0)?;
        within("[truth] baseline", self.baseline, -1e3, 1e3)?;
        within("[truth] saturation", self.saturation, -1e3, 1e3)?;
        for (i, f) in self.factors.iter().enumerate() {
            let key = |k: &str| format!("[[truth.factors]] {} ({}) {k}", i + 1, f.name);
            within(&key("mu"), f.mu, -1e3, 1e3)?;
            within(&key("effect"), f.effect, -1e3, 1e3)?;
            within(&key("reverse_weight"), f.reverse_weight, 0.0, 1e3)?;
            if f.consensus.is_empty()
                || crate::data::alphabet::encode(f.consensus.as_bytes()).is_err()
            {
                return Err(format!(
                    "{} = {:?} must be a motif in IUPAC letters",
                    key("consensus"),
                    f.consensus
                ));
            }
            if let PositionProfile::Gaussian { centre, width } = f.profile {
                within(&key("profile.centre"), centre, -1e3, 1e3)?;
                within(&key("profile.width"), width, 1e-6, 1e3)?;
            }
        }
        for (i, c) in self.cooperation.iter().enumerate() {
            within(
                &format!("[[truth.cooperation]] {} effect", i + 1),
                c.effect,
                -1e3,
                1e3,
            )?;
            for n in [&c.a, &c.b] {
                if !self.factors.iter().any(|f| &f.name == n) {
                    return Err(format!(
                        "[[truth.cooperation]] {} names factor {n:?}, which is not among the factors",
                        i + 1
                    ));
                }
            }
        }
        Ok(())
    }
}

fn factor(
    name: &str,
    consensus: &str,
    mu: f64,
    effect: f64,
    profile: PositionProfile,
    reverse_weight: f64,
) -> Factor {
    Factor {
        name: name.into(),
        consensus: consensus.into(),
        mu,
        effect,
        profile,
        reverse_weight,
    }
}

impl Default for TruthParams {
    /// The default panel: yeast general regulatory factors, stress and metabolic activators,
    /// two repressors, chromatin-shaping poly(dA:dT) and CGCG, and TATA.
    fn default() -> Self {
        use PositionProfile::{Flat, Gaussian};
        let mid = Gaussian {
            centre: 0.55,
            width: 0.35,
        };
        let near_tss = Gaussian {
            centre: 0.15,
            width: 0.25,
        };
        Self {
            match_prob: 0.7,
            baseline: -1.0,
            saturation: 2.5,
            factors: vec![
                factor("Reb1", "TTACCCGG", 2.0, 1.6, mid.clone(), 0.6),
                factor("Abf1", "RTCRYNNNNNACG", 2.0, 1.3, mid.clone(), 1.0),
                factor("Rap1", "ACACCCATACAT", 2.0, 1.6, mid.clone(), 0.5),
                factor("Gcn4", "TGACTCA", 1.5, 1.0, Flat, 1.0),
                factor("Msn2/4", "AGGGG", 0.0, 0.9, Flat, 1.0),
                factor("Hsf1 monomer", "TTCTAGAA", 1.0, 0.6, Flat, 1.0),
                factor("Hsf1 trimer", "GAANNTTCNNGAA", 2.5, 1.2, Flat, 1.0),
                factor("Skn7", "GTCTGGCCC", 1.5, 0.7, Flat, 1.0),
                factor("Mga1", "TTCT", -1.5, 0.8, Flat, 1.0),
                factor("Ume6", "AGCCGCC", 1.5, -1.4, near_tss.clone(), 1.0),
                factor("Mot3", "GCAGGCACG", 1.5, -1.0, near_tss.clone(), 1.0),
                factor("Azf1", "TAAAAGAAA", 1.0, 0.7, Flat, 1.0),
                factor("Rsc3", "CGCGCG", -0.5, 0.6, Flat, 1.0),
                factor("poly(dA:dT)", "AAAAAA", 0.0, 1.5, Flat, 1.0),
                factor("TATA", "TATAWAWR", 1.0, 1.2, near_tss, 0.4),
            ],
            cooperation: vec![
                Cooperation {
                    a: "Reb1".into(),
                    b: "TATA".into(),
                    effect: 0.8,
                },
                Cooperation {
                    a: "Gcn4".into(),
                    b: "Rap1".into(),
                    effect: 1.0,
                },
            ],
        }
    }
}

/// The bases an IUPAC letter stands for, in code order `A, G, C, T`.
pub fn iupac(letter: u8) -> Option<&'static [u8]> {
    Some(match letter.to_ascii_uppercase() {
        b'A' => &[A],
        b'G' => &[G],
        b'C' => &[C],
        b'T' => &[T],
        b'R' => &[A, G],
        b'Y' => &[C, T],
        b'S' => &[G, C],
        b'W' => &[A, T],
        b'K' => &[G, T],
        b'M' => &[A, C],
        b'B' => &[G, C, T],
        b'D' => &[A, G, T],
        b'H' => &[A, C, T],
        b'V' => &[A, G, C],
        b'N' => &[A, G, C, T],
        _ => return None,
    })
}

/// A compiled factor: log-odds minus the maximum per position (so the consensus scores 0), for
/// both strands, with a fifth column for `N` (mean of the four).
#[derive(Debug, Clone)]
struct Pwm {
    fwd: Vec<[f32; 5]>,
    rev: Vec<[f32; 5]>,
    log_conc: f64,
    effect: f64,
    profile: PositionProfile,
    reverse_weight: f64,
}

impl Pwm {
    fn new(f: &Factor, match_prob: f64) -> Result<Self, String> {
        let mut fwd = Vec::new();
        for &letter in f.consensus.as_bytes() {
            let bases = iupac(letter).ok_or_else(|| {
                format!(
                    "factor {}: {:?} is not an IUPAC letter",
                    f.name, letter as char
                )
            })?;
            let k = bases.len() as f64;
            let (hit, miss) = if k == 4.0 {
                (0.25, 0.25)
            } else {
                (match_prob / k, (1.0 - match_prob) / (4.0 - k))
            };
            let p = |b: u8| if bases.contains(&b) { hit } else { miss };
            let lo: [f64; 4] = [p(A), p(G), p(C), p(T)].map(|x| (x / 0.25f64).ln());
            let max = lo.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = lo.iter().sum::<f64>() / 4.0;
            let row = [
                lo[0] - max,
                lo[1] - max,
                lo[2] - max,
                lo[3] - max,
                mean - max,
            ];
            fwd.push(row.map(|x| x as f32));
        }
        // Reverse strand: reverse the positions and complement (A↔T, G↔C: code 3 − c).
        let rev = fwd
            .iter()
            .rev()
            .map(|r| [r[3], r[2], r[1], r[0], r[4]])
            .collect();
        Ok(Self {
            fwd,
            rev,
            log_conc: f.mu,
            effect: f.effect,
            profile: f.profile.clone(),
            reverse_weight: f.reverse_weight,
        })
    }
}

/// Length of the random region the position profiles are scaled to.
pub const CORE: f64 = 80.0;
/// Length of the read's 3′ adapter (after the random region).
pub const RIGHT_ADAPTER_LEN: usize = 13;
/// Sites scoring below this (log relative affinity) are ignored: `e^−12` is negligible.
const CUTOFF: f32 = -12.0;

/// The truth model, compiled for fast evaluation.
#[derive(Debug, Clone)]
pub struct TruthModel {
    params: TruthParams,
    pwms: Vec<Pwm>,
    pairs: Vec<(usize, usize, f64)>,
}

impl TruthModel {
    /// Compile parameters; errors name a bad consensus or an unknown cooperation partner.
    pub fn new(params: TruthParams) -> Result<Self, String> {
        let pwms = params
            .factors
            .iter()
            .map(|f| Pwm::new(f, params.match_prob))
            .collect::<Result<Vec<_>, _>>()?;
        let index = |name: &str| {
            params
                .factors
                .iter()
                .position(|f| f.name == name)
                .ok_or_else(|| format!("cooperation names unknown factor {name:?}"))
        };
        let pairs = params
            .cooperation
            .iter()
            .map(|c| Ok((index(&c.a)?, index(&c.b)?, c.effect)))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            params,
            pwms,
            pairs,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &TruthParams {
        &self.params
    }

    /// Occupancy `θ_f` of every factor on a read (base codes; `N` = 4).
    pub fn occupancies(&self, seq: &[u8]) -> Vec<f64> {
        let len = seq.len();
        // Random region ends RIGHT_ADAPTER_LEN before the read's end.
        let tss = len.saturating_sub(RIGHT_ADAPTER_LEN) as f64;
        self.pwms
            .iter()
            .map(|pwm| {
                let m = pwm.fwd.len();
                if len < m {
                    return 0.0;
                }
                let mut z = 0.0f64;
                for start in 0..=len - m {
                    let window = &seq[start..start + m];
                    let mut f = 0.0f32;
                    let mut r = 0.0f32;
                    for ((wf, wr), &b) in pwm.fwd.iter().zip(&pwm.rev).zip(window) {
                        let b = usize::from(b.min(4));
                        f += wf[b];
                        r += wr[b];
                    }
                    if f < CUTOFF && r < CUTOFF {
                        continue;
                    }
                    let centre = start as f64 + m as f64 / 2.0;
                    let x = ((tss - centre) / CORE).max(0.0);
                    let g = pwm.profile.at(x);
                    z += g * (f64::from(f).exp() + pwm.reverse_weight * f64::from(r).exp());
                }
                let z = pwm.log_conc.exp() * z;
                z / (1.0 + z)
            })
            .collect()
    }

    /// Log activity `L` before saturation.
    pub fn activity(&self, seq: &[u8]) -> f64 {
        let theta = self.occupancies(seq);
        let mut l = self.params.baseline;
        for (pwm, t) in self.pwms.iter().zip(&theta) {
            l += pwm.effect * t;
        }
        for &(a, b, e) in &self.pairs {
            l += e * theta[a] * theta[b];
        }
        l
    }

    /// The noise-free log expression of a read (base codes).
    pub fn truth(&self, seq: &[u8]) -> f64 {
        let l = self.activity(seq);
        let d = l - self.params.saturation;
        // softplus, stable for large d
        let softplus = if d > 30.0 { d } else { d.exp().ln_1p() };
        l - softplus
    }

    /// A proxy model: every chemical potential and effect perturbed by Normal noise of sd
    /// `strength` (effects multiplicatively), and one factor (chosen by the seed) left out —
    /// the kind of errors a trained model makes.
    pub fn perturbed(&self, seed: u64, strength: f64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut p = self.params.clone();
        let mut normal = || {
            // Box–Muller
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        for f in &mut p.factors {
            f.mu += strength * normal();
            f.effect *= (strength * normal()).exp();
        }
        for c in &mut p.cooperation {
            c.effect *= (strength * normal()).exp();
        }
        let drop = (seed as usize) % p.factors.len();
        p.factors[drop].effect = 0.0;
        Self::new(p).expect("perturbing keeps parameters valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::alphabet::encode;

    fn read(core: &str) -> Vec<u8> {
        encode(format!("TGCATTTTTTTCACATC{core}GGTTACGGCTGTT").as_bytes()).unwrap()
    }

    fn background() -> String {
        // A fixed "neutral" 80-mer with no strong site of the panel.
        "GCTAGCATCGTAGCTAGTCAGTCGATGCATGCAGTCGTAGCTAGCATGCGATCGTAGTCAGCTAGCTGATCGTAGCATGC"
            .to_string()
    }

    #[test]
    fn consensus_scores_zero_and_mismatch_costs() {
        let m = TruthModel::new(TruthParams::default()).unwrap();
        let reb1 = &m.pwms[0];
        let s: f32 = reb1
            .fwd
            .iter()
            .zip(encode(b"TTACCCGG").unwrap())
            .map(|(w, b)| w[b as usize])
            .sum();
        assert!(s.abs() < 1e-6);
        let s1: f32 = reb1
            .fwd
            .iter()
            .zip(encode(b"TTACCCGA").unwrap())
            .map(|(w, b)| w[b as usize])
            .sum();
        // ln(0.7 / (0.3/3)) = 1.946
        assert!((s1 + 1.9459).abs() < 1e-3, "{s1}");
        // Reverse strand matrix scores the reverse complement as the consensus.
        let s_rc: f32 = reb1
            .rev
            .iter()
            .zip(encode(b"CCGGGTAA").unwrap())
            .map(|(w, b)| w[b as usize])
            .sum();
        assert!(s_rc.abs() < 1e-6);
    }

    #[test]
    fn sites_act_by_sign_position_and_orientation() {
        let m = TruthModel::new(TruthParams::default()).unwrap();
        let bg = background();
        let base = m.truth(&read(&bg));
        let put = |site: &str, at: usize| {
            let mut s = bg.clone();
            s.replace_range(at..at + site.len(), site);
            m.truth(&read(&s))
        };
        // An activator raises, a repressor lowers.
        assert!(put("TTACCCGG", 30) > base + 0.3);
        assert!(put("AGCCGCC", 65) < base - 0.3);
        // Reb1 is orientation dependent.
        assert!(put("TTACCCGG", 30) > put("CCGGGTAA", 30) + 0.02);
        // Position matters: the repressor acts near the 3′ end, less far from it.
        assert!(put("AGCCGCC", 65) < put("AGCCGCC", 2) - 0.2);
        // Two Reb1 sites are more than one but saturate (less than twice the gain).
        let one = put("TTACCCGG", 30) - base;
        let mut s = bg.clone();
        s.replace_range(30..38, "TTACCCGG");
        s.replace_range(45..53, "TTACCCGG");
        let two = m.truth(&read(&s)) - base;
        assert!(two > one && two < 2.0 * one, "{one} {two}");
    }

    #[test]
    fn proxy_differs_but_correlates() {
        let m = TruthModel::new(TruthParams::default()).unwrap();
        let p = m.perturbed(1, 0.3);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let seqs: Vec<Vec<u8>> = (0..300)
            .map(|_| {
                read(
                    &(0..80)
                        .map(|_| ['A', 'C', 'G', 'T'][rng.random_range(0..4)])
                        .collect::<String>(),
                )
            })
            .collect();
        let a: Vec<f64> = seqs.iter().map(|s| m.truth(s)).collect();
        let b: Vec<f64> = seqs.iter().map(|s| p.truth(s)).collect();
        let r = crate::eval::metrics::pearson(&a, &b).unwrap();
        assert!(r > 0.3 && r < 0.999, "{r}");
    }

    #[test]
    fn bad_consensus_is_an_error() {
        let mut p = TruthParams::default();
        p.factors[0].consensus = "TTAXCC".into();
        assert!(TruthModel::new(p).unwrap_err().contains("Reb1"));
        let mut p = TruthParams::default();
        p.cooperation[0].a = "Nope".into();
        assert!(TruthModel::new(p).is_err());
    }
}
