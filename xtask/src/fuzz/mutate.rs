//! The mutations `cargo xtask fuzz` applies to corpus inputs without coverage guidance: the
//! byte-level moves libFuzzer makes most (flips, inserts, erases, copies, splices) and tokens
//! that matter to busmq's formats (header digits and colons, JSON punctuation, URL pieces,
//! numbers at the edges of u32, u64 and usize).

/// A small, fast, seedable generator (xorshift64*): reproducible from `--seed`.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// FNV-1a, to give each target its own stream from one seed.
pub(super) fn hash(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}

const TOKENS: &[&[u8]] = &[
    b":",
    b"0:",
    b"0:0:",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b"\\",
    b"\\u0000",
    b"null",
    b"\"h\":",
    b"{\"h\":{\"a\":\"b\"}}",
    b"\"queue\":",
    b"@",
    b"://",
    b"redis://",
    b"rediss://",
    b"redis+sentinel://",
    b"redis+cluster://",
    b"redis+unix://",
    b"?",
    b"&",
    b"#",
    b"%",
    b"%zz",
    b"[::1]",
    b"pass=",
    b"db=",
    b"65536",
    b"0",
    b"4294967295",
    b"4294967296",
    b"18446744073709551615",
    b"18446744073709551616",
    b"1152921504606846976",
    b"\xff",
    b"\x00",
    b"\xc3",
    b"\xdd\xff\xff\xff\xff",
    b"\xdf\xff\xff\xff\xff",
    b"\xc6\xff\xff\xff\xff",
    b"\xcb",
];

/// The largest input made: far above every format's interesting sizes, small enough to run
/// many inputs a second.
const MAX_LEN: usize = 16 * 1024;

/// A mutation of a corpus input: one to four moves.
pub(super) fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(9) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 => data.insert(at, rng.next() as u8),
            3 if at < data.len() => {
                let end = at + 1 + rng.below((data.len() - at).min(16));
                data.drain(at..end);
            }
            4 if !data.is_empty() => {
                // Copies a piece of the input somewhere else in it.
                let from = rng.below(data.len());
                let len = 1 + rng.below((data.len() - from).min(32));
                let piece = data[from..from + len].to_vec();
                data.splice(at..at, piece);
            }
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                data.splice(at..at, other[from..].iter().copied());
            }
            6 => data.truncate(at),
            7 => {
                // Repeats a piece many times: long inputs, deep nesting, many keys.
                if !data.is_empty() {
                    let from = rng.below(data.len());
                    let len = 1 + rng.below((data.len() - from).min(8));
                    let piece = data[from..from + len].to_vec();
                    let times = 1 + rng.below(512);
                    let tail: Vec<u8> = piece.iter().copied().cycle().take(len * times).collect();
                    data.splice(at..at, tail);
                }
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
        }
        data.truncate(MAX_LEN);
    }
    data
}
