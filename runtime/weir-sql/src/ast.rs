//! The syntax tree of a KDA SQL application, as parsed: names are normalised (unquoted ones
//! upper-cased) but not yet resolved; every node keeps where it starts, for errors.

use crate::error::Pos;
use crate::value::{SqlType, Unit, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub text: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Stream(CreateStream),
    Pump(Box<CreatePump>),
}

/// `CREATE [OR REPLACE] STREAM name (col type, ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateStream {
    pub name: Name,
    pub columns: Vec<(Name, SqlType)>,
    /// The columns declared `NOT NULL`.
    pub not_null: Vec<bool>,
}

/// `CREATE [OR REPLACE] PUMP name AS INSERT INTO target [(cols)] SELECT STREAM ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePump {
    pub name: Name,
    pub target: Name,
    pub columns: Option<Vec<Name>>,
    pub select: Select,
    /// `UNION ALL SELECT STREAM ...`: more selects whose rows go into the target too.
    pub union: Vec<Select>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub pos: Pos,
    pub items: Vec<Item>,
    pub from: Name,
    /// `FROM s OVER (...)`: the window of `s` a stream-to-stream join reads.
    pub from_over: Option<Over>,
    pub alias: Option<Name>,
    pub filter: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub having: Option<Expr>,
    /// `WINDOW name AS (...)` definitions, for `OVER name`.
    pub windows: Vec<(Name, WindowSpec)>,
    /// `WINDOWED BY STAGGER (PARTITION BY ... RANGE ...)`.
    pub stagger: Option<WindowSpec>,
    /// `[INNER | LEFT | RIGHT | FULL [OUTER] | CROSS] JOIN t [OVER w] [AS alias] [ON c]`: a
    /// reference table, or another stream.
    pub join: Option<Join>,
    /// `FROM TABLE(F(CURSOR(SELECT STREAM ...), args))`: the select reads the function's
    /// rows (`from` is then a name Weir makes up for them).
    pub function: Option<TableFn>,
    /// `FROM (SELECT STREAM ...) [AS] alias`: the select reads the subquery's rows (`from` is
    /// then a name Weir makes up for them).
    pub subquery: Option<Box<Select>>,
    /// `AS alias(name, ...)` after a subquery: the names of the columns it selects.
    pub alias_columns: Vec<Name>,
    /// `ORDER BY e [ASC|DESC], ...`: the first key a window of ROWTIME, within which rows are
    /// sorted by all of them.
    pub order_by: Vec<(Expr, bool)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableFn {
    pub name: Name,
    pub cursor: Box<Select>,
    pub args: Vec<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub kind: JoinKind,
    /// The reference table or stream joined.
    pub table: Name,
    /// The window of a joined stream.
    pub over: Option<Over>,
    pub alias: Option<Name>,
    /// None only for CROSS JOIN.
    pub on: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
    Cross,
}

impl JoinKind {
    /// Whether the left side's rows that match nothing go on (with NULLs on the right).
    pub fn keeps_left(self) -> bool {
        matches!(self, JoinKind::Left | JoinKind::Full)
    }

    /// Whether the right side's rows that match nothing go on.
    pub fn keeps_right(self) -> bool {
        matches!(self, JoinKind::Right | JoinKind::Full)
    }
}

/// A sliding window: `[PARTITION BY ...] RANGE INTERVAL ... PRECEDING | ROWS n PRECEDING`.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpec {
    pub pos: Pos,
    pub partition: Vec<Expr>,
    pub frame: Frame,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// The rows whose ROWTIME is within this many milliseconds before the current row's.
    Range(i64),
    /// The current row and this many rows before it.
    Rows(u64),
}

