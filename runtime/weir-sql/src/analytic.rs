//! The state of the analytic functions that are not a forest of their own: the distinct
//! values of a COUNT_DISTINCT_ITEMS_TUMBLING window, the window of HOTSPOTS, and the
//! explanation RANDOM_CUT_FOREST_WITH_EXPLANATION writes beside its forest's score.
//!
//! Invariants:
//! - Memory is bounded by the functions' parameters, whatever the input: a distinct count
//!   holds at most [`EXACT_LIMIT`] values, then a sketch of `2^HLL_BITS` one-byte registers;
//!   a hotspot window holds at most its `size` points, with a bitset of their neighbourhoods
//!   (`size²` bits: 125 KB for KDA's largest window, 1000 rows).
//! - A hotspot window holds the ack of every row in it, and each row it lets go on holds all
//!   of those (it depends on all of them), as a sliding window's rows do ([`crate::slide`]).
//! - Nothing here panics on any number: the points are finite (the caller keeps out the rest),
//!   and every sum and product of them that can overflow is kept from making a NaN.

use std::collections::{HashMap, VecDeque};

use weir_core::ack::Ack;

use crate::stage::{key_hash, same_keys};
use crate::value::Value;

/// Up to this many distinct values a window's count is exact (KDA's: "When there are less
/// than or equal to 10,000 items in the window, the function returns an exact count").
pub const EXACT_LIMIT: usize = 10_000;

/// The sketch past [`EXACT_LIMIT`]: HyperLogLog with 2^14 registers (a standard error of
/// about 0.8%).
const HLL_BITS: u32 = 14;

/// The distinct non-NULL values of one COUNT_DISTINCT_ITEMS_TUMBLING window: kept exactly
/// (found by hash, told apart by [`same_keys`]) up to [`EXACT_LIMIT`], then as a HyperLogLog
/// sketch of their hashes.
#[derive(Debug, Default)]
pub struct DistinctCount {
    seen: Vec<Value>,
    index: HashMap<u64, Vec<usize>>,
    /// Once past the limit: the registers, and the exact count when the sketch took over
    /// (the estimate never goes below it).
    sketch: Option<(Box<[u8]>, u64)>,
}

impl DistinctCount {
    /// Counts `v` (NULL is not a value, as in `COUNT(DISTINCT x)`).
    pub fn add(&mut self, v: Value) {
        if v.is_null() {
            return;
        }
        let hash = key_hash(std::slice::from_ref(&v));
        if let Some((registers, _)) = &mut self.sketch {
            hll_add(registers, mix(hash));
            return;
        }
        let seen = &self.seen;
        let ids = self.index.entry(hash).or_default();
        if ids
            .iter()
            .any(|&i| same_keys(std::slice::from_ref(&seen[i]), std::slice::from_ref(&v)))
        {
            return;
        }
        ids.push(self.seen.len());
        self.seen.push(v);
        if self.seen.len() > EXACT_LIMIT {
            let mut registers = vec![0u8; 1 << HLL_BITS].into_boxed_slice();
            for s in &self.seen {
                hll_add(&mut registers, mix(key_hash(std::slice::from_ref(s))));
            }
            let exact = self.seen.len() as u64;
            self.seen = Vec::new();
            self.index = HashMap::new();
            self.sketch = Some((registers, exact));
        }
    }

    /// The number of distinct values: exact up to [`EXACT_LIMIT`], estimated past it.
    pub fn count(&self) -> i64 {
        match &self.sketch {
            None => self.seen.len() as i64,
            Some((registers, exact)) => {
                let estimate = hll_estimate(registers).round();
                // `as` saturates; the estimate is finite and far below i64::MAX.
                (estimate as u64).max(*exact).min(i64::MAX as u64) as i64
            }
        }
    }
}

/// SplitMix64's finaliser: spreads a hash's bits (the sketch reads its top bits as a
/// register's index and the rest's leading zeros).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hll_add(registers: &mut [u8], h: u64) {
    let j = (h >> (64 - HLL_BITS)) as usize;
    // A guard bit keeps the rank at most 64 - HLL_BITS + 1.
    let w = (h << HLL_BITS) | (1u64 << (HLL_BITS - 1));
    let rank = (w.leading_zeros() + 1) as u8;
    if let Some(r) = registers.get_mut(j) {
        if rank > *r {
            *r = rank;
        }
    }
}

