//! From padded codes to the model's input channels (SPEC §2.3).
//!
//! Layout `(channels, length)`, channel-major: channels 0–3 are the one-hot bases, in the order
//! A, G, C, T by default (the DREAM models) or A, C, G, T (DeepSTARR, MPRAnn: a baseline keeps
//! its own order, [`BaseOrder`]); `N` is 0.25 in each (yeast) or all zeros (every other data
//! set, [`NCode`]; SPEC_BENCHMARKS §8). Then, when the model has them, `is_reverse` and
//! `is_singleton` as constant planes.

use serde::{Deserialize, Serialize};

use super::alphabet::{self, N};
use super::pad::{Padder, Padding};
use crate::error::Problem;

/// Which extra channels follow the four base channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channels {
    /// Channel 4: 0 for the forward strand, 1 for the reverse complement.
    pub is_reverse: bool,
    /// The next channel: 1 if the measured value is an integer (one cell only).
    pub is_singleton: bool,
    /// The Unlock_DNA data processor's tokens instead of the four base channels: one-hot over
    /// A, C, G, T, N and the mask token M (6 channels, in that order; SPEC_GRID §5 and Q1).
    /// No extra channels with it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tokens: bool,
    /// The order of the four base channels.
    #[serde(default, skip_serializing_if = "BaseOrder::is_default")]
    pub bases: BaseOrder,
    /// How `N` is encoded in the base channels.
    #[serde(default, skip_serializing_if = "NCode::is_default")]
    pub n: NCode,
}

/// The order of the four one-hot base channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseOrder {
    /// A, G, C, T: the DREAM models (the reference's order).
    #[default]
    Agct,
    /// A, C, G, T: DeepSTARR, MPRAnn, ChromBPNet.
    Acgt,
}

impl BaseOrder {
    fn is_default(&self) -> bool {
        *self == BaseOrder::default()
    }

    /// The channel of a base code (codes are A, G, C, T = 0–3).
    pub fn channel(self, code: u8) -> usize {
        match self {
            BaseOrder::Agct => code as usize,
            BaseOrder::Acgt => [0, 2, 1, 3][code as usize],
        }
    }

    /// The base letters in channel order.
    pub fn letters(self) -> [u8; 4] {
        match self {
            BaseOrder::Agct => *b"AGCT",
            BaseOrder::Acgt => *b"ACGT",
        }
    }
}

/// How an `N` (or other ambiguity code) is encoded in the four base channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NCode {
    /// 0.25 in each (the yeast DREAM models).
    #[default]
    Quarter,
    /// All zeros (the DREAM code for Drosophila and human, DeepSTARR, MPRAnn, ChromBPNet).
    Zero,
}

impl NCode {
    fn is_default(&self) -> bool {
        *self == NCode::default()
    }
}

impl Channels {
    /// The yeast DREAM input: 6 channels.
    pub const YEAST: Channels = Channels {
        is_reverse: true,
        is_singleton: true,
        tokens: false,
        bases: BaseOrder::Agct,
        n: NCode::Quarter,
    };
    /// The human and Drosophila inputs: 5 channels (no singleton channel).
    pub const REVERSE_ONLY: Channels = Channels {
        is_reverse: true,
        is_singleton: false,
        tokens: false,
        bases: BaseOrder::Agct,
        n: NCode::Quarter,
    };
    /// Plain one-hot: 4 channels (DeepSTARR, MPRAnn).
    pub const BASES_ONLY: Channels = Channels {
        is_reverse: false,
        is_singleton: false,
        tokens: false,
        bases: BaseOrder::Agct,
        n: NCode::Quarter,
    };
    /// The Unlock_DNA data processor's tokens, one-hot: 6 channels (A, C, G, T, N, M).
    pub const TOKENS: Channels = Channels {
        is_reverse: false,
        is_singleton: false,
        tokens: true,
        bases: BaseOrder::Agct,
        n: NCode::Quarter,
    };

    /// These channels with the base order `bases` and `N` encoded as `n`.
    pub const fn with_bases(self, bases: BaseOrder, n: NCode) -> Channels {
        Channels { bases, n, ..self }
    }

    /// Number of channels.
    pub fn count(&self) -> usize {
        if self.tokens {
            return TOKEN_CHANNELS;
        }
        4 + self.is_reverse as usize + self.is_singleton as usize
    }
}

/// Channels of the token encoding: A, C, G, T, N, M.
pub const TOKEN_CHANNELS: usize = 6;
/// The token channel of the mask token M.
pub const MASK_TOKEN: usize = 5;
/// The token channel of N (never masked).
pub const N_TOKEN: usize = 4;

