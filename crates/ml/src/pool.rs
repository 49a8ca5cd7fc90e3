//! Recycled f32 buffers: the activations of the serving plans and the scratch matrices of the
//! training kernels. A forward pass allocates a few dozen buffers of up to tens of MB; fresh
//! allocations of that size come from the kernel as new pages (a page fault and a page clear per
//! 4 KiB on first touch) and were then zeroed again. Buffers come back here when their user is
//! done and the next pass reuses them as they are: every user writes all of a buffer it takes
//! before reading it, so a recycled buffer's old values are never read.
//!
//! The training kernels' outputs, which leave with the tensors they make, are [`fresh`]
//! buffers: zeroed part by part by the thread about to write each part, while it is in cache.

use std::mem::MaybeUninit;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

/// At most this many idle buffers are kept…
const MAX_BUFFERS: usize = 64;
/// …holding at most this many values in all (1 GiB of f32).
const MAX_VALUES: usize = 1 << 28;

static IDLE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A new buffer of `len` values written part by part over the threads: `fill(i, part)` gets the
/// `i`-th run of `size` values (the last may be shorter) as a [`Part`], which it zeroes (all at
/// once or in smaller parts, see [`Part::zeroed`]) just before writing it. [`zeros`] then a
/// parallel write was two passes over tens of MB: the zeros went out to memory and were read back
/// into the cache by the writes; here they are written into the cache the writes then hit.
/// Parts a `fill` leaves untouched are zeroed when dropped.
pub(crate) fn fresh<F>(len: usize, size: usize, fill: F) -> Vec<f32>
where
    F: Fn(usize, Part<'_>) + Sync,
{
    let mut values: Vec<f32> = Vec::with_capacity(len);
    let zeroed = AtomicUsize::new(0);
    values.spare_capacity_mut()[..len]
        .par_chunks_mut(size.max(1))
        .enumerate()
        .for_each(|(i, slots)| {
            fill(
                i,
                Part {
                    slots,
                    zeroed: &zeroed,
                },
            )
        });
    // Parts are disjoint runs of the `len` slots and each counts its slots once, when it writes
    // them; a part leaked by `mem::forget` would leave the count short.
    assert_eq!(zeroed.into_inner(), len, "fresh buffer: a part was leaked");
    // SAFETY: every one of the first `len` slots was written (the count above), and the
    // capacity is `len`.
    #[allow(unsafe_code)]
    unsafe {
        values.set_len(len);
    }
    values
}

/// Part of a [`fresh`] buffer, not yet written.
pub(crate) struct Part<'a> {
    slots: &'a mut [MaybeUninit<f32>],
    zeroed: &'a AtomicUsize,
}

impl<'a> Part<'a> {
    /// Values in this part.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The part's values, zeroed.
    pub fn zeroed(mut self) -> &'a mut [f32] {
        write_zeros(std::mem::take(&mut self.slots), self.zeroed)
    }

    /// The part in runs of `size` values (the last may be shorter), in order; runs not taken
    /// from the iterator are zeroed when it is dropped.
    pub fn chunks(mut self, size: usize) -> Chunks<'a> {
        Chunks {
            rest: std::mem::take(&mut self.slots),
            size: size.max(1),
            zeroed: self.zeroed,
        }
    }
}

/// The runs of a [`Part`] (see [`Part::chunks`]).
pub(crate) struct Chunks<'a> {
    rest: &'a mut [MaybeUninit<f32>],
    size: usize,
    zeroed: &'a AtomicUsize,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Part<'a>;

    fn next(&mut self) -> Option<Part<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        let (slots, rest) = rest.split_at_mut(self.size.min(rest.len()));
        self.rest = rest;
        Some(Part {
            slots,
            zeroed: self.zeroed,
        })
    }
}

impl Drop for Chunks<'_> {
    fn drop(&mut self) {
        write_zeros(std::mem::take(&mut self.rest), self.zeroed);
    }
}

impl Drop for Part<'_> {
    fn drop(&mut self) {
        write_zeros(std::mem::take(&mut self.slots), self.zeroed);
    }
}

/// `slots` zeroed and counted in `zeroed`, as the values they now hold.
fn write_zeros<'a>(slots: &'a mut [MaybeUninit<f32>], zeroed: &AtomicUsize) -> &'a mut [f32] {
    for slot in slots.iter_mut() {
        slot.write(0.0);
    }
    zeroed.fetch_add(slots.len(), Ordering::Relaxed);
    // SAFETY: every slot was just written, and `MaybeUninit<f32>` has `f32`'s layout.
    #[allow(unsafe_code)]
    unsafe {
        &mut *(std::ptr::from_mut(slots) as *mut [f32])
    }
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

    /// Every value is what its part's writer wrote, or zero where a part (or a run of one) was
    /// left untouched.
    #[test]
    fn fresh_buffers_hold_what_their_parts_wrote() {
        let values = fresh(1000, 300, |i, part| match i {
            0 => part.zeroed().fill(1.0),
            1 => {
                for (j, run) in part.chunks(70).enumerate().take(3) {
                    run.zeroed().fill(j as f32 + 2.0);
                }
            }
            2 => assert_eq!(part.len(), 300),
            _ => assert_eq!(part.zeroed().len(), 100),
        });
        assert_eq!(values.len(), 1000);
        assert!(values[..300].iter().all(|&v| v == 1.0));
        for j in 0..3 {
            assert!(
                values[300 + 70 * j..][..70]
                    .iter()
                    .all(|&v| v == j as f32 + 2.0)
            );
        }
        assert!(values[510..].iter().all(|&v| v == 0.0));
        assert!(fresh(0, 0, |_, _| {}).is_empty());
    }

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
