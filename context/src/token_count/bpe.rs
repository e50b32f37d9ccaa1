//! Byte-level BPE, counting only: the merge loop of `tokenizers` (`Word::merge_all`: lowest rank first, leftmost
//! among equal ranks, stale queue entries skipped) over the bytes of one pre-token. Only the number of symbols
//! left at the end is returned; which ids they are is never needed for a count.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use rustc_hash::FxBuildHasher;

/// Up to this many bytes a pre-token is merged by rescanning its pair ranks (no heap, no linked list): cheaper
/// for the short words code is made of. Longer ones use the queue, O(n log n) whatever the input.
const SHORT: usize = 48;

/// A merge's priority and result.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Merge {
    rank: u32,
    id: u32,
}

/// Merge ranks by pair of ids.
pub(super) struct Merges {
    map: HashMap<u64, Merge, FxBuildHasher>,
}

impl Merges {
    /// An empty table with room for `capacity` merges.
    pub fn with_capacity(capacity: usize) -> Self {
        Merges {
            map: HashMap::with_capacity_and_hasher(capacity, FxBuildHasher),
        }
    }

    /// Records that `left` + `right` merge into `id` with priority `rank` (lower first).
    pub fn insert(&mut self, left: u32, right: u32, rank: u32, id: u32) {
        self.map.insert(key(left, right), Merge { rank, id });
    }

    fn get(&self, left: u32, right: u32) -> Option<Merge> {
        self.map.get(&key(left, right)).copied()
    }
}

fn key(left: u32, right: u32) -> u64 {
    (u64::from(left) << 32) | u64::from(right)
}

/// Reusable buffers for [`Bpe::count`] (one per thread, with the memo).
#[derive(Default)]
pub(super) struct Scratch {
    ids: Vec<u32>,
    ranks: Vec<u32>,
    prev: Vec<usize>,
    next: Vec<usize>,
    alive: Vec<bool>,
    queue: BinaryHeap<Reverse<(u32, usize, u32)>>,
}

/// The byte-level BPE model: the id of every byte and the merge table.
pub(super) struct Bpe {
    byte_ids: [u32; 256],
    merges: Merges,
}

/// Rank of "no merge" in [`Scratch::ranks`].
const NONE: u32 = u32::MAX;

impl Bpe {
    /// A model from its byte ids and merges.
    pub fn new(byte_ids: [u32; 256], merges: Merges) -> Self {
        Bpe { byte_ids, merges }
    }

    /// The number of tokens BPE turns `bytes` (one pre-token) into.
    pub fn count(&self, bytes: &[u8], scratch: &mut Scratch) -> usize {
        match bytes {
            [] => 0,
            [_] => 1,
            [a, b] => {
                let pair = self.merges.get(self.byte_id(*a), self.byte_id(*b));
                if pair.is_some() {
                    1
                } else {
                    2
                }
            }
            _ if bytes.len() <= SHORT => self.count_short(bytes, scratch),
            _ => self.count_long(bytes, scratch),
        }
    }

    fn byte_id(&self, byte: u8) -> u32 {
        self.byte_ids[usize::from(byte)]
    }

    fn rank(&self, left: u32, right: u32) -> u32 {
        self.merges.get(left, right).map_or(NONE, |m| m.rank)
    }

    /// Rescans the pair ranks for the lowest (leftmost on ties) after every merge: O(n²) in the worst case, but
    /// n ≤ [`SHORT`] and the scan is over a few u32s.
    fn count_short(&self, bytes: &[u8], scratch: &mut Scratch) -> usize {
        let Scratch { ids, ranks, .. } = scratch;
        ids.clear();
        ids.extend(bytes.iter().map(|&b| self.byte_id(b)));
        ranks.clear();
        ranks.extend(ids.windows(2).map(|w| self.rank(w[0], w[1])));
        loop {
            let mut best = NONE;
            let mut at = 0;
            for (i, &rank) in ranks.iter().enumerate() {
                if rank < best {
                    best = rank;
                    at = i;
                }
            }
            if best == NONE {
                return ids.len();
            }
            let (Some(&left), Some(&right)) = (ids.get(at), ids.get(at + 1)) else {
                return ids.len();
            };
            let Some(merged) = self.merges.get(left, right) else {
                return ids.len();
            };
            ids[at] = merged.id;
            ids.remove(at + 1);
            ranks.remove(at);
            if at > 0 {
                ranks[at - 1] = self.rank(ids[at - 1], merged.id);
            }
            if let Some(&next) = ids.get(at + 1) {
                ranks[at] = self.rank(merged.id, next);
            }
        }
    }

