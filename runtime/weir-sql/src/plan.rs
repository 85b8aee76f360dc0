//! Compiling an application: names resolved to columns, pumps to runnable form.
//!
//! Invariants of a compiled [`Plan`]:
//! - every stream a pump reads or writes exists, and each pump's select list fits its target
//!   (by position, or by the listed columns);
//! - a pump with GROUP BY groups on exactly one expression of ROWTIME (its window: STEP or
//!   FLOOR of ROWTIME, as KDA required a monotonic key; `MONOTONIC(x)` is planned as `x`),
//!   every selected column outside an aggregate is grouped on, and aggregates do not nest;
//! - a literal pattern (REGEX_REPLACE, SIMILAR TO) or date format (TIMESTAMP_TO_CHAR,
//!   CHAR_TO_TIMESTAMP) is compiled with the plan, and a bad one refused with its place;
//! - a log parser's call (W3C_LOG_PARSE and the others) has literal arguments after its
//!   string, and is compiled once per call with the plan: its row's columns are known before
//!   any row comes. A row selected whole (in a subquery, or a pump's select) becomes one
//!   column per field, named `ROW.FIELD` in its stream, and `t.r.FIELD` reads that column;
//! - a FROM subquery is a stream of its own (named by the parser) and a pump into it, which
//!   comes before the pump that reads it;
//! - pumps run in the order they were created, so a row goes through its stream's pumps in
//!   that order.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::app::{AppConfig, Input, OutputFormat};
use crate::ast::{self, Expr, Item, Statement};
use crate::error::{Pos, SqlError};
use crate::eval::{CExpr, Func};
use crate::logparse::{self, LogParser};
use crate::udf::{UdfSignature, UdfSite};
use crate::value::{SqlType, Value};

#[derive(Debug, Clone)]
pub struct StreamDef {
    pub name: String,
    pub columns: Vec<(String, SqlType)>,
    /// The columns declared `NOT NULL`.
    pub not_null: Vec<bool>,
    /// Set for the streams the application's inputs feed.
    pub input: Option<Input>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    CountStar,
    Count,
    Sum,
    Min,
    Max,
    Avg,
    /// `LAG(x, n)`: the value of the row `n` rows before the current one in its window's frame
    /// (NULL when there is none), not counting rows whose `x` is NULL if `ignore_nulls`;
    /// sliding windows only.
    Lag {
        n: u64,
        ignore_nulls: bool,
    },
    /// VAR_POP, VAR_SAMP (`sample`), and their square roots STDDEV_POP, STDDEV_SAMP (`root`).
    Var {
        sample: bool,
        root: bool,
    },
    /// FIRST_VALUE and LAST_VALUE: of the first or last row, NULL or not.
    FirstValue,
    LastValue,
    /// ANY (or SOME) and EVERY, of booleans.
    Any,
    Every,
    /// `EXP_AVG(x, interval)`: the average of the frame's values weighted by half for each
    /// whole `interval` (milliseconds, the half-life) a row is older than the current one;
    /// sliding windows only.
    ExpAvg(i64),
    /// `NTH_VALUE(x, n)`: the frame's n-th row's (1-based); sliding windows only.
    NthValue(u64),
}

impl AggKind {
    /// Whether it needs OVER a sliding window (it reads the frame's rows).
    pub fn sliding_only(self) -> bool {
        matches!(self, AggKind::ExpAvg(_) | AggKind::NthValue(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AggSpec {
    pub kind: AggKind,
    pub arg: Option<CExpr>,
    pub distinct: bool,
}

#[derive(Debug, Clone)]
pub enum PumpKind {
    /// One output row per input row that passes the filter.
    Map {
        items: Vec<CExpr>,
        /// `ORDER BY`: rows are held until ROWTIME leaves `order.0`'s window, then go on
        /// sorted.
        order: Option<Order>,
    },
    /// `TOP_K_ITEMS_TUMBLING`: per tumbling window of `window_ms` of ROWTIME (from the epoch),
    /// the `k` most frequent values of `column`, with their counts, most frequent first.
    TopK {
        column: usize,
        k: usize,
        window_ms: i64,
    },
    /// `RANDOM_CUT_FOREST`: each row goes on with its anomaly score (a last column), from a
    /// forest of the row's numeric `columns` that learns from every row.
    /// `RANDOM_CUT_FOREST_WITH_EXPLANATION` is the same forest with `explain` set: the score
    /// is followed by `ANOMALY_EXPLANATION`, each column's attribution (and, when `explain` is
    /// `Some(true)`, withDirectionality, its direction and strength).
    Rcf {
        columns: Vec<usize>,
        trees: usize,
        sample: usize,
        time_decay: f64,
        shingle: usize,
        explain: Option<bool>,
    },
    /// `COUNT_DISTINCT_ITEMS_TUMBLING`: per tumbling window of `window_ms` of ROWTIME (from
    /// the epoch), the number of distinct non-NULL values of `column`.
    CountDistinct { column: usize, window_ms: i64 },
    /// `HOTSPOTS`: each row goes on with `HOTSPOTS_RESULT` (a last column), the dense regions
    /// among the numeric `columns` of the last `window` rows (see [`crate::analytic`]).
    Hotspots {
        columns: Vec<usize>,
        window: usize,
        radius: f64,
        min_points: usize,
    },
    /// A tumbling window: rows grouped on `keys`, of which `keys[bucket]` is the window. Its
    /// rows come out sorted by `order` (over the keys and aggregates), if it has one.
    Tumble {
        keys: Vec<CExpr>,
        bucket: usize,
        aggs: Vec<AggSpec>,
        items: Vec<CExpr>,
        having: Option<CExpr>,
        order: Vec<(CExpr, bool)>,
    },
    /// Stagger windows: a window per value of `keys`, opened by its first row and closed
    /// `range` milliseconds of ROWTIME later (its rows' ROWTIME).
    Stagger {
        keys: Vec<CExpr>,
        range: i64,
        aggs: Vec<AggSpec>,
        items: Vec<CExpr>,
        having: Option<CExpr>,
    },
    /// Sliding windows: one output row per input row, its aggregates over the rows of its
    /// partition within each window's frame (the row itself included). `aggs` are each an
    /// aggregate over one of `windows`.
    Slide {
        windows: Vec<Slide>,
        /// For each aggregate slot the items read (`CExpr::Agg`), its window and its place
        /// among that window's `aggs`.
        slots: Vec<(usize, usize)>,
        items: Vec<CExpr>,
    },
}

#[derive(Debug, Clone)]
pub struct Pump {
    pub name: String,
    pub source: usize,
    pub target: usize,
    pub join: Option<JoinPlan>,
    pub filter: Option<CExpr>,
    pub kind: PumpKind,
    /// For each select item, the target column it fills (the others are NULL).
    pub into: Vec<usize>,
    /// Its calls of user-defined functions, each before any that reads its result.
    pub udf_sites: Vec<crate::udf::UdfSite>,
    /// A join of its source (the left side) with another stream.
    pub stream_join: Option<StreamJoinPlan>,
}

impl StreamJoinPlan {
    /// One side's (`right`, else left) window, and whether its rows that join nothing go on
    /// (an outer join's side).
    pub fn side(&self, right: bool) -> (ast::Frame, bool) {
        if right {
            (self.right_frame, self.kind.keeps_right())
        } else {
            (self.left_frame, self.kind.keeps_left())
        }
    }
}

impl Pump {
    /// The streams it reads: its source, and the right side of a stream-to-stream join.
    pub fn sources(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.source).chain(self.stream_join.as_ref().map(|j| j.right))
    }
}

/// A join of a pump's source with another stream, each side over a window of ROWTIME
/// (`Range(0)`, the rows of the current ROWTIME, when it names none) or of rows. A joined row
/// is the left row's columns, the right row's, then each side's ROWTIME.
#[derive(Debug, Clone)]
pub struct StreamJoinPlan {
    pub right: usize,
    pub kind: ast::JoinKind,
    pub left_frame: ast::Frame,
    pub right_frame: ast::Frame,
    /// None for CROSS JOIN.
    pub on: Option<CExpr>,
    /// Equalities of ON between the sides: an expression of the left row's columns and one of
    /// the right row's (its columns numbered as in the right row), so each side is indexed by
    /// its own. ON is still checked whole on each pair they find.
    pub keys: Vec<(CExpr, CExpr)>,
    /// The columns of the left and of the right stream.
    pub widths: (usize, usize),
}

/// How a pump's rows are sorted: within each value of `bucket` (an expression of ROWTIME), by
/// `keys` (descending where `true`).
#[derive(Debug, Clone)]
pub struct Order {
    pub bucket: CExpr,
    pub keys: Vec<(CExpr, bool)>,
}

/// A sliding window of a select: rows of one partition within its frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Slide {
    pub partition: Vec<CExpr>,
    pub frame: ast::Frame,
    /// The aggregates over this window.
    pub aggs: Vec<AggSpec>,
}

/// A reference table: its columns, and where its data is.
#[derive(Debug, Clone)]
pub struct TableDef {
    pub name: String,
    pub columns: Vec<(String, SqlType)>,
    pub reference: crate::app::Reference,
}

/// A join of a pump's rows with a reference table. A joined row is the stream row's columns
/// followed by the table row's.
#[derive(Debug, Clone)]
pub struct JoinPlan {
    pub table: usize,
    pub left: bool,
    pub on: CExpr,
    /// Equalities of the ON condition between a stream-side and a table-side expression: the
    /// table is indexed by its side, so a row is compared with its matches only.
    pub keys: Vec<(CExpr, CExpr)>,
}

/// A compiled application.
#[derive(Debug, Clone)]
pub struct Plan {
    pub streams: Vec<StreamDef>,
    pub tables: Vec<TableDef>,
    pub pumps: Vec<Pump>,
    /// The stream whose rows leave the stage, and how they are written.
    pub output: usize,
    pub output_format: OutputFormat,
    /// With `rowtime`: the column of each input stream ROWTIME is taken from.
    pub rowtime_column: Option<usize>,
    /// The `error_stream` stream, which pumps may read (never insert into).
    pub error_stream: Option<usize>,
    /// The pumps, each after every pump that feeds it (what a flush goes through, so that a
    /// pump lets its rows go only once all of its input has come).
    pub flush_order: Vec<usize>,
}

/// The columns of `error_stream`, as KDA's (Developer Guide, error-handling).
pub const ERROR_COLUMNS: [(&str, SqlType); 7] = [
    ("ERROR_TIME", SqlType::Timestamp),
    ("ERROR_LEVEL", SqlType::Varchar(10)),
    ("ERROR_NAME", SqlType::Varchar(32)),
    ("MESSAGE", SqlType::Varchar(4096)),
    ("DATA_ROWTIME", SqlType::Timestamp),
    ("DATA_ROW", SqlType::Varchar(49152)),
    ("PUMP_NAME", SqlType::Varchar(128)),
];

/// What the pipeline file says about a SQL step besides the code.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The stream whose rows go on; default: the only output of the configuration, else
    /// `DESTINATION_SQL_STREAM`.
    pub output: Option<String>,
    /// ROWTIME from this input column (a TIMESTAMP) instead of the arrival time.
    pub rowtime: Option<String>,
    /// The user-defined functions the SQL may call, by name.
    pub udfs: Vec<UdfSignature>,
}

/// Parses and compiles `code` against `config`. Errors name the line and column of `code`.
pub fn compile(code: &str, config: &AppConfig, options: &Options) -> Result<Plan, SqlError> {
    compile_inner(code, config, options).map_err(|e| e.located(code))
}

fn compile_inner(code: &str, config: &AppConfig, options: &Options) -> Result<Plan, SqlError> {
    let udfs = &options.udfs[..];
    check_udfs(udfs)?;
    let statements = crate::parse::parse(code)?;
    let mut streams: Vec<StreamDef> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    if config.inputs.is_empty() {
        return Err(SqlError::config("Inputs", "the application has no input"));
    }
    if config.inputs.len() > 1 {
        return Err(SqlError::config(
            "Inputs[1]",
            "an application has one streaming input (as in KDA): run a pipeline per input",
        ));
    }
    for input in &config.inputs {
        let name = input.stream_name();
        by_name.insert(name.clone(), streams.len());
        streams.push(StreamDef {
            name,
            columns: input
                .schema
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.ty))
                .collect(),
            not_null: vec![false; input.schema.columns.len()],
            input: Some(input.clone()),
        });
    }
    // `error_stream`: KDA's, as it named it, and upper-cased (unquoted in SQL).
    let error_stream = streams.len();
    by_name.insert("error_stream".into(), error_stream);
    by_name.insert("ERROR_STREAM".into(), error_stream);
    streams.push(StreamDef {
        name: "error_stream".into(),
        columns: ERROR_COLUMNS
            .iter()
            .map(|(n, t)| (n.to_string(), *t))
            .collect(),
        not_null: vec![false; ERROR_COLUMNS.len()],
        input: None,
    });
    let tables: Vec<TableDef> = config
        .references
        .iter()
        .map(|r| TableDef {
            name: r.table.clone(),
            columns: r
                .schema
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.ty))
                .collect(),
            reference: r.clone(),
        })
        .collect();
    let mut pumps = Vec::new();
    let mut pump_names: HashMap<String, Pos> = HashMap::new();
    for st in &statements {
        match st {
            Statement::Stream(s) => {
                if let Some(&i) = by_name.get(&s.name.text) {
                    if streams[i].input.is_some() || i == error_stream {
                        return Err(SqlError::name(
                            s.name.pos,
                            &s.name.text,
                            format!(
                                "`{}` is the input's stream or error_stream; it cannot be created",
                                s.name.text
                            ),
                        ));
                    }
                }
                let mut seen = HashMap::new();
                for (c, _) in &s.columns {
                    if seen.insert(c.text.clone(), ()).is_some() {
                        return Err(SqlError::name(
                            c.pos,
                            &c.text,
                            format!("column `{}` is declared twice", c.text),
                        ));
                    }
                }
                let def = StreamDef {
                    name: s.name.text.clone(),
                    columns: s
                        .columns
                        .iter()
                        .map(|(n, t)| (n.text.clone(), *t))
                        .collect(),
                    not_null: s.not_null.clone(),
                    input: None,
                };
                // OR REPLACE: a later definition replaces an earlier one, unless a pump
                // already reads or writes the stream (it was compiled against the old one).
                match by_name.get(&s.name.text) {
                    Some(&i) if pumps.iter().any(|p: &Pump| p.source == i || p.target == i) => {
                        return Err(SqlError::name(
                            s.name.pos,
                            &s.name.text,
                            format!(
                                "stream `{}` is replaced after a pump uses it: define streams first",
                                s.name.text
                            ),
                        ))
                    }
                    Some(&i) => streams[i] = def,
                    None => {
                        by_name.insert(s.name.text.clone(), streams.len());
                        streams.push(def);
                    }
                }
            }
            Statement::Pump(p) => {
                // OR REPLACE: a pump created again replaces the earlier one (and the pumps
                // its table function needed).
                if pump_names.insert(p.name.text.clone(), p.name.pos).is_some() {
                    let own = format!("{}$", p.name.text);
                    pumps.retain(|q| q.name != p.name.text && !q.name.starts_with(&own));
                }
                let first_new = pumps.len();
                // Each select of a UNION ALL is a pump of its own into the same target.
                let branches = std::iter::once(&p.select).chain(&p.union).enumerate();
                for (i, select) in branches {
                    let mut branch = ast::CreatePump {
                        select: select.clone(),
                        union: Vec::new(),
                        ..(**p).clone()
                    };
                    if i > 0 {
                        branch.name.text = format!("{}$UNION{i}", p.name.text);
                    }
                    pumps.extend(compile_sources(
                        &branch.name,
                        &branch.select,
                        &mut streams,
                        &mut by_name,
                        &tables,
                        udfs,
                    )?);
                    pumps.push(compile_pump(&branch, &streams, &by_name, &tables, udfs)?);
                }
                for pump in &mut pumps[first_new..] {
                    assign_sites(pump).map_err(|m| SqlError::name(p.name.pos, &p.name.text, m))?;
                }
                if let Some(at) = cycle(&pumps) {
                    return Err(SqlError::name(
                        p.name.pos,
                        &p.name.text,
                        format!(
                            "pump `{}` closes a loop: its rows would come back to stream `{}`",
                            p.name.text, streams[at].name
                        ),
                    ));
                }
            }
        }
    }
    if pumps.is_empty() {
        return Err(SqlError::syntax(
            Pos(code.len()),
            "the application has no pump",
        ));
    }
    let (output_name, output_format) = match (&options.output, config.outputs.as_slice()) {
        (Some(o), outs) => (
            o.clone(),
            outs.iter()
                .find(|x| &x.name == o)
                .map_or(OutputFormat::Json, |x| x.format.clone()),
        ),
        (None, [one]) => (one.name.clone(), one.format.clone()),
        (None, _) => ("DESTINATION_SQL_STREAM".to_string(), OutputFormat::Json),
    };
    let output = *by_name.get(&output_name).ok_or_else(|| {
        SqlError::config(
            "output",
            format!("the application has no stream `{output_name}`"),
        )
    })?;
    if !pumps.iter().any(|p| p.target == output) {
        return Err(SqlError::config(
            "output",
            format!("no pump inserts into `{output_name}`"),
        ));
    }
    let rowtime_column = match &options.rowtime {
        None => None,
        Some(col) => {
            let input = &streams[0];
            let i = input
                .columns
                .iter()
                .position(|(n, _)| n == col)
                .ok_or_else(|| {
                    SqlError::config("rowtime", format!("the input has no column `{col}`"))
                })?;
            if input.columns[i].1 != SqlType::Timestamp {
                return Err(SqlError::config(
                    "rowtime",
                    format!("column `{col}` is {}, not TIMESTAMP", input.columns[i].1),
                ));
            }
            Some(i)
        }
    };
    let flush_order = upstream_first(&pumps);
    Ok(Plan {
        flush_order,
        error_stream: Some(error_stream),
        streams,
        tables,
        pumps,
        output,
        output_format,
        rowtime_column,
    })
}

