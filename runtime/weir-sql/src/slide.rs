//! Sliding windows' state: per window of a pump, the rows of each partition within its frame,
//! with aggregates kept up to date as rows come in and leave (no pass over the window per
//! row): COUNT, SUM and AVG add and subtract, MIN and MAX keep a monotonic queue (the values
//! that can still become the extreme, each with its row's sequence number).
//!
//! Invariant: a partition's rows are in the order they came (ROWTIME never decreases), and
//! each holds its input's ack until it leaves the frame, so a source's checkpoint never moves
//! past a row that a later row's aggregates still depend on.

use std::collections::{HashMap, VecDeque};

use weir_core::ack::Ack;

use crate::ast::Frame;
use crate::eval::compare;
use crate::plan::{AggKind, AggSpec};
use crate::value::Value;

/// One window of a pump.
#[derive(Debug, Default)]
pub struct SlideState {
    index: HashMap<u64, Vec<usize>>,
    parts: Vec<Part>,
}

#[derive(Debug)]
struct Part {
    keys: Vec<Value>,
    rows: VecDeque<SlideRow>,
    accs: Vec<SlideAcc>,
    /// The acks of the rows, as runs of rows that share one (rows of a batch usually do).
    runs: VecDeque<(Ack, usize)>,
    /// The runs' acks merged into one, until the runs change: each output row holds it, so it
    /// costs a clone, not a pass over the frame.
    merged: Option<Ack>,
}

#[derive(Debug)]
struct SlideRow {
    rowtime: i64,
    seq: u64,
    /// One argument per aggregate over this window.
    args: Vec<Value>,
}

#[derive(Debug)]
enum SlideAcc {
    Count(i64),
    /// Integers are summed in 128 bits: rows that leave are subtracted, and a window whose sum
    /// fits may pass through sums that would not fit 64 bits.
    Sum {
        int: i128,
        dbl: f64,
        doubles: bool,
        n: i64,
        avg: bool,
    },
    Extreme {
        min: bool,
        queue: VecDeque<(u64, Value)>,
    },
    /// DISTINCT: computed from the window's rows when asked.
    Distinct,
    /// LAG: read from the window's rows when asked.
    Lag {
        n: u64,
        ignore_nulls: bool,
    },
    Var(Welford),
    /// ANY and EVERY: how many TRUEs among how many non-NULL values.
    Bool {
        trues: i64,
        count: i64,
    },
    /// FIRST_VALUE, LAST_VALUE, NTH_VALUE and EXP_AVG: read from the window's rows when asked.
    Rows,
}

/// A running count, mean and sum of squared deviations (Welford's), that rows can also
/// leave: variance without the cancellation of a sum of squares.
#[derive(Debug, Clone, Default)]
pub struct Welford {
    n: i64,
    mean: f64,
    m2: f64,
    /// Infinite and NaN values among the rows, kept out of the sums (they could never be
    /// taken out again): while one is in, the variance is NaN.
    nonfinite: i64,
}

impl Welford {
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.nonfinite += 1;
            return;
        }
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    pub fn remove(&mut self, x: f64) {
        if !x.is_finite() {
            self.nonfinite -= 1;
            return;
        }
        if self.n <= 1 {
            let nonfinite = self.nonfinite;
            *self = Welford {
                nonfinite,
                ..Welford::default()
            };
            return;
        }
        let d = x - self.mean;
        self.mean -= d / (self.n - 1) as f64;
        self.m2 -= d * (x - self.mean);
        self.n -= 1;
        // Rounding may leave a hair below zero.
        self.m2 = self.m2.max(0.0);
    }

    /// VAR_POP, VAR_SAMP, STDDEV_POP or STDDEV_SAMP: NULL without rows (or with one, for the
    /// samples').
    pub fn value(&self, kind: AggKind) -> Value {
        let AggKind::Var { sample, root } = kind else {
            return Value::Null;
        };
        let n = if sample { self.n - 1 } else { self.n };
        if self.nonfinite > 0 {
            return Value::Double(f64::NAN);
        }
        if n <= 0 {
            return Value::Null;
        }
        let var = self.m2 / n as f64;
        Value::Double(if root { var.sqrt() } else { var })
    }
}