/// The token channel (A, C, G, T, N order) of a base code (A, G, C, T, N order).
pub fn token_of(code: u8) -> usize {
    [0, 2, 1, 3, N_TOKEN][code.min(4) as usize]
}

/// How a model sees the two orientations of a sequence: what `flip` means to the encoder, what
/// `rc_double` trains on and what prediction averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Strands {
    /// The reverse complement of the whole padded input; predictions average the forward
    /// and the reverse complement, `is_reverse` set to match (yeast DREAM, SPEC §2.4).
    #[default]
    Average,
    /// One pass per row with the row's own orientation flag: the DREAM models on Drosophila
    /// and human data (SPEC_BENCHMARKS §1.4, §2.4), DeepSTARR.
    Given,
    /// MPRAnn's: only positions `start..end` (0-based, end exclusive: the 200-nt element
    /// between the two 15-nt adapters) are reverse-complemented, the adapters kept; the
    /// prediction averages the two versions (SPEC_BENCHMARKS §4.4).
    AverageCore {
        /// First position of the turned part.
        start: usize,
        /// One past its last position.
        end: usize,
    },
}

impl Strands {
    /// Whether this is the default (kept out of written configs).
    pub fn is_default(&self) -> bool {
        *self == Strands::default()
    }

    /// Whether predictions average two versions of each row.
    pub fn averages(&self) -> bool {
        !matches!(self, Strands::Given)
    }

    /// Rows a prediction encodes per sequence: 2 where it averages, else 1.
    pub fn versions(&self) -> usize {
        if self.averages() { 2 } else { 1 }
    }

    /// Whether the span fits inputs of `length`.
    pub fn check(&self, length: usize) -> Result<(), String> {
        match *self {
            Strands::AverageCore { start, end } if !(start < end && end <= length) => Err(format!(
                "[input] strands: the turned part {start}..{end} must lie inside the {length}-nt input"
            )),
            _ => Ok(()),
        }
    }
}

/// Per-row flags that fill the extra channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowFlags {
    /// Fill the reverse channel with 1.
    pub is_reverse: bool,
    /// Fill the singleton channel with 1.
    pub is_singleton: bool,
}

/// Pads, optionally reverse-complements, and one-hot encodes sequences.
#[derive(Debug, Clone)]
pub struct Encoder {
    padder: Padder,
    channels: Channels,
    strands: Strands,
}

impl Encoder {
    /// An encoder for the given padding and channels.
    pub fn new(padding: &Padding, channels: Channels) -> Result<Self, String> {
        Ok(Encoder {
            padder: padding.prepare()?,
            channels,
            strands: Strands::default(),
        })
    }

    /// This encoder with `strands` deciding what `flip` turns.
    pub fn with_strands(self, strands: Strands) -> Result<Self, String> {
        strands.check(self.length())?;
        Ok(Encoder { strands, ..self })
    }

    /// What `flip` turns and what prediction averages.
    pub fn strands(&self) -> Strands {
        self.strands
    }

    /// The yeast DREAM encoder: plasmid padding to 150, 6 channels.
    pub fn yeast() -> Self {
        Self::new(&Padding::yeast(), Channels::YEAST).expect("the yeast padding is valid")
    }

    /// The padding rule.
    pub fn padding(&self) -> &Padding {
        self.padder.padding()
    }

    /// The channels.
    pub fn channels(&self) -> Channels {
        self.channels
    }

    /// Model input length.
    pub fn length(&self) -> usize {
        self.padder.length()
    }

    /// Floats per encoded row: channels × length.
    pub fn row_len(&self) -> usize {
        self.channels.count() * self.length()
    }