/// A row's fields, with their types.
type Fields = Vec<(String, SqlType)>;

/// Resolves names of one pump's select.
struct Ctx<'a> {
    source: &'a StreamDef,
    udfs: &'a [UdfSignature],
    /// The names the source may be qualified with: its name and its alias.
    qualifiers: Vec<String>,
    /// The joined reference table, with its qualifiers: its columns follow the source's.
    table: Option<(Joined<'a>, Vec<String>)>,
    /// In a stream-to-stream join, the columns holding each side's ROWTIME (`s.ROWTIME`).
    rowtimes: Option<(usize, usize)>,
    /// The log parsers of the select's calls, by the call's place: a call's fields share
    /// one.
    parsers: RefCell<Vec<(usize, Arc<LogParser>)>>,
}

/// The other side of a join: a reference table or a stream.
#[derive(Clone, Copy)]
struct Joined<'a> {
    name: &'a str,
    columns: &'a [(String, SqlType)],
    /// "table" or "stream", for messages.
    what: &'static str,
}

impl<'a> Ctx<'a> {
    fn new(source: &'a StreamDef, udfs: &'a [UdfSignature], sel: &ast::Select) -> Ctx<'a> {
        let mut qualifiers = vec![sel.from.text.clone()];
        if let Some(a) = &sel.alias {
            qualifiers.push(a.text.clone());
        }
        Ctx {
            source,
            udfs,
            qualifiers,
            table: None,
            rowtimes: None,
            parsers: RefCell::new(Vec::new()),
        }
    }
}

