//! Padding and trimming sequences to the model's input length.
//!
//! Written once, used by training, prediction, interpretation and design alike.
//!
//! - [`Padding::Plasmid`] is the yeast DREAM rule (SPEC §2.2): drop the read's own 17-nt left
//!   adapter, put the 150 nt of plasmid that precede the insert in front, keep the last 150
//!   characters. Padding is 5' only. Unlike the reference, which cuts the first 17 nt of
//!   anything, the rule applies only to reads that carry the adapter: a bare insert gets the
//!   adapters it lacks instead of losing 17 of its bases, and a read too long for the input is
//!   refused unless a crop is asked for (the reference would drop its 5' end silently).
//! - [`Padding::Flanks`] is the general rule for other data sets: fill to `length` from given
//!   flanks, aligned as asked; longer sequences are an error unless a trim side is chosen.
//! - [`Padding::Exact`]: every sequence must already have the model's length.
//! - [`Padding::UnlockDna`]: the Unlock_DNA data processor's rule (SPEC_GRID §5): drop the
//!   read's first and last 20 nt, centre what remains in 100 nt of `N`, and follow it with
//!   its reverse complement: 200 nt, both strands in one input. A read holding more than
//!   100 nt after the trim is refused unless a crop is asked for (the reference drops such
//!   rows silently, Q4).
//! - [`Padding::Bhi`]: the BHI data processor's rule (SPEC_GRID §2): reads longer than the
//!   input keep their first `length` nt; shorter ones are padded from the plasmid on the
//!   right (odds 0.333), the left (0.223) or both sides (0.444), with the reference's two
//!   draws. The reference draws from an unseeded generator; here the draws are seeded by the
//!   read's own bases, so a read gets the same padding in training, validation and
//!   prediction, on every run.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::alphabet;
use crate::error::Problem;

/// Length of the left adapter at the start of every yeast read (`TGCATTTTTTTCACATC`).
pub const YEAST_ADAPTER_LEN: usize = 17;
/// The 5' adapter of yeast reads.
pub const YEAST_ADAPTER5: &[u8] = b"TGCATTTTTTTCACATC";
/// The 3' adapter of yeast reads.
pub const YEAST_ADAPTER3: &[u8] = b"GGTTACGGCTGTT";
/// Mismatches (sequencing errors) an adapter may have and still count as present.
const ADAPTER_MISMATCHES: usize = 2;
/// The model input length of the yeast DREAM models.
pub const YEAST_INPUT_LEN: usize = 150;

/// The BHI data processor's left pad: the 37 nt of plasmid before the 5' adapter.
pub const BHI_LEFT: &[u8] = b"GCTAGCAGGAATGATGCAAAAGGTTCCCGATTCGAAC";
/// The BHI data processor's right pad: the 76 nt of plasmid after the 3' adapter.
pub const BHI_RIGHT: &[u8] =
    b"TCTTAATTAAAAAAAGATAGAAAACATTAGGAGTGTAACACAAGACTTTCGGATCCTGAGCAGGCAAGATAAACGA";
/// The BHI data processor's input length.
pub const BHI_INPUT_LEN: usize = 110;
/// Bases the Unlock_DNA data processor drops from each end of a read (`head_len`, `tail_len`).
pub const UNLOCK_TRIM: usize = 20;
/// The Unlock_DNA data processor's strand length; its input is both strands, twice this.
pub const UNLOCK_STRAND: usize = 100;

/// The reporter plasmid with its 80-`N` insert site (reference release, MIT licence).
const PLASMID_JSON: &str = include_str!("../../assets/plasmid.json");

/// The plasmid flanks around the insert site, as codes: 150 nt before, all of what follows.
pub struct PlasmidFlanks {
    /// The 150 nt just before the run of `N` (ends with the read's 17-nt left adapter).
    pub left150: Vec<u8>,
    /// The plasmid after the run of `N`.
    pub right: Vec<u8>,
}

