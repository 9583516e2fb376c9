//! The default Gaussian budget: one Gaussian per
//! [`PIXELS_PER_GAUSSIAN`] training pixels, and never more than the
//! machine's memory holds.
//!
//! The pixel rule alone grows with the photos: a Mip-NeRF 360 capture
//! (about 160 training photos scaled down to 1,600 pixels wide) asks for
//! about 10 million Gaussians, and at [`BYTES_PER_GAUSSIAN`] a training
//! run of that many needs about 55 GB. On a smaller machine such a run
//! is killed for lack of memory once densification has grown the scene
//! that far, after hours of training. So the default budget is also capped by what half of
//! the machine's memory holds beside the photos ([`memory_cap`]).
//!
//! The cap reads the machine's *total* memory (or its container's
//! limit), not the memory free at the moment, so that the same command
//! on the same machine chooses the same budget every time.

use super::config::{MIN_DEFAULT_GAUSSIANS, PIXELS_PER_GAUSSIAN};
use crate::data::{Dataset, Pixels8, View};

/// Heap that a training run holds per Gaussian at its budget, in bytes,
/// with spherical harmonics of degree 3: the parameters, their gradients
/// and Adam's two moments in `f64`, the moving average, the scene and its
/// gradients in `f32`, the render's per-splat buffers, the vectors'
/// headroom after a density round, and a checkpoint's copy of the state
/// while it is written. Measured: 4,733 bytes, the slope of peak memory
/// (resident) against the budget of the default command on a 60-photo
/// COLMAP capture at 40,000 and 147,911 Gaussians; 4,698 bytes of peak
/// heap in `tests/budget_memory.rs`, which holds this figure
/// (BENCHMARKS.md, forty-second session). The 800 bytes above that are
/// for larger photos than those measured: the backward pass keeps about
/// 60 bytes for each tile a drawn splat covers, and a splat covers more
/// tiles of a larger photo.
pub const BYTES_PER_GAUSSIAN: u64 = 5_500;

/// The share of the machine's memory that the default budget may fill
/// (the photos included): half, leaving the rest to the system, the other
/// programs a user runs beside a long training, and the allocator's
/// fragmentation.
pub const MEMORY_SHARE: f64 = 0.5;

/// The bytes a dataset's photos take in memory (8-bit colour, and alpha
/// and mask planes where they have them), with the coarse phase's copies
/// of the training photos at half size (a quarter more of them).
pub fn photo_bytes(data: &Dataset) -> u64 {
    let view = |v: &View| {
        let bytes = v.image.len()
            + v.alpha.as_ref().map_or(0, Pixels8::len)
            + v.mask.as_ref().map_or(0, Pixels8::len);
        bytes as u64
    };
    let train: u64 = data.train.iter().map(view).sum();
    let test: u64 = data.test.iter().map(view).sum();
    train + train / 4 + test
}

/// The most Gaussians that [`MEMORY_SHARE`] of `memory` bytes holds
/// beside the dataset's photos ([`photo_bytes`]) at
/// [`BYTES_PER_GAUSSIAN`] each, rounded down to a multiple of
/// [`CAP_STEP`], and at least [`MIN_DEFAULT_GAUSSIANS`].
///
/// ```
/// use splat::data::Dataset;
/// use splat::train::budget::{memory_cap, BYTES_PER_GAUSSIAN};
///
/// let empty = Dataset {
///     train: vec![],
///     test: vec![],
///     points: None,
///     format: "colmap",
///     notes: vec![],
///     read_from: vec![],
/// };
/// // half of 16 GB at 5.5 kB a Gaussian is 1,454,545, rounded down
/// assert_eq!(BYTES_PER_GAUSSIAN, 5_500);
/// assert_eq!(memory_cap(&empty, 16_000_000_000), 1_450_000);
/// ```
pub fn memory_cap(data: &Dataset, memory: u64) -> usize {
    let share = (memory as f64 * MEMORY_SHARE) as u64;
    let left = share.saturating_sub(photo_bytes(data));
    // rounded down, so that a machine whose total shifts a little (a
    // kernel update, a balloon driver) keeps its budget
    let n = left / BYTES_PER_GAUSSIAN / CAP_STEP * CAP_STEP;
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .max(MIN_DEFAULT_GAUSSIANS)
}