/// What an aggregate is computed over: a named window or one written in place.
#[derive(Debug, Clone, PartialEq)]
pub enum Over {
    Named(Name),
    Spec(WindowSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `*`, or `alias.*`.
    Star(Pos),
    Expr {
        expr: Expr,
        alias: Option<Name>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimSide {
    Both,
    Leading,
    Trailing,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Column {
        table: Option<Name>,
        name: Name,
    },
    Lit(Value, Pos),
    Unary {
        op: UnOp,
        e: Box<Expr>,
        pos: Pos,
    },
    Binary {
        op: BinOp,
        l: Box<Expr>,
        r: Box<Expr>,
        pos: Pos,
    },
    /// A function call; `star` for `COUNT(*)`.
    Func {
        name: Name,
        args: Vec<Expr>,
        star: bool,
        distinct: bool,
        /// `OVER ...`: an aggregate over a sliding window.
        over: Option<Box<Over>>,
        /// `IGNORE NULLS` (LAG): NULLs do not count towards the offset.
        ignore_nulls: bool,
    },
    Cast {
        e: Box<Expr>,
        ty: SqlType,
        pos: Pos,
    },
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
        pos: Pos,
    },
    Between {
        e: Box<Expr>,
        lo: Box<Expr>,
        hi: Box<Expr>,
        not: bool,
        pos: Pos,
    },
    In {
        e: Box<Expr>,
        list: Vec<Expr>,
        not: bool,
        pos: Pos,
    },
    /// `LIKE`, or `SIMILAR TO` (`similar`).
    Like {
        e: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<Box<Expr>>,
        not: bool,
        similar: bool,
        pos: Pos,
    },
    IsNull {
        e: Box<Expr>,
        not: bool,
        pos: Pos,
    },
    /// `FLOOR(x)`, `FLOOR(x TO unit)`, and `CEIL`/`CEILING` likewise (`ceil`).
    Floor {
        e: Box<Expr>,
        unit: Option<Unit>,
        ceil: bool,
        pos: Pos,
    },
    /// `STEP(x BY interval)`.
    Step {
        e: Box<Expr>,
        by: Box<Expr>,
        pos: Pos,
    },
    /// `(a - b) UNIT`: the difference of two timestamps as an interval.
    IntervalOf {
        e: Box<Expr>,
        unit: Unit,
        pos: Pos,
    },
    Substring {
        e: Box<Expr>,
        from: Box<Expr>,
        len: Option<Box<Expr>>,
        pos: Pos,
    },
    Position {
        needle: Box<Expr>,
        hay: Box<Expr>,
        pos: Pos,
    },
    Trim {
        e: Box<Expr>,
        what: Option<Box<Expr>>,
        side: TrimSide,
        pos: Pos,
    },
    Extract {
        unit: Unit,
        e: Box<Expr>,
        pos: Pos,
    },
    /// `e.FIELD`: a field of a row, which `e` names (`t.r` in `t.r.COLUMN1`) or makes (a log
    /// parser's call, as in `REGEX_LOG_PARSE(s, p).COLUMN1`).
    Field {
        e: Box<Expr>,
        field: Name,
    },
}

impl Expr {
    pub fn pos(&self) -> Pos {
        match self {
            Expr::Column { table, name } => table.as_ref().map_or(name.pos, |t| t.pos),
            Expr::Func { name, .. } => name.pos,
            Expr::Field { e, .. } => e.pos(),
            Expr::Lit(_, pos)
            | Expr::Unary { pos, .. }
            | Expr::Binary { pos, .. }
            | Expr::Cast { pos, .. }
            | Expr::Case { pos, .. }
            | Expr::Between { pos, .. }
            | Expr::In { pos, .. }
            | Expr::Like { pos, .. }
            | Expr::IsNull { pos, .. }
            | Expr::Floor { pos, .. }
            | Expr::Step { pos, .. }
            | Expr::IntervalOf { pos, .. }
            | Expr::Substring { pos, .. }
            | Expr::Position { pos, .. }
            | Expr::Trim { pos, .. }
            | Expr::Extract { pos, .. } => *pos,
        }
    }
}