impl Ctx<'_> {
    /// The log parser of a call of one (compiled the first time it is asked for).
    fn log_parser(&self, name: &ast::Name, args: &[Expr]) -> Result<Arc<LogParser>, SqlError> {
        if let Some((_, p)) = self
            .parsers
            .borrow()
            .iter()
            .find(|(at, _)| *at == name.pos.0)
        {
            return Ok(p.clone());
        }
        if args.is_empty() {
            return Err(SqlError::name(
                name.pos,
                &name.text,
                format!("`{}` takes the string to parse first", name.text),
            ));
        }
        let mut literals = Vec::with_capacity(args.len() - 1);
        for a in &args[1..] {
            match a {
                Expr::Lit(v, _) if !v.is_null() => literals.push(v.clone()),
                other => {
                    return Err(SqlError::syntax(
                        other.pos(),
                        format!(
                            "`{}`'s arguments after the string are literals (its row's \
                             columns must be known when the application starts)",
                            name.text
                        ),
                    ))
                }
            }
        }
        let parser = LogParser::new(&name.text, &literals).map_err(|(at, m)| {
            match at.and_then(|i| args.get(i + 1)) {
                Some(a) => SqlError::syntax(a.pos(), m),
                None => SqlError::name(name.pos, &name.text, m),
            }
        })?;
        let parser = Arc::new(parser);
        self.parsers
            .borrow_mut()
            .push((name.pos.0, Arc::clone(&parser)));
        Ok(parser)
    }

    /// The fields of row `row` of the source (a log parser's row, selected whole in a
    /// subquery): its columns named `ROW.FIELD`, with their places.
    fn row_fields(&self, row: &str) -> Vec<(usize, &str)> {
        self.source
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, (c, _))| {
                c.strip_prefix(row)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .map(|f| (i, f))
            })
            .collect()
    }

    /// `[t.]row.field`: a field of a row of the source.
    fn row_field(
        &self,
        table: &Option<ast::Name>,
        row: &ast::Name,
        field: &ast::Name,
    ) -> Result<CExpr, SqlError> {
        if let Some(t) = table {
            if !self.qualifiers.contains(&t.text) {
                return Err(SqlError::name(
                    t.pos,
                    &t.text,
                    format!(
                        "unknown stream `{}` (the pump reads `{}`)",
                        t.text, self.source.name
                    ),
                ));
            }
        }
        let fields = self.row_fields(&row.text);
        if fields.is_empty() {
            return Err(SqlError::name(
                row.pos,
                &row.text,
                format!(
                    "`{}` is not a row of `{}`: a row is a log parser's, selected in a \
                     subquery (FROM (SELECT STREAM REGEX_LOG_PARSE(s, '...') AS r FROM ...) AS \
                     t, then t.r.COLUMN1)",
                    row.text, self.source.name
                ),
            ));
        }
        fields
            .iter()
            .find(|(_, f)| *f == field.text)
            .map(|(i, _)| CExpr::Col(*i))
            .ok_or_else(|| {
                SqlError::name(
                    field.pos,
                    &field.text,
                    format!(
                        "row `{}` has no field `{}` (it has {})",
                        row.text,
                        field.text,
                        fields
                            .iter()
                            .map(|(_, f)| *f)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }

    /// The fields of the row `e` is, if it is one, with their types: a log parser's call, or
    /// a row of the source selected whole.
    fn row_of(&self, e: &Expr) -> Result<Option<Fields>, SqlError> {
        match e {
            Expr::Func { name, args, .. } if logparse::is_log_parse(&name.text) => {
                let p = self.log_parser(name, args)?;
                Ok(Some(
                    p.columns.iter().map(|c| (c.name.clone(), c.ty)).collect(),
                ))
            }
            Expr::Column { table, name } if self.column(table, name).is_err() => {
                if table
                    .as_ref()
                    .is_some_and(|t| !self.qualifiers.contains(&t.text))
                {
                    return Ok(None);
                }
                let fields = self.row_fields(&name.text);
                if fields.is_empty() {
                    return Ok(None);
                }
                Ok(Some(
                    fields
                        .iter()
                        .map(|&(i, f)| (f.to_string(), self.source.columns[i].1))
                        .collect(),
                ))
            }
            _ => Ok(None),
        }
    }

    fn column(&self, table: &Option<ast::Name>, name: &ast::Name) -> Result<CExpr, SqlError> {
        let n = self.source.columns.len();
        let in_table = |t: &Joined| t.columns.iter().position(|(c, _)| *c == name.text);
        if let Some(t) = table {
            if let Some((def, quals)) = &self.table {
                if quals.contains(&t.text) {
                    if let (Some((_, right)), "ROWTIME") = (self.rowtimes, name.text.as_str()) {
                        return Ok(CExpr::Col(right));
                    }
                    return in_table(def).map(|j| CExpr::Col(n + j)).ok_or_else(|| {
                        SqlError::name(
                            name.pos,
                            &name.text,
                            format!("{} `{}` has no column `{}`", def.what, def.name, name.text),
                        )
                    });
                }
            }
            if let (Some((left, _)), "ROWTIME") = (self.rowtimes, name.text.as_str()) {
                if self.qualifiers.contains(&t.text) {
                    return Ok(CExpr::Col(left));
                }
            }
            if !self.qualifiers.contains(&t.text) {
                // `r.FIELD`: a field of row `r` of the source.
                if !self.row_fields(&t.text).is_empty() {
                    return self.row_field(&None, t, name);
                }
                return Err(SqlError::name(
                    t.pos,
                    &t.text,
                    format!(
                        "unknown stream `{}` (the pump reads `{}`)",
                        t.text, self.source.name
                    ),
                ));
            }
        } else if let Some((def, _)) = &self.table {
            let in_source = self.source.columns.iter().any(|(c, _)| *c == name.text);
            match (in_source, in_table(def)) {
                (true, Some(_)) => {
                    return Err(SqlError::name(
                        name.pos,
                        &name.text,
                        format!(
                            "`{}` is a column of both `{}` and `{}`: qualify it",
                            name.text, self.source.name, def.name
                        ),
                    ))
                }
                (false, Some(j)) => return Ok(CExpr::Col(n + j)),
                _ => {}
            }
        }
        if name.text == "ROWTIME" {
            return Ok(CExpr::Rowtime);
        }
        self.source
            .columns
            .iter()
            .position(|(c, _)| *c == name.text)
            .map(CExpr::Col)
            .ok_or_else(|| {
                if let Some((_, field)) = self.row_fields(&name.text).first() {
                    return SqlError::name(
                        name.pos,
                        &name.text,
                        format!(
                            "`{0}` is a row: select its fields, as `{0}.{1}`",
                            name.text, field
                        ),
                    );
                }
                SqlError::name(
                    name.pos,
                    &name.text,
                    format!(
                        "`{}` has no column `{}` (it has {})",
                        self.source.name,
                        name.text,
                        self.source
                            .columns
                            .iter()
                            .map(|(c, _)| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }
}

fn compile_pump(
    p: &ast::CreatePump,
    streams: &[StreamDef],
    by_name: &HashMap<String, usize>,
    tables: &[TableDef],
    udfs: &[UdfSignature],
) -> Result<Pump, SqlError> {
    let sel = &p.select;
    let lookup = |n: &ast::Name| {
        by_name
            .get(&n.text)
            .copied()
            .ok_or_else(|| SqlError::name(n.pos, &n.text, format!("unknown stream `{}`", n.text)))
    };
    let source = lookup(&sel.from)?;
    let target = lookup(&p.target)?;
    if streams[target].input.is_some() || streams[target].name == "error_stream" {
        return Err(SqlError::name(
            p.target.pos,
            &p.target.text,
            "a pump cannot insert into the input's stream or error_stream",
        ));
    }
    let mut ctx = Ctx::new(&streams[source], udfs, sel);
    let mut join = None;
    let mut stream_join = None;
    if let Some(j) = sel.join.as_ref().filter(|j| {
        !tables.iter().any(|t| t.name == j.table.text) && by_name.contains_key(&j.table.text)
    }) {
        let right = by_name[&j.table.text];
        let frame = |over: &Option<ast::Over>| -> Result<ast::Frame, SqlError> {
            let spec = match over {
                None => return Ok(ast::Frame::Range(0)),
                Some(ast::Over::Spec(w)) => w,
                Some(ast::Over::Named(n)) => sel
                    .windows
                    .iter()
                    .find(|(d, _)| d.text == n.text)
                    .map(|(_, w)| w)
                    .ok_or_else(|| {
                        SqlError::name(n.pos, &n.text, format!("no window `{}` is defined", n.text))
                    })?,
            };
            if !spec.partition.is_empty() {
                return Err(SqlError::syntax(
                    spec.pos,
                    "a join's window cannot be partitioned: put the key in ON",
                ));
            }
            Ok(spec.frame)
        };
        let mut quals = vec![j.table.text.clone()];
        if let Some(a) = &j.alias {
            quals.push(a.text.clone());
        }
        let (n, m) = (streams[source].columns.len(), streams[right].columns.len());
        ctx.table = Some((
            Joined {
                name: &streams[right].name,
                columns: &streams[right].columns,
                what: "stream",
            },
            quals,
        ));
        ctx.rowtimes = Some((n + m, n + m + 1));
        let on = j.on.as_ref().map(|on| scalar(on, &ctx)).transpose()?;
        // The equalities between the sides that read neither side's ROWTIME (whose value
        // depends on which row arrives); the right side's numbered as in the right row.
        let keys = on
            .as_ref()
            .map(|on| equalities(on, n))
            .unwrap_or_default()
            .into_iter()
            .filter(|(l, r)| {
                !l.reads_rowtime()
                    && !r.reads_rowtime()
                    && r.columns().iter().all(|&c| (n..n + m).contains(&c))
            })
            .map(|(l, mut r)| {
                r.rewrite_post(&mut |x| {
                    if let CExpr::Col(i) = x {
                        *i -= n;
                    }
                });
                (l, r)
            })
            .collect();
        stream_join = Some(StreamJoinPlan {
            keys,
            right,
            kind: j.kind,
            left_frame: frame(&sel.from_over)?,
            right_frame: frame(&j.over)?,
            on,
            widths: (n, m),
        });
    } else if let Some(j) = &sel.join {
        if let Some(over) = sel.from_over.as_ref().or(j.over.as_ref()) {
            let pos = match over {
                ast::Over::Named(n) => n.pos,
                ast::Over::Spec(w) => w.pos,
            };
            return Err(SqlError::syntax(
                pos,
                "a window (OVER) goes with a join of two streams, not with a reference table",
            ));
        }
        if !matches!(j.kind, ast::JoinKind::Inner | ast::JoinKind::Left) {
            return Err(SqlError::name(
                j.table.pos,
                &j.table.text,
                "a reference table takes JOIN or LEFT JOIN",
            ));
        }
        let t = tables
            .iter()
            .position(|t| t.name == j.table.text)
            .ok_or_else(|| {
                SqlError::name(
                    j.table.pos,
                    &j.table.text,
                    format!(
                        "unknown table or stream `{}` (the application's reference tables: {})",
                        j.table.text,
                        if tables.is_empty() {
                            "none".to_string()
                        } else {
                            tables
                                .iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                )
            })?;
        let mut quals = vec![j.table.text.clone()];
        if let Some(a) = &j.alias {
            quals.push(a.text.clone());
        }
        ctx.table = Some((
            Joined {
                name: &tables[t].name,
                columns: &tables[t].columns,
                what: "table",
            },
            quals,
        ));
        let on = match &j.on {
            Some(on) => scalar(on, &ctx)?,
            None => CExpr::Lit(Value::Bool(true)),
        };
        let n = ctx.source.columns.len();
        let keys = equalities(&on, n);
        join = Some(JoinPlan {
            table: t,
            left: j.kind == ast::JoinKind::Left,
            on,
            keys,
        });
    } else if let Some(over) = &sel.from_over {
        let pos = match over {
            ast::Over::Named(n) => n.pos,
            ast::Over::Spec(w) => w.pos,
        };
        return Err(SqlError::syntax(
            pos,
            "a window after FROM goes with a join of two streams",
        ));
    }
    let ctx = ctx;
    // `*` expands to the source's columns.
    let mut exprs: Vec<Expr> = Vec::new();
    for item in &sel.items {
        match item {
            Item::Star(pos) => {
                // Every column of the stream, then of the joined table, if any.
                let mut all: Vec<(&str, &str)> = ctx
                    .source
                    .columns
                    .iter()
                    .map(|(c, _)| (ctx.qualifiers[0].as_str(), c.as_str()))
                    .collect();
                if let Some((t, quals)) = &ctx.table {
                    all.extend(
                        t.columns
                            .iter()
                            .map(|(c, _)| (quals[0].as_str(), c.as_str())),
                    );
                }
                for (q, c) in all {
                    let name = |text: &str| ast::Name {
                        text: text.to_string(),
                        pos: *pos,
                    };
                    exprs.push(Expr::Column {
                        table: Some(name(q)),
                        name: name(c),
                    });
                }
            }
            // A row selected whole: each of its fields, in the target's columns.
            Item::Expr { expr, .. } => match ctx.row_of(expr)? {
                Some(fields) => {
                    for (f, _) in fields {
                        exprs.push(Expr::Field {
                            e: Box::new(expr.clone()),
                            field: ast::Name {
                                text: f,
                                pos: expr.pos(),
                            },
                        });
                    }
                }
                None => exprs.push(expr.clone()),
            },
        }
        if exprs.len() > MAX_WIDTH {
            return Err(SqlError::syntax(
                sel.pos,
                format!("the select makes more than {MAX_WIDTH} columns"),
            ));
        }
    }
    let target_cols = &streams[target].columns;
    let into: Vec<usize> = match &p.columns {
        Some(cols) => {
            let mut into = Vec::new();
            for c in cols {
                let i = target_cols
                    .iter()
                    .position(|(n, _)| *n == c.text)
                    .ok_or_else(|| {
                        SqlError::name(
                            c.pos,
                            &c.text,
                            format!("`{}` has no column `{}`", p.target.text, c.text),
                        )
                    })?;
                into.push(i);
            }
            into
        }
        None => (0..target_cols.len()).collect(),
    };
    if into.len() != exprs.len() {
        return Err(SqlError::syntax(
            sel.pos,
            format!(
                "the pump selects {} column(s) into {} column(s) of `{}`",
                exprs.len(),
                into.len(),
                p.target.text
            ),
        ));
    }
    let filter = sel.filter.as_ref().map(|f| scalar(f, &ctx)).transpose()?;
    if let Some((e, _)) = sel.order_by.first() {
        if sel.stagger.is_some() || exprs.iter().any(has_window_aggregate) {
            return Err(SqlError::syntax(
                e.pos(),
                "ORDER BY with a sliding or stagger window is not supported by Weir yet",
            ));
        }
    }
    let kind = if let Some(st) = &sel.stagger {
        if let Some(g) = sel.group_by.first() {
            return Err(SqlError::syntax(
                g.pos(),
                "WINDOWED BY is used instead of GROUP BY, not with it",
            ));
        }
        let ast::Frame::Range(range) = st.frame else {
            return Err(SqlError::syntax(st.pos, "a stagger window takes RANGE"));
        };
        let keys: Vec<CExpr> = st
            .partition
            .iter()
            .map(|e| scalar(e, &ctx))
            .collect::<Result<_, _>>()?;
        let (items, having, aggs) = grouped_select(&exprs, sel.having.as_ref(), &ctx, &keys)?;
        PumpKind::Stagger {
            keys,
            range,
            aggs,
            items,
            having,
        }
    } else if exprs.iter().any(has_window_aggregate) {
        if let Some(g) = sel.group_by.first() {
            return Err(SqlError::syntax(
                g.pos(),
                "GROUP BY and OVER in one select are not supported by Weir yet",
            ));
        }
        if let Some(h) = &sel.having {
            return Err(SqlError::syntax(h.pos(), "HAVING without GROUP BY"));
        }
        let (mut windows, mut slots) = (Vec::new(), Vec::new());
        let items = exprs
            .iter()
            .map(|e| sliding(e, &ctx, &sel.windows, &mut windows, &mut slots))
            .collect::<Result<_, _>>()?;
        PumpKind::Slide {
            windows,
            slots,
            items,
        }
    } else if sel.group_by.is_empty() && !exprs.iter().any(has_aggregate) {
        if let Some(h) = &sel.having {
            return Err(SqlError::syntax(h.pos(), "HAVING without GROUP BY"));
        }
        let order = match sel.order_by.split_first() {
            None => None,
            Some(((first, _), _)) => {
                let bucket = scalar(first, &ctx)?;
                if !bucket.reads_rowtime() || bucket.reads_columns() {
                    return Err(SqlError::syntax(
                        first.pos(),
                        "a streaming ORDER BY starts with a window of ROWTIME, such as \
                         FLOOR(s.ROWTIME TO SECOND)",
                    ));
                }
                let keys = sel
                    .order_by
                    .iter()
                    .map(|(e, desc)| scalar(e, &ctx).map(|c| (c, *desc)))
                    .collect::<Result<_, _>>()?;
                Some(Order { bucket, keys })
            }
        };
        PumpKind::Map {
            items: exprs
                .iter()
                .map(|e| scalar(e, &ctx))
                .collect::<Result<_, _>>()?,
            order,
        }
    } else {
        let keys: Vec<CExpr> = sel
            .group_by
            .iter()
            .map(|e| scalar(e, &ctx))
            .collect::<Result<_, _>>()?;
        let timed: Vec<usize> = (0..keys.len())
            .filter(|&i| keys[i].reads_rowtime() && !keys[i].reads_columns())
            .collect();
        // With no window of ROWTIME, a key declared MONOTONIC (`GROUP BY MONOTONIC(orderId)`)
        // is the window: a group ends when a row brings another value.
        let declared: Vec<usize> = (0..keys.len())
            .filter(|&i| {
                matches!(&sel.group_by[i], Expr::Func { name, .. } if name.text == "MONOTONIC")
            })
            .collect();
        let bucket = match (timed.as_slice(), declared.as_slice()) {
            ([one], _) | ([], [one]) => *one,
            ([], [_, second, ..]) => {
                return Err(SqlError::syntax(
                    sel.group_by[*second].pos(),
                    "GROUP BY has more than one MONOTONIC key and no window of ROWTIME",
                ))
            }
            ([], []) => {
                return Err(SqlError::syntax(
                    sel.group_by.first().map_or(sel.pos, Expr::pos),
                    "a streaming GROUP BY must group on a window of ROWTIME, such as \
                     STEP(ROWTIME BY INTERVAL '1' MINUTE) or FLOOR(ROWTIME TO MINUTE), or on \
                     a key declared MONOTONIC",
                ))
            }
            ([_, second, ..], _) => {
                return Err(SqlError::syntax(
                    sel.group_by[*second].pos(),
                    "GROUP BY has more than one window of ROWTIME",
                ))
            }
        };
        let (items, having, mut aggs) = grouped_select(&exprs, sel.having.as_ref(), &ctx, &keys)?;
        // ORDER BY sorts each window's rows, as they all come out when it ends: its first key
        // must be the same for all of them (the window, or ROWTIME).
        let mut order = Vec::new();
        for (i, (e, desc)) in sel.order_by.iter().enumerate() {
            let c = grouped(e, &ctx, &keys, &mut aggs)?;
            if i == 0 && c != CExpr::Key(bucket) && (!c.reads_rowtime() || c.reads_columns()) {
                return Err(SqlError::syntax(
                    e.pos(),
                    "a streaming ORDER BY starts with the window of ROWTIME its GROUP BY has",
                ));
            }
            order.push((c, *desc));
        }
        PumpKind::Tumble {
            keys,
            bucket,
            aggs,
            items,
            having,
            order,
        }
    };
    Ok(Pump {
        name: p.name.text.clone(),
        source,
        target,
        join,
        filter,
        kind,
        into,
        udf_sites: Vec::new(),
        stream_join,
    })
}

/// The pumps in an order where each comes after those that feed its stream (the pumps make
/// no loop: [`cycle`] refused them).
fn upstream_first(pumps: &[Pump]) -> Vec<usize> {
    let feeds = |a: &Pump, b: &Pump| b.sources().any(|s| s == a.target);
    let mut order = Vec::new();
    let mut placed = vec![false; pumps.len()];
    while order.len() < pumps.len() {
        let before = order.len();
        for i in 0..pumps.len() {
            let ready = !placed[i]
                && (0..pumps.len()).all(|j| placed[j] || j == i || !feeds(&pumps[j], &pumps[i]));
            if ready {
                placed[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            // Not a DAG after all: the rest in creation order.
            order.extend((0..pumps.len()).filter(|&i| !placed[i]));
            break;
        }
    }
    order
}

/// A stream whose rows, through pumps, would come back to it, if there is one.
fn cycle(pumps: &[Pump]) -> Option<usize> {
    let streams = pumps
        .iter()
        .flat_map(|p| p.sources().chain([p.target]))
        .max()?
        + 1;
    // Depth-first search with colours: 0 unseen, 1 on the path, 2 done.
    fn visit(s: usize, pumps: &[Pump], colour: &mut [u8]) -> Option<usize> {
        colour[s] = 1;
        for p in pumps.iter().filter(|p| p.sources().any(|x| x == s)) {
            match colour[p.target] {
                1 => return Some(p.target),
                0 => {
                    if let Some(c) = visit(p.target, pumps, colour) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        colour[s] = 2;
        None
    }
    let mut colour = vec![0u8; streams];
    (0..streams).find_map(|s| {
        (colour[s] == 0)
            .then(|| visit(s, pumps, &mut colour))
            .flatten()
    })
}

/// The pumps a select's FROM needs before the select itself, each added to `streams`: a
/// table function's ([`compile_function`]), or a subquery's, from its own FROM into a stream
/// of its own, which the select reads (named by the parser). A subquery's own FROM comes
/// first, so subqueries nest (as deep as the parser lets them).
fn compile_sources(
    pump: &ast::Name,
    sel: &ast::Select,
    streams: &mut Vec<StreamDef>,
    by_name: &mut HashMap<String, usize>,
    tables: &[TableDef],
    udfs: &[UdfSignature],
) -> Result<Vec<Pump>, SqlError> {
    if let Some(f) = &sel.function {
        return compile_function(pump, &sel.from, f, streams, by_name, tables, udfs);
    }
    let Some(sub) = &sel.subquery else {
        return Ok(Vec::new());
    };
    let mut pumps = compile_sources(pump, sub, streams, by_name, tables, udfs)?;
    let columns = cursor_columns(sub, &sel.alias_columns, streams, by_name, udfs)?;
    by_name.insert(sel.from.text.clone(), streams.len());
    streams.push(StreamDef {
        name: sel.from.text.clone(),
        not_null: vec![false; columns.len()],
        columns,
        input: None,
    });
    let inner = ast::CreatePump {
        name: ast::Name {
            text: format!("{}${}", pump.text, sel.from.text),
            pos: sub.pos,
        },
        target: sel.from.clone(),
        columns: None,
        select: (**sub).clone(),
        union: Vec::new(),
    };
    pumps.push(compile_pump(&inner, streams, by_name, tables, udfs)?);
    Ok(pumps)
}

/// The pumps a `FROM TABLE(F(CURSOR(select), args))` needs before the select itself: the
/// cursor's select into a stream of its own, and the function from that stream into the one
/// the select reads (`from`, named by the parser), each added to `streams`.
fn compile_function(
    pump: &ast::Name,
    from: &ast::Name,
    f: &ast::TableFn,
    streams: &mut Vec<StreamDef>,
    by_name: &mut HashMap<String, usize>,
    tables: &[TableDef],
    udfs: &[UdfSignature],
) -> Result<Vec<Pump>, SqlError> {
    if f.cursor.function.is_some() {
        return Err(SqlError::syntax(
            f.cursor.pos,
            "a function of a function is not supported by Weir yet: pump the inner one into a stream",
        ));
    }
    // The cursor's own FROM (a subquery), then its stream: its columns are the select's, with
    // the types they have.
    let mut pumps = compile_sources(pump, &f.cursor, streams, by_name, tables, udfs)?;
    let cursor_name = format!("{}$CURSOR", from.text);
    let mut columns = cursor_columns(&f.cursor, &[], streams, by_name, udfs)?;
    let add = |streams: &mut Vec<StreamDef>,
               by_name: &mut HashMap<String, usize>,
               name: &str,
               columns: Vec<(String, SqlType)>| {
        by_name.insert(name.to_string(), streams.len());
        streams.push(StreamDef {
            name: name.to_string(),
            not_null: vec![false; columns.len()],
            columns,
            input: None,
        });
        streams.len() - 1
    };
    let cursor = add(streams, by_name, &cursor_name, columns.clone());
    let inner = ast::CreatePump {
        name: ast::Name {
            text: format!("{}$CURSOR", pump.text),
            pos: f.cursor.pos,
        },
        target: ast::Name {
            text: cursor_name,
            pos: f.cursor.pos,
        },
        columns: None,
        select: (*f.cursor).clone(),
        union: Vec::new(),
    };
    let first = compile_pump(&inner, streams, by_name, tables, udfs)?;
    let number = |i: usize, default: f64, lo: f64, hi: f64| -> Result<f64, SqlError> {
        match f.args.get(i) {
            None => Ok(default),
            Some(Expr::Lit(crate::value::Value::Int(n), _)) if (lo..=hi).contains(&(*n as f64)) => {
                Ok(*n as f64)
            }
            Some(Expr::Lit(crate::value::Value::Double(d), _)) if (lo..=hi).contains(d) => Ok(*d),
            Some(e) => Err(SqlError::syntax(
                e.pos(),
                format!("expected a number from {lo} to {hi}"),
            )),
        }
    };
    // The columns the numeric functions read (KDA's took DOUBLE, INTEGER, FLOAT, TINYINT,
    // SMALLINT, REAL and BIGINT; Weir's DECIMAL is a double, and is read too).
    let numeric: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, (_, t))| {
            is_integer(*t) || matches!(t, SqlType::Real | SqlType::Double | SqlType::Decimal(..))
        })
        .map(|(i, _)| i)
        .collect();
    let no_numeric = || {
        SqlError::name(
            f.name.pos,
            &f.name.text,
            format!("{}'s cursor has no numeric column", f.name.text),
        )
    };
    let text = SqlType::Varchar(u32::MAX);
    let (kind, extra) = match f.name.text.as_str() {
        name @ ("RANDOM_CUT_FOREST" | "RANDOM_CUT_FOREST_WITH_EXPLANATION") => {
            let explain = name == "RANDOM_CUT_FOREST_WITH_EXPLANATION";
            if !explain && f.args.len() > 4 {
                return Err(SqlError::syntax(
                    f.args[4].pos(),
                    "RANDOM_CUT_FOREST takes at most 4 parameters (numberOfTrees, \
                     subSampleSize, timeDecay, shingleSize)",
                ));
            }
            if explain && f.args.len() > 5 {
                return Err(SqlError::syntax(
                    f.args[5].pos(),
                    "RANDOM_CUT_FOREST_WITH_EXPLANATION takes at most 5 parameters \
                     (numberOfTrees, subSampleSize, timeDecay, shingleSize, withDirectionality)",
                ));
            }
            if numeric.is_empty() {
                return Err(no_numeric());
            }
            // KDA's limit for the explained forest (SQL Reference,
            // RANDOM_CUT_FOREST_WITH_EXPLANATION: "up to 30 numeric columns").
            if explain && numeric.len() > 30 {
                return Err(SqlError::name(
                    f.name.pos,
                    &f.name.text,
                    format!(
                        "RANDOM_CUT_FOREST_WITH_EXPLANATION takes up to 30 numeric columns; \
                         the cursor has {}",
                        numeric.len()
                    ),
                ));
            }
            let directional = match f.args.get(4) {
                None => false,
                Some(Expr::Lit(Value::Bool(b), _)) => *b,
                Some(e) => {
                    return Err(SqlError::syntax(
                        e.pos(),
                        "expected TRUE or FALSE (withDirectionality)",
                    ))
                }
            };
            let mut extra = vec![("ANOMALY_SCORE".to_string(), SqlType::Double)];
            if explain {
                extra.push(("ANOMALY_EXPLANATION".to_string(), text));
            }
            (
                PumpKind::Rcf {
                    columns: numeric,
                    // KDA's defaults and ranges (SQL Reference, RANDOM_CUT_FOREST and
                    // RANDOM_CUT_FOREST_WITH_EXPLANATION: the same for both).
                    trees: number(0, 100.0, 1.0, 1000.0)? as usize,
                    sample: number(1, 256.0, 10.0, 1000.0)? as usize,
                    time_decay: number(2, 100_000.0, 1.0, f64::from(i32::MAX))?,
                    shingle: number(3, 1.0, 1.0, 30.0)? as usize,
                    explain: explain.then_some(directional),
                },
                extra,
            )
        }
        "TOP_K_ITEMS_TUMBLING" => {
            let [col, _, _] = f.args.as_slice() else {
                return Err(SqlError::name(
                    f.name.pos,
                    &f.name.text,
                    "TOP_K_ITEMS_TUMBLING takes the cursor, a column name ('TICKER'), K and a \
                     window size in seconds",
                ));
            };
            let column = named_column(&columns, col)?;
            let kind = PumpKind::TopK {
                column,
                k: number(1, 0.0, 1.0, 100_000.0)? as usize,
                window_ms: (number(2, 0.0, 1.0, 86_400.0 * 365.0)? * 1000.0) as i64,
            };
            let value = columns[column].clone();
            columns = Vec::new();
            (
                kind,
                vec![value, ("MOST_FREQUENT_VALUES".to_string(), SqlType::Bigint)],
            )
        }
        "COUNT_DISTINCT_ITEMS_TUMBLING" => {
            let [col, _] = f.args.as_slice() else {
                return Err(SqlError::name(
                    f.name.pos,
                    &f.name.text,
                    "COUNT_DISTINCT_ITEMS_TUMBLING takes the cursor, a column name \
                     ('TICKER_SYMBOL') and a window size in seconds",
                ));
            };
            let column = named_column(&columns, col)?;
            let kind = PumpKind::CountDistinct {
                column,
                // KDA's range (SQL Reference, COUNT_DISTINCT_ITEMS_TUMBLING): "at least 1
                // second and should not exceed 1 hour".
                window_ms: (number(1, 0.0, 1.0, 3600.0)? * 1000.0) as i64,
            };
            columns = Vec::new();
            (
                kind,
                vec![("NUMBER_OF_DISTINCT_ITEMS".to_string(), SqlType::Bigint)],
            )
        }
        "HOTSPOTS" => {
            if f.args.len() != 3 {
                return Err(SqlError::name(
                    f.name.pos,
                    &f.name.text,
                    "HOTSPOTS takes the cursor, windowSize (100 to 1000 rows), scanRadius (a \
                     number above 0) and minimumNumberOfPointsInAHotspot (2 to windowSize)",
                ));
            }
            if numeric.is_empty() {
                return Err(no_numeric());
            }
            // KDA's ranges (SQL Reference, HOTSPOTS).
            let window = number(0, 0.0, 100.0, 1000.0)? as usize;
            let radius = match &f.args[1] {
                Expr::Lit(Value::Int(n), _) if *n > 0 => *n as f64,
                Expr::Lit(Value::Double(d), _) if *d > 0.0 && d.is_finite() => *d,
                e => {
                    return Err(SqlError::syntax(
                        e.pos(),
                        "expected a number above 0 (scanRadius)",
                    ))
                }
            };
            let min_points = number(2, 0.0, 2.0, window as f64)? as usize;
            (
                PumpKind::Hotspots {
                    columns: numeric,
                    window,
                    radius,
                    min_points,
                },
                vec![("HOTSPOTS_RESULT".to_string(), text)],
            )
        }
        other => {
            return Err(SqlError::name(
                f.name.pos,
                other,
                format!("the analytic function `{other}` is not supported by Weir yet"),
            ))
        }
    };
    let mut out_columns = columns;
    out_columns.extend(extra);
    let width = out_columns.len();
    let target = add(streams, by_name, &from.text, out_columns);
    let second = Pump {
        name: format!("{}${}", pump.text, f.name.text),
        source: cursor,
        target,
        join: None,
        filter: None,
        kind,
        into: (0..width).collect(),
        udf_sites: Vec::new(),
        stream_join: None,
    };
    pumps.push(first);
    pumps.push(second);
    Ok(pumps)
}

/// The place among a cursor's `columns` of the one an analytic function names (`'TICKER'`).
fn named_column(columns: &[(String, SqlType)], col: &Expr) -> Result<usize, SqlError> {
    let Expr::Lit(Value::Str(name), _) = col else {
        return Err(SqlError::syntax(
            col.pos(),
            "expected the column's name in quotes",
        ));
    };
    columns.iter().position(|(c, _)| c == name).ok_or_else(|| {
        SqlError::name(
            col.pos(),
            name,
            format!(
                "the cursor has no column `{name}` (it has {})",
                columns
                    .iter()
                    .map(|c| c.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// The columns a select makes (a CURSOR's or a FROM subquery's), with their names and types.
/// A column is named by its alias, or `names` (`AS t(a, b)`), or the column it selects; a
/// row selected whole is a column per field, `ROW.FIELD`.
fn cursor_columns(
    sel: &ast::Select,
    names: &[ast::Name],
    streams: &[StreamDef],
    by_name: &HashMap<String, usize>,
    udfs: &[UdfSignature],
) -> Result<Vec<(String, SqlType)>, SqlError> {
    if !sel.group_by.is_empty() || sel.stagger.is_some() || sel.join.is_some() {
        return Err(SqlError::syntax(
            sel.pos,
            "a CURSOR select or FROM subquery with GROUP BY, WINDOWED BY or JOIN is not \
             supported by Weir yet: pump it into a stream and select from that",
        ));
    }
    let source = by_name.get(&sel.from.text).copied().ok_or_else(|| {
        SqlError::name(
            sel.from.pos,
            &sel.from.text,
            format!("unknown stream `{}`", sel.from.text),
        )
    })?;
    let ctx = Ctx::new(&streams[source], udfs, sel);
    // Each item makes a column (its name and type), or a row of them (its name and fields).
    let mut made: Vec<(String, Option<Fields>, SqlType)> = Vec::new();
    for (i, item) in sel.items.iter().enumerate() {
        match item {
            Item::Star(_) => made.extend(
                ctx.source
                    .columns
                    .iter()
                    .map(|(n, t)| (n.clone(), None, *t)),
            ),
            Item::Expr { expr, alias } => {
                let name = match (alias, expr) {
                    (Some(a), _) => a.text.clone(),
                    (None, Expr::Column { name, .. }) => name.text.clone(),
                    (None, Expr::Field { field, .. }) => field.text.clone(),
                    (None, _) => format!("EXPR${i}"),
                };
                match ctx.row_of(expr)? {
                    Some(fields) => made.push((name, Some(fields), SqlType::Boolean)),
                    None => {
                        let c = scalar(expr, &ctx)?;
                        made.push((name, None, infer(&c, &ctx.source.columns)));
                    }
                }
            }
        }
    }
    if let Some(first) = names.first() {
        if names.len() != made.len() {
            return Err(SqlError::syntax(
                first.pos,
                format!(
                    "{} name(s) for the {} column(s) the subquery selects",
                    names.len(),
                    made.len()
                ),
            ));
        }
        for (m, n) in made.iter_mut().zip(names) {
            m.0 = n.text.clone();
        }
    }
    let mut out = Vec::new();
    for (name, fields, ty) in made {
        match fields {
            None => out.push((name, ty)),
            Some(fields) => out.extend(fields.into_iter().map(|(f, t)| (format!("{name}.{f}"), t))),
        }
    }
    // Rows are wide (VARIABLE_COLUMN_LOG_PARSE(s, 1000, ',') is a short call): a bound on the
    // width of a row, whatever the SQL.
    if out.len() > MAX_WIDTH {
        return Err(SqlError::syntax(
            sel.pos,
            format!("the select makes more than {MAX_WIDTH} columns"),
        ));
    }
    Ok(out)
}

/// The most columns a stream Weir makes for a CURSOR or a subquery may have.
const MAX_WIDTH: usize = 10_000;

/// The type an expression's values have (for the columns of a CURSOR's stream).
fn infer(e: &CExpr, cols: &[(String, SqlType)]) -> SqlType {
    use crate::ast::BinOp::*;
    let text = SqlType::Varchar(u32::MAX);
    match e {
        CExpr::Col(i) => cols.get(*i).map_or(text, |c| c.1),
        CExpr::Rowtime => SqlType::Timestamp,
        CExpr::Lit(v) => match v {
            Value::Int(_) => SqlType::Bigint,
            Value::Double(_) => SqlType::Double,
            Value::Bool(_) => SqlType::Boolean,
            Value::Timestamp(_) => SqlType::Timestamp,
            _ => text,
        },
        CExpr::Cast(_, ty) => *ty,
        CExpr::Unary(crate::ast::UnOp::Not, _)
        | CExpr::IsNull(..)
        | CExpr::Between { .. }
        | CExpr::In { .. }
        | CExpr::Like { .. }
        | CExpr::Similar { .. } => SqlType::Boolean,
        CExpr::Unary(_, e) | CExpr::Floor { e, .. } | CExpr::Step(e, _) => infer(e, cols),
        CExpr::Binary(Or | And | Eq | NotEq | Lt | LtEq | Gt | GtEq, ..) => SqlType::Boolean,
        CExpr::Binary(Concat, ..) => text,
        CExpr::Binary(_, a, b) => match (infer(a, cols), infer(b, cols)) {
            (SqlType::Timestamp | SqlType::Date | SqlType::Time, _)
            | (_, SqlType::Timestamp | SqlType::Date | SqlType::Time) => SqlType::Timestamp,
            (x, y) if is_integer(x) && is_integer(y) => SqlType::Bigint,
            _ => SqlType::Double,
        },
        CExpr::Call(Func::CharLength | Func::UnixTimestamp | Func::Tsdiff, _)
        | CExpr::Position(..)
        | CExpr::Extract(..) => SqlType::Bigint,
        CExpr::Call(
            Func::CurrentRowTimestamp
            | Func::CharToTimestamp
            | Func::ToTimestamp
            | Func::CurrentTimestamp,
            _,
        ) => SqlType::Timestamp,
        CExpr::Call(Func::CharToDate | Func::CurrentDate, _) => SqlType::Date,
        CExpr::Call(Func::CharToTime | Func::CurrentTime, _) => SqlType::Time,
        CExpr::Call(Func::Log10, _) => SqlType::Double,
        CExpr::Udf { ret, .. } | CExpr::UdfAt(_, ret) => *ret,
        CExpr::Call(
            Func::Upper
            | Func::Lower
            | Func::Initcap
            | Func::RegexReplace
            | Func::TimestampToChar
            | Func::DateToChar
            | Func::TimeToChar
            | Func::Overlay,
            _,
        )
        | CExpr::Substring(..)
        | CExpr::Trim(..)
        | CExpr::Regex(_)
        | CExpr::DateFormat(_) => text,
        CExpr::Case { whens, .. } => whens.first().map_or(text, |(_, t)| infer(t, cols)),
        CExpr::Call(Func::Coalesce | Func::Nullif | Func::Monotonic, args) => {
            args.first().map_or(text, |a| infer(a, cols))
        }
        CExpr::LogParse { parser, field, .. } => parser.columns.get(*field).map_or(text, |c| c.ty),
        _ => SqlType::Double,
    }
}

fn is_integer(t: SqlType) -> bool {
    matches!(
        t,
        SqlType::Tinyint | SqlType::Smallint | SqlType::Integer | SqlType::Bigint
    )
}

/// The equalities of an ON condition's top-level AND between an expression of the stream's
/// columns (below `n`) and one of the table's.
fn equalities(on: &CExpr, n: usize) -> Vec<(CExpr, CExpr)> {
    let side = |e: &CExpr| {
        let cols = e.columns();
        if cols.is_empty() {
            None
        } else if cols.iter().all(|&c| c < n) {
            Some(false)
        } else if cols.iter().all(|&c| c >= n) && !e.reads_rowtime() && !e.reads_clock() {
            Some(true)
        } else {
            None
        }
    };
    match on {
        CExpr::Binary(crate::ast::BinOp::And, a, b) => {
            let mut out = equalities(a, n);
            out.extend(equalities(b, n));
            out
        }
        CExpr::Binary(crate::ast::BinOp::Eq, a, b) => match (side(a), side(b)) {
            (Some(false), Some(true)) => vec![((**a).clone(), (**b).clone())],
            (Some(true), Some(false)) => vec![((**b).clone(), (**a).clone())],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Refuses UDF names that are taken: by another UDF, or by a function of the dialect.
fn check_udfs(udfs: &[UdfSignature]) -> Result<(), SqlError> {
    const SPECIAL: [&str; 12] = [
        "SUBSTRING",
        "POSITION",
        "TRIM",
        "EXTRACT",
        "FLOOR",
        "CEIL",
        "CEILING",
        "STEP",
        "CAST",
        "TABLE",
        "CURSOR",
        "COUNT",
    ];
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for u in udfs {
        if Func::by_name(&u.name).is_some()
            || aggregate_kind(&u.name).is_some()
            || logparse::is_log_parse(&u.name)
            || SPECIAL.contains(&u.name.as_str())
        {
            return Err(SqlError::config(
                "udfs",
                format!(
                    "{}: function `{}` has the name of a SQL function",
                    u.origin, u.name
                ),
            ));
        }
        if let Some(other) = seen.insert(&u.name, &u.origin) {
            return Err(SqlError::config(
                "udfs",
                format!(
                    "function `{}` is provided by both {other} and {}",
                    u.name, u.origin
                ),
            ));
        }
    }
    Ok(())
}

/// A call of a user-defined function: its arguments compiled and converted to the types it
/// declares.
fn udf_call(
    name: &ast::Name,
    args: &[Expr],
    ctx: &Ctx<'_>,
    sub: &mut dyn FnMut(&Expr) -> Result<Box<CExpr>, SqlError>,
) -> Result<CExpr, SqlError> {
    let Some(function) = ctx.udfs.iter().position(|u| u.name == name.text) else {
        let known = if ctx.udfs.is_empty() {
            String::new()
        } else {
            format!(
                " (the step's modules provide {})",
                ctx.udfs
                    .iter()
                    .map(|u| u.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(SqlError::name(
            name.pos,
            &name.text,
            format!("unknown function `{}`{known}", name.text),
        ));
    };
    let sig = &ctx.udfs[function];
    if args.len() != sig.args.len() {
        return Err(SqlError::name(
            name.pos,
            &name.text,
            format!(
                "`{}` ({}) takes {} argument(s), not {}",
                name.text,
                sig.origin,
                sig.args.len(),
                args.len()
            ),
        ));
    }
    let mut cargs = Vec::with_capacity(args.len());
    for (a, ty) in args.iter().zip(&sig.args) {
        cargs.push(CExpr::Cast(sub(a)?, ty.sql_type()));
    }
    Ok(CExpr::Udf {
        function,
        ret: sig.returns.sql_type(),
        args: cargs,
    })
}

const UDF_IN_ON: &str =
    "a function of a Wasm module cannot be called in a JOIN's ON yet: call it in a pump after \
     the join";

/// Numbers a pump's UDF calls as its call sites, innermost first, and replaces each with a
/// read of its site's result. A site is evaluated per row of the pump's input, unless it is
/// evaluated for a window's row (in a grouped select's items or HAVING, or reading an
/// aggregate or another such site).
fn assign_sites(pump: &mut Pump) -> Result<(), String> {
    let is_udf = |e: &CExpr| matches!(e, CExpr::Udf { .. });
    if let Some(on) = pump.stream_join.as_ref().and_then(|j| j.on.as_ref()) {
        if on.any(&is_udf) {
            return Err(UDF_IN_ON.into());
        }
    }
    if let PumpKind::Tumble { order, .. } = &pump.kind {
        if order.iter().any(|(e, _)| e.any(&is_udf)) {
            return Err(
                "a function of a Wasm module cannot be called in an ORDER BY yet: \
                        select it as a column and order by that"
                    .into(),
            );
        }
    }
    if let Some(j) = &pump.join {
        if j.on.any(&is_udf) {
            return Err(UDF_IN_ON.into());
        }
    }
    let mut sites: Vec<UdfSite> = Vec::new();
    let mut place = |e: &mut CExpr, group: bool| {
        e.rewrite_post(&mut |x| {
            if let CExpr::Udf {
                function,
                ret,
                args,
            } = x
            {
                let args = std::mem::take(args);
                let group = group
                    || args
                        .iter()
                        .any(|a| a.any(&|y| matches!(y, CExpr::Key(_) | CExpr::Agg(_))))
                    || args.iter().any(|a| group_site_in(a, &sites));
                let at = CExpr::UdfAt(sites.len(), *ret);
                sites.push(UdfSite {
                    function: *function,
                    args,
                    group,
                });
                *x = at;
            }
        })
    };
    if let Some(f) = &mut pump.filter {
        place(f, false);
    }
    let row_aggs = |aggs: &mut Vec<AggSpec>, place: &mut dyn FnMut(&mut CExpr, bool)| {
        for a in aggs {
            if let Some(e) = &mut a.arg {
                place(e, false);
            }
        }
    };
    match &mut pump.kind {
        PumpKind::Map { items, order } => {
            items.iter_mut().for_each(|e| place(e, false));
            if let Some(o) = order {
                place(&mut o.bucket, false);
                o.keys.iter_mut().for_each(|(k, _)| place(k, false));
            }
        }
        PumpKind::Tumble {
            keys,
            aggs,
            items,
            having,
            ..
        }
        | PumpKind::Stagger {
            keys,
            aggs,
            items,
            having,
            ..
        } => {
            keys.iter_mut().for_each(|e| place(e, false));
            row_aggs(aggs, &mut place);
            items.iter_mut().for_each(|e| place(e, true));
            if let Some(h) = having {
                place(h, true);
            }
        }
        PumpKind::Slide { windows, items, .. } => {
            for w in windows {
                w.partition.iter_mut().for_each(|e| place(e, false));
                row_aggs(&mut w.aggs, &mut place);
            }
            items.iter_mut().for_each(|e| place(e, false));
        }
        PumpKind::TopK { .. }
        | PumpKind::Rcf { .. }
        | PumpKind::CountDistinct { .. }
        | PumpKind::Hotspots { .. } => {}
    }
    pump.udf_sites = sites;
    Ok(())
}

/// Whether `e` reads the result of a site evaluated per window row.
fn group_site_in(e: &CExpr, sites: &[UdfSite]) -> bool {
    e.any(&|y| matches!(y, CExpr::UdfAt(k, _) if sites.get(*k).is_some_and(|s| s.group)))
}

fn aggregate_kind(name: &str) -> Option<AggKind> {
    Some(match name {
        "COUNT" => AggKind::Count,
        "SUM" => AggKind::Sum,
        "MIN" => AggKind::Min,
        "MAX" => AggKind::Max,
        "AVG" => AggKind::Avg,
        "VAR_POP" => AggKind::Var {
            sample: false,
            root: false,
        },
        "VAR_SAMP" => AggKind::Var {
            sample: true,
            root: false,
        },
        "STDDEV_POP" => AggKind::Var {
            sample: false,
            root: true,
        },
        "STDDEV_SAMP" => AggKind::Var {
            sample: true,
            root: true,
        },
        "FIRST_VALUE" => AggKind::FirstValue,
        "LAST_VALUE" => AggKind::LastValue,
        "ANY" | "SOME" => AggKind::Any,
        "EVERY" => AggKind::Every,
        "EXP_AVG" => AggKind::ExpAvg(0),
        "NTH_VALUE" => AggKind::NthValue(0),
        _ => return None,
    })
}

/// Whether `e` holds an aggregate of a GROUP BY (one without OVER).
fn has_aggregate(e: &Expr) -> bool {
    let mut found = false;
    walk(e, &mut |x| {
        if let Expr::Func { name, over, .. } = x {
            found |= over.is_none() && aggregate_kind(&name.text).is_some();
        }
    });
    found
}

/// Whether `e` holds an aggregate OVER a sliding window.
fn has_window_aggregate(e: &Expr) -> bool {
    let mut found = false;
    walk(e, &mut |x| {
        if let Expr::Func { over, .. } = x {
            found |= over.is_some();
        }
    });
    found
}

fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    let mut each = |x: &Expr| walk(x, f);
    match e {
        Expr::Column { .. } | Expr::Lit(..) => {}
        Expr::Unary { e, .. }
        | Expr::Cast { e, .. }
        | Expr::IsNull { e, .. }
        | Expr::Floor { e, .. }
        | Expr::IntervalOf { e, .. }
        | Expr::Extract { e, .. }
        | Expr::Field { e, .. } => each(e),
        Expr::Binary { l, r, .. } => {
            each(l);
            each(r);
        }
        Expr::Step { e, by, .. } => {
            each(e);
            each(by);
        }
        Expr::Func { args, .. } => args.iter().for_each(each),
        Expr::Case {
            operand,
            whens,
            otherwise,
            ..
        } => {
            operand.iter().for_each(|x| each(x));
            for (w, t) in whens {
                each(w);
                each(t);
            }
            otherwise.iter().for_each(|x| each(x));
        }
        Expr::Between { e, lo, hi, .. } => {
            each(e);
            each(lo);
            each(hi);
        }
        Expr::In { e, list, .. } => {
            each(e);
            list.iter().for_each(each);
        }
        Expr::Like {
            e, pattern, escape, ..
        } => {
            each(e);
            each(pattern);
            escape.iter().for_each(|x| each(x));
        }
        Expr::Substring { e, from, len, .. } => {
            each(e);
            each(from);
            len.iter().for_each(|x| each(x));
        }
        Expr::Position { needle, hay, .. } => {
            each(needle);
            each(hay);
        }
        Expr::Trim { e, what, .. } => {
            each(e);
            what.iter().for_each(|x| each(x));
        }
    }
}

/// Compiles an expression evaluated on one row (no aggregates).
fn scalar(e: &Expr, ctx: &Ctx<'_>) -> Result<CExpr, SqlError> {
    compile_expr(e, ctx, &mut |e, _| {
        if let Expr::Func { name, .. } = e {
            if aggregate_kind(&name.text).is_some() {
                return Err(SqlError::name(
                    name.pos,
                    &name.text,
                    format!("aggregate `{}` is not allowed here", name.text),
                ));
            }
        }
        Ok(None)
    })
}

/// The aggregate `e` is, if it is one (its argument compiled on the row).
fn agg_spec(e: &Expr, ctx: &Ctx<'_>) -> Result<Option<AggSpec>, SqlError> {
    let Expr::Func {
        name,
        args,
        star,
        distinct,
        ..
    } = e
    else {
        return Ok(None);
    };
    let Some(kind) = aggregate_kind(&name.text) else {
        return Ok(None);
    };
    let kind = if *star { AggKind::CountStar } else { kind };
    if *star && name.text != "COUNT" {
        return Err(SqlError::name(name.pos, &name.text, "only COUNT takes `*`"));
    }
    let (kind, args) = match (kind, args.as_slice()) {
        (AggKind::ExpAvg(_), [a, Expr::Lit(Value::Interval(ms), _)]) if *ms > 0 => {
            (AggKind::ExpAvg(*ms), std::slice::from_ref(a))
        }
        (AggKind::NthValue(_), [a, Expr::Lit(Value::Int(n), _)])
            if (1..=crate::parse::MAX_ROWS as i64 + 1).contains(n) =>
        {
            (AggKind::NthValue(*n as u64), std::slice::from_ref(a))
        }
        (AggKind::ExpAvg(_), [_, other]) => {
            return Err(SqlError::syntax(
                other.pos(),
                "EXP_AVG's half-life is an INTERVAL literal, such as INTERVAL '10' SECOND",
            ))
        }
        (AggKind::NthValue(_), [_, other]) => {
            return Err(SqlError::syntax(
                other.pos(),
                "NTH_VALUE's position is a whole number literal from 1",
            ))
        }
        (AggKind::ExpAvg(_) | AggKind::NthValue(_), _) => {
            return Err(SqlError::name(
                name.pos,
                &name.text,
                format!("`{}` takes an expression and a literal", name.text),
            ))
        }
        (k, a) => (k, a),
    };
    if *distinct
        && (kind.sliding_only() || matches!(kind, AggKind::FirstValue | AggKind::LastValue))
    {
        return Err(SqlError::name(
            name.pos,
            &name.text,
            format!("`{}` does not take DISTINCT", name.text),
        ));
    }
    let arg = match (kind, args) {
        (AggKind::CountStar, []) => None,
        (_, [a]) => {
            if has_aggregate(a) {
                return Err(SqlError::syntax(a.pos(), "aggregates do not nest"));
            }
            Some(scalar(a, ctx)?)
        }
        _ => {
            return Err(SqlError::name(
                name.pos,
                &name.text,
                format!("`{}` takes one argument", name.text),
            ))
        }
    };
    Ok(Some(AggSpec {
        kind,
        arg,
        distinct: *distinct,
    }))
}

/// Compiles a select item of a select with sliding windows: an aggregate `OVER` a window
/// reads its slot, everything else reads the current row.
fn sliding(
    e: &Expr,
    ctx: &Ctx<'_>,
    defined: &[(ast::Name, ast::WindowSpec)],
    windows: &mut Vec<Slide>,
    slots: &mut Vec<(usize, usize)>,
) -> Result<CExpr, SqlError> {
    compile_expr(e, ctx, &mut |e, ctx| {
        let Expr::Func {
            name,
            over,
            args,
            ignore_nulls,
            ..
        } = e
        else {
            return Ok(None);
        };
        if name.text == "LAG" {
            let over = over.as_deref();
            return lag(
                name,
                args,
                *ignore_nulls,
                over,
                ctx,
                defined,
                windows,
                slots,
            )
            .map(Some);
        }
        let Some(spec) = agg_spec(e, ctx)? else {
            return Ok(None);
        };
        let Some(over) = over else {
            return Err(SqlError::name(
                name.pos,
                &name.text,
                format!(
                    "`{}` needs OVER a window here (or a GROUP BY window of ROWTIME)",
                    name.text
                ),
            ));
        };
        slot(spec, over, ctx, defined, windows, slots).map(|i| Some(CExpr::Agg(i)))
    })
}

/// The aggregate slot of `spec` over the window `over` names or defines.
fn slot(
    spec: AggSpec,
    over: &ast::Over,
    ctx: &Ctx<'_>,
    defined: &[(ast::Name, ast::WindowSpec)],
    windows: &mut Vec<Slide>,
    slots: &mut Vec<(usize, usize)>,
) -> Result<usize, SqlError> {
    let window = match over {
        ast::Over::Spec(w) => w,
        ast::Over::Named(n) => defined
            .iter()
            .find(|(d, _)| d.text == n.text)
            .map(|(_, w)| w)
            .ok_or_else(|| {
                SqlError::name(n.pos, &n.text, format!("no window `{}` is defined", n.text))
            })?,
    };
    let partition: Vec<CExpr> = window
        .partition
        .iter()
        .map(|p| scalar(p, ctx))
        .collect::<Result<_, _>>()?;
    let w = windows
        .iter()
        .position(|s| s.partition == partition && s.frame == window.frame)
        .unwrap_or_else(|| {
            windows.push(Slide {
                partition,
                frame: window.frame,
                aggs: Vec::new(),
            });
            windows.len() - 1
        });
    let mine = &mut windows[w].aggs;
    let j = mine.iter().position(|a| *a == spec).unwrap_or_else(|| {
        mine.push(spec);
        mine.len() - 1
    });
    Ok(slots.iter().position(|s| *s == (w, j)).unwrap_or_else(|| {
        slots.push((w, j));
        slots.len() - 1
    }))
}

/// `LAG(x [, n [, default]]) OVER w`: `x` of the row `n` (default 1) rows before the current one
/// within the window's frame, else `default` (else NULL). Compiled as the LAG slot when the
/// frame holds more than `n` rows besides, so that a NULL `x` stays NULL.
#[allow(clippy::too_many_arguments)]
fn lag(
    name: &ast::Name,
    args: &[Expr],
    ignore_nulls: bool,
    over: Option<&ast::Over>,
    ctx: &Ctx<'_>,
    defined: &[(ast::Name, ast::WindowSpec)],
    windows: &mut Vec<Slide>,
    slots: &mut Vec<(usize, usize)>,
) -> Result<CExpr, SqlError> {
    let Some(over) = over else {
        return Err(SqlError::name(
            name.pos,
            &name.text,
            "LAG needs OVER a sliding window",
        ));
    };
    let (x, n, default) = match args {
        [x] => (x, 1, None),
        [x, n] | [x, n, _] => {
            let n = match n {
                Expr::Lit(Value::Int(n), _) if (0..=crate::parse::MAX_ROWS as i64).contains(n) => {
                    *n as u64
                }
                other => {
                    return Err(SqlError::syntax(
                        other.pos(),
                        format!(
                            "LAG's offset must be a whole number from 0 to {}",
                            crate::parse::MAX_ROWS
                        ),
                    ))
                }
            };
            (x, n, args.get(2))
        }
        _ => {
            return Err(SqlError::name(
                name.pos,
                &name.text,
                "LAG takes an expression, an offset and a default",
            ))
        }
    };
    if has_aggregate(x) {
        return Err(SqlError::syntax(x.pos(), "aggregates do not nest"));
    }
    let spec = AggSpec {
        kind: AggKind::Lag { n, ignore_nulls },
        arg: Some(scalar(x, ctx)?),
        distinct: false,
    };
    let value = CExpr::Agg(slot(spec, over, ctx, defined, windows, slots)?);
    let Some(default) = default else {
        return Ok(value);
    };
    if ignore_nulls {
        // Skipping NULLs, LAG finds a value whenever there is a row to find.
        return Ok(CExpr::Call(
            Func::Coalesce,
            vec![value, scalar(default, ctx)?],
        ));
    }
    let count = AggSpec {
        kind: AggKind::CountStar,
        arg: None,
        distinct: false,
    };
    let count = CExpr::Agg(slot(count, over, ctx, defined, windows, slots)?);
    Ok(CExpr::Case {
        operand: None,
        whens: vec![(
            CExpr::Binary(
                ast::BinOp::Gt,
                Box::new(count),
                Box::new(CExpr::Lit(Value::Int(n as i64))),
            ),
            value,
        )],
        otherwise: Some(Box::new(scalar(default, ctx)?)),
    })
}

/// The select items and HAVING of a grouped select, with the aggregates they read.
type Grouped = (Vec<CExpr>, Option<CExpr>, Vec<AggSpec>);

fn grouped_select(
    exprs: &[Expr],
    having: Option<&Expr>,
    ctx: &Ctx<'_>,
    keys: &[CExpr],
) -> Result<Grouped, SqlError> {
    let mut aggs = Vec::new();
    let items = exprs
        .iter()
        .map(|e| grouped(e, ctx, keys, &mut aggs))
        .collect::<Result<_, _>>()?;
    let having = having
        .map(|h| grouped(h, ctx, keys, &mut aggs))
        .transpose()?;
    Ok((items, having, aggs))
}

/// Compiles a select item or HAVING of a grouped select: a sub-expression equal to a group
/// key reads the key, an aggregate reads its slot, and any other column is an error.
fn grouped(
    e: &Expr,
    ctx: &Ctx<'_>,
    keys: &[CExpr],
    aggs: &mut Vec<AggSpec>,
) -> Result<CExpr, SqlError> {
    compile_expr(e, ctx, &mut |e, ctx| {
        if let Expr::Func { name, over, .. } = e {
            if let Some(spec) = agg_spec(e, ctx)? {
                if over.is_some() {
                    return Err(SqlError::name(
                        name.pos,
                        &name.text,
                        "GROUP BY and OVER in one select are not supported by Weir yet",
                    ));
                }
                if spec.kind.sliding_only() {
                    return Err(SqlError::name(
                        name.pos,
                        &name.text,
                        format!("`{}` needs OVER a sliding window", name.text),
                    ));
                }
                let i = aggs.iter().position(|a| *a == spec).unwrap_or_else(|| {
                    aggs.push(spec);
                    aggs.len() - 1
                });
                return Ok(Some(CExpr::Agg(i)));
            }
        }
        // A sub-expression that is a group key, as written in GROUP BY.
        if !has_aggregate(e) {
            if let Ok(c) = scalar(e, ctx) {
                if let Some(k) = keys.iter().position(|k| *k == c) {
                    return Ok(Some(CExpr::Key(k)));
                }
            }
        }
        match e {
            Expr::Column { name, .. } if name.text == "ROWTIME" => Ok(Some(CExpr::Rowtime)),
            Expr::Column { name, .. } => Err(SqlError::name(
                name.pos,
                &name.text,
                format!(
                    "`{}` must appear in GROUP BY or inside an aggregate",
                    name.text
                ),
            )),
            // `t.r.FIELD` is a column of the row too.
            Expr::Field { e: inner, field } if matches!(**inner, Expr::Column { .. }) => {
                Err(SqlError::name(
                    field.pos,
                    &field.text,
                    format!(
                        "`{}` must appear in GROUP BY or inside an aggregate",
                        field.text
                    ),
                ))
            }
            _ => Ok(None),
        }
    })
}

type Hook<'h> = dyn FnMut(&Expr, &Ctx<'_>) -> Result<Option<CExpr>, SqlError> + 'h;

/// Compiles `e`; `hook` may replace any node first (for grouping).
fn compile_expr(e: &Expr, ctx: &Ctx<'_>, hook: &mut Hook<'_>) -> Result<CExpr, SqlError> {
    if let Some(c) = hook(e, ctx)? {
        return Ok(c);
    }
    let mut sub = |x: &Expr| compile_expr(x, ctx, hook).map(Box::new);
    Ok(match e {
        Expr::Column { table, name } => ctx.column(table, name)?,
        Expr::Lit(v, _) => CExpr::Lit(v.clone()),
        Expr::Unary { op, e, .. } => CExpr::Unary(*op, sub(e)?),
        Expr::Binary { op, l, r, .. } => {
            let l = sub(l)?;
            CExpr::Binary(*op, l, sub(r)?)
        }
        Expr::Func {
            name, args, star, ..
        } => {
            if logparse::is_log_parse(&name.text) {
                return Err(SqlError::name(
                    name.pos,
                    &name.text,
                    format!(
                        "`{0}` makes a row, not a value: select it in a subquery and its fields \
                         from that (FROM (SELECT STREAM {0}(...) AS r FROM s) AS t, then \
                         t.r.COLUMN1), or take one field, as {0}(...).COLUMN1",
                        name.text
                    ),
                ));
            }
            if *star {
                return Err(SqlError::name(name.pos, &name.text, "only COUNT takes `*`"));
            }
            let Some((f, arity)) = Func::by_name(&name.text) else {
                return udf_call(name, args, ctx, &mut sub);
            };
            if !arity.contains(&args.len()) {
                return Err(SqlError::name(
                    name.pos,
                    &name.text,
                    format!("`{}` does not take {} argument(s)", name.text, args.len()),
                ));
            }
            let mut cargs = Vec::new();
            for a in args {
                cargs.push(*sub(a)?);
            }
            match f {
                // MONOTONIC declares its argument monotonic, for a streaming GROUP BY; its value
                // is the argument's. Planned as the argument, it is a window of ROWTIME exactly
                // when the argument is, and matches the argument written without it.
                Func::Monotonic => return Ok(cargs.pop().unwrap_or(CExpr::Lit(Value::Null))),
                // A literal pattern or format is compiled once, here: a bad one is refused with
                // its place in the SQL, not found row after row.
                Func::RegexReplace => {
                    if let Some(CExpr::Lit(Value::Str(text))) = cargs.get(1) {
                        let p = crate::pattern::Pattern::java(text)
                            .map_err(|m| SqlError::syntax(args[1].pos(), m))?;
                        cargs[1] = CExpr::Regex(Box::new(p));
                    }
                }
                f if f.takes_date_format() => {
                    if let Some(CExpr::Lit(Value::Str(text))) = cargs.first() {
                        let d = crate::datefmt::DateFormat::new(text)
                            .map_err(|m| SqlError::syntax(args[0].pos(), m))?;
                        cargs[0] = CExpr::DateFormat(Box::new(d));
                    }
                }
                _ => {}
            }
            CExpr::Call(f, cargs)
        }
        Expr::Cast { e, ty, .. } => CExpr::Cast(sub(e)?, *ty),
        Expr::Case {
            operand,
            whens,
            otherwise,
            ..
        } => {
            let operand = operand.as_ref().map(|o| sub(o)).transpose()?;
            let mut cw = Vec::new();
            for (w, t) in whens {
                let w = *sub(w)?;
                cw.push((w, *sub(t)?));
            }
            let otherwise = otherwise.as_ref().map(|o| sub(o)).transpose()?;
            CExpr::Case {
                operand,
                whens: cw,
                otherwise,
            }
        }
        Expr::Between { e, lo, hi, not, .. } => {
            let e = sub(e)?;
            let lo = sub(lo)?;
            CExpr::Between {
                e,
                lo,
                hi: sub(hi)?,
                not: *not,
            }
        }
        Expr::In { e, list, not, .. } => {
            let e = sub(e)?;
            let mut cl = Vec::new();
            for x in list {
                cl.push(*sub(x)?);
            }
            CExpr::In {
                e,
                list: cl,
                not: *not,
            }
        }
        Expr::Like {
            e,
            pattern,
            escape,
            not,
            similar,
            ..
        } => {
            let e = sub(e)?;
            let compiled = sub(pattern)?;
            let escape_c = escape.as_ref().map(|x| sub(x)).transpose()?;
            if !*similar {
                return Ok(CExpr::Like {
                    e,
                    pattern: compiled,
                    escape: escape_c,
                    not: *not,
                });
            }
            // SIMILAR TO with a literal pattern (and escape, if any) becomes a regex once, here.
            let literal_escape = match escape_c.as_deref() {
                None => Some(None),
                Some(CExpr::Lit(Value::Str(t))) if t.chars().count() == 1 => Some(t.chars().next()),
                Some(_) => None,
            };
            if let (CExpr::Lit(Value::Str(text)), Some(esc)) = (&*compiled, literal_escape) {
                let p = crate::pattern::Pattern::similar(text, esc)
                    .map_err(|m| SqlError::syntax(pattern.pos(), m))?;
                return Ok(CExpr::Similar {
                    e,
                    pattern: Box::new(CExpr::Regex(Box::new(p))),
                    escape: None,
                    not: *not,
                });
            }
            CExpr::Similar {
                e,
                pattern: compiled,
                escape: escape_c,
                not: *not,
            }
        }
        Expr::IsNull { e, not, .. } => CExpr::IsNull(sub(e)?, *not),
        Expr::Floor { e, unit, ceil, .. } => CExpr::Floor {
            e: sub(e)?,
            unit: *unit,
            ceil: *ceil,
        },
        Expr::Step { e, by, .. } => {
            let e = sub(e)?;
            CExpr::Step(e, sub(by)?)
        }
        Expr::IntervalOf { e, unit, .. } => CExpr::IntervalOf(sub(e)?, *unit),
        Expr::Substring { e, from, len, .. } => {
            let e = sub(e)?;
            let from = sub(from)?;
            CExpr::Substring(e, from, len.as_ref().map(|l| sub(l)).transpose()?)
        }
        Expr::Position { needle, hay, .. } => {
            let n = sub(needle)?;
            CExpr::Position(n, sub(hay)?)
        }
        Expr::Trim { e, what, side, .. } => {
            let e = sub(e)?;
            CExpr::Trim(e, what.as_ref().map(|w| sub(w)).transpose()?, *side)
        }
        Expr::Extract { unit, e, .. } => CExpr::Extract(*unit, sub(e)?),
        Expr::Field { e: inner, field } => match &**inner {
            Expr::Func { name, args, .. } if logparse::is_log_parse(&name.text) => {
                let parser = ctx.log_parser(name, args)?;
                let i = parser
                    .columns
                    .iter()
                    .position(|c| c.name == field.text)
                    .ok_or_else(|| {
                        SqlError::name(
                            field.pos,
                            &field.text,
                            format!(
                                "`{}` makes no column `{}` (it makes {})",
                                name.text,
                                field.text,
                                parser
                                    .columns
                                    .iter()
                                    .map(|c| c.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })?;
                let Some(string) = args.first() else {
                    return Err(SqlError::name(
                        name.pos,
                        &name.text,
                        "a log parser takes the string to parse",
                    ));
                };
                CExpr::LogParse {
                    parser,
                    arg: sub(string)?,
                    field: i,
                }
            }
            Expr::Column { table, name } => ctx.row_field(table, name, field)?,
            other => {
                return Err(SqlError::syntax(
                    other.pos(),
                    format!(
                        "`.{}` takes a field of a row, and this is not one (a row is a log \
                         parser's)",
                        field.text
                    ),
                ))
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_types_of_the_functions() {
        let cols = [
            ("S".to_string(), SqlType::Varchar(8)),
            ("T".to_string(), SqlType::Timestamp),
        ];
        let text = SqlType::Varchar(u32::MAX);
        let format = || CExpr::Lit(Value::Str("yyyy".into()));
        let call = |f: Func, args: Vec<CExpr>| infer(&CExpr::Call(f, args), &cols);
        assert_eq!(
            call(Func::Tsdiff, vec![CExpr::Col(1), CExpr::Rowtime]),
            SqlType::Bigint
        );
        assert_eq!(
            call(Func::CharToTimestamp, vec![format(), CExpr::Col(0)]),
            SqlType::Timestamp
        );
        assert_eq!(
            call(Func::TimestampToChar, vec![format(), CExpr::Col(1)]),
            text
        );
        let five = vec![
            CExpr::Col(0),
            format(),
            format(),
            CExpr::Lit(Value::Int(1)),
            CExpr::Lit(Value::Int(0)),
        ];
        assert_eq!(call(Func::RegexReplace, five), text);
        assert_eq!(
            call(Func::Monotonic, vec![CExpr::Col(1)]),
            SqlType::Timestamp
        );
        let similar = CExpr::Similar {
            e: Box::new(CExpr::Col(0)),
            pattern: Box::new(format()),
            escape: None,
            not: false,
        };
        assert_eq!(infer(&similar, &cols), SqlType::Boolean);
        let none = |f: Func| call(f, Vec::new());
        assert_eq!(none(Func::CurrentTimestamp), SqlType::Timestamp);
        assert_eq!(none(Func::CurrentDate), SqlType::Date);
        assert_eq!(none(Func::CurrentTime), SqlType::Time);
        assert_eq!(
            call(Func::ToTimestamp, vec![CExpr::Lit(Value::Int(0))]),
            SqlType::Timestamp
        );
        assert_eq!(
            call(Func::CharToDate, vec![format(), CExpr::Col(0)]),
            SqlType::Date
        );
        assert_eq!(
            call(Func::CharToTime, vec![format(), CExpr::Col(0)]),
            SqlType::Time
        );
        for f in [Func::DateToChar, Func::TimeToChar] {
            assert_eq!(call(f, vec![format(), CExpr::Col(1)]), text);
        }
        assert_eq!(
            call(
                Func::Overlay,
                vec![CExpr::Col(0), format(), CExpr::Lit(Value::Int(1))]
            ),
            text
        );
        assert_eq!(
            call(Func::Log10, vec![CExpr::Lit(Value::Int(10))]),
            SqlType::Double
        );
        let later = CExpr::Binary(
            crate::ast::BinOp::Add,
            Box::new(CExpr::Call(Func::CurrentDate, Vec::new())),
            Box::new(CExpr::Lit(Value::Interval(1))),
        );
        assert_eq!(infer(&later, &cols), SqlType::Timestamp);
    }
}