/// HyperLogLog's estimate (Flajolet et al.), with linear counting for small counts; 64-bit
/// hashes need no correction for large ones.
fn hll_estimate(registers: &[u8]) -> f64 {
    let m = registers.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let mut sum = 0.0;
    let mut zeros = 0usize;
    for &r in registers {
        sum += (-f64::from(r)).exp2();
        if r == 0 {
            zeros += 1;
        }
    }
    let raw = alpha * m * m / sum;
    if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    }
}

/// HOTSPOTS' window: the points of the last `size` rows, each with the points within
/// `radius` of it (Euclidean distance), from which each row's hotspots are found.
///
/// A hotspot is a cluster of DBSCAN (the reference's analogy: `scanRadius` is its ε, and
/// `minimumNumberOfPointsInAHotspot` its minimum number of points): a point with at least
/// `min_points` points within `radius` (itself included) is a core point; core points within
/// `radius` of each other are one hotspot, with the other points within `radius` of its core
/// points (each joins the first hotspot that reaches it, oldest core point first).
#[derive(Debug)]
pub struct Hotspots {
    size: usize,
    radius: f64,
    min_points: usize,
    dims: usize,
    /// Slot `s`'s point is `points[s * dims..][..dims]`. The slots in use are `0..order.len()`
    /// (a full window's next row takes the oldest row's slot).
    points: Vec<f64>,
    /// The slots, oldest row first.
    order: VecDeque<usize>,
    /// Words of a row of `near`.
    words: usize,
    /// Per slot, a bitset of the slots whose points are within `radius` of its own (itself
    /// included): `near[s * words..][..words]`.
    near: Vec<u64>,
    /// Per slot, the number of bits set in its row of `near`.
    count: Vec<usize>,
    /// The acks of the rows in the window, oldest first, as runs of rows that share one.
    runs: VecDeque<(Ack, usize)>,
    /// The runs' acks merged into one, until the runs change.
    merged: Option<Ack>,
}

/// One hotspot as it is found.
struct Cluster {
    n: usize,
    min: Vec<f64>,
    max: Vec<f64>,
}

impl Hotspots {
    /// A window of the last `size` rows' points of `dims` numbers.
    pub fn new(size: usize, radius: f64, min_points: usize, dims: usize) -> Hotspots {
        let size = size.max(1);
        let words = size.div_ceil(64);
        Hotspots {
            size,
            radius,
            min_points,
            dims,
            points: vec![0.0; size * dims],
            order: VecDeque::with_capacity(size),
            words,
            near: vec![0; size * words],
            count: vec![0; size],
            runs: VecDeque::new(),
            merged: None,
        }
    }

    /// Adds a row's point (the oldest row leaves a full window) and returns the window's
    /// hotspots as KDA's JSON, and an ack that holds those of the window's rows (this one's
    /// included).
    pub fn push(&mut self, point: &[f64], ack: Ack) -> (String, Ack) {
        let slot = if self.order.len() < self.size {
            self.order.len()
        } else {
            match self.order.pop_front() {
                Some(s) => {
                    self.remove(s);
                    s
                }
                None => 0,
            }
        };
        let dims = self.dims;
        for (k, x) in self.points[slot * dims..][..dims].iter_mut().enumerate() {
            *x = point.get(k).copied().unwrap_or(0.0);
        }
        let r2 = self.radius * self.radius;
        let a = &self.points[slot * dims..][..dims];
        let near: Vec<usize> = self
            .order
            .iter()
            .copied()
            .filter(|&t| {
                let b = &self.points[t * dims..][..dims];
                // Differences of finite numbers are finite or infinite, never NaN: an
                // overflow is just far.
                let d2: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                d2 <= r2
            })
            .collect();
        for &t in &near {
            self.set(slot, t);
            self.set(t, slot);
            self.count[t] += 1;
        }
        self.set(slot, slot);
        self.count[slot] = near.len() + 1;
        self.order.push_back(slot);
        match self.runs.back_mut() {
            Some((a, k)) if a.same(&ack) => *k += 1,
            _ => {
                self.runs.push_back((ack, 1));
                self.merged = None;
            }
        }
        let runs = &self.runs;
        let held = self
            .merged
            .get_or_insert_with(|| Ack::merge(runs.iter().map(|(a, _)| a.clone())))
            .clone();
        (self.json(), held)
    }