    /// Pads `codes`, takes the reverse complement of the *padded* sequence when `flip` (so the
    /// plasmid context turns with it, as in the reference), and writes the input planes into
    /// `out` (`row_len()` floats). `scratch` is a reusable buffer.
    pub fn encode_row(
        &self,
        codes: &[u8],
        flip: bool,
        flags: RowFlags,
        scratch: &mut Vec<u8>,
        out: &mut [f32],
    ) -> Result<(), Problem> {
        self.padder.apply(codes, scratch)?;
        if flip {
            let turned = match self.strands {
                Strands::AverageCore { start, end } => &mut scratch[start..end],
                _ => &mut scratch[..],
            };
            turned.reverse();
            turned
                .iter_mut()
                .for_each(|c| *c = alphabet::complement(*c));
        }
        let len = self.length();
        debug_assert_eq!(out.len(), self.row_len());
        if self.channels.tokens {
            out.fill(0.0);
            for (j, &c) in scratch.iter().enumerate() {
                out[token_of(c) * len + j] = 1.0;
            }
            return Ok(());
        }
        out[..4 * len].fill(0.0);
        let (order, n_value) = (self.channels.bases, self.channels.n);
        for (j, &c) in scratch.iter().enumerate() {
            if c == N {
                if n_value == NCode::Quarter {
                    for ch in 0..4 {
                        out[ch * len + j] = 0.25;
                    }
                }
            } else {
                out[order.channel(c) * len + j] = 1.0;
            }
        }
        let mut ch = 4;
        if self.channels.is_reverse {
            out[ch * len..(ch + 1) * len].fill(flags.is_reverse as u8 as f32);
            ch += 1;
        }
        if self.channels.is_singleton {
            out[ch * len..(ch + 1) * len].fill(flags.is_singleton as u8 as f32);
        }
        Ok(())
    }
}

/// Whether a measured yeast value marks a singleton: exactly an integer (SPEC §2.1).
pub fn is_singleton(value: f64) -> bool {
    value.fract() == 0.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::alphabet::encode;

    fn plane(out: &[f32], len: usize, ch: usize) -> &[f32] {
        &out[ch * len..(ch + 1) * len]
    }

    #[test]
    fn one_hot_channels_follow_agct() {
        let enc = Encoder::new(&Padding::exact(5), Channels::YEAST).unwrap();
        let mut out = vec![9.0; enc.row_len()];
        let flags = RowFlags {
            is_reverse: false,
            is_singleton: true,
        };
        enc.encode_row(
            &encode(b"AGCTN").unwrap(),
            false,
            flags,
            &mut Vec::new(),
            &mut out,
        )
        .unwrap();
        assert_eq!(plane(&out, 5, 0), &[1.0, 0.0, 0.0, 0.0, 0.25]); // A
        assert_eq!(plane(&out, 5, 1), &[0.0, 1.0, 0.0, 0.0, 0.25]); // G
        assert_eq!(plane(&out, 5, 2), &[0.0, 0.0, 1.0, 0.0, 0.25]); // C
        assert_eq!(plane(&out, 5, 3), &[0.0, 0.0, 0.0, 1.0, 0.25]); // T
        assert_eq!(plane(&out, 5, 4), &[0.0; 5]); // is_reverse
        assert_eq!(plane(&out, 5, 5), &[1.0; 5]); // is_singleton
    }

    #[test]
    fn flip_reverse_complements_the_padded_sequence() {
        let enc = Encoder::yeast();
        let read = b"TGCATTTTTTTCACATCAAAAAAAAAAGGGGGGGGGGTTACGGCTGTT";
        let mut fwd = vec![0.0; enc.row_len()];
        let mut rev = vec![0.0; enc.row_len()];
        let codes = encode(read).unwrap();
        let flags = RowFlags {
            is_reverse: true,
            is_singleton: false,
        };
        let mut s = Vec::new();
        enc.encode_row(&codes, false, RowFlags::default(), &mut s, &mut fwd)
            .unwrap();
        enc.encode_row(&codes, true, flags, &mut s, &mut rev)
            .unwrap();
        let l = 150;
        for j in 0..l {
            // A at j forward is T at l-1-j reversed; G is C.
            assert_eq!(fwd[j], rev[3 * l + (l - 1 - j)]);
            assert_eq!(fwd[l + j], rev[2 * l + (l - 1 - j)]);
        }
        assert_eq!(plane(&rev, l, 4), &[1.0; 150][..]);
        assert_eq!(plane(&rev, l, 5), &[0.0; 150][..]);
    }

    #[test]
    fn five_channel_layout_has_no_singleton_plane() {
        let enc = Encoder::new(&Padding::exact(3), Channels::REVERSE_ONLY).unwrap();
        assert_eq!(enc.row_len(), 15);
        let mut out = vec![0.0; 15];
        let flags = RowFlags {
            is_reverse: true,
            is_singleton: true,
        };
        enc.encode_row(
            &encode(b"ACG").unwrap(),
            false,
            flags,
            &mut Vec::new(),
            &mut out,
        )
        .unwrap();
        assert_eq!(plane(&out, 3, 4), &[1.0; 3]);
    }

    #[test]
    fn singletons_are_integer_values() {
        assert!(is_singleton(12.0));
        assert!(is_singleton(0.0));
        assert!(!is_singleton(15.1823836007871));
    }
}