/// The plasmid flanks, derived once from the embedded plasmid.
pub fn plasmid_flanks() -> &'static PlasmidFlanks {
    static FLANKS: OnceLock<PlasmidFlanks> = OnceLock::new();
    FLANKS.get_or_init(|| {
        let plasmid: String =
            serde_json::from_str(PLASMID_JSON).expect("embedded plasmid.json is a JSON string");
        let bytes = plasmid.as_bytes();
        let start = plasmid.find('N').expect("plasmid has an N run");
        let end = start + bytes[start..].iter().take_while(|&&b| b == b'N').count();
        PlasmidFlanks {
            left150: alphabet::encode(&bytes[start - YEAST_INPUT_LEN..start]).expect("ACGT"),
            right: alphabet::encode(&bytes[end..]).expect("ACGT"),
        }
    })
}

/// Where a short sequence sits inside the padded window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Align {
    /// Flush with the 3' end: all padding comes from the left flank.
    #[default]
    Right,
    /// Flush with the 5' end: all padding comes from the right flank.
    Left,
    /// Centred; an odd base of padding goes to the right.
    Center,
}

/// What to do with a sequence longer than the model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Trim {
    /// Refuse it with a clear error.
    #[default]
    Error,
    /// Drop bases from the 5' end (keep the 3' end).
    FivePrime,
    /// Drop bases from the 3' end.
    ThreePrime,
    /// Drop bases from both ends, keeping the centre.
    Center,
}

/// How a raw sequence becomes exactly `length` bases of model input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Padding {
    /// Yeast DREAM reads in their plasmid context (SPEC §2.2).
    Plasmid {
        /// Model input length.
        length: usize,
        /// What happens to a read too long for the input (after its 5' adapter is dropped).
        #[serde(default)]
        trim: Trim,
    },
    /// Fill from the given flanks (letters), aligned as asked; trim as asked.
    Flanks {
        /// Model input length.
        length: usize,
        /// Sequence before the insert; its 3' end is used.
        #[serde(default)]
        left: String,
        /// Sequence after the insert; its 5' end is used.
        #[serde(default)]
        right: String,
        /// Where a short sequence sits.
        #[serde(default)]
        align: Align,
        /// What happens to a long one.
        #[serde(default)]
        trim: Trim,
    },
    /// The sequence must already be `length` long.
    Exact {
        /// Model input length.
        length: usize,
        /// What happens to a longer one (a shorter one is always refused).
        #[serde(default)]
        trim: Trim,
    },
    /// The Unlock_DNA data processor's rule (SPEC_GRID §5): 200 nt, always.
    UnlockDna {
        /// What happens to a read longer than 100 nt after its trim.
        #[serde(default)]
        trim: Trim,
    },
    /// The BHI data processor's rule (SPEC_GRID §2, Q10).
    Bhi {
        /// Model input length (110 in the reference).
        length: usize,
        /// What happens to a longer read: the reference keeps its first `length` nt.
        #[serde(default = "three_prime")]
        trim: Trim,
    },
}

fn three_prime() -> Trim {
    Trim::ThreePrime
}

impl Padding {
    /// The yeast DREAM rule at 150 nt.
    pub fn yeast() -> Self {
        Padding::Plasmid {
            length: YEAST_INPUT_LEN,
            trim: Trim::Error,
        }
    }

    /// The Unlock_DNA data processor's rule.
    pub fn unlock_dna() -> Self {
        Padding::UnlockDna { trim: Trim::Error }
    }

    /// The BHI data processor's rule at 110 nt.
    pub fn bhi() -> Self {
        Padding::Bhi {
            length: BHI_INPUT_LEN,
            trim: Trim::ThreePrime,
        }
    }

    /// Sequences of exactly `length` nt.
    pub fn exact(length: usize) -> Self {
        Padding::Exact {
            length,
            trim: Trim::Error,
        }
    }

    /// The same rule with another policy for sequences too long for the input.
    pub fn with_trim(&self, to: Trim) -> Self {
        let mut p = self.clone();
        match &mut p {
            Padding::Plasmid { trim, .. }
            | Padding::Flanks { trim, .. }
            | Padding::Exact { trim, .. }
            | Padding::UnlockDna { trim }
            | Padding::Bhi { trim, .. } => *trim = to,
        }
        p
    }

