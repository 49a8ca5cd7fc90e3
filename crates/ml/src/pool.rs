//! Recycled f32 buffers: the activations of the serving plans and the scratch matrices of the
//! training kernels. A forward pass allocates a few dozen buffers of up to tens of MB; fresh
//! allocations of that size come from the kernel as new pages (a page fault and a page clear per
//! 4 KiB on first touch) and were then zeroed again. Buffers come back here when their user is
//! done and the next pass reuses them as they are: every user writes all of a buffer it takes
//! before reading it, so a recycled buffer's old values are never read.

use std::sync::Mutex;

use rayon::prelude::*;

/// At most this many idle buffers are kept…
const MAX_BUFFERS: usize = 64;
/// …holding at most this many values in all (1 GiB of f32).
const MAX_VALUES: usize = 1 << 28;

static IDLE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// `len` zeros, written by rayon's threads in parallel. The training kernels' outputs are
/// fresh buffers of up to tens of MB: zeroed by `vec![0.0; len]` on the calling thread alone
/// (calloc's memset, or the page faults of fresh pages), the other thread waited on every layer.
pub(crate) fn zeros(len: usize) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    values.par_extend(rayon::iter::repeat_n(0.0f32, len));
    values
}

/// A buffer of exactly `len` values with unspecified (initialised) contents.
pub(crate) fn take(len: usize) -> Vec<f32> {
    let mut buffer = reuse(len);
    if buffer.len() >= len {
        buffer.truncate(len);
    } else {
        buffer.resize(len, 0.0);
    }
    buffer
}

/// Scratch space of `len` values with unspecified (initialised) contents, back to the pool when
/// dropped. Unlike [`take`], the buffer keeps every value it has ever initialised: a [`Vec`]
/// truncated to a short length and later resized to a long one writes the values in between
/// again, and the training convolutions alternate short and long scratch matrices on the same
/// few large buffers (a third of the memset time of a YOLOv8 training step).
pub(crate) fn scratch(len: usize) -> Scratch {
    let mut buffer = reuse(len);
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    Scratch { buffer, len }
}

/// The idle buffer that needs the fewest new values written for `len` (the pass before asked
/// for the same sizes, so usually none), then the smallest; or a new empty one.
fn reuse(len: usize) -> Vec<f32> {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    let best = idle
        .iter()
        .enumerate()
        .filter(|(_, b)| b.capacity() >= len)
        .min_by_key(|(_, b)| (len.saturating_sub(b.len()), b.capacity()))
        .map(|(i, _)| i);
    best.map(|i| idle.swap_remove(i)).unwrap_or_default()
}

/// Pooled scratch values (see [`scratch`]); dereferences to its `len` values.
#[derive(Debug)]
pub(crate) struct Scratch {
    /// Initialised up to its length, which is at least `len`.
    buffer: Vec<f32>,
    len: usize,
}

impl std::ops::Deref for Scratch {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.buffer[..self.len]
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buffer[..self.len]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.buffer));
    }
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
    fn buffers_have_the_asked_length() {
        let a = take(1000);
        assert_eq!(a.len(), 1000);
        give(a);
        let b = take(900);
        assert_eq!(b.len(), 900);
        give(b);
        assert_eq!(take(0).len(), 0);
    }

    #[test]
    fn scratch_keeps_the_values_it_initialised() {
        let mut long = scratch(5000);
        assert_eq!(long.len(), 5000);
        long.fill(1.0);
        let pointer = long.as_ptr();
        drop(long);
        let short = scratch(10);
        assert_eq!(short.len(), 10);
        let reused = short.as_ptr() == pointer;
        drop(short);
        let again = scratch(5000);
        // When the same buffer came back both times (other tests share the pool), its values
        // past the short length were kept, not written again.
        if reused && again.as_ptr() == pointer {
            assert!(again[10..].iter().all(|&v| v == 1.0));
        }
        assert_eq!(again.len(), 5000);
    }
}
