//! The buffers and per-thread tile states the rasterizer keeps between calls.

use super::backward::BackTile;
use super::forward::TileState;
use super::lanes::Packed;
use std::sync::Mutex;

/// Buffers the rasterizer reuses from one call to the next (what a trainer
/// keeps so that an iteration allocates nothing): the packed splats, the
/// binning's scratch, the forward pass's tile planes and the backward
/// pass's per-entry gradient records. Their contents between calls mean
/// nothing; every call overwrites what it reads.
#[derive(Default)]
pub(crate) struct RasterScratch<T> {
    pub(super) packed: Vec<Packed<T>>,
    pub(super) ranges: Vec<([u32; 4], u64)>,
    pub(super) fill: Vec<u32>,
    pub(super) planes: Vec<T>,
    pub(super) lasts: Vec<u32>,
    pub(super) records: Vec<T>,
    pub(super) fwd_states: PerThread<TileState<T>>,
    pub(super) back_states: PerThread<BackTile<T>>,
}

/// One tile state per worker thread of the pool a loop runs in, kept
/// between calls. A state is reset at the start of every tile, so which
/// thread draws a tile changes nothing (the same holds for the per-task
/// states of `for_each_init`, which this replaces to allocate nothing).
pub(super) struct PerThread<S> {
    channels: usize,
    states: Vec<Mutex<S>>,
}

impl<S> Default for PerThread<S> {
    fn default() -> Self {
        PerThread {
            channels: 0,
            states: Vec::new(),
        }
    }
}

impl<S: Send> PerThread<S> {
    /// The states for `channels` channels, one per thread of the current
    /// pool at least.
    pub(super) fn prepare(&mut self, channels: usize, new: impl Fn(usize) -> S) -> &[Mutex<S>] {
        if self.channels != channels {
            self.states.clear();
            self.channels = channels;
        }
        let n = rayon::current_num_threads().max(1);
        while self.states.len() < n {
            self.states.push(Mutex::new(new(channels)));
        }
        &self.states
    }
}

/// Runs `f` with the calling worker thread's state from `states`.
pub(super) fn with_state<S, R>(states: &[Mutex<S>], f: impl FnOnce(&mut S) -> R) -> R {
    let i = rayon::current_thread_index().unwrap_or(0) % states.len();
    let mut st = states[i].lock().unwrap_or_else(|e| e.into_inner());
    f(&mut st)
}

impl<T> RasterScratch<T> {
    /// Swaps the buffer of the backward pass's records with `buf`: a
    /// caller whose buffer is dead while the records are alive (and the
    /// records while it is) keeps one allocation for both by swapping
    /// before and after [`backward_into`](super::backward_into).
    pub(crate) fn swap_records(&mut self, buf: &mut Vec<T>) {
        std::mem::swap(&mut self.records, buf);
    }
}

impl<T> std::fmt::Debug for RasterScratch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RasterScratch").finish_non_exhaustive()
    }
}

/// `v` as `len` copies of `x`, in its own allocation when that is big
/// enough.
pub(super) fn refill<U: Copy + Send + Sync>(v: &mut Vec<U>, len: usize, x: U) {
    v.clear();
    v.resize(len, x);
}

/// Makes room in `v` for `len` entries in all, with an eighth more when it
/// has to grow: for the buffers whose length changes from view to view
/// (tile lists, their gradient records, the visible splats), so that once
/// the views have been drawn a few times no call allocates (issue 15), at
/// less memory than the standard library's doubling.
pub(crate) fn room<U>(v: &mut Vec<U>, len: usize) {
    if len > v.capacity() {
        v.reserve_exact(len + len / 8 - v.len());
    }
}

/// [`refill`] with [`room`]'s headroom.
pub(super) fn refill_room<U: Copy + Send + Sync>(v: &mut Vec<U>, len: usize, x: U) {
    v.clear();
    room(v, len);
    v.resize(len, x);
}
