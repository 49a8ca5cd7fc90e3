//! Recycled f32 buffers: the activations of the serving plans and the scratch matrices of the
//! training kernels. A forward pass allocates a few dozen buffers of up to tens of MB; fresh
//! allocations of that size come from the kernel as new pages (a page fault and a page clear per
//! 4 KiB on first touch) and were then zeroed again. Buffers come back here when their user is
//! done and the next pass reuses them as they are: every user writes all of a buffer it takes
//! before reading it, so a recycled buffer's old values are never read.

use std::sync::Mutex;

/// At most this many idle buffers are kept…
const MAX_BUFFERS: usize = 64;
/// …holding at most this many values in all (1 GiB of f32).
const MAX_VALUES: usize = 1 << 28;

static IDLE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of exactly `len` values with unspecified (initialised) contents.
pub(crate) fn take(len: usize) -> Vec<f32> {
    let reused = {
        let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
        // The idle buffer that needs the fewest new values written (the pass before asked for
        // the same sizes, so usually none), then the smallest.
        let best = idle
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| (len.saturating_sub(b.len()), b.capacity()))
            .map(|(i, _)| i);
        best.map(|i| idle.swap_remove(i))
    };
    let mut buffer = reused.unwrap_or_default();
    if buffer.len() >= len {
        buffer.truncate(len);
    } else {
        buffer.resize(len, 0.0);
    }
    buffer
}

/// Keeps `buffer` for a later [`take`] (or frees it when the pool is full).
pub(crate) fn give(buffer: Vec<f32>) {
    if buffer.is_empty() || buffer.capacity() > MAX_VALUES {
        return;
    }
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    let held: usize = idle.iter().map(Vec::capacity).sum();
    if idle.len() < MAX_BUFFERS && held + buffer.capacity() <= MAX_VALUES {
        // Kept at its length, not its capacity: growing it back would write the values
        // truncated away (a memset of up to tens of MB per buffer and pass).
        idle.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_have_the_asked_length_and_come_back() {
        let a = take(1000);
        assert_eq!(a.len(), 1000);
        let pointer = a.as_ptr();
        give(a);
        let b = take(900);
        assert_eq!(b.len(), 900);
        // Other tests may use the pool at the same time, so reuse is likely, not certain.
        let _reused = b.as_ptr() == pointer;
        give(b);
        assert_eq!(take(0).len(), 0);
    }
}
