//! The blake3 digest of bytes in memory: a large input is hashed in blocks on the calling
//! thread and scoped threads of its own, and the blocks' chaining values merged.

use std::sync::atomic::{AtomicUsize, Ordering};

use blake3::hazmat::{ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root};

/// Inputs up to this size are hashed by `blake3::hash` on the calling thread.
const PARALLEL_MIN: usize = 4 << 20;

/// The size of the blocks the threads take in turn: a whole subtree of blake3's tree (a
/// power of two of its 1 KiB chunks), large enough for its SIMD hashing of many chunks.
const BLOCK: usize = 1 << 20;

/// The most threads one digest uses, the calling one included.
const MAX_THREADS: usize = 8;

/// The blake3 digest of `bytes`, equal to `blake3::hash(bytes)`. Above a few MiB, the calling
/// thread and scoped threads spawned for it (one per available core, within a bound) hash
/// blocks in turn; the calling thread waits for nothing else, so it never runs other work
/// meanwhile (as a thread of a rayon pool would), and nothing is installed process-wide.
pub(crate) fn digest(bytes: &[u8]) -> blake3::Hash {
    if bytes.len() <= PARALLEL_MIN {
        return blake3::hash(bytes);
    }
    // Asked only here: it reads the process's CPU affinity and its cgroup's quota.
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_THREADS);
    if threads < 2 {
        return blake3::hash(bytes);
    }
    digest_on(bytes, threads)
}

/// The digest of `bytes` (longer than one block) on `threads` threads, the calling one
/// included.
fn digest_on(bytes: &[u8], threads: usize) -> blake3::Hash {
    let blocks = bytes.len().div_ceil(BLOCK);
    let next = AtomicUsize::new(0);
    // Each thread takes the next block not taken, and keeps its chaining value.
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= blocks {
                return done;
            }
            let start = i * BLOCK;
            let block = &bytes[start..bytes.len().min(start + BLOCK)];
            let cv = blake3::Hasher::new()
                .set_input_offset(start as u64)
                .update(block)
                .finalize_non_root();
            done.push((i, cv));
        }
    };
    let mut cvs = vec![[0; blake3::OUT_LEN]; blocks];
    std::thread::scope(|s| {
        // A thread the system cannot start leaves its share to the others.
        let others: Vec<_> = (1..threads.min(blocks))
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, work).ok())
            .collect();
        let mut done = work();
        for other in others {
            // Hashing a block does not panic; if a thread did, so does the digest.
            done.extend(
                other
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
        for (i, cv) in done {
            cvs[i] = cv;
        }
    });
    let len = bytes.len() as u64;
    let left = left_subtree_len(len);
    blake3::hazmat::merge_subtrees_root(
        &merge(&cvs, 0, left),
        &merge(&cvs, left, len - left),
        Mode::Hash,
    )
}

/// The chaining value of the subtree of `len` bytes at `offset` (a multiple of [`BLOCK`]),
/// merged from the blocks' chaining values `cvs`.
fn merge(cvs: &[ChainingValue], offset: u64, len: u64) -> ChainingValue {
    if len <= BLOCK as u64 {
        return cvs[(offset / BLOCK as u64) as usize];
    }
    // A subtree longer than a block splits at a power of two of chunks no smaller than a
    // block, so both its halves are whole blocks or end with the input's last block.
    let left = left_subtree_len(len);
    merge_subtrees_non_root(
        &merge(cvs, offset, left),
        &merge(cvs, offset + left, len - left),
        Mode::Hash,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every position, so a block hashed at the wrong offset shows.
    fn input(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i >> 10) as u8)
            .collect()
    }

    #[test]
    fn equals_blake3_at_every_boundary() {
        let chunk = blake3::CHUNK_LEN;
        let sizes = [
            0,
            1,
            chunk - 1,
            chunk,
            chunk + 1,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            BLOCK + chunk,
            2 * BLOCK,
            3 * BLOCK + 5,
            PARALLEL_MIN - 1,
            PARALLEL_MIN,
            PARALLEL_MIN + 1,
            PARALLEL_MIN + chunk,
            8 * BLOCK,
            9 * BLOCK + 7,
        ];
        let all = input(*sizes.iter().max().unwrap());
        for len in sizes {
            let bytes = &all[..len];
            let expected = blake3::hash(bytes);
            assert_eq!(digest(bytes), expected, "{len} bytes");
            if len > BLOCK {
                // Whatever the machine's cores, on two threads and on more than blocks.
                assert_eq!(digest_on(bytes, 2), expected, "{len} bytes on 2 threads");
                assert_eq!(digest_on(bytes, 3), expected, "{len} bytes on 3 threads");
                assert_eq!(digest_on(bytes, 64), expected, "{len} bytes on 64 threads");
            }
        }
    }
}