    /// The policy for sequences too long for the input.
    pub fn trim(&self) -> Trim {
        match self {
            Padding::Plasmid { trim, .. }
            | Padding::Flanks { trim, .. }
            | Padding::Exact { trim, .. }
            | Padding::UnlockDna { trim }
            | Padding::Bhi { trim, .. } => *trim,
        }
    }

    /// The model input length this padding produces.
    pub fn length(&self) -> usize {
        match self {
            Padding::Plasmid { length, .. }
            | Padding::Flanks { length, .. }
            | Padding::Exact { length, .. }
            | Padding::Bhi { length, .. } => *length,
            Padding::UnlockDna { .. } => 2 * UNLOCK_STRAND,
        }
    }

    /// Whether the raw sequence `codes` can be made into model input; the problem if not.
    pub fn check(&self, codes: &[u8]) -> Result<(), Problem> {
        self.fit(codes).map(|_| ())
    }

    /// How `codes` becomes input: the part kept and the flanks it needs (see [`Fit`]).
    pub fn fit(&self, codes: &[u8]) -> Result<Fit, Problem> {
        let len = codes.len();
        if len == 0 {
            return Err(Problem::EmptySequence);
        }
        let length = self.length();
        let (body, adapters) = match self {
            Padding::Plasmid { .. } => plasmid_body(codes),
            Padding::UnlockDna { .. } if len <= 2 * UNLOCK_TRIM => {
                return Err(Problem::Other(format!(
                    "read of {len} nt holds nothing once the Unlock_DNA data processor drops \
                     its first and last {UNLOCK_TRIM} nt"
                )));
            }
            Padding::UnlockDna { .. } => ((UNLOCK_TRIM, len - UNLOCK_TRIM), Adapters::None),
            _ => ((0, len), Adapters::None),
        };
        // The Unlock_DNA rule fills one strand; the other is its reverse complement.
        let length = match self {
            Padding::UnlockDna { .. } => UNLOCK_STRAND,
            _ => length,
        };
        let body_len = body.1 - body.0 + adapters.extra();
        let too_long = body_len > length;
        match self {
            Padding::Exact { .. } if len < length => {
                return Err(Problem::Other(format!(
                    "sequence of {len} nt is shorter than the model input ({length} nt) and this \
                     model takes no padding"
                )));
            }
            Padding::Bhi { .. } if len + BHI_LEFT.len() < length => {
                return Err(Problem::Other(format!(
                    "read of {len} nt is too short for the BHI padding: it fills at most {} nt \
                     on the 5' side, so a read needs at least {} nt for the {length}-nt input",
                    BHI_LEFT.len(),
                    length.saturating_sub(BHI_LEFT.len())
                )));
            }
            Padding::UnlockDna { .. } if too_long && self.trim() == Trim::Error => {
                return Err(Problem::Other(format!(
                    "read of {len} nt holds {body_len} nt after the Unlock_DNA trim of \
                     {UNLOCK_TRIM} + {UNLOCK_TRIM}, more than its {UNLOCK_STRAND}-nt strand \
                     (the reference drops such reads); crop it explicitly (--crop 5p, 3p or \
                     center)"
                )));
            }
            Padding::Plasmid { .. } if too_long && self.trim() == Trim::Error => {
                return Err(Problem::Other(format!(
                    "read of {len} nt is too long for the {length}-nt model input: without its \
                     5' adapter it holds {body_len} nt; crop it explicitly (--crop 5p cuts its \
                     5' end as the reference does; 3p or center)"
                )));
            }
            _ if too_long && self.trim() == Trim::Error => {
                return Err(Problem::TooLong {
                    length: len,
                    max: length,
                });
            }
            _ => {}
        }
        Ok(Fit {
            body,
            adapters,
            cropped: too_long,
        })
    }