    /// Empties the window, letting go of its rows' acks (the input ended: no later row
    /// depends on them).
    pub fn clear(&mut self) {
        self.order.clear();
        self.near.fill(0);
        self.count.fill(0);
        self.runs.clear();
        self.merged = None;
    }

    /// The acks the window holds (to fail them when the stage is dropped).
    pub fn acks(&self) -> impl Iterator<Item = &Ack> {
        self.runs.iter().map(|(a, _)| a)
    }

    fn set(&mut self, row: usize, bit: usize) {
        if let Some(w) = self.near.get_mut(row * self.words + bit / 64) {
            *w |= 1u64 << (bit % 64);
        }
    }

    fn unset(&mut self, row: usize, bit: usize) {
        if let Some(w) = self.near.get_mut(row * self.words + bit / 64) {
            *w &= !(1u64 << (bit % 64));
        }
    }

    /// The slots set in slot `s`'s row of `near`.
    fn neighbours(&self, s: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for (w, &word) in self.near[s * self.words..][..self.words].iter().enumerate() {
            let mut x = word;
            while x != 0 {
                out.push(w * 64 + x.trailing_zeros() as usize);
                x &= x - 1;
            }
        }
        out
    }

    /// Takes the oldest row's point, in slot `s`, out of its neighbours' counts, and its
    /// ack out of the runs.
    fn remove(&mut self, s: usize) {
        for t in self.neighbours(s) {
            if t != s {
                self.unset(t, s);
                self.count[t] = self.count[t].saturating_sub(1);
            }
        }
        self.near[s * self.words..][..self.words].fill(0);
        self.count[s] = 0;
        match self.runs.front_mut() {
            Some((_, k)) if *k > 1 => *k -= 1,
            Some(_) => {
                self.runs.pop_front();
                self.merged = None;
            }
            None => {}
        }
    }

    /// The window's hotspots, densest first (in the order they were found when equally
    /// dense): `{"hotspots":[{"density":…,"minValues":[…],"maxValues":[…]},…]}`.
    fn json(&self) -> String {
        let n = self.order.len();
        let dims = self.dims;
        let core: Vec<bool> = (0..n).map(|s| self.count[s] >= self.min_points).collect();
        let mut label = vec![false; n];
        let mut found: Vec<(f64, Cluster)> = Vec::new();
        let mut stack = Vec::new();
        for &s in &self.order {
            if s >= n || !core[s] || label[s] {
                continue;
            }
            let mut c = Cluster {
                n: 0,
                min: vec![f64::INFINITY; dims],
                max: vec![f64::NEG_INFINITY; dims],
            };
            label[s] = true;
            stack.push(s);
            while let Some(u) = stack.pop() {
                c.n += 1;
                for (k, &x) in self.points[u * dims..][..dims].iter().enumerate() {
                    c.min[k] = c.min[k].min(x);
                    c.max[k] = c.max[k].max(x);
                }
                // A border point belongs to the hotspot, but does not extend it.
                if !core[u] {
                    continue;
                }
                for v in self.neighbours(u) {
                    if v < n && !label[v] {
                        label[v] = true;
                        stack.push(v);
                    }
                }
            }
            found.push((density(&c, self.radius), c));
        }
        // Stable: equally dense hotspots keep the order they were found in.
        found.sort_by(|(a, _), (b, _)| b.total_cmp(a));
        let mut out = String::from("{\"hotspots\":[");
        for (i, (d, c)) in found.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"density\":");
            number(&mut out, *d);
            out.push_str(",\"minValues\":[");
            numbers(&mut out, &c.min);
            out.push_str("],\"maxValues\":[");
            numbers(&mut out, &c.max);
            out.push_str("]}");
        }
        out.push_str("]}");
        out
    }
}

/// The reference's density: "the number of records in the hotspot divided by the hotspot
/// size". The size is the volume of the hotspot's bounding box, each side at least `radius`
/// (so that a hotspot of equal points, or flat in one column, has a finite density). Never
/// NaN: a volume that overflows makes the density 0, one that underflows the largest double.
fn density(c: &Cluster, radius: f64) -> f64 {
    let mut size = 1.0f64;
    for (lo, hi) in c.min.iter().zip(&c.max) {
        size *= (hi - lo).max(radius);
    }
    let d = c.n as f64 / size;
    if d.is_nan() {
        0.0
    } else {
        d.min(f64::MAX)
    }
}

