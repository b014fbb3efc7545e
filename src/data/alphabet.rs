//! The DNA alphabet: validation, compact codes, reverse complement.
//!
//! Bases are stored as one byte each, in the model's channel order **A, G, C, T** (codes 0–3;
//! SPEC §2.3 — the reference's order, which its weights depend on). `N` and every IUPAC
//! ambiguity code become [`N`] (code 4), encoded as 0.25 in each base channel. In this order the
//! complement of code `c < 4` is `3 - c` (A↔T, G↔C).

/// Code of `A` (channel 0).
pub const A: u8 = 0;
/// Code of `G` (channel 1).
pub const G: u8 = 1;
/// Code of `C` (channel 2).
pub const C: u8 = 2;
/// Code of `T` (channel 3).
pub const T: u8 = 3;
/// Code of `N` and of every IUPAC ambiguity code.
pub const N: u8 = 4;

/// The letters of codes 0..=4, in channel order.
pub const LETTERS: [u8; 5] = *b"AGCTN";

const INVALID: u8 = 255;

const fn build_table() -> [u8; 256] {
    let mut t = [INVALID; 256];
    let pairs: [(u8, u8); 4] = [(b'A', A), (b'G', G), (b'C', C), (b'T', T)];
    let mut i = 0;
    while i < pairs.len() {
        t[pairs[i].0 as usize] = pairs[i].1;
        t[pairs[i].0.to_ascii_lowercase() as usize] = pairs[i].1;
        i += 1;
    }
    let ambiguous = b"NRYSWKMBDHV";
    let mut j = 0;
    while j < ambiguous.len() {
        t[ambiguous[j] as usize] = N;
        t[ambiguous[j].to_ascii_lowercase() as usize] = N;
        j += 1;
    }
    t
}

static CODE_OF: [u8; 256] = build_table();

/// The code of one letter, or `None` for a character outside ACGT/N/IUPAC (any case).
#[inline]
pub fn code(letter: u8) -> Option<u8> {
    match CODE_OF[letter as usize] {
        INVALID => None,
        c => Some(c),
    }
}

/// Encode a sequence of letters into codes, appending to `out`.
///
/// On a bad character returns its 0-based position in `seq` and the character; `out` may then
/// hold a partial sequence and should be truncated by the caller.
pub fn encode_into(seq: &[u8], out: &mut Vec<u8>) -> Result<(), (usize, char)> {
    out.reserve(seq.len());
    for (i, &b) in seq.iter().enumerate() {
        match CODE_OF[b as usize] {
            INVALID => return Err((i, char_at(seq, i))),
            c => out.push(c),
        }
    }
    Ok(())
}

/// Encode a sequence of letters into a fresh vector of codes.
pub fn encode(seq: &[u8]) -> Result<Vec<u8>, (usize, char)> {
    let mut v = Vec::with_capacity(seq.len());
    encode_into(seq, &mut v)?;
    Ok(v)
}

/// The (possibly multi-byte) character starting at byte `i`, for error messages.
fn char_at(seq: &[u8], i: usize) -> char {
    let tail = &seq[i..seq.len().min(i + 4)];
    match std::str::from_utf8(tail) {
        Ok(s) => s.chars().next().unwrap_or('\u{fffd}'),
        Err(e) => std::str::from_utf8(&tail[..e.valid_up_to()])
            .ok()
            .and_then(|s| s.chars().next())
            .unwrap_or(if seq[i].is_ascii() {
                seq[i] as char
            } else {
                '\u{fffd}'
            }),
    }
}

/// Complement of one code (N stays N).
#[inline]
pub fn complement(code: u8) -> u8 {
    if code < N { 3 - code } else { N }
}

/// Reverse complement of a code sequence.
pub fn reverse_complement(codes: &[u8]) -> Vec<u8> {
    codes.iter().rev().map(|&c| complement(c)).collect()
}

/// Codes back to letters (`AGCTN`).
pub fn decode(codes: &[u8]) -> String {
    codes
        .iter()
        .map(|&c| LETTERS[c.min(N) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_order_is_agct() {
        assert_eq!(encode(b"AGCT").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(encode(b"acgt").unwrap(), vec![0, 2, 1, 3]);
    }

    #[test]
    fn iupac_codes_are_n() {
        assert_eq!(encode(b"NRYSWKMBDHVnry").unwrap(), vec![N; 14]);
    }

    #[test]
    fn bad_characters_are_reported_with_position() {
        assert_eq!(encode(b"ACGX"), Err((3, 'X')));
        assert_eq!(encode(b"AC-G"), Err((2, '-')));
        assert_eq!(encode("ACé".as_bytes()), Err((2, 'é')));
        assert_eq!(encode(b"AC G"), Err((2, ' ')));
    }

    #[test]
    fn reverse_complement_swaps_a_t_and_g_c() {
        let s = encode(b"AAGCTN").unwrap();
        assert_eq!(decode(&reverse_complement(&s)), "NAGCTT");
        let s = encode(b"ACCGT").unwrap();
        assert_eq!(decode(&reverse_complement(&s)), "ACGGT");
        assert_eq!(reverse_complement(&reverse_complement(&s)), s);
    }
}
