//! The SQL stage: a compiled application as a [`Processor`].
//!
//! Invariants:
//! - ROWTIME never decreases within a stage. From arrival times it is clamped (a record that
//!   arrived earlier than the last row's ROWTIME gets that ROWTIME); from a `rowtime` column, a
//!   row that would move it back fails, with its record, to the error output.
//! - A window row carries the acks of every input row it summarises ([`Ack::merge`]), so the
//!   source's checkpoint moves past those inputs only once the row is delivered. Rows a filter
//!   drops let go of their acks at once.
//! - A window is emitted once, when ROWTIME passes its end: when a later row comes, when time
//!   passes with no row ([`Processor::tick`]: arrival-time ROWTIME follows the clock once the
//!   input has been quiet for [`QUIET`]), or when the input ends ([`Processor::flush`]). When the
//!   pipeline stops instead, open windows are dropped and their acks failed, so their inputs
//!   are read again: no partial window is ever emitted.
//! - Rows bound for a pump that calls user-defined functions wait in [`SqlStage`]'s
//!   `deferred` only until the end of the call that brought them ([`SqlStage::drain`]): each
//!   call site is then evaluated over all of them in one call, and they go on in their order
//!   (after the rows other pumps made from the same call). No call returns with rows deferred.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use weir_core::ack::Ack;
use weir_core::batch::{Batch, BatchBuilder, Meta, RecordRef};
use weir_core::process::{Processed, Processor};
use weir_core::record::{ErrorOutputType, FailedRecord, Record};

use crate::analytic::{DistinctCount, Hotspots};
use crate::app::OutputFormat;
use crate::error::codes;
use crate::eval::{cast, compare, eval, eval_items, text, truth, CExpr, Scope};
use crate::input::Mapper;
use crate::plan::{AggKind, AggSpec, JoinPlan, Plan, PumpKind};
use crate::slide::SlideState;
use crate::udf::{UdfResult, UdfSite, Udfs};
use crate::value::Value;

/// How long the input must be quiet before arrival-time ROWTIME follows the clock (so that a
/// window closes with no further records, at most this long after its end).
pub const QUIET: Duration = Duration::from_secs(2);

/// How often the stage asks for the time while no records come.
const TICK: Duration = Duration::from_millis(500);

/// A row on its way through the application.
#[derive(Debug, Clone)]
struct Row {
    vals: Vec<Value>,
    rowtime: i64,
    ack: Ack,
    key: Arc<str>,
}

/// A reference table's rows.
#[derive(Debug)]
struct Table {
    rows: Vec<Vec<Value>>,
    width: usize,
}

impl Table {
    fn load(def: &crate::plan::TableDef, bytes: &[u8]) -> Result<Table, String> {
        let input = crate::app::Input {
            name_prefix: def.name.clone(),
            schema: def.reference.schema.clone(),
        };
        let mapper = Mapper::new(&input)?.lenient();
        let mut rows = Vec::new();
        match &def.reference.schema.format {
            // The whole file is one record of many rows.
            crate::app::RecordFormat::Csv { .. } => mapper.rows(bytes, &mut rows)?,
            crate::app::RecordFormat::Json { .. } => {
                for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    mapper
                        .rows(line, &mut rows)
                        .map_err(|e| format!("line {}: {e}", i + 1))?;
                }
            }
        }
        Ok(Table {
            rows,
            width: def.columns.len(),
        })
    }

    /// The rows by the hash of the table's side of a join's ON equalities; `None` when the
    /// ON condition has none (every row is then a candidate).
    fn index(
        &self,
        source: &crate::plan::StreamDef,
        join: &JoinPlan,
    ) -> Option<HashMap<u64, Vec<usize>>> {
        if join.keys.is_empty() {
            return None;
        }
        let pad = vec![Value::Null; source.columns.len()];
        let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, r) in self.rows.iter().enumerate() {
            let mut vals = pad.clone();
            vals.extend(r.iter().cloned());
            let scope = Scope {
                row: &vals,
                rowtime: 0,
                keys: &[],
                aggs: &[],
                udf: &[],
                // The table's side of an indexed equality reads no clock (see the plan's
                // `equalities`): it is evaluated once, at start.
                now: 0,
            };
            let keys: Option<Vec<Value>> = join
                .keys
                .iter()
                .map(|(_, t)| eval(t, &scope).ok().filter(|v| !v.is_null()))
                .collect();
            if let Some(keys) = keys {
                index.entry(key_hash(&keys)).or_default().push(i);
            }
        }
        Some(index)
    }
}

/// One group of an open window.
#[derive(Debug)]
struct Group {
    keys: Vec<Value>,
    aggs: Vec<Acc>,
    acks: Vec<Ack>,
    key: Arc<str>,
}

#[derive(Debug, Default)]
struct Window {
    /// The window's value (its key in GROUP BY), while one is open.
    bucket: Option<Value>,
    /// The ROWTIME of its last row: its end is the first ROWTIME after it in another window.
    last: i64,
    groups: Vec<Group>,
    /// Groups by the hash of their keys (see [`key_hash`]); equal hashes are told apart by
    /// comparing keys, so a row's keys are neither cloned nor formatted to find its group.
    index: HashMap<u64, Vec<usize>>,
}

/// A hash of a group's keys, under the equality of [`same_keys`].
pub(crate) fn key_hash(keys: &[Value]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for k in keys {
        // Numbers share a tag, so that an integer and the double it equals hash alike.
        let tag: u8 = match k {
            Value::Null => 0,
            Value::Int(_) | Value::Double(_) => 1,
            Value::Bool(_) => 2,
            Value::Str(_) => 3,
            Value::Timestamp(_) => 4,
            Value::Interval(_) => 5,
        };
        tag.hash(&mut h);
        match k {
            Value::Null => {}
            Value::Bool(b) => b.hash(&mut h),
            // An integer hashes as the double it equals, so that `5` finds `5.0` (a join's
            // index; groups still tell them apart, by `same_keys`).
            Value::Int(i) => (*i as f64).to_bits().hash(&mut h),
            Value::Timestamp(i) | Value::Interval(i) => i.hash(&mut h),
            // -0.0 and 0.0 are one key, as they are equal.
            Value::Double(d) if d.is_nan() => f64::NAN.to_bits().hash(&mut h),
            Value::Double(d) => (if *d == 0.0 { 0.0f64 } else { *d }).to_bits().hash(&mut h),
            Value::Str(s) => s.hash(&mut h),
        }
    }
    h.finish()
}

/// Whether two rows' keys are one group's: NULL groups with NULL (as KDA's GROUP BY did).
pub(crate) fn same_keys(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Value::Double(p), Value::Double(q)) => p == q || (p.is_nan() && q.is_nan()),
            _ => x == y,
        })
}

/// A TOP_K_ITEMS_TUMBLING window: each value's count, and the acks of its rows.
#[derive(Debug, Default)]
struct TopK {
    start: Option<i64>,
    /// The partition key of the window's first row, for its rows.
    key: Option<Arc<str>>,
    counts: Vec<(Value, i64)>,
    index: HashMap<u64, Vec<usize>>,
    acks: Vec<Ack>,
}

/// A COUNT_DISTINCT_ITEMS_TUMBLING window: its distinct values, and the acks of its rows.
#[derive(Debug, Default)]
struct Distinct {
    start: Option<i64>,
    /// The partition key of the window's first row, for its row.
    key: Option<Arc<str>>,
    values: DistinctCount,
    acks: Vec<Ack>,
}

/// The rows of one window of ROWTIME that an ORDER BY holds, with their sort keys.
#[derive(Debug, Default)]
struct Sorting {
    bucket: Option<Value>,
    rows: Vec<(Vec<Value>, Row)>,
}

/// A pump's open stagger windows, in the order they opened, each with its end.
#[derive(Debug, Default)]
struct Staggered {
    groups: std::collections::VecDeque<(i64, Group)>,
    /// The id of `groups[0]` (ids count every window ever opened).
    base: usize,
    /// Window ids by the hash of their keys.
    index: HashMap<u64, Vec<usize>>,
}

#[derive(Debug, Clone)]
enum Acc {
    Count(i64),
    Sum(Option<Value>),
    Min(Option<Value>),
    Max(Option<Value>),
    Avg(f64, i64, bool),
    /// The distinct values seen, found by the hash of each (not by a scan).
    Distinct(Vec<Value>, HashMap<u64, Vec<usize>>),
    Var(crate::slide::Welford),
    /// FIRST_VALUE's and LAST_VALUE's value, once a row has come (NULL or not).
    Pick(Option<Value>),
    /// ANY and EVERY: how many TRUEs among how many non-NULL values.
    Bool {
        trues: i64,
        count: i64,
    },
}

pub struct SqlStage {
    name: String,
    plan: Arc<Plan>,
    mappers: Vec<Option<Mapper>>,
    /// The stream the input feeds (an application has one input, as KDA's had).
    input: usize,
    windows: Vec<Window>,
    /// Per pump, its sliding windows' state (empty for other pumps).
    slides: Vec<Vec<SlideState>>,
    /// Per pump, its open stagger windows (empty for other pumps).
    staggers: Vec<Staggered>,
    /// Per pump, the rows its ORDER BY holds.
    sorts: Vec<Sorting>,
    /// Per pump, its open TOP_K_ITEMS_TUMBLING window.
    topk: Vec<TopK>,
    /// Per RANDOM_CUT_FOREST (or RANDOM_CUT_FOREST_WITH_EXPLANATION) pump, its forest.
    forests: Vec<Option<krcf::RandomCutForest>>,
    /// Per pump, its open COUNT_DISTINCT_ITEMS_TUMBLING window.
    distincts: Vec<Distinct>,
    /// Per HOTSPOTS pump, its window of the last rows.
    hotspots: Vec<Option<Hotspots>>,
    /// The reference tables' rows.
    tables: Vec<Table>,
    /// Per pump with a join, its table's rows by the hash of their ON keys.
    joins: Vec<Option<HashMap<u64, Vec<usize>>>>,
    /// Numbers rows for the sliding windows' MIN and MAX.
    seq: u64,
    /// The ROWTIME of the last row (ROWTIME never goes back).
    last_rowtime: i64,
    /// Set while a row of `error_stream` goes through the pumps.
    in_error: bool,
    /// Per stream, the ROWTIME of its last row.
    stream_rowtime: Vec<i64>,
    /// When the last batch came (the clock's time), for [`QUIET`].
    last_input_ms: i64,
    /// The clock's time at the stage's first call: what CURRENT_TIMESTAMP and the other
    /// functions of the clock read ([`Scope::now`]). The SQL Reference: they "all produce
    /// results which are set to values at the time the query first executes" (Date and Time
    /// Functions); only CURRENT_ROW_TIMESTAMP moves, and Weir's is the row's ROWTIME.
    clock_ms: Option<i64>,
    /// What calls the plan's user-defined functions.
    udfs: Option<Box<dyn Udfs>>,
    /// Per pump, rows waiting for its UDF calls (see the module's invariants).
    deferred: Vec<Vec<Row>>,
    /// Per pump with a stream-to-stream join, the rows each side's window holds.
    stream_joins: Vec<JoinState>,
}