    /// `tokenizers`' own loop: a priority queue of (rank, position, result) over a linked list of symbols;
    /// an entry whose pair no longer produces its result (a neighbour was merged away) is skipped.
    fn count_long(&self, bytes: &[u8], scratch: &mut Scratch) -> usize {
        let Scratch {
            ids,
            prev,
            next,
            alive,
            queue,
            ..
        } = scratch;
        let n = bytes.len();
        ids.clear();
        ids.extend(bytes.iter().map(|&b| self.byte_id(b)));
        prev.clear();
        prev.extend((0..n).map(|i| i.wrapping_sub(1)));
        next.clear();
        next.extend(1..=n);
        alive.clear();
        alive.resize(n, true);
        queue.clear();
        for (i, w) in ids.windows(2).enumerate() {
            if let Some(m) = self.merges.get(w[0], w[1]) {
                queue.push(Reverse((m.rank, i, m.id)));
            }
        }
        let mut symbols = n;
        while let Some(Reverse((_, at, id))) = queue.pop() {
            let right = next[at];
            if !alive[at] || right >= n {
                continue;
            }
            if self.merges.get(ids[at], ids[right]).map(|m| m.id) != Some(id) {
                continue;
            }
            ids[at] = id;
            alive[right] = false;
            symbols -= 1;
            let after = next[right];
            next[at] = after;
            if after < n {
                prev[after] = at;
                if let Some(m) = self.merges.get(id, ids[after]) {
                    queue.push(Reverse((m.rank, at, m.id)));
                }
            }
            let before = prev[at];
            if before < n {
                if let Some(m) = self.merges.get(ids[before], id) {
                    queue.push(Reverse((m.rank, before, m.id)));
                }
            }
        }
        symbols
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy model over bytes a, b, c (ids 0..256 are the bytes themselves).
    fn toy() -> Bpe {
        let mut byte_ids = [0u32; 256];
        for (i, id) in byte_ids.iter_mut().enumerate() {
            *id = i as u32;
        }
        let mut merges = Merges::with_capacity(4);
        // ab=256, bc=257, abc=258 (from ab+c), aa=259, aaaa=260
        merges.insert(u32::from(b'a'), u32::from(b'b'), 0, 256);
        merges.insert(u32::from(b'b'), u32::from(b'c'), 1, 257);
        merges.insert(256, u32::from(b'c'), 2, 258);
        merges.insert(u32::from(b'a'), u32::from(b'a'), 3, 259);
        merges.insert(259, 259, 4, 260);
        Bpe::new(byte_ids, merges)
    }

    #[test]
    fn short_and_long_paths_agree() {
        let bpe = toy();
        let mut scratch = Scratch::default();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..200 {
            for _ in 0..20 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        b"abc"[(seed % 3) as usize]
                    })
                    .collect();
                let long = bpe.count_long(&bytes, &mut scratch);
                if len >= 2 {
                    assert_eq!(bpe.count_short(&bytes, &mut scratch), long, "{bytes:?}");
                }
                if len <= SHORT {
                    assert_eq!(bpe.count(&bytes, &mut scratch), long);
                }
            }
        }
        assert_eq!(bpe.count(b"abc", &mut scratch), 1);
        assert_eq!(bpe.count(b"aaaaa", &mut scratch), 2);
        assert_eq!(bpe.count(b"cab", &mut scratch), 2);
    }
}