/// Whether aggregate `spec` can take `v` (its type), so that [`SlideAcc::add`] cannot fail.
pub(crate) fn accepts(spec: &AggSpec, v: &Value) -> Result<(), String> {
    let ok = match (spec.kind, v) {
        (_, Value::Null) => true,
        (AggKind::Sum | AggKind::Avg | AggKind::Var { .. }, v) => {
            matches!(v, Value::Int(_) | Value::Double(_))
        }
        (AggKind::Any | AggKind::Every, v) => matches!(v, Value::Bool(_)),
        _ => true,
    };
    if ok || spec.distinct {
        Ok(())
    } else {
        Err(format!("{:?} of a {}", spec.kind, v.type_name()))
    }
}

/// A numeric argument as a double.
pub fn number(v: &Value, what: &str) -> Result<f64, String> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Double(d) => Ok(*d),
        other => Err(format!("{what} of a {}", other.type_name())),
    }
}

impl SlideState {
    /// Adds a row to its partition (`keys`), lets out the rows its frame no longer holds, and
    /// returns the aggregates' values and one ack that holds those of the rows in the frame.
    pub fn push(
        &mut self,
        keys: Vec<Value>,
        frame: Frame,
        specs: &[AggSpec],
        row: (i64, u64, Vec<Value>, Ack),
    ) -> Result<(Vec<Value>, Ack), String> {
        let hash = crate::stage::key_hash(&keys);
        let found = self.index.get(&hash).and_then(|ps| {
            ps.iter()
                .copied()
                .find(|&p| crate::stage::same_keys(&self.parts[p].keys, &keys))
        });
        let p = match found {
            Some(p) => p,
            None => {
                self.index.entry(hash).or_default().push(self.parts.len());
                self.parts.push(Part {
                    keys,
                    rows: VecDeque::new(),
                    accs: specs.iter().map(SlideAcc::new).collect(),
                    runs: VecDeque::new(),
                    merged: None,
                });
                self.parts.len() - 1
            }
        };
        let part = &mut self.parts[p];
        let (rowtime, seq, args, ack) = row;
        // Every argument is checked before any aggregate takes one: a row that fails must
        // leave the partition as it was.
        for (spec, v) in specs.iter().zip(&args) {
            accepts(spec, v)?;
        }
        for ((acc, spec), v) in part.accs.iter_mut().zip(specs).zip(&args) {
            acc.add(spec, seq, v)?;
        }
        part.rows.push_back(SlideRow { rowtime, seq, args });
        match part.runs.back_mut() {
            Some((a, n)) if a.same(&ack) => *n += 1,
            _ => {
                part.runs.push_back((ack, 1));
                part.merged = None;
            }
        }
        part.evict(frame, rowtime, specs);
        let values = part
            .accs
            .iter()
            .zip(specs)
            .enumerate()
            .map(|(i, (acc, spec))| acc.value(spec, i, &part.rows))
            .collect();
        let runs = &part.runs;
        let ack = part
            .merged
            .get_or_insert_with(|| Ack::merge(runs.iter().map(|(a, _)| a.clone())))
            .clone();
        Ok((values, ack))
    }

    /// Lets out, in every partition, the rows a RANGE frame no longer holds at ROWTIME `t`
    /// (their acks with them), and forgets partitions left empty (a key seen once does not
    /// stay forever).
    pub fn advance(&mut self, frame: Frame, t: i64, specs: &[AggSpec]) {
        if let Frame::Range(_) = frame {
            for part in &mut self.parts {
                part.evict(frame, t, specs);
            }
            if self.parts.iter().any(|p| p.rows.is_empty()) {
                self.parts.retain(|p| !p.rows.is_empty());
                self.index.clear();
                for (i, p) in self.parts.iter().enumerate() {
                    self.index
                        .entry(crate::stage::key_hash(&p.keys))
                        .or_default()
                        .push(i);
                }
            }
        }
    }