/// The rows of both sides of a stream-to-stream join that later rows of the other side may
/// still join, each with whether it joined any row yet (an outer join lets those that never
/// did go on with NULLs once they leave their window). Each holds its input's ack while it is
/// here.
#[derive(Debug, Default)]
struct JoinState {
    left: JoinSide,
    right: JoinSide,
}

/// One side's rows, oldest first, and, when ON has equalities between the sides, the rows by
/// the hash of their side of them: an arriving row is compared with the rows of its hash only.
#[derive(Debug, Default)]
struct JoinSide {
    rows: std::collections::VecDeque<(Row, bool)>,
    /// Each row's hash, in step with `rows` (None: a NULL in its keys, so it equals nothing).
    hashes: std::collections::VecDeque<Option<u64>>,
    /// The sequence numbers of the rows of each hash, oldest first.
    index: HashMap<u64, std::collections::VecDeque<u64>>,
    /// The sequence number of `rows[0]`.
    base: u64,
}

impl JoinSide {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn front(&self) -> Option<&(Row, bool)> {
        self.rows.front()
    }

    fn iter(&self) -> impl Iterator<Item = &(Row, bool)> {
        self.rows.iter()
    }

    fn push(&mut self, row: Row, hit: bool, hash: Option<u64>) {
        if let Some(h) = hash {
            let seq = self.base + self.rows.len() as u64;
            self.index.entry(h).or_default().push_back(seq);
        }
        self.rows.push_back((row, hit));
        self.hashes.push_back(hash);
    }

    fn pop_front(&mut self) -> Option<(Row, bool)> {
        let row = self.rows.pop_front()?;
        if let Some(Some(h)) = self.hashes.pop_front() {
            if let Some(seqs) = self.index.get_mut(&h) {
                // Rows leave oldest first, so the oldest of its hash is this one.
                seqs.pop_front();
                if seqs.is_empty() {
                    self.index.remove(&h);
                }
            }
        }
        self.base += 1;
        Some(row)
    }

    /// The places of the rows an arriving row may join: those of its hash when the side is
    /// indexed (`indexed`; none for a NULL key), else all.
    fn candidates(&self, indexed: bool, hash: Option<u64>) -> Vec<usize> {
        if !indexed {
            return (0..self.rows.len()).collect();
        }
        let Some(h) = hash else {
            return Vec::new();
        };
        self.index.get(&h).map_or_else(Vec::new, |seqs| {
            seqs.iter().map(|s| (s - self.base) as usize).collect()
        })
    }
}

/// The hash of a row's side (`right`) of a join's ON equalities, None when one is NULL (it
/// then equals nothing).
fn join_hash(
    keys: &[(CExpr, CExpr)],
    right: bool,
    row: &Row,
    now: i64,
) -> Result<Option<u64>, String> {
    let scope = Scope {
        row: &row.vals,
        rowtime: row.rowtime,
        keys: &[],
        aggs: &[],
        udf: &[],
        now,
    };
    let mut vals = Vec::with_capacity(keys.len());
    for (l, r) in keys {
        let v = eval(if right { r } else { l }, &scope)?;
        if v.is_null() {
            return Ok(None);
        }
        vals.push(v);
    }
    Ok(Some(key_hash(&vals)))
}

/// The most rows one side of a stream-to-stream join holds; a row that would pass it fails.
const MAX_JOIN_ROWS: usize = 1_000_000;

/// What a UDF call site's arguments are evaluated against, for one row.
struct Base<'a> {
    row: &'a [Value],
    rowtime: i64,
    keys: &'a [Value],
    aggs: &'a [Value],
    /// The clock (see [`Scope::now`]).
    now: i64,
}