fn number(out: &mut String, x: f64) {
    match serde_json::Number::from_f64(x) {
        Some(n) => out.push_str(&n.to_string()),
        None => out.push_str("null"),
    }
}

fn numbers(out: &mut String, xs: &[f64]) {
    for (i, &x) in xs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        number(out, x);
    }
}

/// RANDOM_CUT_FOREST_WITH_EXPLANATION's `ANOMALY_EXPLANATION`: per column (of `names`), its
/// `ATTRIBUTION_SCORE` and, when `directional`, its `DIRECTION` and `STRENGTH`, as KDA wrote
/// them (numbers as strings with four decimals):
/// `{"Systolic":{"DIRECTION":"HIGH","STRENGTH":"0.8567","ATTRIBUTION_SCORE":"1.7447"},…}`.
///
/// `high` and `low` are the forest's attribution (a DiVector) over the shingled point: a
/// column's parts are the positions `k` with `k % names.len()` its place, summed. Its
/// attribution score is their sum (so the columns' scores add up to the anomaly score), its
/// direction the larger (HIGH only if `high` is larger), and its strength, which KDA did not
/// define, `|high − low| / (min(high, low) + (high + low) / 1000)`: how many times the weaker
/// side the difference is, continuous, and at most 1000 (when one side is 0). `None` is the
/// learning phase: every score 0, and the direction LOW, as the reference says.
pub fn explanation(
    names: &[&str],
    attribution: Option<(&[f64], &[f64])>,
    directional: bool,
) -> String {
    let d = names.len().max(1);
    let mut out = String::from("{");
    for (c, name) in names.iter().enumerate() {
        let (mut high, mut low) = (0.0f64, 0.0f64);
        if let Some((h, l)) = attribution {
            high = h.iter().skip(c).step_by(d).sum();
            low = l.iter().skip(c).step_by(d).sum();
        }
        let finite = |x: f64| if x.is_finite() { x.max(0.0) } else { 0.0 };
        let (high, low) = (finite(high), finite(low));
        if c > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(*name).to_string());
        out.push_str(":{");
        if directional {
            let (more, less) = if high > low { (high, low) } else { (low, high) };
            let strength = if more > 0.0 {
                (more - less) / (less + (more + less) / 1000.0)
            } else {
                0.0
            };
            let direction = if high > low { "HIGH" } else { "LOW" };
            out.push_str(&format!(
                "\"DIRECTION\":\"{direction}\",\"STRENGTH\":\"{strength:.4}\","
            ));
        }
        out.push_str(&format!("\"ATTRIBUTION_SCORE\":\"{:.4}\"}}", high + low));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_counts_are_exact_to_the_limit_then_close() {
        let mut c = DistinctCount::default();
        for round in 0..2 {
            for i in 0..EXACT_LIMIT as i64 {
                c.add(Value::Int(i));
                c.add(Value::Null);
            }
            assert_eq!(c.count(), EXACT_LIMIT as i64, "round {round}");
        }
        for n in [20_000i64, 100_000, 300_000] {
            let mut c = DistinctCount::default();
            for i in 0..n {
                c.add(Value::Str(format!("item-{i}")));
                // Repeats add nothing to the sketch either.
                c.add(Value::Str(format!("item-{}", i / 2)));
            }
            let got = c.count();
            let error = (got - n).abs() as f64 / n as f64;
            assert!(error < 0.03, "{n} distinct values counted as {got}");
        }
        // The estimate never goes below the exact count the sketch took over from.
        let mut c = DistinctCount::default();
        for i in 0..=EXACT_LIMIT as i64 {
            c.add(Value::Int(i));
        }
        assert!(c.count() > EXACT_LIMIT as i64);
        assert_eq!(DistinctCount::default().count(), 0);
    }

    #[test]
    fn distinct_values_are_told_apart_by_value_not_hash_alone() {
        let mut c = DistinctCount::default();
        for v in [
            Value::Str("a".into()),
            Value::Str("a".into()),
            Value::Double(0.0),
            Value::Double(-0.0),
            Value::Double(f64::NAN),
            Value::Double(f64::NAN),
            Value::Bool(true),
        ] {
            c.add(v);
        }
        assert_eq!(c.count(), 4);
    }

    fn hotspots(h: &mut Hotspots, points: &[[f64; 2]]) -> Vec<String> {
        points.iter().map(|p| h.push(p, Ack::none()).0).collect()
    }

    #[test]
    fn a_dense_group_is_a_hotspot_and_a_sparse_one_is_not() {
        let mut h = Hotspots::new(100, 0.5, 3, 2);
        let out = hotspots(
            &mut h,
            &[[1.0, 1.0], [1.25, 1.0], [5.0, 5.0], [1.0, 1.5], [9.0, 9.0]],
        );
        assert_eq!(out[0], r#"{"hotspots":[]}"#);
        assert_eq!(out[2], r#"{"hotspots":[]}"#);
        // Three points within 0.5 of (1, 1): a box 0.25 by 0.5, its sides at least 0.5.
        let one = r#"{"hotspots":[{"density":12.0,"minValues":[1.0,1.0],"maxValues":[1.25,1.5]}]}"#;
        assert_eq!(out[3], one);
        assert_eq!(out[4], one);
    }

    #[test]
    fn the_window_forgets_its_oldest_rows() {
        let mut h = Hotspots::new(3, 0.5, 3, 2);
        let out = hotspots(
            &mut h,
            &[
                [0.0, 0.0],
                [0.0, 0.25],
                [0.25, 0.0],
                [7.0, 7.0],
                [7.0, 7.25],
                [7.25, 7.0],
            ],
        );
        assert_eq!(
            out[2],
            r#"{"hotspots":[{"density":12.0,"minValues":[0.0,0.0],"maxValues":[0.25,0.25]}]}"#
        );
        assert_eq!(out[3], r#"{"hotspots":[]}"#);
        assert_eq!(out[4], r#"{"hotspots":[]}"#);
        assert_eq!(
            out[5],
            r#"{"hotspots":[{"density":12.0,"minValues":[7.0,7.0],"maxValues":[7.25,7.25]}]}"#
        );
        // The slots' counts are back to what the window holds.
        assert!(h.count.iter().all(|&c| c == 3), "{:?}", h.count);
    }

    #[test]
    fn hotspots_chain_through_core_points_and_come_out_densest_first() {
        let mut h = Hotspots::new(100, 1.0, 2, 1);
        let mut last = String::new();
        // A chain 0, 1, 2, 3 (each within 1 of the next): one hotspot of 4 over a length of 3;
        // two equal points at 10: a hotspot of 2 over a length of at least 1.
        for x in [0.0, 1.0, 2.0, 3.0, 10.0, 10.0, 20.0] {
            last = h.push(&[x], Ack::none()).0;
        }
        assert_eq!(
            last,
            r#"{"hotspots":[{"density":2.0,"minValues":[10.0],"maxValues":[10.0]},{"density":1.3333333333333333,"minValues":[0.0],"maxValues":[3.0]}]}"#
        );
    }

    #[test]
    fn a_full_window_of_far_and_huge_points_stays_finite() {
        let mut h = Hotspots::new(100, 1e-300, 2, 3);
        for i in 0..250 {
            let x = if i % 2 == 0 { f64::MAX } else { -f64::MAX };
            let (json, _) = h.push(&[x, 0.0, x], Ack::none());
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            for spot in v["hotspots"].as_array().unwrap() {
                assert!(spot["density"].as_f64().is_some(), "{json}");
            }
        }
        assert_eq!(h.order.len(), 100);
    }

    #[test]
    fn an_explanation_splits_each_column_and_its_direction() {
        let names = ["x", "y"];
        // Two columns, a shingle of 2: positions 0 and 2 are x, 1 and 3 are y.
        let high = [0.5, 0.0, 0.25, 0.125];
        let low = [0.0, 0.25, 0.0, 0.125];
        assert_eq!(
            explanation(&names, Some((&high[..], &low[..])), true),
            r#"{"x":{"DIRECTION":"HIGH","STRENGTH":"1000.0000","ATTRIBUTION_SCORE":"0.7500"},"y":{"DIRECTION":"LOW","STRENGTH":"1.9920","ATTRIBUTION_SCORE":"0.5000"}}"#
        );
        assert_eq!(
            explanation(&names, Some((&high[..], &low[..])), false),
            r#"{"x":{"ATTRIBUTION_SCORE":"0.7500"},"y":{"ATTRIBUTION_SCORE":"0.5000"}}"#
        );
        assert_eq!(
            explanation(&["a\"b"], None, true),
            r#"{"a\"b":{"DIRECTION":"LOW","STRENGTH":"0.0000","ATTRIBUTION_SCORE":"0.0000"}}"#
        );
    }
}