/// [`memory_cap`] is a multiple of this many Gaussians.
pub const CAP_STEP: u64 = 10_000;

/// The default budget of a dataset and how it was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The budget: the smaller of the two below.
    pub gaussians: usize,
    /// One per [`PIXELS_PER_GAUSSIAN`] training pixels, at least
    /// [`MIN_DEFAULT_GAUSSIANS`].
    pub by_pixels: usize,
    /// What the memory holds ([`memory_cap`]), when the machine's memory
    /// is known.
    pub by_memory: Option<usize>,
    /// The memory it was judged against, in bytes.
    pub memory: Option<u64>,
}

impl Budget {
    /// The default budget of `data` on a machine of `memory` bytes
    /// (`None`: unknown, the pixel rule alone).
    pub fn of(data: &Dataset, memory: Option<u64>) -> Budget {
        let px: u64 = data
            .train
            .iter()
            .map(|v| v.width as u64 * v.height as u64)
            .sum();
        let by_pixels = usize::try_from(px / PIXELS_PER_GAUSSIAN as u64)
            .unwrap_or(usize::MAX)
            .max(MIN_DEFAULT_GAUSSIANS);
        let by_memory = memory.map(|m| memory_cap(data, m));
        Budget {
            gaussians: by_memory.map_or(by_pixels, |m| m.min(by_pixels)),
            by_pixels,
            by_memory,
            memory,
        }
    }

    /// Whether the memory, not the pixels, set the budget.
    pub fn memory_bound(&self) -> bool {
        self.gaussians < self.by_pixels
    }

    /// A sentence for the user when the memory set the budget.
    pub fn note(&self, data: &Dataset) -> Option<String> {
        let memory = self.memory?;
        let photos = photo_bytes(data);
        if self.memory_bound() && photos as f64 >= memory as f64 * MEMORY_SHARE {
            return Some(format!(
                "the photos alone take {:.1} GiB, at least half of the {:.1} GiB of memory \
                 this process may use: the Gaussian budget is the smallest default, {}, \
                 instead of one per {} training pixels ({}); --downscale N loads smaller \
                 photos, --max-gaussians sets the budget",
                photos as f64 / GIB,
                memory as f64 / GIB,
                self.gaussians,
                PIXELS_PER_GAUSSIAN,
                self.by_pixels,
            ));
        }
        self.memory_bound().then(|| {
            format!(
                "the Gaussian budget is {}, what half of the {:.1} GiB of memory this process \
                 may use holds beside the photos at about {:.1} kB a Gaussian, fewer than one \
                 per {} training pixels ({}); --max-gaussians sets it",
                self.gaussians,
                memory as f64 / GIB,
                BYTES_PER_GAUSSIAN as f64 / 1000.0,
                PIXELS_PER_GAUSSIAN,
                self.by_pixels,
            )
        })
    }
}

const GIB: f64 = (1u64 << 30) as f64;

/// About how many bytes a training run of `gaussians` needs at its
/// budget: the photos and [`BYTES_PER_GAUSSIAN`] a Gaussian.
pub fn training_bytes(data: &Dataset, gaussians: usize) -> u64 {
    photo_bytes(data).saturating_add((gaussians as u64).saturating_mul(BYTES_PER_GAUSSIAN))
}