/// Evaluates the call sites of `sites` that are evaluated per window row (`group`) or per
/// input row (not `group`), in order, over `bases`, one call per site; row `i`'s results go
/// into its slots, `slots[i * sites.len()..][..sites.len()]`.
fn eval_sites(
    udfs: Option<&mut (dyn Udfs + 'static)>,
    sites: &[UdfSite],
    group: bool,
    bases: &[Base<'_>],
    slots: &mut [Option<UdfResult>],
) {
    let n = bases.len();
    let w = sites.len();
    let mut udfs = udfs;
    for (k, site) in sites.iter().enumerate() {
        if site.group != group || n == 0 {
            continue;
        }
        let mut cols: Vec<Vec<Value>> = (0..site.args.len())
            .map(|_| Vec::with_capacity(n))
            .collect();
        // A row whose arguments fail keeps its error: it is raised only if the row reads the
        // site's result (a CASE may not).
        let mut failed: Vec<Option<String>> = vec![None; n];
        for (i, b) in bases.iter().enumerate() {
            let scope = Scope {
                row: b.row,
                rowtime: b.rowtime,
                keys: b.keys,
                aggs: b.aggs,
                udf: &slots[i * w..][..w],
                now: b.now,
            };
            for (a, col) in site.args.iter().zip(&mut cols) {
                match eval(a, &scope) {
                    Ok(v) => col.push(v),
                    Err(e) => {
                        failed[i].get_or_insert(e);
                        col.push(Value::Null);
                    }
                }
            }
        }
        let answer = match udfs.as_deref_mut() {
            Some(u) => u.call(site.function, n, &cols).and_then(|r| {
                if r.len() == n {
                    Ok(r)
                } else {
                    Err(format!("{} results for {n} rows", r.len()))
                }
            }),
            None => Err("the step has no module providing user-defined functions".into()),
        };
        match answer {
            Ok(results) => {
                for (i, r) in results.into_iter().enumerate() {
                    slots[i * w + k] = Some(match failed[i].take() {
                        Some(e) => Err(e),
                        None => r,
                    });
                }
            }
            Err(e) => {
                for (i, f) in failed.iter_mut().enumerate() {
                    slots[i * w + k] = Some(Err(f.take().unwrap_or_else(|| e.clone())));
                }
            }
        }
    }
}

/// What one call produces.
#[derive(Default)]
struct Out {
    rows: Vec<Row>,
    failed: Vec<FailedRecord>,
}

impl SqlStage {
    /// A stage for an application without reference tables.
    pub fn new(name: &str, plan: Arc<Plan>) -> Result<SqlStage, String> {
        SqlStage::with_tables(name, plan, Vec::new())
    }

    /// A stage, with the bytes of each of the plan's reference tables (in its order): a CSV
    /// or JSON file (one object a line), read with the table's schema.
    pub fn with_tables(
        name: &str,
        plan: Arc<Plan>,
        data: Vec<Vec<u8>>,
    ) -> Result<SqlStage, String> {
        if data.len() != plan.tables.len() {
            return Err(format!(
                "the application has {} reference table(s), {} given",
                plan.tables.len(),
                data.len()
            ));
        }
        let mut tables = Vec::new();
        for (def, bytes) in plan.tables.iter().zip(data) {
            tables.push(
                Table::load(def, &bytes)
                    .map_err(|e| format!("reference table {}: {e}", def.name))?,
            );
        }
        // Each join's index on its table's side of the ON equalities.
        let joins = plan
            .pumps
            .iter()
            .map(|p| {
                p.join
                    .as_ref()
                    .and_then(|j| tables[j.table].index(&plan.streams[p.source], j))
            })
            .collect();
        let mappers = plan
            .streams
            .iter()
            .map(|s| s.input.as_ref().map(Mapper::new).transpose())
            .collect::<Result<_, _>>()?;
        let windows = plan.pumps.iter().map(|_| Window::default()).collect();
        let slides = plan
            .pumps
            .iter()
            .map(|p| match &p.kind {
                PumpKind::Slide { windows, .. } => {
                    windows.iter().map(|_| SlideState::default()).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        let input = plan
            .streams
            .iter()
            .position(|s| s.input.is_some())
            .ok_or("the application has no input")?;
        let staggers = plan.pumps.iter().map(|_| Staggered::default()).collect();
        let sorts = plan.pumps.iter().map(|_| Sorting::default()).collect();
        let topk = plan.pumps.iter().map(|_| TopK::default()).collect();
        let mut forests = Vec::new();
        for p in &plan.pumps {
            forests.push(match &p.kind {
                PumpKind::Rcf {
                    columns,
                    trees,
                    sample,
                    time_decay,
                    shingle,
                    ..
                } => Some(
                    krcf::RandomCutForest::new(krcf::RandomCutForestOptions {
                        dimensions: columns.len(),
                        shingle_size: *shingle,
                        num_trees: Some(*trees),
                        sample_size: Some(*sample),
                        lambda: Some(1.0 / time_decay),
                        internal_shingling: Some(*shingle > 1),
                        // Reproducible scores; no threads of its own beside the step pool.
                        random_seed: Some(0x5eed),
                        parallel_execution_enabled: Some(false),
                        ..Default::default()
                    })
                    .map_err(|e| format!("pump {}: RANDOM_CUT_FOREST: {e:?}", p.name))?,
                ),
                _ => None,
            });
        }
        let distincts = plan.pumps.iter().map(|_| Distinct::default()).collect();
        let hotspots = plan
            .pumps
            .iter()
            .map(|p| match &p.kind {
                PumpKind::Hotspots {
                    columns,
                    window,
                    radius,
                    min_points,
                } => Some(Hotspots::new(*window, *radius, *min_points, columns.len())),
                _ => None,
            })
            .collect();
        let stream_rowtime = vec![i64::MIN; plan.streams.len()];
        let n_pumps = plan.pumps.len();
        Ok(SqlStage {
            stream_rowtime,
            sorts,
            topk,
            forests,
            distincts,
            hotspots,
            tables,
            joins,
            staggers,
            name: name.to_string(),
            plan,
            mappers,
            input,
            windows,
            slides,
            seq: 0,
            last_rowtime: i64::MIN,
            in_error: false,
            last_input_ms: i64::MIN,
            clock_ms: None,
            deferred: vec![Vec::new(); n_pumps],
            stream_joins: (0..n_pumps).map(|_| JoinState::default()).collect(),
            udfs: None,
        })
    }

    /// What the functions of the clock read (see `clock_ms`).
    fn clock(&self) -> i64 {
        self.clock_ms.unwrap_or(0)
    }

    /// Starts the clock of CURRENT_TIMESTAMP and the like, at the first call the stage gets.
    fn start_clock(&mut self, now_ms: i64) {
        if self.clock_ms.is_none() {
            self.clock_ms = Some(now_ms);
        }
    }

    /// Calls the plan's user-defined functions through `udfs`.
    pub fn with_udfs(mut self, udfs: Box<dyn Udfs>) -> SqlStage {
        self.udfs = Some(udfs);
        self
    }

    /// Puts the rows that wait for UDF calls through their pumps, upstream first, until none
    /// waits (rows a pump lets go may wait for a later pump's calls).
    fn drain(&mut self, out: &mut Out, now_ms: i64) {
        while self.deferred.iter().any(|d| !d.is_empty()) {
            let plan = self.plan.clone();
            let clock = self.clock();
            for &p in &plan.flush_order {
                if self.deferred[p].is_empty() {
                    continue;
                }
                let rows = std::mem::take(&mut self.deferred[p]);
                let pump = &plan.pumps[p];
                let w = pump.udf_sites.len();
                let mut slots = vec![None; w * rows.len()];
                let bases: Vec<Base> = rows
                    .iter()
                    .map(|r| Base {
                        row: &r.vals,
                        rowtime: r.rowtime,
                        keys: &[],
                        aggs: &[],
                        now: clock,
                    })
                    .collect();
                eval_sites(
                    self.udfs.as_deref_mut(),
                    &pump.udf_sites,
                    false,
                    &bases,
                    &mut slots,
                );
                drop(bases);
                for (row, slot) in rows.iter().zip(slots.chunks(w.max(1))) {
                    if let Err(e) = self.pump_row_with(p, row, slot, out, now_ms) {
                        self.fail_row(p, pump.source, row, e, out, now_ms);
                    }
                }
            }
        }
    }

    /// The results of pump `p`'s sites evaluated per window row, for one such row, beside
    /// `slots` (its per-input-row results).
    fn group_slots(
        &mut self,
        p: usize,
        base: Base<'_>,
        slots: &[Option<UdfResult>],
    ) -> Vec<Option<UdfResult>> {
        let plan = self.plan.clone();
        let sites = &plan.pumps[p].udf_sites;
        if !sites.iter().any(|s| s.group) {
            return Vec::new();
        }
        let mut all = slots.to_vec();
        all.resize(sites.len(), None);
        eval_sites(self.udfs.as_deref_mut(), sites, true, &[base], &mut all);
        all
    }

    /// Whether a window, stagger window, TOP_K or COUNT_DISTINCT window or ORDER BY holds rows
    /// to emit.
    fn holds_rows(&self) -> bool {
        self.windows.iter().any(|w| w.bucket.is_some())
            || self.staggers.iter().any(|s| !s.groups.is_empty())
            || self.topk.iter().any(|t| t.start.is_some())
            || self.distincts.iter().any(|d| d.start.is_some())
            || self.sorts.iter().any(|s| !s.rows.is_empty())
            || self
                .stream_joins
                .iter()
                .any(|j| !j.left.is_empty() || !j.right.is_empty())
    }

    /// Whether a pump holds state across batches: a window, or a stream-to-stream join's.
    fn has_windows(&self) -> bool {
        self.plan.pumps.iter().any(|p| {
            p.stream_join.is_some() || !matches!(p.kind, PumpKind::Map { order: None, .. })
        })
    }

    /// Sends `record` to the error output with the reason, and KDA's `error_stream` columns
    /// beside the usual fields; and, if a pump reads `error_stream`, puts the same row into it
    /// (not for a failure of a row of `error_stream` itself, which would loop).
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &mut self,
        record: Record,
        code: &str,
        message: String,
        pump: Option<&str>,
        out: &mut Out,
        now_ms: i64,
    ) {
        let name = match code {
            codes::TYPE_CONVERSION => "Coercion error",
            codes::ROWTIME_DECREASED => "Rowtime error",
            _ => "Evaluation error",
        };
        let hex: String = record.data.iter().map(|b| format!("{b:02x}")).collect();
        let vals = vec![
            Value::Timestamp(now_ms),
            Value::Str("WARNING".into()),
            Value::Str(name.into()),
            Value::Str(message.clone()),
            Value::Timestamp(record.arrival_ms),
            Value::Str(hex),
            Value::Str(pump.unwrap_or("null").into()),
        ];
        let mut details = serde_json::Map::new();
        for ((col, _), v) in crate::plan::ERROR_COLUMNS.iter().zip(&vals) {
            details.insert(col.to_string(), v.to_json());
        }
        if let (Some(stream), false) = (self.plan.error_stream, self.in_error) {
            if self.plan.pumps.iter().any(|p| p.source == stream) {
                let row = Row {
                    vals,
                    rowtime: self.last_rowtime.max(record.arrival_ms),
                    ack: record.ack.clone(),
                    key: record.partition_key.clone(),
                };
                self.in_error = true;
                self.insert(stream, row, out, now_ms);
                self.in_error = false;
            }
        }
        out.failed.push(FailedRecord {
            record,
            output_type: ErrorOutputType::ProcessingFailed,
            code: code.to_string(),
            message,
            stage: self.name.clone(),
            attempts: 1,
            failed_at_ms: now_ms,
            details: Some(details),
        });
    }

    /// Puts a row into `stream`: out of the stage if it is the output, and through every pump
    /// that reads it.
    fn insert(&mut self, stream: usize, mut row: Row, out: &mut Out, now_ms: i64) {
        // A stream's ROWTIME never goes back, even when two pumps feed it (one's window rows
        // carry the window's end, which may be before the other's last row).
        row.rowtime = row.rowtime.max(self.stream_rowtime[stream]);
        self.stream_rowtime[stream] = row.rowtime;
        let plan = self.plan.clone();
        for (p, pump) in plan.pumps.iter().enumerate() {
            if pump.stream_join.as_ref().is_some_and(|j| j.right == stream) {
                if let Err(e) = self.join_arrive(p, &row, true, out, now_ms) {
                    self.fail_row(p, stream, &row, e, out, now_ms);
                }
            }
            if pump.source != stream {
                continue;
            }
            if let Err(e) = self.pump(p, &row, out, now_ms) {
                self.fail_row(p, stream, &row, e, out, now_ms);
            }
        }
        if stream == plan.output {
            out.rows.push(row);
        }
    }

    /// Puts a row through pump `p`: joined with its reference table, if it has one (each
    /// match makes a row; a LEFT JOIN's row without one gets NULLs), then filtered and
    /// selected.
    fn pump(&mut self, p: usize, row: &Row, out: &mut Out, now_ms: i64) -> Result<(), String> {
        let plan = self.plan.clone();
        let clock = self.clock();
        if plan.pumps[p].stream_join.is_some() {
            return self.join_arrive(p, row, false, out, now_ms);
        }
        let Some(join) = &plan.pumps[p].join else {
            return self.pump_row(p, row, out, now_ms);
        };
        let table = &self.tables[join.table];
        let candidates: Vec<usize> = match &self.joins[p] {
            Some(index) => {
                let scope = Scope {
                    row: &row.vals,
                    rowtime: row.rowtime,
                    keys: &[],
                    aggs: &[],
                    udf: &[],
                    now: clock,
                };
                let mut keys = Vec::with_capacity(join.keys.len());
                for (stream_side, _) in &join.keys {
                    keys.push(eval(stream_side, &scope)?);
                }
                // NULL equals nothing in ON.
                if keys.iter().any(Value::is_null) {
                    Vec::new()
                } else {
                    index.get(&key_hash(&keys)).cloned().unwrap_or_default()
                }
            }
            None => (0..table.rows.len()).collect(),
        };
        let mut joined = Vec::new();
        for t in candidates {
            let mut vals = row.vals.clone();
            vals.extend(self.tables[join.table].rows[t].iter().cloned());
            let scope = Scope {
                row: &vals,
                rowtime: row.rowtime,
                keys: &[],
                aggs: &[],
                udf: &[],
                now: clock,
            };
            if truth(&eval(&join.on, &scope)?)? == Some(true) {
                joined.push(vals);
            }
        }
        if joined.is_empty() && join.left {
            let mut vals = row.vals.clone();
            vals.extend(std::iter::repeat_n(
                Value::Null,
                self.tables[join.table].width,
            ));
            joined.push(vals);
        }
        for vals in joined {
            let r = Row {
                vals,
                rowtime: row.rowtime,
                ack: row.ack.clone(),
                key: row.key.clone(),
            };
            self.pump_row(p, &r, out, now_ms)?;
        }
        Ok(())
    }

    fn pump_row(&mut self, p: usize, row: &Row, out: &mut Out, now_ms: i64) -> Result<(), String> {
        let plan = self.plan.clone();
        let clock = self.clock();
        let pump = &plan.pumps[p];
        if pump.udf_sites.iter().any(|s| !s.group) {
            // Its calls wait for the rest of the batch. A filter that calls none goes first,
            // so that the functions see only the rows that pass.
            if let Some(f) = pump.filter.as_ref().filter(|f| !reads_udf(f)) {
                let scope = Scope {
                    row: &row.vals,
                    rowtime: row.rowtime,
                    keys: &[],
                    aggs: &[],
                    udf: &[],
                    now: clock,
                };
                if truth(&eval(f, &scope)?)? != Some(true) {
                    return Ok(());
                }
            }
            self.deferred[p].push(row.clone());
            return Ok(());
        }
        self.pump_row_with(p, row, &[], out, now_ms)
    }

    /// As [`SqlStage::pump_row`], with the row's results of the pump's per-row call sites.
    fn pump_row_with(
        &mut self,
        p: usize,
        row: &Row,
        row_slots: &[Option<UdfResult>],
        out: &mut Out,
        now_ms: i64,
    ) -> Result<(), String> {
        let plan = self.plan.clone();
        let clock = self.clock();
        let pump = &plan.pumps[p];
        let scope = Scope {
            row: &row.vals,
            rowtime: row.rowtime,
            keys: &[],
            aggs: &[],
            udf: row_slots,
            now: clock,
        };
        if let Some(f) = &pump.filter {
            if truth(&eval(f, &scope)?)? != Some(true) {
                return Ok(());
            }
        }
        match &pump.kind {
            PumpKind::Stagger {
                keys, range, aggs, ..
            } => {
                self.close_staggers(p, row.rowtime, out, now_ms);
                let mut kv = Vec::with_capacity(keys.len());
                for k in keys {
                    kv.push(eval(k, &scope)?);
                }
                let mut args = Vec::with_capacity(aggs.len());
                for a in aggs {
                    args.push(match &a.arg {
                        Some(e) => eval(e, &scope)?,
                        None => Value::Null,
                    });
                }
                // A row that fails must leave its group as it was.
                for (a, v) in aggs.iter().zip(&args) {
                    crate::slide::accepts(a, v)?;
                }
                let st = &mut self.staggers[p];
                let hash = key_hash(&kv);
                let found = st.index.get(&hash).and_then(|ids| {
                    ids.iter()
                        .copied()
                        .find(|&id| same_keys(&st.groups[id - st.base].1.keys, &kv))
                });
                let at = match found {
                    Some(id) => id - st.base,
                    None => {
                        // The window opens with its first row, and closes `range` later.
                        let end = row.rowtime.saturating_add(*range);
                        st.index
                            .entry(hash)
                            .or_default()
                            .push(st.base + st.groups.len());
                        st.groups.push_back((
                            end,
                            Group {
                                keys: kv,
                                aggs: aggs.iter().map(Acc::new).collect(),
                                acks: Vec::new(),
                                key: row.key.clone(),
                            },
                        ));
                        st.groups.len() - 1
                    }
                };
                let group = &mut st.groups[at].1;
                for ((acc, spec), v) in group.aggs.iter_mut().zip(aggs).zip(args) {
                    acc.add(spec, v)?;
                }
                hold(&mut group.acks, &row.ack);
            }
            PumpKind::Slide {
                windows,
                slots,
                items,
            } => {
                self.seq += 1;
                let mut finals = vec![Value::Null; slots.len()];
                let mut acks: Vec<Ack> = Vec::with_capacity(windows.len());
                for (w, slide) in windows.iter().enumerate() {
                    let mut keys = Vec::with_capacity(slide.partition.len());
                    for k in &slide.partition {
                        keys.push(eval(k, &scope)?);
                    }
                    let mut args = Vec::with_capacity(slide.aggs.len());
                    for s in &slide.aggs {
                        args.push(match &s.arg {
                            Some(e) => eval(e, &scope)?,
                            None => Value::Null,
                        });
                    }
                    let (values, held) = self.slides[p][w].push(
                        keys,
                        slide.frame,
                        &slide.aggs,
                        (row.rowtime, self.seq, args, row.ack.clone()),
                    )?;
                    for (slot, &(sw, j)) in slots.iter().enumerate() {
                        if sw == w {
                            finals[slot] = values[j].clone();
                        }
                    }
                    acks.push(held);
                }
                let with_group;
                let udf = if pump.udf_sites.iter().any(|s| s.group) {
                    with_group = self.group_slots(
                        p,
                        Base {
                            row: &row.vals,
                            rowtime: row.rowtime,
                            keys: &[],
                            aggs: &finals,
                            now: clock,
                        },
                        row_slots,
                    );
                    &with_group[..]
                } else {
                    row_slots
                };
                let scope = Scope {
                    row: &row.vals,
                    rowtime: row.rowtime,
                    keys: &[],
                    aggs: &finals,
                    udf,
                    now: clock,
                };
                let mut vals = Vec::with_capacity(items.len());
                for e in items {
                    vals.push(eval(e, &scope)?);
                }
                let vals = self.fit(pump.target, &pump.into, vals)?;
                let next = Row {
                    vals,
                    rowtime: row.rowtime,
                    ack: Ack::merge(acks),
                    key: row.key.clone(),
                };
                self.insert(pump.target, next, out, now_ms);
            }
            PumpKind::Map { items, order } => {
                let mut vals = Vec::with_capacity(items.len());
                eval_items(items, &scope, &mut vals)?;
                let vals = self.fit(pump.target, &pump.into, vals)?;
                let next = Row {
                    vals,
                    rowtime: row.rowtime,
                    ack: row.ack.clone(),
                    key: row.key.clone(),
                };
                match order {
                    None => self.insert(pump.target, next, out, now_ms),
                    Some(o) => {
                        let bucket = eval(&o.bucket, &scope)?;
                        if self.sorts[p].bucket.as_ref().is_some_and(|b| *b != bucket) {
                            self.release_sorted(p, out, now_ms);
                        }
                        let mut keys = Vec::with_capacity(o.keys.len());
                        for (k, _) in &o.keys {
                            keys.push(eval(k, &scope)?);
                        }
                        let s = &mut self.sorts[p];
                        s.bucket = Some(bucket);
                        s.rows.push((keys, next));
                    }
                }
            }
            PumpKind::TopK {
                column, window_ms, ..
            } => {
                let start =
                    crate::eval::floor_to(row.rowtime, *window_ms).ok_or("ROWTIME out of range")?;
                if self.topk[p].start.is_some_and(|s| s != start) {
                    self.close_topk(p, out, now_ms);
                }
                let t = &mut self.topk[p];
                t.start = Some(start);
                t.key.get_or_insert_with(|| row.key.clone());
                let v = row.vals[*column].clone();
                let one = std::slice::from_ref(&v);
                let hash = key_hash(one);
                let slot = t.index.get(&hash).and_then(|is| {
                    is.iter()
                        .copied()
                        .find(|&i| same_keys(std::slice::from_ref(&t.counts[i].0), one))
                });
                match slot {
                    Some(i) => t.counts[i].1 += 1,
                    None => {
                        t.index.entry(hash).or_default().push(t.counts.len());
                        t.counts.push((v.clone(), 1));
                    }
                }
                hold(&mut t.acks, &row.ack);
            }
            PumpKind::CountDistinct { column, window_ms } => {
                let start =
                    crate::eval::floor_to(row.rowtime, *window_ms).ok_or("ROWTIME out of range")?;
                if self.distincts[p].start.is_some_and(|s| s != start) {
                    self.close_distinct(p, out, now_ms);
                }
                let d = &mut self.distincts[p];
                d.start = Some(start);
                d.key.get_or_insert_with(|| row.key.clone());
                d.values
                    .add(row.vals.get(*column).cloned().unwrap_or(Value::Null));
                hold(&mut d.acks, &row.ack);
            }
            PumpKind::Rcf {
                columns, explain, ..
            } => {
                // Past this a forest's boxes could overflow (their sides are f32 differences).
                const FOREST_LIMIT: f64 = 1e30;
                let point: Option<Vec<f32>> = numbers(&row.vals, columns)
                    .filter(|p| p.iter().all(|x| x.abs() <= FOREST_LIMIT))
                    .map(|p| p.iter().map(|&x| x as f32).collect());
                let (score, attribution) = match (self.forests[p].as_mut(), point) {
                    (Some(forest), Some(point)) => {
                        // The learning phase scores 0, and explains nothing.
                        let ready = forest.is_output_ready();
                        let score = if ready {
                            forest.score(&point).map_err(forest_error)?
                        } else {
                            0.0
                        };
                        let attribution = if ready && explain.is_some() {
                            let a = forest.attribution(&point).map_err(forest_error)?;
                            Some((a.high, a.low))
                        } else {
                            None
                        };
                        forest.update(&point).map_err(forest_error)?;
                        (Some(score), attribution)
                    }
                    // A row with a NULL (or a number past ±1e30) among its numbers has no
                    // score or explanation, and teaches nothing.
                    _ => (None, None),
                };
                let mut vals = row.vals.clone();
                vals.push(score.map_or(Value::Null, Value::Double));
                if let Some(directional) = explain {
                    let source = &plan.streams[pump.source].columns;
                    let names: Vec<&str> = columns
                        .iter()
                        .map(|&c| source.get(c).map_or("", |(n, _)| n.as_str()))
                        .collect();
                    let parts = attribution
                        .as_ref()
                        .map(|(high, low)| (high.as_slice(), low.as_slice()));
                    vals.push(match score {
                        Some(_) => {
                            Value::Str(crate::analytic::explanation(&names, parts, *directional))
                        }
                        None => Value::Null,
                    });
                }
                let next = Row {
                    vals,
                    rowtime: row.rowtime,
                    ack: row.ack.clone(),
                    key: row.key.clone(),
                };
                self.insert(pump.target, next, out, now_ms);
            }
            PumpKind::Hotspots { columns, .. } => {
                let point = numbers(&row.vals, columns);
                let (result, ack) = match (self.hotspots[p].as_mut(), point) {
                    // The row goes on holding the acks of every row in the window: its
                    // hotspots depend on them all.
                    (Some(h), Some(point)) => {
                        let (json, held) = h.push(&point, row.ack.clone());
                        (Value::Str(json), held)
                    }
                    // A row with a NULL among its numbers has no hotspots, and is not one of
                    // the window's points.
                    _ => (Value::Null, row.ack.clone()),
                };
                let mut vals = row.vals.clone();
                vals.push(result);
                let next = Row {
                    vals,
                    rowtime: row.rowtime,
                    ack,
                    key: row.key.clone(),
                };
                self.insert(pump.target, next, out, now_ms);
            }
            PumpKind::Tumble {
                keys, bucket, aggs, ..
            } => {
                let mut kv = Vec::with_capacity(keys.len());
                for k in keys {
                    kv.push(eval(k, &scope)?);
                }
                let open = self.windows[p].bucket.clone();
                if open.as_ref().is_some_and(|b| *b != kv[*bucket]) {
                    self.close(p, out, now_ms);
                }
                let mut args = Vec::with_capacity(aggs.len());
                for a in aggs {
                    args.push(match &a.arg {
                        Some(e) => eval(e, &scope)?,
                        None => Value::Null,
                    });
                }
                // A row that fails must leave its group as it was.
                for (a, v) in aggs.iter().zip(&args) {
                    crate::slide::accepts(a, v)?;
                }
                let w = &mut self.windows[p];
                w.bucket = Some(kv[*bucket].clone());
                w.last = row.rowtime;
                let hash = key_hash(&kv);
                let found = w.index.get(&hash).and_then(|gs| {
                    gs.iter()
                        .copied()
                        .find(|&g| same_keys(&w.groups[g].keys, &kv))
                });
                let g = match found {
                    Some(g) => g,
                    None => {
                        w.index.entry(hash).or_default().push(w.groups.len());
                        w.groups.push(Group {
                            keys: kv,
                            aggs: aggs.iter().map(Acc::new).collect(),
                            acks: Vec::new(),
                            key: row.key.clone(),
                        });
                        w.groups.len() - 1
                    }
                };
                let group = &mut w.groups[g];
                for ((acc, spec), v) in group.aggs.iter_mut().zip(aggs).zip(args) {
                    acc.add(spec, v)?;
                }
                hold(&mut group.acks, &row.ack);
            }
        }
        Ok(())
    }

    /// Emits the open window of pump `p` (its rows go into the pump's target).
    fn close(&mut self, p: usize, out: &mut Out, now_ms: i64) {
        let w = std::mem::take(&mut self.windows[p]);
        let Some(bucket) = w.bucket else {
            return;
        };
        let plan = self.plan.clone();
        let clock = self.clock();
        let pump = &plan.pumps[p];
        let PumpKind::Tumble {
            keys,
            bucket: b,
            items,
            having,
            aggs,
            order,
        } = &pump.kind
        else {
            return;
        };
        // A window of a MONOTONIC column ends with its last row; one of ROWTIME where ROWTIME
        // leaves it.
        let end = if keys[*b].reads_columns() {
            w.last
        } else {
            window_end(&keys[*b], &bucket, w.last, clock)
        };
        let mut groups = w.groups;
        if !order.is_empty() {
            let mut sorted: Vec<(Vec<Value>, Group)> = groups
                .into_iter()
                .map(|g| {
                    let finals: Vec<Value> =
                        g.aggs.iter().zip(aggs).map(|(a, s)| a.finish(s)).collect();
                    let scope = Scope {
                        row: &[],
                        rowtime: end,
                        keys: &g.keys,
                        aggs: &finals,
                        udf: &[],
                        now: clock,
                    };
                    // A key that fails sorts as NULL; the row itself fails (or not) as it
                    // is made.
                    let by = order
                        .iter()
                        .map(|(e, _)| eval(e, &scope).unwrap_or(Value::Null))
                        .collect();
                    (by, g)
                })
                .collect();
            let desc: Vec<bool> = order.iter().map(|(_, d)| *d).collect();
            sorted.sort_by(|(a, _), (b, _)| order_rows(a, b, &desc));
            groups = sorted.into_iter().map(|(_, g)| g).collect();
        }
        let groups = groups.into_iter().map(|g| (end, g)).collect();
        self.emit_groups(p, groups, (items, having.as_ref(), aggs), out, now_ms);
    }

    /// A closed window's rows, one per group with its ROWTIME, into pump `p`'s target
    /// (unless HAVING drops one; one that fails goes to the error output with its group's
    /// acks). The pump's calls of functions that read the groups are made once for them all.
    fn emit_groups(
        &mut self,
        p: usize,
        groups: Vec<(i64, Group)>,
        (items, having, aggs): (&[CExpr], Option<&CExpr>, &[AggSpec]),
        out: &mut Out,
        now_ms: i64,
    ) {
        let plan = self.plan.clone();
        let clock = self.clock();
        let pump = &plan.pumps[p];
        let finals: Vec<Vec<Value>> = groups
            .iter()
            .map(|(_, g)| g.aggs.iter().zip(aggs).map(|(a, s)| a.finish(s)).collect())
            .collect();
        let w = pump.udf_sites.len();
        let mut slots = vec![None; w * groups.len()];
        if pump.udf_sites.iter().any(|s| s.group) {
            let bases: Vec<Base> = groups
                .iter()
                .zip(&finals)
                .map(|((end, g), f)| Base {
                    row: &[],
                    rowtime: *end,
                    keys: &g.keys,
                    aggs: f,
                    now: clock,
                })
                .collect();
            eval_sites(
                self.udfs.as_deref_mut(),
                &pump.udf_sites,
                true,
                &bases,
                &mut slots,
            );
        }
        for (i, ((end, g), finals)) in groups.into_iter().zip(&finals).enumerate() {
            let ack = Ack::merge(g.acks);
            let scope = Scope {
                row: &[],
                rowtime: end,
                keys: &g.keys,
                aggs: finals,
                udf: &slots[i * w..][..w],
                now: clock,
            };
            let result = (|| -> Result<Option<Vec<Value>>, String> {
                if let Some(h) = having {
                    if truth(&eval(h, &scope)?)? != Some(true) {
                        return Ok(None);
                    }
                }
                let mut vals = Vec::with_capacity(items.len());
                for e in items {
                    vals.push(eval(e, &scope)?);
                }
                self.fit(pump.target, &pump.into, vals).map(Some)
            })();
            match result {
                Ok(Some(vals)) => {
                    let row = Row {
                        vals,
                        rowtime: end,
                        ack,
                        key: g.key,
                    };
                    self.insert(pump.target, row, out, now_ms);
                }
                // Filtered out by HAVING: its inputs are done with.
                Ok(None) => drop(ack),
                Err(e) => {
                    let data =
                        serde_json::Value::Array(g.keys.iter().map(Value::to_json).collect())
                            .to_string();
                    let message = format!("pump {}: the window's row failed: {e}", pump.name);
                    self.fail_window(
                        data.into_bytes(),
                        end,
                        ack,
                        &pump.name,
                        message,
                        out,
                        now_ms,
                    );
                }
            }
        }
    }

    /// A window's row that failed: to the error output as a record of `data` (its keys),
    /// holding the window's acks.
    #[allow(clippy::too_many_arguments)]
    fn fail_window(
        &mut self,
        data: Vec<u8>,
        end: i64,
        ack: Ack,
        pump: &str,
        message: String,
        out: &mut Out,
        now_ms: i64,
    ) {
        let mut record = Record::new(data, Arc::from(self.name.as_str()), end);
        record.ack = ack;
        self.fail(record, codes::EVALUATION, message, Some(pump), out, now_ms);
    }

    /// Emits pump `p`'s TOP_K_ITEMS_TUMBLING window: its K most frequent values, most frequent
    /// first (ties by value), each row holding the acks of the whole window.
    fn close_topk(&mut self, p: usize, out: &mut Out, now_ms: i64) {
        let plan = self.plan.clone();
        let pump = &plan.pumps[p];
        let PumpKind::TopK { k, window_ms, .. } = &pump.kind else {
            return;
        };
        let t = std::mem::take(&mut self.topk[p]);
        let Some(start) = t.start else {
            return;
        };
        let mut counts = t.counts;
        counts.sort_by(|(a, x), (b, y)| {
            y.cmp(x).then_with(|| {
                compare(a, b)
                    .ok()
                    .flatten()
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
        counts.truncate(*k);
        let ack = Ack::merge(t.acks);
        let end = start.saturating_add(*window_ms);
        for (v, n) in counts {
            match self.fit(pump.target, &pump.into, vec![v, Value::Int(n)]) {
                Ok(vals) => {
                    let row = Row {
                        vals,
                        rowtime: end,
                        ack: ack.clone(),
                        key: t.key.clone().unwrap_or_else(|| Arc::from("")),
                    };
                    self.insert(pump.target, row, out, now_ms);
                }
                Err(e) => {
                    let message = format!("pump {}: {e}", pump.name);
                    let ack = ack.clone();
                    self.fail_window(Vec::new(), end, ack, &pump.name, message, out, now_ms);
                }
            }
        }
    }

    /// Emits pump `p`'s COUNT_DISTINCT_ITEMS_TUMBLING window: one row, its number of distinct
    /// values, with the window's end as ROWTIME, holding the acks of all the window's rows.
    fn close_distinct(&mut self, p: usize, out: &mut Out, now_ms: i64) {
        let plan = self.plan.clone();
        let pump = &plan.pumps[p];
        let PumpKind::CountDistinct { window_ms, .. } = &pump.kind else {
            return;
        };
        let d = std::mem::take(&mut self.distincts[p]);
        let Some(start) = d.start else {
            return;
        };
        let count = d.values.count();
        let ack = Ack::merge(d.acks);
        let end = start.saturating_add(*window_ms);
        match self.fit(pump.target, &pump.into, vec![Value::Int(count)]) {
            Ok(vals) => {
                let row = Row {
                    vals,
                    rowtime: end,
                    ack,
                    key: d.key.unwrap_or_else(|| Arc::from("")),
                };
                self.insert(pump.target, row, out, now_ms);
            }
            Err(e) => {
                let message = format!("pump {}: {e}", pump.name);
                self.fail_window(Vec::new(), end, ack, &pump.name, message, out, now_ms);
            }
        }
    }

    /// Lets the rows pump `p` holds for its ORDER BY go on, sorted.
    fn release_sorted(&mut self, p: usize, out: &mut Out, now_ms: i64) {
        let plan = self.plan.clone();
        let pump = &plan.pumps[p];
        let PumpKind::Map { order: Some(o), .. } = &pump.kind else {
            return;
        };
        let mut rows = std::mem::take(&mut self.sorts[p]).rows;
        let desc: Vec<bool> = o.keys.iter().map(|(_, d)| *d).collect();
        rows.sort_by(|(a, _), (b, _)| order_rows(a, b, &desc));
        for (_, row) in rows {
            self.insert(pump.target, row, out, now_ms);
        }
    }

    /// Closes the stagger windows of pump `p` that end at ROWTIME `t` or before, in the order
    /// they opened (all have the same range, so that is the order they end).
    fn close_staggers(&mut self, p: usize, t: i64, out: &mut Out, now_ms: i64) {
        let plan = self.plan.clone();
        let PumpKind::Stagger {
            items,
            having,
            aggs,
            ..
        } = &plan.pumps[p].kind
        else {
            return;
        };
        let mut closed = Vec::new();
        while self.staggers[p]
            .groups
            .front()
            .is_some_and(|(end, _)| *end <= t)
        {
            let st = &mut self.staggers[p];
            let (end, g) = st.groups.pop_front().expect("a first window");
            let id = st.base;
            st.base += 1;
            let hash = key_hash(&g.keys);
            if let Some(ids) = st.index.get_mut(&hash) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    st.index.remove(&hash);
                }
            }
            closed.push((end, g));
        }
        if !closed.is_empty() {
            self.emit_groups(p, closed, (items, having.as_ref(), aggs), out, now_ms);
        }
    }

    /// Closes every window whose end ROWTIME `t` has passed.
    /// `sweep`: also let go of rows every sliding window's partitions hold past their frames
    /// (a pass over all partitions: done when time passes, not for every batch).
    fn advance(&mut self, t: i64, out: &mut Out, now_ms: i64, sweep: bool) {
        let plan = self.plan.clone();
        let clock = self.clock();
        // Upstream first: a window closed here may fill one downstream that closes too.
        for &p in &plan.flush_order {
            let pump = &plan.pumps[p];
            if pump.stream_join.is_some() {
                self.join_evict(p, t, out, now_ms);
            }
            if let PumpKind::Stagger { .. } = &pump.kind {
                self.close_staggers(p, t, out, now_ms);
                continue;
            }
            if let PumpKind::TopK { window_ms, .. } = &pump.kind {
                if self.topk[p]
                    .start
                    .is_some_and(|s| t >= s.saturating_add(*window_ms))
                {
                    self.close_topk(p, out, now_ms);
                }
                continue;
            }
            if let PumpKind::CountDistinct { window_ms, .. } = &pump.kind {
                if self.distincts[p]
                    .start
                    .is_some_and(|s| t >= s.saturating_add(*window_ms))
                {
                    self.close_distinct(p, out, now_ms);
                }
                continue;
            }
            if let PumpKind::Map { order: Some(o), .. } = &pump.kind {
                let open = self.sorts[p].bucket.clone();
                if open.is_some_and(|b| bucket_at(&o.bucket, t, clock).is_some_and(|now| now != b))
                {
                    self.release_sorted(p, out, now_ms);
                }
                continue;
            }
            if let PumpKind::Slide { windows, .. } = &pump.kind {
                // Rows that fell out of a RANGE let go of their acks, even in a quiet partition.
                for (w, slide) in windows.iter().enumerate().filter(|_| sweep) {
                    self.slides[p][w].advance(slide.frame, t, &slide.aggs);
                }
                continue;
            }
            let PumpKind::Tumble { keys, bucket, .. } = &pump.kind else {
                continue;
            };
            let Some(open) = self.windows[p].bucket.clone() else {
                continue;
            };
            // A window of a MONOTONIC column ends only when a row brings another value.
            if keys[*bucket].reads_columns() {
                continue;
            }
            if bucket_at(&keys[*bucket], t, clock).is_some_and(|now| now != open) {
                self.close(p, out, now_ms);
            }
        }
    }

    /// A row arriving on one side (`right`) of pump `p`'s stream-to-stream join: rows of the
    /// other side that left their window at its ROWTIME go first (an outer join's unmatched
    /// ones with NULLs), then it is joined with each row the other side's window holds that
    /// the ON condition accepts, and it stays in its own side's window.
    fn join_arrive(
        &mut self,
        p: usize,
        row: &Row,
        right: bool,
        out: &mut Out,
        now_ms: i64,
    ) -> Result<(), String> {
        let plan = self.plan.clone();
        let clock = self.clock();
        let j = plan.pumps[p].stream_join.as_ref().expect("a stream join");
        self.join_evict(p, row.rowtime, out, now_ms);
        let own_len = if right {
            self.stream_joins[p].right.len()
        } else {
            self.stream_joins[p].left.len()
        };
        if own_len >= MAX_JOIN_ROWS {
            return Err(format!(
                "the join's window holds {MAX_JOIN_ROWS} rows of this side: narrow its OVER"
            ));
        }
        // Its side of the ON equalities, to find the other side's rows with the same.
        let indexed = !j.keys.is_empty();
        let hash = if indexed {
            join_hash(&j.keys, right, row, clock)?
        } else {
            None
        };
        let mut others = if right {
            std::mem::take(&mut self.stream_joins[p].left)
        } else {
            std::mem::take(&mut self.stream_joins[p].right)
        };
        let mut matched = false;
        let mut failed = None;
        for at in others.candidates(indexed, hash) {
            let (other, hit) = &mut others.rows[at];
            let (l, r) = if right {
                (&*other, row)
            } else {
                (row, &*other)
            };
            let vals = joined_vals(Some(l), Some(r), j.widths);
            let accept = match &j.on {
                None => true,
                Some(on) => {
                    let scope = Scope {
                        row: &vals,
                        rowtime: row.rowtime,
                        keys: &[],
                        aggs: &[],
                        udf: &[],
                        now: clock,
                    };
                    // A condition that fails on a pair fails the arriving row (after the
                    // window is put back).
                    match eval(on, &scope).and_then(|v| truth(&v)) {
                        Ok(t) => t == Some(true),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            };
            if accept {
                matched = true;
                *hit = true;
                let joined = Row {
                    vals,
                    rowtime: row.rowtime,
                    ack: Ack::merge([l.ack.clone(), r.ack.clone()]),
                    key: l.key.clone(),
                };
                self.join_emit(p, joined, out, now_ms);
            }
        }
        let (frame, keeps) = j.side(right);
        let state = &mut self.stream_joins[p];
        let own = if right {
            state.left = others;
            &mut state.right
        } else {
            state.right = others;
            &mut state.left
        };
        if let Some(e) = failed {
            return Err(e);
        }
        own.push(row.clone(), matched, hash);
        if let crate::ast::Frame::Rows(n) = frame {
            let keep = usize::try_from(n).unwrap_or(usize::MAX).saturating_add(1);
            let mut gone = Vec::new();
            while own.len() > keep {
                gone.extend(own.pop_front());
            }
            for (r, hit) in gone {
                if keeps && !hit {
                    // It left as this row came.
                    self.join_outer(p, r, right, row.rowtime, out, now_ms);
                }
            }
        }
        Ok(())
    }

    /// Lets out of pump `p`'s join windows the rows a RANGE window no longer holds at
    /// ROWTIME `t` (the rows of a ROWS window leave as rows come instead).
    fn join_evict(&mut self, p: usize, t: i64, out: &mut Out, now_ms: i64) {
        let plan = self.plan.clone();
        let Some(j) = plan.pumps[p].stream_join.as_ref() else {
            return;
        };
        for right in [false, true] {
            let (frame, keeps) = j.side(right);
            let crate::ast::Frame::Range(ms) = frame else {
                continue;
            };
            let mut gone = Vec::new();
            {
                let side = if right {
                    &mut self.stream_joins[p].right
                } else {
                    &mut self.stream_joins[p].left
                };
                while side
                    .front()
                    .is_some_and(|(r, _)| r.rowtime < t.saturating_sub(ms))
                {
                    gone.extend(side.pop_front());
                }
            }
            for (r, hit) in gone {
                if keeps && !hit {
                    // No later row of the other side can reach it once its window has passed.
                    let at = r.rowtime.saturating_add(ms);
                    self.join_outer(p, r, right, at, out, now_ms);
                }
            }
        }
    }

    /// Every row pump `p`'s join windows hold leaves (the input ended): an outer join's
    /// unmatched ones go on with NULLs.
    fn close_join(&mut self, p: usize, out: &mut Out, now_ms: i64) {
        let plan = self.plan.clone();
        let Some(j) = plan.pumps[p].stream_join.as_ref() else {
            return;
        };
        let state = std::mem::take(&mut self.stream_joins[p]);
        for (right, side) in [(false, state.left.rows), (true, state.right.rows)] {
            let (frame, keeps) = j.side(right);
            for (r, hit) in side {
                if keeps && !hit {
                    let at = match frame {
                        crate::ast::Frame::Range(ms) => r.rowtime.saturating_add(ms),
                        crate::ast::Frame::Rows(_) => r.rowtime,
                    };
                    self.join_outer(p, r, right, at, out, now_ms);
                }
            }
        }
    }

    /// An outer join's row for `row` of one side, which joined nothing: NULLs for the other
    /// side, with ROWTIME `at`, when it left its window (the SQL Reference's examples: the
    /// row's own ROWTIME when its side has no window, else that plus the window's range).
    fn join_outer(&mut self, p: usize, row: Row, right: bool, at: i64, out: &mut Out, now_ms: i64) {
        let plan = self.plan.clone();
        let j = plan.pumps[p].stream_join.as_ref().expect("a stream join");
        let vals = if right {
            joined_vals(None, Some(&row), j.widths)
        } else {
            joined_vals(Some(&row), None, j.widths)
        };
        let joined = Row {
            vals,
            rowtime: at.max(row.rowtime),
            ack: row.ack,
            key: row.key,
        };
        self.join_emit(p, joined, out, now_ms);
    }

    /// Sends `row`, which pump `p` (reading `stream`) could not take, to the error output.
    fn fail_row(
        &mut self,
        p: usize,
        stream: usize,
        row: &Row,
        e: String,
        out: &mut Out,
        now_ms: i64,
    ) {
        let plan = self.plan.clone();
        let pump = &plan.pumps[p];
        let record = row_record(&plan, stream, row);
        self.fail(
            record,
            codes::EVALUATION,
            format!("pump {}: {e}", pump.name),
            Some(&pump.name),
            out,
            now_ms,
        );
    }

    /// A joined row through the rest of pump `p` (a failure fails it alone).
    fn join_emit(&mut self, p: usize, joined: Row, out: &mut Out, now_ms: i64) {
        if let Err(e) = self.pump_row(p, &joined, out, now_ms) {
            let source = self.plan.pumps[p].source;
            self.fail_row(p, source, &joined, e, out, now_ms);
        }
    }

    /// Maps one record to rows of the input stream and puts them through the application.
    fn record(
        &mut self,
        r: &RecordRef<'_>,
        rows: &mut Vec<Vec<Value>>,
        out: &mut Out,
        now_ms: i64,
    ) {
        rows.clear();
        let input = self.input;
        let plan = self.plan.clone();
        let mapper = self.mappers[input].as_ref().expect("the input's mapper");
        if let Err(e) = mapper.rows(r.data(), rows) {
            self.fail(
                r.to_record(),
                codes::TYPE_CONVERSION,
                format!("Coercion error: {e}"),
                None,
                out,
                now_ms,
            );
            return;
        }
        let key: Arc<str> = Arc::from(r.key());
        for vals in rows.drain(..) {
            let rowtime = match plan.rowtime_column {
                None => r.arrival_ms().max(self.last_rowtime),
                Some(c) => match &vals[c] {
                    Value::Timestamp(t) if *t >= self.last_rowtime => *t,
                    Value::Timestamp(t) => {
                        self.fail(
                            r.to_record(),
                            codes::ROWTIME_DECREASED,
                            format!(
                                "ROWTIME would go back from {} to {}",
                                crate::value::format_timestamp(self.last_rowtime),
                                crate::value::format_timestamp(*t)
                            ),
                            None,
                            out,
                            now_ms,
                        );
                        break;
                    }
                    _ => {
                        self.fail(
                            r.to_record(),
                            codes::TYPE_CONVERSION,
                            "Coercion error: the ROWTIME column is NULL".into(),
                            None,
                            out,
                            now_ms,
                        );
                        break;
                    }
                },
            };
            self.last_rowtime = rowtime;
            let row = Row {
                vals,
                rowtime,
                ack: r.ack().clone(),
                key: key.clone(),
            };
            self.insert(input, row, out, now_ms);
        }
    }

    /// Values selected into a target's columns: in the listed columns, of their types.
    fn fit(&self, target: usize, into: &[usize], vals: Vec<Value>) -> Result<Vec<Value>, String> {
        let stream = &self.plan.streams[target];
        let cols = &stream.columns;
        let mut row = vec![Value::Null; cols.len()];
        for (v, &i) in vals.into_iter().zip(into) {
            row[i] = cast(v, cols[i].1).map_err(|e| format!("column {}: {e}", cols[i].0))?;
        }
        if let Some(i) = (0..cols.len()).find(|&i| stream.not_null[i] && row[i].is_null()) {
            return Err(format!(
                "column {} is NOT NULL, and the row has NULL in it",
                cols[i].0
            ));
        }
        Ok(row)
    }

    fn emit(&self, out: Out) -> Processed {
        let mut b = BatchBuilder::with_capacity(out.rows.len(), out.rows.len() * 64);
        let stream = &self.plan.streams[self.plan.output];
        let mut buf = Vec::new();
        for row in out.rows {
            buf.clear();
            encode(&self.plan.output_format, stream, &row.vals, &mut buf);
            b.set_ack(row.ack);
            b.push(
                &buf,
                Meta {
                    key: &row.key,
                    arrival_ms: row.rowtime,
                    ..Meta::default()
                },
            );
        }
        Processed {
            records: b.finish(),
            failed: out.failed,
            ..Processed::default()
        }
    }
}

/// The value of the window expression at ROWTIME `t` (it reads only ROWTIME, and perhaps the
/// clock, `now`).
fn bucket_at(e: &CExpr, t: i64, now: i64) -> Option<Value> {
    eval(
        e,
        &Scope {
            row: &[],
            rowtime: t,
            keys: &[],
            aggs: &[],
            udf: &[],
            now,
        },
    )
    .ok()
}

/// The first ROWTIME past the window `bucket` (the ROWTIME of its rows, as KDA's): found by
/// search, since the window is any expression of ROWTIME that never decreases with it.
fn window_end(e: &CExpr, bucket: &Value, from: i64, now: i64) -> i64 {
    let past = |t: i64| {
        bucket_at(e, t, now)
            .is_none_or(|v| compare(&v, bucket).ok().flatten() != Some(std::cmp::Ordering::Equal))
    };
    let mut step = 1i64;
    while !past(from.saturating_add(step)) {
        if step > 1 << 45 {
            return from;
        }
        step *= 2;
    }
    // The end is in (from + step/2, from + step].
    let (mut lo, mut hi) = (from.saturating_add(step / 2), from.saturating_add(step));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if past(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

impl Acc {
    fn new(spec: &AggSpec) -> Acc {
        if spec.distinct {
            return Acc::Distinct(Vec::new(), HashMap::new());
        }
        match spec.kind {
            AggKind::CountStar | AggKind::Count => Acc::Count(0),
            AggKind::Sum => Acc::Sum(None),
            AggKind::Min => Acc::Min(None),
            AggKind::Max => Acc::Max(None),
            AggKind::Avg => Acc::Avg(0.0, 0, true),
            AggKind::Var { .. } => Acc::Var(crate::slide::Welford::default()),
            AggKind::FirstValue | AggKind::LastValue => Acc::Pick(None),
            AggKind::Any | AggKind::Every => Acc::Bool { trues: 0, count: 0 },
            // The planner makes these only over sliding windows, which keep their own state.
            AggKind::Lag { .. } | AggKind::ExpAvg(_) | AggKind::NthValue(_) => Acc::Count(0),
        }
    }

    fn add(&mut self, spec: &AggSpec, v: Value) -> Result<(), String> {
        if spec.kind == AggKind::CountStar {
            if let Acc::Count(n) = self {
                *n += 1;
            }
            return Ok(());
        }
        // FIRST_VALUE and LAST_VALUE take NULLs too.
        if let Acc::Pick(p) = self {
            if spec.kind == AggKind::LastValue || p.is_none() {
                *p = Some(v);
            }
            return Ok(());
        }
        if v.is_null() {
            return Ok(());
        }
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Sum(s) => {
                *s = Some(match s.take() {
                    None => v,
                    Some(acc) => add(acc, v)?,
                })
            }
            Acc::Min(m) => {
                if m.as_ref()
                    .is_none_or(|x| compare(&v, x).ok().flatten() == Some(std::cmp::Ordering::Less))
                {
                    *m = Some(v);
                }
            }
            Acc::Max(m) => {
                if m.as_ref().is_none_or(|x| {
                    compare(&v, x).ok().flatten() == Some(std::cmp::Ordering::Greater)
                }) {
                    *m = Some(v);
                }
            }
            Acc::Avg(sum, n, ints) => {
                match v {
                    Value::Int(i) => *sum += i as f64,
                    Value::Double(d) => {
                        *sum += d;
                        *ints = false;
                    }
                    other => return Err(format!("AVG of a {}", other.type_name())),
                }
                *n += 1;
            }
            Acc::Var(w) => w.add(crate::slide::number(&v, "VAR_POP/STDDEV_POP")?),
            Acc::Pick(_) => {}
            Acc::Bool { trues, count } => {
                match v {
                    Value::Bool(b) => *trues += i64::from(b),
                    other => return Err(format!("ANY/EVERY of a {}", other.type_name())),
                }
                *count += 1;
            }
            Acc::Distinct(seen, index) => {
                let one = std::slice::from_ref(&v);
                let ids = index.entry(key_hash(one)).or_default();
                if !ids
                    .iter()
                    .any(|&i| same_keys(std::slice::from_ref(&seen[i]), one))
                {
                    ids.push(seen.len());
                    seen.push(v);
                }
            }
        }
        Ok(())
    }

    fn finish(&self, spec: &AggSpec) -> Value {
        match self {
            Acc::Count(n) => Value::Int(*n),
            Acc::Sum(s) | Acc::Min(s) | Acc::Max(s) => s.clone().unwrap_or(Value::Null),
            Acc::Avg(_, 0, _) => Value::Null,
            // AVG of integers is an integer (truncated), as in Calcite, KDA's SQL's relative.
            Acc::Avg(sum, n, true) => Value::Int((sum / *n as f64).trunc() as i64),
            Acc::Avg(sum, n, false) => Value::Double(sum / *n as f64),
            Acc::Var(w) => w.value(spec.kind),
            Acc::Pick(p) => p.clone().unwrap_or(Value::Null),
            Acc::Bool { count: 0, .. } => Value::Null,
            Acc::Bool { trues, count } => Value::Bool(if spec.kind == AggKind::Every {
                trues == count
            } else {
                *trues > 0
            }),
            Acc::Distinct(seen, _) => {
                let mut acc = Acc::new(&AggSpec {
                    distinct: false,
                    ..spec.clone()
                });
                for v in seen {
                    let _ = acc.add(spec, v.clone());
                }
                acc.finish(spec)
            }
        }
    }
}

fn add(a: Value, b: Value) -> Result<Value, String> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_add(y).ok_or("SUM overflowed")?),
        (Value::Int(x), Value::Double(y)) | (Value::Double(y), Value::Int(x)) => {
            Value::Double(x as f64 + y)
        }
        (Value::Double(x), Value::Double(y)) => Value::Double(x + y),
        (Value::Interval(x), Value::Interval(y)) => {
            Value::Interval(x.checked_add(y).ok_or("SUM overflowed")?)
        }
        (a, b) => return Err(format!("SUM of {} and {}", a.type_name(), b.type_name())),
    })
}

/// A forest's error, for the row's failure.
fn forest_error(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

/// The numbers in a row's `columns`, as a forest or a hotspot window takes them; `None` when
/// one is NULL or not a finite number.
fn numbers(vals: &[Value], columns: &[usize]) -> Option<Vec<f64>> {
    columns
        .iter()
        .map(|&c| match vals.get(c) {
            Some(Value::Int(i)) => Some(*i as f64),
            Some(Value::Double(d)) if d.is_finite() => Some(*d),
            _ => None,
        })
        .collect()
}

/// A row as the record of the error output (JSON of its stream's columns).
fn row_record(plan: &Plan, stream: usize, row: &Row) -> Record {
    let mut data = Vec::new();
    encode(
        &OutputFormat::Json,
        &plan.streams[stream],
        &row.vals,
        &mut data,
    );
    let mut r = Record::new(
        data,
        Arc::from(plan.streams[stream].name.as_str()),
        row.rowtime,
    );
    r.ack = row.ack.clone();
    r.partition_key = row.key.clone();
    r
}

/// How two rows' ORDER BY keys compare (`desc` per key). Sorts are stable: rows equal in
/// every key stay in the order they came. NULL sorts last, whichever the direction.
fn order_rows(a: &[Value], b: &[Value], desc: &[bool]) -> std::cmp::Ordering {
    for ((x, y), desc) in a.iter().zip(b).zip(desc) {
        let ord = match (x.is_null(), y.is_null()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => {
                let o = compare(x, y)
                    .ok()
                    .flatten()
                    .unwrap_or(std::cmp::Ordering::Equal);
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if ord.is_ne() {
            return ord;
        }
    }
    std::cmp::Ordering::Equal
}

/// Adds `ack` to a window's acks, unless it is none or the last one's (consecutive rows
/// usually share one).
fn hold(acks: &mut Vec<Ack>, ack: &Ack) {
    if !ack.is_none() && acks.last().is_none_or(|a| !a.same(ack)) {
        acks.push(ack.clone());
    }
}

/// Whether `e` reads a UDF call site's result.
fn reads_udf(e: &CExpr) -> bool {
    e.any(&|x| matches!(x, CExpr::UdfAt(..)))
}

/// A row as KDA wrote it: a JSON object keyed by column name, or CSV.
fn encode(
    format: &OutputFormat,
    stream: &crate::plan::StreamDef,
    vals: &[Value],
    out: &mut Vec<u8>,
) {
    match format {
        OutputFormat::Json => {
            out.push(b'{');
            for (i, ((name, _), v)) in stream.columns.iter().zip(vals).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, name).expect("a string serialises");
                out.push(b':');
                serde_json::to_writer(&mut *out, &v.to_json()).expect("a value serialises");
            }
            out.push(b'}');
        }
        OutputFormat::Csv => {
            for (i, v) in vals.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let t = text(v);
                if t.contains([',', '"', '\n', '\r']) {
                    out.push(b'"');
                    out.extend_from_slice(t.replace('"', "\"\"").as_bytes());
                    out.push(b'"');
                } else {
                    out.extend_from_slice(t.as_bytes());
                }
            }
            out.push(b'\n');
        }
    }
}

impl Processor for SqlStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&mut self, batch: Batch, now_ms: i64) -> Processed {
        self.start_clock(now_ms);
        self.last_input_ms = now_ms;
        let mut out = Out::default();
        let mut rows = Vec::new();
        // Records that made no row now: held in a window, or filtered out.
        let mut consumed = 0;
        // Counting the rows waiting for UDF calls costs a pass over the pumps: only when some
        // pump calls them.
        let calls_udfs = self.plan.pumps.iter().any(|p| !p.udf_sites.is_empty());
        for r in batch.iter() {
            let (rows_before, failed_before) = (out.rows.len(), out.failed.len());
            let waiting = |s: &SqlStage| {
                if calls_udfs {
                    s.deferred.iter().map(Vec::len).sum()
                } else {
                    0
                }
            };
            let deferred_before = waiting(self);
            self.record(&r, &mut rows, &mut out, now_ms);
            // A record whose rows wait for UDF calls is not dropped: they go on at the batch's
            // end.
            let deferred = waiting(self) > deferred_before;
            if out.rows.len() == rows_before && out.failed.len() == failed_before && !deferred {
                consumed += 1;
            }
        }
        self.drain(&mut out, now_ms);
        // ROWTIME moved: windows it passed close now, even those of pumps whose filters let
        // none of this batch's rows through (else they would wait for a row that passes).
        let t = self.last_rowtime;
        self.advance(t, &mut out, now_ms, false);
        self.drain(&mut out, now_ms);
        let mut processed = self.emit(out);
        processed.dropped = consumed;
        processed
    }

    fn set_abort(&mut self, abort: tokio::sync::watch::Receiver<bool>) {
        if let Some(u) = &mut self.udfs {
            u.set_abort(abort);
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.has_windows().then_some(TICK)
    }

    fn tick(&mut self, now_ms: i64, watermark_ms: i64) -> Processed {
        self.start_clock(now_ms);
        // With a ROWTIME column, only the data moves time: the engine's watermark and the
        // clock are arrival times, of another timeline.
        if self.plan.rowtime_column.is_some() {
            return Processed::default();
        }
        let mut t = watermark_ms.max(self.last_rowtime);
        if now_ms.saturating_sub(self.last_input_ms) >= QUIET.as_millis() as i64 {
            // Quiet input: arrival-time ROWTIME follows the clock; a record that comes later
            // with an earlier arrival gets this ROWTIME (it never goes back).
            t = t.max(now_ms - QUIET.as_millis() as i64);
        }
        if t <= self.last_rowtime {
            return Processed::default();
        }
        self.last_rowtime = t;
        let mut out = Out::default();
        self.advance(t, &mut out, now_ms, true);
        self.drain(&mut out, now_ms);
        self.emit(out)
    }

    fn flush(&mut self, now_ms: i64) -> Processed {
        self.start_clock(now_ms);
        let mut out = Out::default();
        // Rows a pump lets go may fill a later-created pump's state that was already flushed,
        // or an earlier one's: flush again until a pass moves nothing.
        for _ in 0..=self.plan.pumps.len() {
            let before = (out.rows.len(), out.failed.len());
            let order = self.plan.flush_order.clone();
            for p in order {
                self.close_join(p, &mut out, now_ms);
                self.close(p, &mut out, now_ms);
                self.close_staggers(p, i64::MAX, &mut out, now_ms);
                self.close_topk(p, &mut out, now_ms);
                self.close_distinct(p, &mut out, now_ms);
                self.release_sorted(p, &mut out, now_ms);
                self.drain(&mut out, now_ms);
            }
            if (out.rows.len(), out.failed.len()) == before && !self.holds_rows() {
                break;
            }
        }
        // The input ended: no later row needs the sliding windows' rows, so their acks go.
        for slides in &mut self.slides {
            slides.iter_mut().for_each(|s| *s = SlideState::default());
        }
        // Nor HOTSPOTS' windows' rows.
        for h in self.hotspots.iter_mut().flatten() {
            h.clear();
        }
        self.emit(out)
    }

    fn stateful(&self) -> bool {
        self.has_windows()
    }
}

impl Drop for SqlStage {
    /// Open windows are dropped unemitted: their inputs' acks fail, so they are read again.
    /// So do the rows sliding windows hold: read again, they make the windows whole again.
    fn drop(&mut self) {
        for w in &self.windows {
            for g in &w.groups {
                g.acks.iter().for_each(Ack::fail);
            }
        }
        for slides in &self.slides {
            slides.iter().flat_map(SlideState::acks).for_each(Ack::fail);
        }
        for st in &self.staggers {
            st.groups
                .iter()
                .flat_map(|(_, g)| &g.acks)
                .for_each(Ack::fail);
        }
        for s in &self.sorts {
            s.rows.iter().for_each(|(_, r)| r.ack.fail());
        }
        for t in &self.topk {
            t.acks.iter().for_each(Ack::fail);
        }
        for j in &self.stream_joins {
            j.left
                .iter()
                .chain(j.right.iter())
                .for_each(|(r, _)| r.ack.fail());
        }
        for d in &self.distincts {
            d.acks.iter().for_each(Ack::fail);
        }
        for h in self.hotspots.iter().flatten() {
            h.acks().for_each(Ack::fail);
        }
    }
}

/// A stream-to-stream join's row: the left row's columns, the right row's, then the ROWTIME
/// of each (NULLs for a side that is missing, in an outer join).
fn joined_vals(left: Option<&Row>, right: Option<&Row>, (n, m): (usize, usize)) -> Vec<Value> {
    let mut vals = Vec::with_capacity(n + m + 2);
    match left {
        Some(l) => vals.extend(l.vals.iter().cloned()),
        None => vals.extend(std::iter::repeat_n(Value::Null, n)),
    }
    match right {
        Some(r) => vals.extend(r.vals.iter().cloned()),
        None => vals.extend(std::iter::repeat_n(Value::Null, m)),
    }
    vals.push(left.map_or(Value::Null, |l| Value::Timestamp(l.rowtime)));
    vals.push(right.map_or(Value::Null, |r| Value::Timestamp(r.rowtime)));
    vals
}
