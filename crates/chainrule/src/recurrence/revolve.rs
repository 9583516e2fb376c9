//! Binomial checkpointing's arithmetic (Griewank's *revolve*): how many
//! steps a number of snapshots reverses, where the next snapshot goes, and
//! the snapshot budgets.

/// β(s, r) = C(s + r, s): the most steps `s` snapshots reverse with at most
/// `r` recomputations of any step (saturating).
pub(super) fn beta(s: usize, r: usize) -> usize {
    let k = s.min(r) as u128;
    let n = (s + r) as u128;
    let mut b: u128 = 1;
    for i in 1..=k {
        b = b * (n - k + i) / i;
        if b > usize::MAX as u128 {
            return usize::MAX;
        }
    }
    b as usize
}

/// Where to put the next snapshot when reversing `l ≥ 2` steps with `s ≥ 1`
/// snapshots (the start's included): the offset `j` in `1..l` of the
/// binomial schedule. The later `l - j` steps are reversed with `s - 1`
/// snapshots, the first `j` with `s`.
pub(super) fn split(l: usize, s: usize) -> usize {
    debug_assert!(l >= 2 && s >= 1);
    if s == 1 {
        return l - 1;
    }
    let mut r = 1;
    while beta(s, r) < l {
        r += 1;
    }
    // Both parts reversed at their own binomial optimum: the first `j`
    // steps with `s` snapshots and `r - 1` repetitions, the last `l - j`
    // with `s - 1` snapshots and `r`.
    let lo = if r >= 2 { beta(s, r - 2) } else { 1 }
        .max(l.saturating_sub(beta(s - 1, r)))
        .max(1);
    let hi = beta(s, r - 1).min(l - beta(s - 1, r - 1)).min(l - 1);
    debug_assert!(lo <= hi, "split({l}, {s}): {lo} > {hi}");
    lo
}

/// The automatic number of snapshots for `n` known blocks: `2⌈log₂ n⌉`,
/// at least 2.
pub(super) fn auto_snapshots(n: usize) -> usize {
    let lg = usize::BITS - n.saturating_sub(1).leading_zeros();
    (2 * lg as usize).max(2)
}

/// The snapshot budget of online checkpointing after `t` blocks.
pub(super) fn online_budget(t: usize) -> usize {
    let lg = usize::BITS - t.leading_zeros();
    (lg as usize).max(8)
}