    /// Checks the flanks and prepares the padding for use on the hot path.
    pub fn prepare(&self) -> Result<Padder, String> {
        crate::blocks::limits::count(
            "[input] padding.length",
            self.length(),
            crate::blocks::limits::MAX_LENGTH,
        )?;
        let (left, right) = match self {
            Padding::Plasmid { .. } => {
                let f = plasmid_flanks();
                (f.left150.clone(), f.right.clone())
            }
            Padding::Flanks { left, right, .. } => {
                let enc = |name: &str, s: &str| {
                    alphabet::encode(s.as_bytes()).map_err(|(pos, ch)| {
                        format!("{name} flank has invalid base {ch:?} at position {pos}")
                    })
                };
                (enc("left", left)?, enc("right", right)?)
            }
            Padding::Exact { .. } | Padding::UnlockDna { .. } => (Vec::new(), Vec::new()),
            Padding::Bhi { .. } => (
                alphabet::encode(BHI_LEFT).expect("ACGT"),
                alphabet::encode(BHI_RIGHT).expect("ACGT"),
            ),
        };
        Ok(Padder {
            padding: self.clone(),
            left,
            right,
        })
    }
}

/// Which yeast adapters a read lacked and gets from the plasmid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapters {
    /// None added (the read has its 5' adapter, or the rule is not the plasmid's).
    None,
    /// The read had no 5' adapter (the left flank ends with it).
    Five,
    /// The read had neither adapter: the 3' adapter is appended too.
    Both,
}

impl Adapters {
    fn extra(self) -> usize {
        match self {
            Adapters::Both => YEAST_ADAPTER3.len(),
            _ => 0,
        }
    }
}

/// How one raw sequence becomes model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// The range of the raw sequence that is kept before flanks are added.
    pub body: (usize, usize),
    /// Adapters the sequence lacked, added from the plasmid.
    pub adapters: Adapters,
    /// Whether the sequence is longer than the input and is cropped.
    pub cropped: bool,
}

fn mismatches(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

fn adapter_codes() -> &'static (Vec<u8>, Vec<u8>) {
    static A: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    A.get_or_init(|| {
        (
            alphabet::encode(YEAST_ADAPTER5).expect("ACGT"),
            alphabet::encode(YEAST_ADAPTER3).expect("ACGT"),
        )
    })
}

/// Whether a yeast read starts with the 5' adapter (up to two sequencing errors).
pub fn has_adapter5(codes: &[u8]) -> bool {
    let (a5, _) = adapter_codes();
    codes.len() > a5.len() && mismatches(&codes[..a5.len()], a5) <= ADAPTER_MISMATCHES
}

fn has_adapter3(codes: &[u8]) -> bool {
    let (_, a3) = adapter_codes();
    codes.len() >= a3.len()
        && mismatches(&codes[codes.len() - a3.len()..], a3) <= ADAPTER_MISMATCHES
}

/// The part of a yeast read that follows the plasmid's left flank, and the adapters to add.
fn plasmid_body(codes: &[u8]) -> ((usize, usize), Adapters) {
    if has_adapter5(codes) {
        ((YEAST_ADAPTER_LEN, codes.len()), Adapters::None)
    } else if has_adapter3(codes) {
        ((0, codes.len()), Adapters::Five)
    } else {
        ((0, codes.len()), Adapters::Both)
    }
}

/// A [`Padding`] with its flanks encoded, ready to apply.
#[derive(Debug, Clone)]
pub struct Padder {
    padding: Padding,
    left: Vec<u8>,
    right: Vec<u8>,
}

impl Padder {
    /// The padding rule this applies.
    pub fn padding(&self) -> &Padding {
        &self.padding
    }

    /// The model input length.
    pub fn length(&self) -> usize {
        self.padding.length()
    }