    /// Every ack the window holds.
    pub fn acks(&self) -> impl Iterator<Item = &Ack> {
        self.parts
            .iter()
            .flat_map(|p| p.runs.iter().map(|(a, _)| a))
    }
}

impl Part {
    fn evict(&mut self, frame: Frame, now: i64, specs: &[AggSpec]) {
        loop {
            let out = match (frame, self.rows.front()) {
                (Frame::Range(ms), Some(first)) => first.rowtime < now.saturating_sub(ms),
                (Frame::Rows(n), Some(_)) => self.rows.len() as u64 > n.saturating_add(1),
                (_, None) => false,
            };
            if !out {
                return;
            }
            let gone = self.rows.pop_front().expect("a first row");
            if let Some((_, n)) = self.runs.front_mut() {
                *n -= 1;
                if *n == 0 {
                    self.runs.pop_front();
                    self.merged = None;
                }
            }
            for ((acc, spec), v) in self.accs.iter_mut().zip(specs).zip(&gone.args) {
                acc.remove(spec, gone.seq, v);
            }
        }
    }
}

impl SlideAcc {
    fn new(spec: &AggSpec) -> SlideAcc {
        if spec.distinct {
            return SlideAcc::Distinct;
        }
        match spec.kind {
            AggKind::Count | AggKind::CountStar => SlideAcc::Count(0),
            AggKind::Sum | AggKind::Avg => SlideAcc::Sum {
                int: 0,
                dbl: 0.0,
                doubles: false,
                n: 0,
                avg: spec.kind == AggKind::Avg,
            },
            AggKind::Min | AggKind::Max => SlideAcc::Extreme {
                min: spec.kind == AggKind::Min,
                queue: VecDeque::new(),
            },
            AggKind::Lag { n, ignore_nulls } => SlideAcc::Lag { n, ignore_nulls },
            AggKind::Var { .. } => SlideAcc::Var(Welford::default()),
            AggKind::Any | AggKind::Every => SlideAcc::Bool { trues: 0, count: 0 },
            AggKind::FirstValue
            | AggKind::LastValue
            | AggKind::NthValue(_)
            | AggKind::ExpAvg(_) => SlideAcc::Rows,
        }
    }

    fn add(&mut self, spec: &AggSpec, seq: u64, v: &Value) -> Result<(), String> {
        if v.is_null() && spec.kind != AggKind::CountStar {
            return Ok(());
        }
        match self {
            SlideAcc::Count(n) => *n += 1,
            SlideAcc::Sum {
                int,
                dbl,
                doubles,
                n,
                ..
            } => {
                match v {
                    Value::Int(i) => *int += i128::from(*i),
                    Value::Double(d) => {
                        *dbl += d;
                        *doubles = true;
                    }
                    other => return Err(format!("SUM of a {}", other.type_name())),
                }
                *n += 1;
            }
            SlideAcc::Extreme { min, queue } => {
                let worse = if *min {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Less
                };
                // Values the new one beats (or equals) can never be the extreme again.
                while queue.back().is_some_and(|(_, b)| {
                    compare(b, v)
                        .ok()
                        .flatten()
                        .is_some_and(|o| o == worse || o.is_eq())
                }) {
                    queue.pop_back();
                }
                queue.push_back((seq, v.clone()));
            }
            SlideAcc::Var(w) => w.add(number(v, "VAR/STDDEV")?),
            SlideAcc::Bool { trues, count } => {
                match v {
                    Value::Bool(b) => *trues += i64::from(*b),
                    other => return Err(format!("ANY/EVERY of a {}", other.type_name())),
                }
                *count += 1;
            }
            SlideAcc::Distinct | SlideAcc::Lag { .. } | SlideAcc::Rows => {}
        }
        Ok(())
    }

