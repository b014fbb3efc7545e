//! Dinucleotide shuffles: references for attributions that keep a sequence's composition
//! (every base and every adjacent pair) while destroying its motifs.

use rand::Rng;
use rand::seq::SliceRandom;

/// A random permutation of `seq` (base codes 0–4) with the same first base and the same count
/// of every dinucleotide, by the Altschul–Erickson construction: each base's outgoing edges
/// in the original are shuffled, except its last one, which stays last, so that the walk from
/// the first base uses every edge (the kept last edges form a tree toward the final base).
pub fn dinucleotide_shuffle(seq: &[u8], rng: &mut impl Rng) -> Vec<u8> {
    if seq.len() < 3 {
        return seq.to_vec();
    }
    let symbols = usize::from(*seq.iter().max().expect("not empty")) + 1;
    // next[c]: the positions that follow an occurrence of c, in order.
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); symbols];
    for i in 0..seq.len() - 1 {
        next[usize::from(seq[i])].push(i + 1);
    }
    for edges in &mut next {
        if edges.len() > 1 {
            let keep = edges.len() - 1;
            edges[..keep].shuffle(rng);
        }
    }
    let mut used = vec![0usize; symbols];
    let mut out = Vec::with_capacity(seq.len());
    let mut at = 0;
    out.push(seq[0]);
    for _ in 1..seq.len() {
        let c = usize::from(seq[at]);
        at = next[c][used[c]];
        used[c] += 1;
        out.push(seq[at]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn pairs(s: &[u8]) -> Vec<usize> {
        let mut n = vec![0; 25];
        for w in s.windows(2) {
            n[usize::from(w[0]) * 5 + usize::from(w[1])] += 1;
        }
        n
    }

    #[test]
    fn keeps_first_base_and_every_dinucleotide_count() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for len in [3usize, 10, 80, 150] {
            let seq: Vec<u8> = (0..len).map(|_| rng.random_range(0..5u8)).collect();
            let mut changed = false;
            for _ in 0..5 {
                let s = dinucleotide_shuffle(&seq, &mut rng);
                assert_eq!(s.len(), seq.len());
                assert_eq!(s[0], seq[0]);
                assert_eq!(pairs(&s), pairs(&seq), "len {len}");
                changed |= s != seq;
            }
            if len >= 80 {
                assert!(changed, "a long sequence is actually shuffled");
            }
        }
    }
}