    /// Pad (or trim) `codes` to the model's length, written into `out` (cleared first).
    pub fn apply(&self, codes: &[u8], out: &mut Vec<u8>) -> Result<Fit, Problem> {
        let fit = self.padding.fit(codes)?;
        out.clear();
        let trim = self.padding.trim();
        let body = &codes[fit.body.0..fit.body.1];
        match &self.padding {
            Padding::Plasmid { length, .. } => {
                let with_adapter: Vec<u8>;
                let body = if fit.adapters == Adapters::Both {
                    with_adapter = [body, &adapter_codes().1].concat();
                    &with_adapter[..]
                } else {
                    body
                };
                fill(
                    body,
                    &self.left,
                    &self.right,
                    *length,
                    Align::Right,
                    trim,
                    out,
                )
            }
            Padding::Flanks { length, align, .. } => {
                fill(body, &self.left, &self.right, *length, *align, trim, out)
            }
            Padding::Exact { length, .. } => fill(body, &[], &[], *length, Align::Right, trim, out),
            Padding::UnlockDna { .. } => {
                // N-padded on both sides (`str.pad(side='both')`), then the reverse complement.
                fill(body, &[], &[], UNLOCK_STRAND, Align::Center, trim, out);
                let rc = alphabet::reverse_complement(out);
                out.extend(rc);
            }
            Padding::Bhi { length, .. } => {
                let align = if body.len() < *length {
                    bhi_side(body)
                } else {
                    Align::Right
                };
                fill(body, &self.left, &self.right, *length, align, trim, out)
            }
        }
        Ok(fit)
    }
}

