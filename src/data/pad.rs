//! Padding and trimming sequences to the model's input length.
//!
//! Written once, used by training, prediction, interpretation and design alike.
//!
//! - [`Padding::Plasmid`] is the yeast DREAM rule (SPEC §2.2): drop the read's own 17-nt left
//!   adapter, put the 150 nt of plasmid that precede the insert in front, keep the last 150
//!   characters. Padding is 5' only and a read longer than 167 nt loses its 5' end, as in the
//!   reference.
//! - [`Padding::Flanks`] is the general rule for other data sets: fill to `length` from given
//!   flanks, aligned as asked; longer sequences are an error unless a trim side is chosen.
//! - [`Padding::Exact`]: every sequence must already have the model's length.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::alphabet;
use crate::error::Problem;

/// Length of the left adapter at the start of every yeast read (`TGCATTTTTTTCACATC`).
pub const YEAST_ADAPTER_LEN: usize = 17;
/// The model input length of the yeast DREAM models.
pub const YEAST_INPUT_LEN: usize = 150;

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
    },
}

impl Padding {
    /// The yeast DREAM rule at 150 nt.
    pub fn yeast() -> Self {
        Padding::Plasmid {
            length: YEAST_INPUT_LEN,
        }
    }

    /// The model input length this padding produces.
    pub fn length(&self) -> usize {
        match self {
            Padding::Plasmid { length }
            | Padding::Flanks { length, .. }
            | Padding::Exact { length } => *length,
        }
    }

    /// The longest raw sequence accepted without error, if there is a limit.
    pub fn max_len(&self) -> Option<usize> {
        match self {
            Padding::Plasmid { .. } => None,
            Padding::Flanks { length, trim, .. } => (*trim == Trim::Error).then_some(*length),
            Padding::Exact { length } => Some(*length),
        }
    }

    /// Whether a raw sequence of `len` nt can be padded; the problem if not.
    pub fn check(&self, len: usize) -> Result<(), Problem> {
        if len == 0 {
            return Err(Problem::EmptySequence);
        }
        match self {
            Padding::Plasmid { .. } if len <= YEAST_ADAPTER_LEN => Err(Problem::Other(format!(
                "read of {len} nt is no longer than the {YEAST_ADAPTER_LEN}-nt left adapter, so it holds no insert"
            ))),
            Padding::Exact { length } if len != *length => Err(if len > *length {
                Problem::TooLong {
                    length: len,
                    max: *length,
                }
            } else {
                Problem::Other(format!(
                    "sequence of {len} nt is shorter than the model input ({length} nt) and this model takes no padding"
                ))
            }),
            _ => match self.max_len() {
                Some(max) if len > max => Err(Problem::TooLong { length: len, max }),
                _ => Ok(()),
            },
        }
    }

    /// Checks the flanks and prepares the padding for use on the hot path.
    pub fn prepare(&self) -> Result<Padder, String> {
        if self.length() == 0 {
            return Err("padding length must be positive".into());
        }
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
            Padding::Exact { .. } => (Vec::new(), Vec::new()),
        };
        Ok(Padder {
            padding: self.clone(),
            left,
            right,
        })
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
    pub fn apply(&self, codes: &[u8], out: &mut Vec<u8>) -> Result<(), Problem> {
        self.padding.check(codes.len())?;
        out.clear();
        match &self.padding {
            Padding::Plasmid { length } => fill(
                &codes[YEAST_ADAPTER_LEN..],
                &self.left,
                &self.right,
                *length,
                Align::Right,
                Trim::FivePrime,
                out,
            ),
            Padding::Flanks {
                length,
                align,
                trim,
                ..
            } => fill(codes, &self.left, &self.right, *length, *align, *trim, out),
            Padding::Exact { .. } => out.extend_from_slice(codes),
        }
        Ok(())
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
    fn reads_longer_than_167_lose_their_5_prime_end() {
        let core: String = "ACGT".repeat(40); // 160
        let read = format!("TGCATTTTTTTCACATC{core}GGTTACGGCTGTT"); // 190 nt
        let padded = pad(&Padding::yeast(), &read);
        assert_eq!(padded, &read[read.len() - 150..]);
    }

    #[test]
    fn reads_without_insert_are_rejected() {
        assert!(Padding::yeast().check(17).is_err());
        assert_eq!(Padding::yeast().check(0), Err(Problem::EmptySequence));
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
            p(Align::Left, Trim::Error).check(9),
            Err(Problem::TooLong { length: 9, max: 8 })
        );
    }

    #[test]
    fn exact_padding_refuses_other_lengths() {
        let p = Padding::Exact { length: 4 };
        assert_eq!(pad(&p, "ACGT"), "ACGT");
        assert!(p.check(3).is_err());
        assert_eq!(p.check(5), Err(Problem::TooLong { length: 5, max: 4 }));
    }
}