    fn remove(&mut self, spec: &AggSpec, seq: u64, v: &Value) {
        if v.is_null() && spec.kind != AggKind::CountStar {
            return;
        }
        match self {
            SlideAcc::Count(n) => *n -= 1,
            SlideAcc::Sum { int, dbl, n, .. } => {
                match v {
                    Value::Int(i) => *int -= i128::from(*i),
                    Value::Double(d) => *dbl -= d,
                    _ => {}
                }
                *n -= 1;
            }
            SlideAcc::Extreme { queue, .. } => {
                if queue.front().is_some_and(|(s, _)| *s == seq) {
                    queue.pop_front();
                }
            }
            // What `add` took, it can give back.
            SlideAcc::Var(w) => {
                if let Ok(x) = number(v, "") {
                    w.remove(x);
                }
            }
            SlideAcc::Bool { trues, count } => {
                if let Value::Bool(b) = v {
                    *trues -= i64::from(*b);
                    *count -= 1;
                }
            }
            SlideAcc::Distinct | SlideAcc::Lag { .. } | SlideAcc::Rows => {}
        }
    }

    /// The aggregate's value; `i` is its place among the window's (its argument's column).
    fn value(&self, spec: &AggSpec, i: usize, rows: &VecDeque<SlideRow>) -> Value {
        match self {
            SlideAcc::Count(n) => Value::Int(*n),
            SlideAcc::Sum { n: 0, .. } => Value::Null,
            SlideAcc::Sum {
                int,
                dbl,
                doubles,
                n,
                avg,
            } => {
                let total = match i64::try_from(*int) {
                    _ if *doubles => Value::Double(*int as f64 + dbl),
                    Ok(i) => Value::Int(i),
                    // Past 64 bits: a double, rather than a wrong integer.
                    Err(_) => Value::Double(*int as f64),
                };
                match (avg, total) {
                    (false, t) => t,
                    // AVG of integers is an integer, as in the tumbling windows.
                    (true, Value::Int(t)) => Value::Int(t / n),
                    (true, Value::Double(t)) => Value::Double(t / *n as f64),
                    (true, t) => t,
                }
            }
            SlideAcc::Extreme { queue, .. } => {
                queue.front().map_or(Value::Null, |(_, v)| v.clone())
            }
            SlideAcc::Lag {
                n,
                ignore_nulls: false,
            } => usize::try_from(*n)
                .ok()
                .and_then(|n| rows.len().checked_sub(n + 1))
                .map_or(Value::Null, |at| rows[at].args[i].clone()),
            SlideAcc::Var(w) => w.value(spec.kind),
            SlideAcc::Bool { count: 0, .. } => Value::Null,
            SlideAcc::Bool { trues, count } => Value::Bool(if spec.kind == AggKind::Every {
                trues == count
            } else {
                *trues > 0
            }),
            SlideAcc::Rows => match spec.kind {
                AggKind::FirstValue => rows.front().map_or(Value::Null, |r| r.args[i].clone()),
                AggKind::LastValue => rows.back().map_or(Value::Null, |r| r.args[i].clone()),
                AggKind::NthValue(n) => usize::try_from(n)
                    .ok()
                    .and_then(|n| rows.get(n.checked_sub(1)?))
                    .map_or(Value::Null, |r| r.args[i].clone()),
                AggKind::ExpAvg(half_life) => exp_avg(rows, i, half_life),
                _ => Value::Null,
            },
            // The current row is `rows`' last; NULLs before it do not count.
            SlideAcc::Lag {
                n,
                ignore_nulls: true,
            } => rows
                .iter()
                .rev()
                .skip(1)
                .filter(|r| !r.args[i].is_null())
                .nth(usize::try_from(*n).unwrap_or(usize::MAX).saturating_sub(1))
                .filter(|_| *n > 0)
                .map_or_else(
                    || {
                        if *n == 0 {
                            rows.back().map_or(Value::Null, |r| r.args[i].clone())
                        } else {
                            Value::Null
                        }
                    },
                    |r| r.args[i].clone(),
                ),
            SlideAcc::Distinct => {
                let mut seen: Vec<&Value> = Vec::new();
                for r in rows {
                    let v = &r.args[i];
                    if !v.is_null() && !seen.contains(&v) {
                        seen.push(v);
                    }
                }
                let plain = AggSpec {
                    distinct: false,
                    ..spec.clone()
                };
                let mut acc = SlideAcc::new(&plain);
                for (k, v) in seen.into_iter().enumerate() {
                    let _ = acc.add(&plain, k as u64, v);
                }
                acc.value(&plain, i, &VecDeque::new())
            }
        }
    }
}