/// The side the BHI rule pads a short read on: the reference's two draws (u1 < 0.333 →
/// right; else u2 > 0.666 → left; else both, the odd base to the right), from a generator
/// seeded by the read's bases (FNV-1a).
fn bhi_side(codes: &[u8]) -> Align {
    use rand::{Rng, SeedableRng};
    let seed = codes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
        (h ^ c as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    if rng.random::<f64>() < 0.333 {
        // Padding after the read: the read sits flush with the 5' end.
        Align::Left
    } else if rng.random::<f64>() > 0.666 {
        Align::Right
    } else {
        Align::Center
    }
}

/// The general rule: `left-flank tail + seq + right-flank head`, `length` long. Flanks too short
/// for the padding needed are extended with `N`.
fn fill(
    seq: &[u8],
    left: &[u8],
    right: &[u8],
    length: usize,
    align: Align,
    trim: Trim,
    out: &mut Vec<u8>,
) {
    if seq.len() >= length {
        let extra = seq.len() - length;
        let start = match trim {
            Trim::FivePrime | Trim::Error => extra,
            Trim::ThreePrime => 0,
            Trim::Center => extra / 2,
        };
        out.extend_from_slice(&seq[start..start + length]);
        return;
    }
    let pad = length - seq.len();
    let n_left = match align {
        Align::Right => pad,
        Align::Left => 0,
        Align::Center => pad / 2,
    };
    let n_right = pad - n_left;
    let from_left = n_left.min(left.len());
    out.extend(std::iter::repeat_n(alphabet::N, n_left - from_left));
    out.extend_from_slice(&left[left.len() - from_left..]);
    out.extend_from_slice(seq);
    let from_right = n_right.min(right.len());
    out.extend_from_slice(&right[..from_right]);
    out.extend(std::iter::repeat_n(alphabet::N, n_right - from_right));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::alphabet::{decode, encode};

    const LEFT150: &str = "AGTCCACTATTAAAGAACGTGGACTCCAACGTCAAAGGGCGAAAAACCGTCTATCAGGGCGATGGCCCACTACGTGAACCATCACCCTAATCAAGTGCTAGCAGGAATGATGCAAAAGGTTCCCGATTCGAACTGCATTTTTTTCACATC";

    fn pad(p: &Padding, s: &str) -> String {
        let mut out = Vec::new();
        let padder = p.prepare().unwrap();
        padder
            .apply(&encode(s.as_bytes()).unwrap(), &mut out)
            .unwrap();
        decode(&out)
    }

    #[test]
    fn plasmid_flanks_match_spec() {
        let f = plasmid_flanks();
        assert_eq!(decode(&f.left150), LEFT150);
        assert!(decode(&f.right).starts_with("GGTTACGGCTGTTTCTTAATTAAAAAAAGATAGAAAACATTAGG"));
    }

    #[test]
    fn a_110_nt_read_gets_57_nt_of_plasmid() {
        // First row of the real training sample.
        let read = "TGCATTTTTTTCACATCCTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTGGGGTTACGGCTGTT";
        assert_eq!(read.len(), 110);
        let padded = pad(&Padding::yeast(), read);
        assert_eq!(padded.len(), 150);
        let expect = format!("{}{}", &LEFT150[150 - 57..], &read[17..]);
        assert_eq!(padded, expect);
        assert!(padded.ends_with("GGTTACGGCTGTT"));
    }

    #[test]
    fn an_87_nt_read_gets_80_nt_of_plasmid() {
        let read = format!("TGCATTTTTTTCACATC{}GGTTACGGCTGTT", "ACGT".repeat(14) + "A");
        assert_eq!(read.len(), 87);
        let padded = pad(&Padding::yeast(), &read);
        assert_eq!(padded.len(), 150);
        assert_eq!(&padded[..80], &LEFT150[70..]);
        assert_eq!(&padded[80..], &read[17..]);
    }

    #[test]
    fn reads_longer_than_167_are_refused_unless_cropped() {
        let core: String = "ACGT".repeat(40); // 160
        let read = format!("TGCATTTTTTTCACATC{core}GGTTACGGCTGTT"); // 190 nt
        let e = Padding::yeast()
            .check(&encode(read.as_bytes()).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("190 nt") && e.contains("--crop"), "{e}");
        // The reference's behaviour, asked for: the 5' end goes.
        let padded = pad(&Padding::yeast().with_trim(Trim::FivePrime), &read);
        assert_eq!(padded, &read[read.len() - 150..]);
    }

    #[test]
    fn a_bare_insert_gets_both_adapters_and_loses_nothing() {
        let insert = "ACGTTGCA".repeat(10); // 80 nt, no adapters
        let padded = pad(&Padding::yeast(), &insert);
        let read = format!("TGCATTTTTTTCACATC{insert}GGTTACGGCTGTT");
        assert_eq!(padded, pad(&Padding::yeast(), &read));
        assert!(padded.contains(&insert));
        // An insert with its 3' adapter but no 5' adapter gets only the 5' one.
        let with3 = format!("{insert}GGTTACGGCTGTT");
        assert_eq!(pad(&Padding::yeast(), &with3), padded);
        // Two sequencing errors in the 5' adapter still count as the adapter.
        let noisy = format!("TGCATTATTTTCACAAC{insert}GGTTACGGCTGTT");
        assert_eq!(&pad(&Padding::yeast(), &noisy)[150 - 93..], &noisy[17..]);
    }

    #[test]
    fn reads_without_insert_are_rejected() {
        assert_eq!(Padding::yeast().check(&[]), Err(Problem::EmptySequence));
    }

    #[test]
    fn general_flanks_align_and_trim() {
        let p = |align, trim| Padding::Flanks {
            length: 8,
            left: "GGGG".into(),
            right: "CCCC".into(),
            align,
            trim,
        };
        assert_eq!(pad(&p(Align::Center, Trim::Error), "AAA"), "GGAAACCC");
        assert_eq!(pad(&p(Align::Right, Trim::Error), "AAA"), "NGGGGAAA");
        assert_eq!(pad(&p(Align::Left, Trim::Error), "AAA"), "AAACCCCN");
        assert_eq!(pad(&p(Align::Left, Trim::Center), "AAAATTTTG"), "AAAATTTT");
        assert_eq!(
            pad(&p(Align::Left, Trim::FivePrime), "GAAAATTTT"),
            "AAAATTTT"
        );
        assert_eq!(
            p(Align::Left, Trim::Error).check(&[0; 9]),
            Err(Problem::TooLong { length: 9, max: 8 })
        );
    }

    #[test]
    fn bhi_padding_fills_from_its_flanks_on_the_drawn_side() {
        assert_eq!((BHI_LEFT.len(), BHI_RIGHT.len()), (37, 76));
        let p = Padding::bhi();
        // A long read keeps its first 110 nt.
        let long = "ACGTTGCA".repeat(15);
        assert_eq!(pad(&p, &long), &long[..110]);
        // Short reads: every padding is flank tail + read + flank head, and the same read
        // always gets the same one.
        let (mut sides, mut n) = ([0usize; 3], 0);
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..600 {
            let read: String = (0..100)
                .map(|_| b"ACGT"[rng.random_range(0..4)] as char)
                .collect();
            let padded = pad(&p, &read);
            assert_eq!(padded, pad(&p, &read));
            assert_eq!(padded.len(), 110);
            let at = (0..=10)
                .find(|&k| padded[k..k + 100] == read)
                .expect("the read is kept whole");
            let left = std::str::from_utf8(BHI_LEFT).unwrap();
            let right = std::str::from_utf8(BHI_RIGHT).unwrap();
            assert_eq!(&padded[..at], &left[37 - at..]);
            assert_eq!(&padded[at + 100..], &right[..10 - at]);
            sides[match at {
                0 => 0,
                10 => 1,
                _ => 2,
            }] += 1;
            n += 1;
        }
        // The reference's odds: 0.333 right, 0.223 left, 0.444 both.
        let frac = |k: usize| sides[k] as f64 / n as f64;
        assert!((frac(0) - 0.333).abs() < 0.06, "{sides:?}");
        assert!((frac(1) - 0.223).abs() < 0.06, "{sides:?}");
        assert!((frac(2) - 0.444).abs() < 0.06, "{sides:?}");
        // Too short for any draw: a clear error.
        let e = p.check(&[0; 72]).unwrap_err().to_string();
        assert!(e.contains("at least 73 nt"), "{e}");
        assert!(p.check(&[0; 73]).is_ok());
    }

    #[test]
    fn unlock_dna_padding_trims_centres_and_appends_the_reverse_complement() {
        let p = Padding::unlock_dna();
        // A demo read: 17 + 80 + 13 = 110 nt → 70 nt after the trim → 15 N + 70 + 15 N.
        let read = "TGCATTTTTTTCACATCCTTCAACCAAAATATAATATTCAATATCTTGTAGGGACGATCAATATAAGTCGCCCGGACCATATAAGGCTAAGGTGTGGGGTTACGGCTGTT";
        let padded = pad(&p, read);
        assert_eq!(padded.len(), 200);
        let body = &read[20..90];
        let strand = format!("{}{body}{}", "N".repeat(15), "N".repeat(15));
        assert_eq!(&padded[..100], strand);
        let rc: String = strand
            .bytes()
            .rev()
            .map(|b| match b {
                b'A' => 'T',
                b'C' => 'G',
                b'G' => 'C',
                b'T' => 'A',
                _ => 'N',
            })
            .collect();
        assert_eq!(&padded[100..], rc);
        // An odd remainder puts the extra N on the right.
        let odd = pad(&p, &"A".repeat(40 + 99));
        assert_eq!((&odd[..1], &odd[99..100]), ("A", "N"));
        // Too long after the trim, or nothing left: clear errors.
        let e = p.check(&[0; 141]).unwrap_err().to_string();
        assert!(e.contains("101 nt after the Unlock_DNA trim"), "{e}");
        assert!(p.with_trim(Trim::Center).check(&[0; 141]).is_ok());
        let e = p.check(&[0; 40]).unwrap_err().to_string();
        assert!(e.contains("holds nothing"), "{e}");
    }

    #[test]
    fn exact_padding_refuses_other_lengths() {
        let p = Padding::exact(4);
        assert_eq!(pad(&p, "ACGT"), "ACGT");
        assert!(p.check(&[0; 3]).is_err());
        assert_eq!(
            p.check(&[0; 5]),
            Err(Problem::TooLong { length: 5, max: 4 })
        );
        assert_eq!(pad(&p.with_trim(Trim::Center), "AACGTT"), "ACGT");
    }
}
