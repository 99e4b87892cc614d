//! The blake3 digest of bytes in memory, or of a file: a large input is hashed in blocks on
//! the calling thread and scoped threads of its own, and the blocks' chaining values merged.

use std::io;
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
    match threads_for(bytes.len() as u64) {
        Some(threads) => digest_on(bytes, threads),
        None => blake3::hash(bytes),
    }
}

/// [`digest`], while another thread of the process is busy beside it (writing the same
/// bytes to a file): one core fewer for the blocks, so on two cores the calling thread
/// hashes them alone.
pub(crate) fn digest_beside_one(bytes: &[u8]) -> blake3::Hash {
    match threads_for(bytes.len() as u64).map(|threads| threads - 1) {
        Some(threads) if threads >= 2 => digest_on(bytes, threads),
        _ => blake3::hash(bytes),
    }
}

/// How many threads hash an input of `len` bytes in blocks; `None` for one, on its own.
fn threads_for(len: u64) -> Option<usize> {
    if len <= PARALLEL_MIN as u64 {
        return None;
    }
    // Asked only here: it reads the process's CPU affinity and its cgroup's quota.
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_THREADS);
    (threads >= 2).then_some(threads)
}

/// The digest of `bytes` (longer than one block) on `threads` threads, the calling one
/// included.
fn digest_on(bytes: &[u8], threads: usize) -> blake3::Hash {
    let block = |start: u64, len: usize| {
        let start = start as usize;
        Ok(blake3::Hasher::new()
            .set_input_offset(start as u64)
            .update(&bytes[start..start + len])
            .finalize_non_root())
    };
    match digest_blocks(bytes.len() as u64, threads, block) {
        Ok(hash) => hash,
        // Hashing bytes in memory cannot fail.
        Err(_) => blake3::hash(bytes),
    }
}

/// The digest of the first `len` bytes of `file`, whatever its position: above a few MiB,
/// read and hashed in blocks, at their offsets, by the calling thread and scoped threads of
/// its own (as [`digest`] does), else read and hashed on the calling thread. An error if the
/// file cannot be read, or is shorter than `len`.
pub(crate) fn digest_file(file: &std::fs::File, len: u64) -> io::Result<blake3::Hash> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let Some(threads) = threads_for(len) else {
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0; (64 << 10).min(len as usize)];
            let mut at = 0;
            while at < len {
                let n = buf.len().min((len - at) as usize);
                file.read_exact_at(&mut buf[..n], at)?;
                hasher.update(&buf[..n]);
                at += n as u64;
            }
            return Ok(hasher.finalize());
        };
        let block = |start: u64, n: usize| {
            let mut buf = vec![0; n];
            file.read_exact_at(&mut buf, start)?;
            Ok(blake3::Hasher::new()
                .set_input_offset(start)
                .update(&buf)
                .finalize_non_root())
        };
        digest_blocks(len, threads, block)
    }
    #[cfg(not(unix))]
    {
        let mut hasher = blake3::Hasher::new();
        if io::copy(&mut io::Read::take(file, len), &mut hasher)? < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than it was",
            ));
        }
        Ok(hasher.finalize())
    }
}

/// The digest of an input of `len` bytes (longer than one block) whose blocks `block`
/// hashes (given a block's offset and length, it returns its chaining value), on `threads`
/// threads, the calling one included.
fn digest_blocks(
    len: u64,
    threads: usize,
    block: impl Fn(u64, usize) -> io::Result<ChainingValue> + Sync,
) -> io::Result<blake3::Hash> {
    let blocks = len.div_ceil(BLOCK as u64) as usize;
    let next = AtomicUsize::new(0);
    // Each thread takes the next block not taken, and keeps its chaining value.
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= blocks {
                return Ok(done);
            }
            let start = (i * BLOCK) as u64;
            let n = (len - start).min(BLOCK as u64) as usize;
            match block(start, n) {
                Ok(cv) => done.push((i, cv)),
                Err(e) => {
                    // The others stop at their next block.
                    next.store(blocks, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    };
    let mut cvs = vec![[0; blake3::OUT_LEN]; blocks];
    std::thread::scope(|s| {
        // A thread the system cannot start leaves its share to the others.
        let others: Vec<_> = (1..threads.min(blocks))
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, work).ok())
            .collect();
        let mut result = work();
        for other in others {
            // Hashing a block does not panic; if a thread did, so does the digest.
            let theirs = other
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            match (&mut result, theirs) {
                (Ok(done), Ok(more)) => done.extend(more),
                (Ok(_), Err(e)) => result = Err(e),
                (Err(_), _) => {}
            }
        }
        for (i, cv) in result? {
            cvs[i] = cv;
        }
        Ok::<_, io::Error>(())
    })?;
    let left = left_subtree_len(len);
    Ok(blake3::hazmat::merge_subtrees_root(
        &merge(&cvs, 0, left),
        &merge(&cvs, left, len - left),
        Mode::Hash,
    ))
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

    #[test]
    fn a_file_hashes_as_its_bytes_and_a_short_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, BLOCK + 1, PARALLEL_MIN + 1, 9 * BLOCK + 7] {
            let bytes = input(len);
            let path = dir.path().join(format!("{len}.bin"));
            std::fs::write(&path, &bytes).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            assert_eq!(
                digest_file(&file, len as u64).unwrap(),
                blake3::hash(&bytes),
                "{len} bytes"
            );
            if len > 0 {
                // Cut short since its length was read: an error, not a digest of less.
                assert!(digest_file(&file, len as u64 + 1).is_err(), "{len} bytes");
            }
        }
    }
}