/// A warning when a budget given by the user needs more than the
/// machine's memory (`memory` bytes), by [`training_bytes`]'s estimate.
pub fn oversize_warning(data: &Dataset, gaussians: usize, memory: u64) -> Option<String> {
    let need = training_bytes(data, gaussians);
    (need > memory).then(|| {
        format!(
            "a budget of {gaussians} Gaussians (--max-gaussians) needs about {:.1} GiB once \
             training reaches it (about {:.1} kB a Gaussian beside {:.1} GiB of photos), more \
             than the {:.1} GiB of memory this process may use: the run may be stopped for \
             lack of it",
            need as f64 / GIB,
            BYTES_PER_GAUSSIAN as f64 / 1000.0,
            photo_bytes(data) as f64 / GIB,
            memory as f64 / GIB,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(w: u32, h: u32, masked: bool) -> View {
        let n = (w * h) as usize;
        View {
            image: Pixels8::from_bytes(vec![0; 3 * n]),
            mask: masked.then(|| Pixels8::from_bytes(vec![255; n])),
            ..View::camera_only(
                "v".into(),
                (w, h),
                [100.0, 100.0, w as f64 / 2.0, h as f64 / 2.0],
                [
                    [1.0, 0.0, 0.0, 0.0],
                    [0.0, 1.0, 0.0, 0.0],
                    [0.0, 0.0, 1.0, 0.0],
                    [0.0, 0.0, 0.0, 1.0],
                ],
            )
        }
    }

    fn dataset(train: usize, test: usize, (w, h): (u32, u32), masked: bool) -> Dataset {
        Dataset {
            train: (0..train).map(|_| view(w, h, masked)).collect(),
            test: (0..test).map(|_| view(w, h, masked)).collect(),
            points: None,
            format: "colmap",
            notes: vec![],
            read_from: vec![],
        }
    }

    #[test]
    fn photos_count_their_planes_and_the_coarse_copies() {
        // 4 training photos of 10×10 with masks: 4 × 100 × (3 + 1) =
        // 1,600 bytes (8 bits a value), a quarter more for the coarse
        // copies (2,000); one test photo without: 100 × 3 = 300
        let mut data = dataset(4, 0, (10, 10), true);
        data.test.push(view(10, 10, false));
        assert_eq!(photo_bytes(&data), 2_300);
    }

    #[test]
    fn a_small_capture_keeps_the_pixel_rule_on_any_usual_machine() {
        // issue 14's capture: 52 training and 8 held-out photos of
        // 320×240; 3,993,600 / 27 = 147,911
        let data = dataset(52, 8, (320, 240), false);
        for gib in [4u64, 8, 16, 24, 128] {
            let b = Budget::of(&data, Some(gib << 30));
            assert_eq!(b.by_pixels, 147_911);
            assert_eq!(b.gaussians, 147_911, "{gib} GiB");
            assert!(!b.memory_bound() && b.note(&data).is_none());
        }
        assert_eq!(Budget::of(&data, None).gaussians, 147_911);
    }

    #[test]
    fn a_large_capture_is_capped_by_the_memory() {
        // 160 training and 25 held-out photos of 1,600×1,040 (a Mip-NeRF
        // 360 scene at the default width): 266,240,000 training pixels,
        // one per 27 is 9,860,740 Gaussians
        let data = dataset(160, 25, (1600, 1040), false);
        let photos = photo_bytes(&data);
        // 160 × 1,664,000 × 3 × 1.25 + 25 × 1,664,000 × 3 (8-bit colour)
        assert_eq!(photos, 998_400_000 + 124_800_000);
        let memory = 24u64 << 30;
        let b = Budget::of(&data, Some(memory));
        assert_eq!(b.by_pixels, 9_860_740);
        // (12,884,901,888 − 1,123,200,000) / 5,500 = 2,138,491, rounded
        // down to a multiple of 10,000
        assert_eq!(b.by_memory, Some(2_130_000));
        assert_eq!(b.gaussians, 2_130_000);
        assert!(b.memory_bound());
        let note = b.note(&data).unwrap();
        assert!(
            note.contains("2130000") && note.contains("24.0 GiB"),
            "{note}"
        );
        assert!(
            note.contains("9860740") && note.contains("--max-gaussians"),
            "{note}"
        );
        // what it needs fits in the machine, what the pixels ask does not
        assert!(training_bytes(&data, b.gaussians) <= memory);
        assert!(oversize_warning(&data, b.gaussians, memory).is_none());
        // 9,860,740 × 5,500 + 1,123,200,000 bytes = 51.6 GiB
        let w = oversize_warning(&data, b.by_pixels, memory).unwrap();
        assert!(w.contains("9860740") && w.contains("51.6 GiB"), "{w}");
    }

    #[test]
    fn photos_beyond_the_share_leave_the_smallest_budget() {
        let data = dataset(160, 25, (1600, 1040), false);
        let b = Budget::of(&data, Some(2 << 30));
        assert_eq!(b.gaussians, MIN_DEFAULT_GAUSSIANS);
        // the note says that the photos are the trouble
        let note = b.note(&data).unwrap();
        assert!(
            note.contains("photos alone take 1.0 GiB") && note.contains("--downscale"),
            "{note}"
        );
    }
}