/// EXP_AVG over the frame's rows: each non-NULL value weighted by half for each whole
/// half-life its row is older than the current (last) one, as the reference's example
/// describes ("the prices in the most recent 10-second subwindow carry double the weight of
/// the prices in the middle 10-second subwindow").
fn exp_avg(rows: &VecDeque<SlideRow>, i: usize, half_life: i64) -> Value {
    let Some(now) = rows.back().map(|r| r.rowtime) else {
        return Value::Null;
    };
    let (mut sum, mut weights) = (0.0f64, 0.0f64);
    for r in rows {
        let Ok(x) = number(&r.args[i], "") else {
            continue;
        };
        let halvings = (now.saturating_sub(r.rowtime) / half_life.max(1)).min(1100) as i32;
        let w = 0.5f64.powi(halvings);
        sum += w * x;
        weights += w;
    }
    if weights > 0.0 {
        Value::Double(sum / weights)
    } else {
        Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: AggKind, distinct: bool) -> AggSpec {
        AggSpec {
            kind,
            arg: None,
            distinct,
        }
    }

    /// The incremental aggregates agree with computing each window afresh, over pseudo-random
    /// rows with NULLs, ties, two partitions and both kinds of frame.
    #[test]
    fn incremental_aggregates_agree_with_recomputing_the_window() {
        let kinds = [
            spec(AggKind::CountStar, false),
            spec(AggKind::Count, false),
            spec(AggKind::Sum, false),
            spec(AggKind::Min, false),
            spec(AggKind::Max, false),
            spec(AggKind::Avg, false),
            spec(AggKind::Count, true),
        ];
        let specs: &[AggSpec] = &kinds;
        for frame in [Frame::Range(30), Frame::Rows(3)] {
            let mut state = SlideState::default();
            let mut history: Vec<(i64, i64, Value)> = Vec::new();
            let mut x: u64 = 42;
            let mut t = 0i64;
            for seq in 0..400u64 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                t += (x >> 60) as i64; // ties and gaps
                let part = ((x >> 40) % 2) as i64;
                let v = match (x >> 20) % 7 {
                    0 => Value::Null,
                    n => Value::Int((n as i64) * 3 % 5),
                };
                history.push((t, part, v.clone()));
                let (got, _ack) = state
                    .push(
                        vec![Value::Int(part)],
                        frame,
                        specs,
                        (t, seq, vec![v; kinds.len()], Ack::none()),
                    )
                    .unwrap();
                let mine: Vec<&(i64, i64, Value)> =
                    history.iter().filter(|(_, p, _)| *p == part).collect();
                let window: Vec<&Value> = match frame {
                    Frame::Range(ms) => mine
                        .iter()
                        .filter(|(rt, _, _)| *rt >= t - ms)
                        .map(|(_, _, v)| v)
                        .collect(),
                    Frame::Rows(n) => mine
                        .iter()
                        .rev()
                        .take(n as usize + 1)
                        .map(|(_, _, v)| v)
                        .collect(),
                };
                let ints: Vec<i64> = window
                    .iter()
                    .filter_map(|v| match v {
                        Value::Int(i) => Some(*i),
                        _ => None,
                    })
                    .collect();
                let mut distinct = ints.clone();
                distinct.sort();
                distinct.dedup();
                let opt = |o: Option<i64>| o.map_or(Value::Null, Value::Int);
                let want = vec![
                    Value::Int(window.len() as i64),
                    Value::Int(ints.len() as i64),
                    opt((!ints.is_empty()).then(|| ints.iter().sum())),
                    opt(ints.iter().copied().min()),
                    opt(ints.iter().copied().max()),
                    opt((!ints.is_empty()).then(|| ints.iter().sum::<i64>() / ints.len() as i64)),
                    Value::Int(distinct.len() as i64),
                ];
                assert_eq!(got, want, "{frame:?}, row {seq}");
            }
        }
    }
}
