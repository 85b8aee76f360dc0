//! Compiled expressions and their evaluation over one row.
//!
//! Semantics follow the KDA SQL Reference: NULL propagates through operators and functions
//! (three-valued logic for AND, OR, NOT), integer arithmetic stays integer, `/` of two
//! integers truncates, a division by zero fails the row (it goes to the error stream), and
//! `LIKE`/`SIMILAR TO` match the whole string (`%` any run, `_` one character).

use std::sync::Arc;

use crate::ast::{BinOp, TrimSide, UnOp};
use crate::datefmt::DateFormat;
use crate::logparse::LogParser;
use crate::pattern::Pattern;
use crate::value::{SqlType, Unit, Value};

/// A scalar function of the dialect, resolved by name at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Upper,
    Lower,
    CharLength,
    Abs,
    Mod,
    Power,
    Sqrt,
    Ln,
    Exp,
    Round,
    Coalesce,
    Nullif,
    Initcap,
    CurrentRowTimestamp,
    UnixTimestamp,
    RegexReplace,
    TimestampToChar,
    CharToTimestamp,
    Tsdiff,
    Monotonic,
    Log10,
    /// `OVERLAY(s PLACING r FROM n [FOR m])`, parsed into its three or four arguments.
    Overlay,
    ToTimestamp,
    CharToDate,
    CharToTime,
    DateToChar,
    TimeToChar,
    /// CURRENT_TIMESTAMP and LOCALTIMESTAMP (times are UTC: they are one).
    CurrentTimestamp,
    CurrentDate,
    /// CURRENT_TIME and LOCALTIME.
    CurrentTime,
}

/// Milliseconds in a day: a DATE is a timestamp at midnight (UTC), a TIME one of 1970-01-01.
pub const DAY_MS: i64 = 86_400_000;

impl Func {
    pub fn by_name(name: &str) -> Option<(Func, std::ops::RangeInclusive<usize>)> {
        Some(match name {
            "UPPER" => (Func::Upper, 1..=1),
            "LOWER" => (Func::Lower, 1..=1),
            "CHAR_LENGTH" | "CHARACTER_LENGTH" => (Func::CharLength, 1..=1),
            "ABS" => (Func::Abs, 1..=1),
            "MOD" => (Func::Mod, 2..=2),
            "POWER" => (Func::Power, 2..=2),
            "SQRT" => (Func::Sqrt, 1..=1),
            "LN" => (Func::Ln, 1..=1),
            "EXP" => (Func::Exp, 1..=1),
            "ROUND" => (Func::Round, 1..=2),
            "COALESCE" => (Func::Coalesce, 1..=usize::MAX),
            "NULLIF" => (Func::Nullif, 2..=2),
            "INITCAP" => (Func::Initcap, 1..=1),
            "CURRENT_ROW_TIMESTAMP" => (Func::CurrentRowTimestamp, 0..=0),
            "UNIX_TIMESTAMP" => (Func::UnixTimestamp, 1..=1),
            "REGEX_REPLACE" => (Func::RegexReplace, 5..=5),
            "TIMESTAMP_TO_CHAR" => (Func::TimestampToChar, 2..=2),
            "CHAR_TO_TIMESTAMP" => (Func::CharToTimestamp, 2..=2),
            "TSDIFF" => (Func::Tsdiff, 2..=2),
            "MONOTONIC" => (Func::Monotonic, 1..=1),
            "LOG10" => (Func::Log10, 1..=1),
            "OVERLAY" => (Func::Overlay, 3..=4),
            "TO_TIMESTAMP" => (Func::ToTimestamp, 1..=1),
            "CHAR_TO_DATE" => (Func::CharToDate, 2..=2),
            "CHAR_TO_TIME" => (Func::CharToTime, 2..=2),
            "DATE_TO_CHAR" => (Func::DateToChar, 2..=2),
            "TIME_TO_CHAR" => (Func::TimeToChar, 2..=2),
            "CURRENT_TIMESTAMP" | "LOCALTIMESTAMP" => (Func::CurrentTimestamp, 0..=0),
            "CURRENT_DATE" => (Func::CurrentDate, 0..=0),
            "CURRENT_TIME" | "LOCALTIME" => (Func::CurrentTime, 0..=0),
            _ => return None,
        })
    }

    /// Whether it reads the clock (CURRENT_TIMESTAMP and the like, not CURRENT_ROW_TIMESTAMP,
    /// which is the row's time).
    pub fn is_clock(self) -> bool {
        matches!(
            self,
            Func::CurrentTimestamp | Func::CurrentDate | Func::CurrentTime
        )
    }

    /// Whether its first argument is a date format, compiled with the plan when it is a
    /// literal.
    pub fn takes_date_format(self) -> bool {
        matches!(
            self,
            Func::TimestampToChar
                | Func::CharToTimestamp
                | Func::DateToChar
                | Func::TimeToChar
                | Func::CharToDate
                | Func::CharToTime
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CExpr {
    /// A column of the row.
    Col(usize),
    Rowtime,
    Lit(Value),
    /// A group's key (in a grouped select).
    Key(usize),
    /// A group's aggregate (in a grouped select).
    Agg(usize),
    Unary(UnOp, Box<CExpr>),
    Binary(BinOp, Box<CExpr>, Box<CExpr>),
    Call(Func, Vec<CExpr>),
    Cast(Box<CExpr>, SqlType),
    Case {
        operand: Option<Box<CExpr>>,
        whens: Vec<(CExpr, CExpr)>,
        otherwise: Option<Box<CExpr>>,
    },
    Between {
        e: Box<CExpr>,
        lo: Box<CExpr>,
        hi: Box<CExpr>,
        not: bool,
    },
    In {
        e: Box<CExpr>,
        list: Vec<CExpr>,
        not: bool,
    },
    Like {
        e: Box<CExpr>,
        pattern: Box<CExpr>,
        escape: Option<Box<CExpr>>,
        not: bool,
    },
    /// `SIMILAR TO`: `pattern` is a [`CExpr::Regex`] (and `escape` `None`) when it was a
    /// literal, compiled when the plan was.
    Similar {
        e: Box<CExpr>,
        pattern: Box<CExpr>,
        escape: Option<Box<CExpr>>,
        not: bool,
    },
    /// A literal pattern (REGEX_REPLACE's, or a SIMILAR TO one), compiled once. Its value is
    /// its text.
    Regex(Box<Pattern>),
    /// A literal date format (TIMESTAMP_TO_CHAR's, CHAR_TO_TIMESTAMP's), compiled once. Its
    /// value is its text.
    DateFormat(Box<DateFormat>),
    IsNull(Box<CExpr>, bool),
    Floor {
        e: Box<CExpr>,
        unit: Option<Unit>,
        ceil: bool,
    },
    Step(Box<CExpr>, Box<CExpr>),
    IntervalOf(Box<CExpr>, Unit),
    Substring(Box<CExpr>, Box<CExpr>, Option<Box<CExpr>>),
    Position(Box<CExpr>, Box<CExpr>),
    Trim(Box<CExpr>, Option<Box<CExpr>>, TrimSide),
    Extract(Unit, Box<CExpr>),
    /// A user-defined function (an index among the plan's signatures) returning `ret`;
    /// compiled into a [`CExpr::UdfAt`] of its pump.
    Udf {
        function: usize,
        ret: SqlType,
        args: Vec<CExpr>,
    },
    /// The result of call site `site` of the pump, for this row (in [`Scope::udf`]).
    UdfAt(usize, SqlType),
    /// Column `field` of the row a log parser makes of `arg`'s value. The fields taken of
    /// one call share its parser (the same `Arc`), so that a run of them parses the string
    /// once ([`eval_items`]).
    LogParse {
        parser: Arc<LogParser>,
        arg: Box<CExpr>,
        field: usize,
    },
}

impl CExpr {
    /// Whether the expression reads ROWTIME (so, grouped on, it is a window of time).
    /// `MONOTONIC(x)` is planned as `x`, so it is a window exactly when `x` is.
    pub fn reads_rowtime(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| found |= matches!(e, CExpr::Rowtime));
        found
    }

    /// The columns it reads.
    pub fn columns(&self) -> Vec<usize> {
        let mut cols = Vec::new();
        self.visit(&mut |e| {
            if let CExpr::Col(i) = e {
                cols.push(*i);
            }
        });
        cols
    }

    /// Whether it reads the clock (see [`Func::is_clock`]).
    pub fn reads_clock(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| found |= matches!(e, CExpr::Call(f, _) if f.is_clock()));
        found
    }

    /// Whether it reads any column of the row (other than ROWTIME).
    pub fn reads_columns(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| found |= matches!(e, CExpr::Col(_)));
        found
    }

    /// Rewrites the tree bottom-up: `f` sees a node after all of its children.
    pub fn rewrite_post(&mut self, f: &mut dyn FnMut(&mut CExpr)) {
        for c in self.children_mut() {
            c.rewrite_post(f);
        }
        f(self);
    }

    /// Whether `f` holds for a node of the tree.
    pub fn any(&self, f: &dyn Fn(&CExpr) -> bool) -> bool {
        let mut found = false;
        self.visit(&mut |e| found |= f(e));
        found
    }

    fn children_mut(&mut self) -> Vec<&mut CExpr> {
        match self {
            CExpr::Col(_)
            | CExpr::Rowtime
            | CExpr::Lit(_)
            | CExpr::Key(_)
            | CExpr::Agg(_)
            | CExpr::UdfAt(..)
            | CExpr::Regex(_)
            | CExpr::DateFormat(_) => Vec::new(),
            CExpr::Udf { args, .. } | CExpr::Call(_, args) => args.iter_mut().collect(),
            CExpr::Unary(_, e)
            | CExpr::Cast(e, _)
            | CExpr::IsNull(e, _)
            | CExpr::Floor { e, .. }
            | CExpr::IntervalOf(e, _)
            | CExpr::Extract(_, e)
            | CExpr::LogParse { arg: e, .. } => vec![&mut **e],
            CExpr::Binary(_, a, b) | CExpr::Step(a, b) | CExpr::Position(a, b) => {
                vec![&mut **a, &mut **b]
            }
            CExpr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let mut v: Vec<&mut CExpr> = Vec::new();
                if let Some(o) = operand {
                    v.push(&mut **o);
                }
                for (w, t) in whens {
                    v.push(w);
                    v.push(t);
                }
                if let Some(o) = otherwise {
                    v.push(&mut **o);
                }
                v
            }
            CExpr::Between { e, lo, hi, .. } => vec![&mut **e, &mut **lo, &mut **hi],
            CExpr::In { e, list, .. } => {
                let mut v = vec![&mut **e];
                v.extend(list.iter_mut());
                v
            }
            CExpr::Like {
                e, pattern, escape, ..
            }
            | CExpr::Similar {
                e, pattern, escape, ..
            } => {
                let mut v = vec![&mut **e, &mut **pattern];
                if let Some(x) = escape {
                    v.push(&mut **x);
                }
                v
            }
            CExpr::Substring(a, b, c) => {
                let mut v = vec![&mut **a, &mut **b];
                if let Some(x) = c {
                    v.push(&mut **x);
                }
                v
            }
            CExpr::Trim(a, b, _) => {
                let mut v = vec![&mut **a];
                if let Some(x) = b {
                    v.push(&mut **x);
                }
                v
            }
        }
    }

    fn visit(&self, f: &mut dyn FnMut(&CExpr)) {
        f(self);
        let mut each = |e: &CExpr| e.visit(f);
        match self {
            CExpr::Col(_)
            | CExpr::Rowtime
            | CExpr::Lit(_)
            | CExpr::Key(_)
            | CExpr::Agg(_)
            | CExpr::UdfAt(..)
            | CExpr::Regex(_)
            | CExpr::DateFormat(_) => {}
            CExpr::Udf { args, .. } => args.iter().for_each(each),
            CExpr::Unary(_, e)
            | CExpr::Cast(e, _)
            | CExpr::IsNull(e, _)
            | CExpr::Floor { e, .. }
            | CExpr::IntervalOf(e, _)
            | CExpr::Extract(_, e)
            | CExpr::LogParse { arg: e, .. } => each(e),
            CExpr::Binary(_, a, b) | CExpr::Step(a, b) | CExpr::Position(a, b) => {
                each(a);
                each(b);
            }
            CExpr::Call(_, args) => args.iter().for_each(each),
            CExpr::Case {
                operand,
                whens,
                otherwise,
            } => {
                operand.iter().for_each(|e| each(e));
                for (w, t) in whens {
                    each(w);
                    each(t);
                }
                otherwise.iter().for_each(|e| each(e));
            }
            CExpr::Between { e, lo, hi, .. } => {
                each(e);
                each(lo);
                each(hi);
            }
            CExpr::In { e, list, .. } => {
                each(e);
                list.iter().for_each(each);
            }
            CExpr::Like {
                e, pattern, escape, ..
            }
            | CExpr::Similar {
                e, pattern, escape, ..
            } => {
                each(e);
                each(pattern);
                escape.iter().for_each(|e| each(e));
            }
            CExpr::Substring(a, b, c) => {
                each(a);
                each(b);
                c.iter().for_each(|e| each(e));
            }
            CExpr::Trim(a, b, _) => {
                each(a);
                b.iter().for_each(|e| each(e));
            }
        }
    }
}

/// What an expression is evaluated against.
pub struct Scope<'a> {
    pub row: &'a [Value],
    pub rowtime: i64,
    pub keys: &'a [Value],
    pub aggs: &'a [Value],
    /// The row's results of its pump's UDF call sites (by site), as far as they are known.
    pub udf: &'a [Option<crate::udf::UdfResult>],
    /// What the functions of the clock (CURRENT_TIMESTAMP, CURRENT_DATE, CURRENT_TIME and
    /// their LOCAL forms) read: milliseconds since the epoch, UTC.
    pub now: i64,
}

pub type EvalResult = Result<Value, String>;

pub fn eval(e: &CExpr, s: &Scope<'_>) -> EvalResult {
    Ok(match e {
        CExpr::Col(i) => s.row.get(*i).cloned().unwrap_or(Value::Null),
        CExpr::Rowtime => Value::Timestamp(s.rowtime),
        CExpr::Lit(v) => v.clone(),
        CExpr::Key(i) => s.keys.get(*i).cloned().unwrap_or(Value::Null),
        CExpr::Agg(i) => s.aggs.get(*i).cloned().unwrap_or(Value::Null),
        CExpr::Unary(UnOp::Not, e) => match truth(&eval(e, s)?)? {
            Some(b) => Value::Bool(!b),
            None => Value::Null,
        },
        CExpr::Unary(UnOp::Neg, e) => match eval(e, s)? {
            Value::Int(i) => Value::Int(i.checked_neg().ok_or("integer overflow")?),
            Value::Double(d) => Value::Double(-d),
            Value::Interval(ms) => Value::Interval(ms.checked_neg().ok_or("interval overflow")?),
            Value::Null => Value::Null,
            v => return Err(format!("cannot negate a {}", v.type_name())),
        },
        CExpr::Binary(BinOp::And, a, b) => {
            let a = truth(&eval(a, s)?)?;
            if a == Some(false) {
                return Ok(Value::Bool(false));
            }
            match (a, truth(&eval(b, s)?)?) {
                (_, Some(false)) => Value::Bool(false),
                (Some(true), Some(true)) => Value::Bool(true),
                _ => Value::Null,
            }
        }
        CExpr::Binary(BinOp::Or, a, b) => {
            let a = truth(&eval(a, s)?)?;
            if a == Some(true) {
                return Ok(Value::Bool(true));
            }
            match (a, truth(&eval(b, s)?)?) {
                (_, Some(true)) => Value::Bool(true),
                (Some(false), Some(false)) => Value::Bool(false),
                _ => Value::Null,
            }
        }
        CExpr::Binary(op, a, b) => binary(*op, eval(a, s)?, eval(b, s)?)?,
        // These read their pattern or format compiled, when it was a literal.
        CExpr::Call(Func::RegexReplace, args) => regex_replace(args, s)?,
        CExpr::Call(f @ (Func::TimestampToChar | Func::DateToChar | Func::TimeToChar), args) => {
            to_char(*f, args, s)?
        }
        CExpr::Call(f @ (Func::CharToTimestamp | Func::CharToDate | Func::CharToTime), args) => {
            char_to(*f, args, s)?
        }
        CExpr::Regex(p) => Value::Str(p.text.clone()),
        CExpr::DateFormat(f) => Value::Str(f.text.clone()),
        CExpr::Call(f, args) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, s)?);
            }
            call(*f, vals, s.rowtime, s.now)?
        }
        CExpr::Cast(e, ty) => cast(eval(e, s)?, *ty)?,
        CExpr::Case {
            operand,
            whens,
            otherwise,
        } => {
            let subject = match operand {
                Some(o) => Some(eval(o, s)?),
                None => None,
            };
            for (w, then) in whens {
                let hit = match &subject {
                    Some(v) => compare(v, &eval(w, s)?)? == Some(std::cmp::Ordering::Equal),
                    None => truth(&eval(w, s)?)? == Some(true),
                };
                if hit {
                    return eval(then, s);
                }
            }
            match otherwise {
                Some(o) => eval(o, s)?,
                None => Value::Null,
            }
        }
        CExpr::Between { e, lo, hi, not } => {
            let v = eval(e, s)?;
            let ge = compare(&v, &eval(lo, s)?)?.map(|o| o.is_ge());
            let le = compare(&v, &eval(hi, s)?)?.map(|o| o.is_le());
            match (ge, le) {
                (Some(a), Some(b)) => Value::Bool((a && b) != *not),
                (Some(false), None) | (None, Some(false)) => Value::Bool(*not),
                _ => Value::Null,
            }
        }
        CExpr::In { e, list, not } => {
            let v = eval(e, s)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            let mut unknown = false;
            for item in list {
                match compare(&v, &eval(item, s)?)? {
                    Some(std::cmp::Ordering::Equal) => return Ok(Value::Bool(!*not)),
                    None => unknown = true,
                    Some(_) => {}
                }
            }
            if unknown {
                Value::Null
            } else {
                Value::Bool(*not)
            }
        }
        CExpr::Like {
            e,
            pattern,
            escape,
            not,
        } => {
            let (v, p) = (eval(e, s)?, eval(pattern, s)?);
            let esc = match escape {
                Some(x) => match eval(x, s)? {
                    Value::Str(t) if t.chars().count() == 1 => t.chars().next(),
                    Value::Null => return Ok(Value::Null),
                    _ => return Err("the escape must be one character".into()),
                },
                None => None,
            };
            match (v, p) {
                (Value::Null, _) | (_, Value::Null) => Value::Null,
                (Value::Str(v), Value::Str(p)) => Value::Bool(like(&v, &p, esc) != *not),
                (v, p) => {
                    return Err(format!(
                        "LIKE takes strings, not {} and {}",
                        v.type_name(),
                        p.type_name()
                    ))
                }
            }
        }
        CExpr::Similar {
            e,
            pattern,
            escape,
            not,
        } => {
            let v = eval(e, s)?;
            let matched = match &**pattern {
                CExpr::Regex(p) => match v {
                    Value::Null => return Ok(Value::Null),
                    Value::Str(t) => p.re.is_match(&t),
                    v => return Err(format!("SIMILAR TO takes a string, not {}", v.type_name())),
                },
                other => {
                    let p = eval(other, s)?;
                    let esc = match escape {
                        Some(x) => match eval(x, s)? {
                            Value::Str(t) if t.chars().count() == 1 => t.chars().next(),
                            Value::Null => return Ok(Value::Null),
                            _ => return Err("the escape must be one character".into()),
                        },
                        None => None,
                    };
                    match (v, p) {
                        (Value::Null, _) | (_, Value::Null) => return Ok(Value::Null),
                        (Value::Str(v), Value::Str(p)) => {
                            Pattern::similar(&p, esc)?.re.is_match(&v)
                        }
                        (v, p) => {
                            return Err(format!(
                                "SIMILAR TO takes strings, not {} and {}",
                                v.type_name(),
                                p.type_name()
                            ))
                        }
                    }
                }
            };
            Value::Bool(matched != *not)
        }
        CExpr::IsNull(e, not) => Value::Bool(eval(e, s)?.is_null() != *not),
        CExpr::Floor { e, unit, ceil } => floor(eval(e, s)?, *unit, *ceil)?,
        CExpr::Step(e, by) => match (eval(e, s)?, eval(by, s)?) {
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (Value::Timestamp(t), Value::Interval(i)) if i > 0 => {
                Value::Timestamp(floor_to(t, i).ok_or("timestamp out of range")?)
            }
            (Value::Int(n), Value::Int(k)) if k > 0 => {
                Value::Int(floor_to(n, k).ok_or("integer overflow")?)
            }
            (a, b) => {
                return Err(format!(
                    "STEP takes a timestamp and a positive interval, not {} and {}",
                    a.type_name(),
                    b.type_name()
                ))
            }
        },
        CExpr::IntervalOf(e, _unit) => match eval(e, s)? {
            Value::Interval(ms) => Value::Interval(ms),
            Value::Null => Value::Null,
            v => return Err(format!("expected an interval, found {}", v.type_name())),
        },
        CExpr::Substring(e, from, len) => {
            let v = eval(e, s)?;
            let from = eval(from, s)?;
            let len = match len {
                Some(l) => Some(eval(l, s)?),
                None => None,
            };
            match (v, from, len) {
                (Value::Null, ..) | (_, Value::Null, _) | (_, _, Some(Value::Null)) => Value::Null,
                (Value::Str(v), Value::Int(from), len) => {
                    let len = match len {
                        Some(Value::Int(l)) if l < 0 => {
                            return Err("SUBSTRING's length is negative".into())
                        }
                        Some(Value::Int(l)) => Some(l),
                        None => None,
                        Some(other) => {
                            return Err(format!("SUBSTRING's length is a {}", other.type_name()))
                        }
                    };
                    // 1-based; characters before position 1 count against the length.
                    let end = len.map(|l| from.saturating_add(l));
                    let start = from.max(1);
                    let taken: String = v
                        .chars()
                        .enumerate()
                        .map(|(i, c)| (i as i64 + 1, c))
                        .filter(|(i, _)| *i >= start && end.is_none_or(|e| *i < e))
                        .map(|(_, c)| c)
                        .collect();
                    Value::Str(taken)
                }
                (v, f, _) => {
                    return Err(format!(
                        "SUBSTRING takes a string and integers, not {} and {}",
                        v.type_name(),
                        f.type_name()
                    ))
                }
            }
        }
        CExpr::Position(needle, hay) => match (eval(needle, s)?, eval(hay, s)?) {
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (Value::Str(n), Value::Str(h)) => Value::Int(match h.find(&n) {
                Some(b) => h[..b].chars().count() as i64 + 1,
                None => 0,
            }),
            (a, b) => {
                return Err(format!(
                    "POSITION takes strings, not {} and {}",
                    a.type_name(),
                    b.type_name()
                ))
            }
        },
        CExpr::Trim(e, what, side) => {
            let v = eval(e, s)?;
            let what = match what {
                Some(w) => eval(w, s)?,
                None => Value::Str(" ".into()),
            };
            match (v, what) {
                (Value::Null, _) | (_, Value::Null) => Value::Null,
                (Value::Str(v), Value::Str(w)) => {
                    let set: Vec<char> = w.chars().collect();
                    let t = match side {
                        TrimSide::Both => v.trim_matches(set.as_slice()),
                        TrimSide::Leading => v.trim_start_matches(set.as_slice()),
                        TrimSide::Trailing => v.trim_end_matches(set.as_slice()),
                    };
                    Value::Str(t.to_string())
                }
                (v, _) => return Err(format!("TRIM takes a string, not {}", v.type_name())),
            }
        }
        CExpr::Extract(unit, e) => match eval(e, s)? {
            Value::Null => Value::Null,
            Value::Timestamp(ms) => Value::Int(extract(*unit, ms)),
            v => return Err(format!("EXTRACT takes a timestamp, not {}", v.type_name())),
        },
        CExpr::UdfAt(site, _) => match s.udf.get(*site) {
            Some(Some(Ok(v))) => v.clone(),
            Some(Some(Err(e))) => return Err(e.clone()),
            // The stage fills every site before it evaluates the pump's expressions.
            _ => return Err(format!("call site {site} was not evaluated")),
        },
        CExpr::Udf { .. } => {
            return Err("a function call outside a pump's call sites".into());
        }
        CExpr::LogParse { parser, arg, field } => {
            let v = eval(arg, s)?;
            parser
                .parse(&v)?
                .into_iter()
                .nth(*field)
                .unwrap_or(Value::Null)
        }
    })
}

/// Evaluates a select's items, in order, into `out`. A run of items that take fields of one
/// log parser's call (as a row selected whole becomes) parses the string once.
pub fn eval_items(items: &[CExpr], s: &Scope<'_>, out: &mut Vec<Value>) -> Result<(), String> {
    let mut i = 0;
    while let Some(item) = items.get(i) {
        if let CExpr::LogParse { parser, arg, .. } = item {
            let run = items[i..]
                .iter()
                .take_while(
                    |e| matches!(e, CExpr::LogParse { parser: p, .. } if Arc::ptr_eq(p, parser)),
                )
                .count();
            if run > 1 {
                let row = parser.parse(&eval(arg, s)?)?;
                for e in &items[i..i + run] {
                    if let CExpr::LogParse { field, .. } = e {
                        out.push(row.get(*field).cloned().unwrap_or(Value::Null));
                    }
                }
                i += run;
                continue;
            }
        }
        out.push(eval(item, s)?);
        i += 1;
    }
    Ok(())
}

/// The truth of a condition: NULL is unknown.
pub fn truth(v: &Value) -> Result<Option<bool>, String> {
    match v {
        Value::Bool(b) => Ok(Some(*b)),
        Value::Null => Ok(None),
        v => Err(format!("expected a BOOLEAN, found {}", v.type_name())),
    }
}

/// Compares two values of comparable types; `None` when either is NULL.
pub fn compare(a: &Value, b: &Value) -> Result<Option<std::cmp::Ordering>, String> {
    use Value::*;
    Ok(match (a, b) {
        (Null, _) | (_, Null) => None,
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Int(x), Double(y)) => (*x as f64).partial_cmp(y),
        (Double(x), Int(y)) => x.partial_cmp(&(*y as f64)),
        (Double(x), Double(y)) => x.partial_cmp(y),
        (Str(x), Str(y)) => Some(x.cmp(y)),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (Timestamp(x), Timestamp(y)) | (Interval(x), Interval(y)) => Some(x.cmp(y)),
        // A string compared with a timestamp or number is read as one, as SQL literals are.
        (Timestamp(x), Str(y)) => crate::value::parse_timestamp(y).map(|y| x.cmp(&y)),
        (Str(x), Timestamp(y)) => crate::value::parse_timestamp(x).map(|x| x.cmp(y)),
        (x, y) => {
            return Err(format!(
                "cannot compare {} with {}",
                x.type_name(),
                y.type_name()
            ))
        }
    })
}

fn binary(op: BinOp, a: Value, b: Value) -> EvalResult {
    use std::cmp::Ordering::*;
    use Value::*;
    let cmp = |want: fn(std::cmp::Ordering) -> bool| -> EvalResult {
        Ok(match compare(&a, &b)? {
            Some(o) => Bool(want(o)),
            None => Null,
        })
    };
    match op {
        BinOp::Eq => return cmp(|o| o == Equal),
        BinOp::NotEq => return cmp(|o| o != Equal),
        BinOp::Lt => return cmp(|o| o == Less),
        BinOp::LtEq => return cmp(|o| o != Greater),
        BinOp::Gt => return cmp(|o| o == Greater),
        BinOp::GtEq => return cmp(|o| o != Less),
        _ => {}
    }
    if a.is_null() || b.is_null() {
        return Ok(Null);
    }
    let overflow = || "integer overflow".to_string();
    Ok(match (op, a, b) {
        (BinOp::Concat, a, b) => Str(format!("{}{}", text(&a), text(&b))),
        (BinOp::Add, Int(x), Int(y)) => Int(x.checked_add(y).ok_or_else(overflow)?),
        (BinOp::Sub, Int(x), Int(y)) => Int(x.checked_sub(y).ok_or_else(overflow)?),
        (BinOp::Mul, Int(x), Int(y)) => Int(x.checked_mul(y).ok_or_else(overflow)?),
        (BinOp::Div | BinOp::Mod, Int(_), Int(0)) => return Err("division by zero".into()),
        (BinOp::Div, Int(x), Int(y)) => Int(x.checked_div(y).ok_or_else(overflow)?),
        (BinOp::Mod, Int(x), Int(y)) => Int(x.checked_rem(y).ok_or_else(overflow)?),
        (BinOp::Add, Timestamp(t), Interval(i)) | (BinOp::Add, Interval(i), Timestamp(t)) => {
            Timestamp(t.checked_add(i).ok_or_else(overflow)?)
        }
        (BinOp::Sub, Timestamp(t), Interval(i)) => {
            Timestamp(t.checked_sub(i).ok_or_else(overflow)?)
        }
        (BinOp::Sub, Timestamp(x), Timestamp(y)) => {
            Interval(x.checked_sub(y).ok_or_else(overflow)?)
        }
        (BinOp::Add, Interval(x), Interval(y)) => Interval(x.checked_add(y).ok_or_else(overflow)?),
        (BinOp::Sub, Interval(x), Interval(y)) => Interval(x.checked_sub(y).ok_or_else(overflow)?),
        (BinOp::Mul, Interval(i), Int(n)) | (BinOp::Mul, Int(n), Interval(i)) => {
            Interval(i.checked_mul(n).ok_or_else(overflow)?)
        }
        (BinOp::Div, Interval(_), Int(0)) => return Err("division by zero".into()),
        (BinOp::Div, Interval(i), Int(n)) => Interval(i.checked_div(n).ok_or_else(overflow)?),
        (BinOp::Div, Interval(i), Double(d)) if d != 0.0 => {
            let q = i as f64 / d;
            if !q.is_finite() || q.abs() >= 9.2e18 {
                return Err(overflow());
            }
            Interval(q as i64)
        }
        (op, a, b) => {
            let (Some(x), Some(y)) = (number(&a), number(&b)) else {
                return Err(format!(
                    "cannot apply {op:?} to {} and {}",
                    a.type_name(),
                    b.type_name()
                ));
            };
            match op {
                BinOp::Add => Double(x + y),
                BinOp::Sub => Double(x - y),
                BinOp::Mul => Double(x * y),
                BinOp::Div if y == 0.0 => return Err("division by zero".into()),
                BinOp::Div => Double(x / y),
                BinOp::Mod if y == 0.0 => return Err("division by zero".into()),
                BinOp::Mod => Double(x % y),
                _ => unreachable!("comparisons and logic are handled above"),
            }
        }
    })
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

/// A value as text (for `||` and casts to VARCHAR).
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => format_double(*d),
        Value::Str(s) => s.clone(),
        Value::Timestamp(ms) => crate::value::format_timestamp(*ms),
        Value::Interval(_) => match v.to_json() {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        },
    }
}

fn format_double(d: f64) -> String {
    if d.fract() == 0.0 && d.abs() < 1e15 {
        format!("{d:.1}")
    } else {
        d.to_string()
    }
}

fn call(f: Func, mut args: Vec<Value>, rowtime: i64, now: i64) -> EvalResult {
    use Value::*;
    match f {
        Func::Coalesce => return Ok(args.into_iter().find(|v| !v.is_null()).unwrap_or(Null)),
        Func::CurrentRowTimestamp => return Ok(Timestamp(rowtime)),
        Func::CurrentTimestamp => return Ok(Timestamp(now)),
        Func::CurrentDate => return Ok(Timestamp(as_date(now)?)),
        Func::CurrentTime => return Ok(Timestamp(as_time(now))),
        _ => {}
    }
    if f == Func::Nullif {
        let b = args.pop().unwrap_or(Null);
        let a = args.pop().unwrap_or(Null);
        return Ok(match compare(&a, &b)? {
            Some(std::cmp::Ordering::Equal) => Null,
            _ => a,
        });
    }
    if args.iter().any(Value::is_null) {
        return Ok(Null);
    }
    let arg = args.first().cloned().unwrap_or(Null);
    let string = |v: &Value| match v {
        Str(s) => Ok(s.clone()),
        v => Err(format!("{f:?} takes a string, not {}", v.type_name())),
    };
    let num =
        |v: &Value| number(v).ok_or_else(|| format!("{f:?} takes a number, not {}", v.type_name()));
    Ok(match f {
        Func::Upper => Str(string(&arg)?.to_uppercase()),
        Func::Lower => Str(string(&arg)?.to_lowercase()),
        Func::Initcap => {
            let s = string(&arg)?;
            let mut out = String::with_capacity(s.len());
            let mut start = true;
            for c in s.chars() {
                if c.is_alphanumeric() {
                    if start {
                        out.extend(c.to_uppercase());
                    } else {
                        out.extend(c.to_lowercase());
                    }
                    start = false;
                } else {
                    out.push(c);
                    start = true;
                }
            }
            Str(out)
        }
        Func::CharLength => Int(string(&arg)?.chars().count() as i64),
        Func::Abs => match arg {
            Int(i) => Int(i.checked_abs().ok_or("integer overflow")?),
            Double(d) => Double(d.abs()),
            Interval(i) => Interval(i.checked_abs().ok_or("interval overflow")?),
            v => return Err(format!("ABS takes a number, not {}", v.type_name())),
        },
        Func::Mod => binary(BinOp::Mod, arg, args[1].clone())?,
        Func::Power => Double(num(&arg)?.powf(num(&args[1])?)),
        Func::Sqrt => Double(num(&arg)?.sqrt()),
        Func::Ln => Double(num(&arg)?.ln()),
        Func::Exp => Double(num(&arg)?.exp()),
        Func::Round => {
            let digits = match args.get(1) {
                Some(Int(d)) => *d,
                Some(v) => return Err(format!("ROUND's digits are a {}", v.type_name())),
                None => 0,
            };
            match arg {
                Int(i) if digits >= 0 => Int(i),
                v => {
                    let x = num(&v)?;
                    let scale = 10f64.powi(digits.clamp(-300, 300) as i32);
                    let r = (x * scale).round() / scale;
                    if matches!(v, Int(_)) {
                        Int(r as i64)
                    } else {
                        Double(r)
                    }
                }
            }
        }
        Func::UnixTimestamp => match arg {
            Timestamp(ms) => Int(ms),
            v => {
                return Err(format!(
                    "UNIX_TIMESTAMP takes a timestamp, not {}",
                    v.type_name()
                ))
            }
        },
        Func::Tsdiff => {
            // TSDIFF(startTime, endTime): the milliseconds from the start to the end. The
            // reference takes BIGINT milliseconds; TIMESTAMPs are taken too.
            let millis = |v: &Value| match v {
                Timestamp(t) | Int(t) => Ok(*t),
                v => Err(format!(
                    "TSDIFF takes timestamps or BIGINT milliseconds, not {}",
                    v.type_name()
                )),
            };
            let (start, end) = (millis(&arg)?, millis(&args[1])?);
            Int(end.checked_sub(start).ok_or("integer overflow")?)
        }
        Func::Monotonic => arg,
        Func::Log10 => {
            // "If the argument is negative or 0, an exception is raised" (SQL Reference,
            // sql-reference-log10): the row fails.
            let x = num(&arg)?;
            if x <= 0.0 || x.is_nan() {
                return Err(format!(
                    "LOG10 takes a positive number, not {}",
                    format_double(x)
                ));
            }
            Double(x.log10())
        }
        Func::Overlay => {
            let (Some(with), Some(from)) = (args.get(1), args.get(2)) else {
                return Err("OVERLAY takes a string, a replacement and a start".into());
            };
            let (s, r) = (string(&arg)?, string(with)?);
            let from = match from {
                Int(n) => *n,
                v => return Err(format!("OVERLAY's start is a {}", v.type_name())),
            };
            // The length defaults to the replacement's; "if the string length is less than
            // zero, an exception is raised" (sql-reference-overlay).
            let len = match args.get(3) {
                None => i64::try_from(r.chars().count()).unwrap_or(i64::MAX),
                Some(Int(l)) if *l < 0 => return Err("OVERLAY's length is negative".into()),
                Some(Int(l)) => *l,
                Some(v) => return Err(format!("OVERLAY's length is a {}", v.type_name())),
            };
            Str(overlay(&s, &r, from, len))
        }
        Func::ToTimestamp => match arg {
            // BIGINT milliseconds since the epoch (sql-reference-to-timestamp).
            Int(ms) if chrono::DateTime::from_timestamp_millis(ms).is_some() => Timestamp(ms),
            Int(ms) => return Err(format!("TO_TIMESTAMP({ms}) is out of range")),
            v => {
                return Err(format!(
                    "TO_TIMESTAMP takes BIGINT milliseconds, not {}",
                    v.type_name()
                ))
            }
        },
        Func::Coalesce
        | Func::Nullif
        | Func::CurrentRowTimestamp
        | Func::CurrentTimestamp
        | Func::CurrentDate
        | Func::CurrentTime => {
            unreachable!("handled above")
        }
        Func::RegexReplace
        | Func::TimestampToChar
        | Func::CharToTimestamp
        | Func::DateToChar
        | Func::TimeToChar
        | Func::CharToDate
        | Func::CharToTime => {
            return Err(format!("{f:?} is evaluated with its arguments unevaluated"))
        }
    })
}

/// OVERLAY(s PLACING r FROM from FOR len), by characters, 1-based (sql-reference-overlay):
/// the characters of `s` before position `from`, then `r`, then those of `s` from position
/// `from + len` on. So a start past the end appends `r`, and a start below 1 puts it first
/// and covers `len - (1 - from)` characters, as the reference's examples have it.
pub fn overlay(s: &str, r: &str, from: i64, len: i64) -> String {
    let resume = from.saturating_add(len);
    let mut out = String::with_capacity(s.len().saturating_add(r.len()));
    let mut placed = false;
    for (at, c) in (1i64..).zip(s.chars()) {
        if !placed && at >= from {
            out.push_str(r);
            placed = true;
        }
        if at < from || at >= resume {
            out.push(c);
        }
    }
    if !placed {
        out.push_str(r);
    }
    out
}

/// A timestamp's day, at midnight UTC (a DATE).
pub fn as_date(ms: i64) -> Result<i64, String> {
    floor_to(ms, DAY_MS).ok_or_else(|| format!("timestamp {ms} is out of range"))
}

/// A timestamp's time of day, on 1970-01-01 (a TIME).
pub fn as_time(ms: i64) -> i64 {
    ms.rem_euclid(DAY_MS)
}

/// REGEX_REPLACE(original, regex, replacement, startPosition, occurrence).
fn regex_replace(args: &[CExpr], s: &Scope<'_>) -> EvalResult {
    let [original, pattern, replacement, start, occurrence] = args else {
        return Err("REGEX_REPLACE takes 5 arguments".into());
    };
    let original = eval(original, s)?;
    let text = match pattern {
        CExpr::Regex(_) => None,
        other => Some(eval(other, s)?),
    };
    let replacement = eval(replacement, s)?;
    let start = eval(start, s)?;
    let occurrence = eval(occurrence, s)?;
    if original.is_null()
        || text.as_ref().is_some_and(Value::is_null)
        || replacement.is_null()
        || start.is_null()
        || occurrence.is_null()
    {
        return Ok(Value::Null);
    }
    let (original, replacement, start, occurrence) =
        match (original, replacement, start, occurrence) {
            (Value::Str(o), Value::Str(r), Value::Int(st), Value::Int(oc)) => (o, r, st, oc),
            (o, r, st, oc) => {
                return Err(format!(
                    "REGEX_REPLACE takes (VARCHAR, VARCHAR, VARCHAR, INTEGER, INTEGER), not \
                     ({}, _, {}, {}, {})",
                    o.type_name(),
                    r.type_name(),
                    st.type_name(),
                    oc.type_name()
                ))
            }
        };
    let compiled: regex_lite::Regex;
    let re = match (pattern, text) {
        (CExpr::Regex(p), _) => &p.re,
        (_, Some(Value::Str(t))) => {
            compiled = crate::pattern::java_regex(&t)?;
            &compiled
        }
        (_, v) => {
            return Err(format!(
                "REGEX_REPLACE's regex is a {}, not a VARCHAR",
                v.as_ref().map_or("NULL", Value::type_name)
            ))
        }
    };
    crate::pattern::regex_replace(re, &original, &replacement, start, occurrence).map(Value::Str)
}

/// The date format a call's first argument gives: compiled with the plan when it was a
/// literal, else read from the row (`None` when it is NULL).
fn date_format<'e>(
    e: &'e CExpr,
    s: &Scope<'_>,
    name: &str,
) -> Result<Option<std::borrow::Cow<'e, DateFormat>>, String> {
    if let CExpr::DateFormat(f) = e {
        return Ok(Some(std::borrow::Cow::Borrowed(&**f)));
    }
    match eval(e, s)? {
        Value::Null => Ok(None),
        Value::Str(text) => DateFormat::new(&text).map(|f| Some(std::borrow::Cow::Owned(f))),
        v => Err(format!(
            "{name}'s format is a {}, not a VARCHAR",
            v.type_name()
        )),
    }
}

/// The SQL name of a function of date formats, for messages.
fn format_function_name(f: Func) -> &'static str {
    match f {
        Func::DateToChar => "DATE_TO_CHAR",
        Func::TimeToChar => "TIME_TO_CHAR",
        Func::CharToTimestamp => "CHAR_TO_TIMESTAMP",
        Func::CharToDate => "CHAR_TO_DATE",
        Func::CharToTime => "CHAR_TO_TIME",
        _ => "TIMESTAMP_TO_CHAR",
    }
}

/// TIMESTAMP_TO_CHAR(format, ts), DATE_TO_CHAR(format, d) and TIME_TO_CHAR(format, t). A
/// DATE is written as the midnight of its day, a TIME as its time on 1970-01-01 (as Java's
/// `java.sql.Date` and `java.sql.Time` are). For TIMESTAMP_TO_CHAR, "if the input is null,
/// the output will be the string "null"" (SQL Reference, sql-reference-timestamp-to-char);
/// the other two pages say nothing of NULL, which gives NULL, as in any other function.
fn to_char(f: Func, args: &[CExpr], s: &Scope<'_>) -> EvalResult {
    let name = format_function_name(f);
    let [format, ts] = args else {
        return Err(format!("{name} takes a format and a value"));
    };
    let format = date_format(format, s, name)?;
    let ts = eval(ts, s)?;
    let Some(format) = format else {
        return Ok(Value::Null);
    };
    Ok(match ts {
        Value::Null if f == Func::TimestampToChar => Value::Str("null".into()),
        Value::Null => Value::Null,
        Value::Timestamp(ms) => Value::Str(format.format(match f {
            Func::DateToChar => as_date(ms)?,
            Func::TimeToChar => as_time(ms),
            _ => ms,
        })?),
        v => {
            let what = match f {
                Func::DateToChar => "date",
                Func::TimeToChar => "time",
                _ => "timestamp",
            };
            return Err(format!("{name} takes a {what}, not {}", v.type_name()));
        }
    })
}

/// CHAR_TO_TIMESTAMP(format, string), CHAR_TO_DATE and CHAR_TO_TIME: a string that does not
/// fit the format fails the row. CHAR_TO_DATE keeps the day of what it read (midnight),
/// CHAR_TO_TIME its time of day (on 1970-01-01, the day a format without a date reads).
fn char_to(f: Func, args: &[CExpr], s: &Scope<'_>) -> EvalResult {
    let name = format_function_name(f);
    let [format, text] = args else {
        return Err(format!("{name} takes a format and a string"));
    };
    let format = date_format(format, s, name)?;
    let text = eval(text, s)?;
    let Some(format) = format else {
        return Ok(Value::Null);
    };
    Ok(match text {
        Value::Null => Value::Null,
        Value::Str(t) => {
            let ms = format.parse(&t)?;
            Value::Timestamp(match f {
                Func::CharToDate => as_date(ms)?,
                Func::CharToTime => as_time(ms),
                _ => ms,
            })
        }
        v => return Err(format!("{name} takes a string, not {}", v.type_name())),
    })
}

/// `x` rounded down to a multiple of `step` (positive); `None` if that is out of range.
pub fn floor_to(x: i64, step: i64) -> Option<i64> {
    x.checked_div_euclid(step)?.checked_mul(step)
}

fn floor(v: Value, unit: Option<Unit>, ceil: bool) -> EvalResult {
    use Value::*;
    let round = |x: i64, step: i64| -> Result<i64, String> {
        let f = floor_to(x, step).ok_or("value out of range")?;
        if ceil && f != x {
            f.checked_add(step)
                .ok_or_else(|| "value out of range".into())
        } else {
            Ok(f)
        }
    };
    Ok(match (v, unit) {
        (Null, _) => Null,
        (Int(i), None) => Int(i),
        (Double(d), None) => Double(if ceil { d.ceil() } else { d.floor() }),
        (Timestamp(t), Some(u)) => match u.millis() {
            Some(step) => Timestamp(round(t, step)?),
            None => Timestamp(floor_calendar(t, u, ceil)),
        },
        (Interval(i), Some(u)) => match u.millis() {
            Some(step) => Interval(round(i, step)?),
            None => return Err("an interval has no months or years".into()),
        },
        (v, u) => {
            return Err(format!(
                "cannot take FLOOR of {}{}",
                v.type_name(),
                u.map(|u| format!(" to {u:?}")).unwrap_or_default()
            ))
        }
    })
}

fn floor_calendar(ms: i64, unit: Unit, ceil: bool) -> i64 {
    use chrono::{DateTime, Datelike, NaiveDate};
    let Some(t) = DateTime::from_timestamp_millis(ms) else {
        return ms;
    };
    let d = t.date_naive();
    let start = match unit {
        Unit::Month => NaiveDate::from_ymd_opt(d.year(), d.month(), 1),
        _ => NaiveDate::from_ymd_opt(d.year(), 1, 1),
    }
    .and_then(|d| d.and_hms_opt(0, 0, 0))
    .map_or(ms, |dt| dt.and_utc().timestamp_millis());
    if !ceil || start == ms {
        return start;
    }
    let next = match unit {
        Unit::Month if d.month() == 12 => NaiveDate::from_ymd_opt(d.year() + 1, 1, 1),
        Unit::Month => NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1),
        _ => NaiveDate::from_ymd_opt(d.year() + 1, 1, 1),
    };
    next.and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(ms, |dt| dt.and_utc().timestamp_millis())
}

fn extract(unit: Unit, ms: i64) -> i64 {
    use chrono::{DateTime, Datelike, Timelike};
    let Some(t) = DateTime::from_timestamp_millis(ms) else {
        return 0;
    };
    match unit {
        Unit::Millisecond => ms.rem_euclid(1000),
        Unit::Second => i64::from(t.second()),
        Unit::Minute => i64::from(t.minute()),
        Unit::Hour => i64::from(t.hour()),
        Unit::Day => i64::from(t.day()),
        Unit::Month => i64::from(t.month()),
        Unit::Year => i64::from(t.year()),
    }
}

/// SQL `LIKE`: `%` matches any run of characters, `_` one; `esc` makes the next one literal.
pub fn like(text: &str, pattern: &str, esc: Option<char>) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Lit(char),
    }
    let mut pat = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        pat.push(match c {
            c if Some(c) == esc => P::Lit(chars.next().unwrap_or(c)),
            '%' => P::Any,
            '_' => P::One,
            c => P::Lit(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(P::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(P::One) => {
                t += 1;
                p += 1;
            }
            Some(P::Lit(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|x| *x == P::Any)
}

/// Converts a value to a column's type, as an INSERT or CAST does; `Err` when it does not
/// convert (the row goes to the error stream). A too-long VARCHAR is truncated.
pub fn cast(v: Value, ty: SqlType) -> EvalResult {
    use Value::*;
    if v.is_null() {
        return Ok(Null);
    }
    let bad = |v: &Value| format!("cannot convert {} `{}` to {ty}", v.type_name(), text(v));
    let int_range = |i: i64| -> EvalResult {
        let (lo, hi) = match ty {
            SqlType::Tinyint => (i8::MIN as i64, i8::MAX as i64),
            SqlType::Smallint => (i16::MIN as i64, i16::MAX as i64),
            SqlType::Integer => (i32::MIN as i64, i32::MAX as i64),
            _ => (i64::MIN, i64::MAX),
        };
        if (lo..=hi).contains(&i) {
            Ok(Int(i))
        } else {
            Err(format!("{i} is out of range for {ty}"))
        }
    };
    Ok(match ty {
        SqlType::Varchar(n) | SqlType::Char(n) => {
            let s = text(&v);
            Str(match s.char_indices().nth(n as usize) {
                Some((cut, _)) => s[..cut].to_string(),
                None => s,
            })
        }
        SqlType::Tinyint | SqlType::Smallint | SqlType::Integer | SqlType::Bigint => match &v {
            Int(i) => int_range(*i)?,
            // Truncated toward zero, as Calcite (whose ancestor KDA's SQL engine is) does.
            Double(d) if d.is_finite() && d.abs() < 9.2e18 => int_range(d.trunc() as i64)?,
            Str(s) => match s.trim().parse::<i64>() {
                Ok(i) => int_range(i)?,
                Err(_) => return Err(bad(&v)),
            },
            _ => return Err(bad(&v)),
        },
        SqlType::Real | SqlType::Double => match &v {
            Int(i) => Double(*i as f64),
            Double(d) => Double(if ty == SqlType::Real {
                f64::from(*d as f32)
            } else {
                *d
            }),
            Str(s) => match s.trim().parse::<f64>() {
                Ok(d) if d.is_finite() => Double(d),
                _ => return Err(bad(&v)),
            },
            _ => return Err(bad(&v)),
        },
        SqlType::Decimal(_, scale) => {
            let d = match &v {
                Int(i) => *i as f64,
                Double(d) => *d,
                Str(s) => s.trim().parse::<f64>().map_err(|_| bad(&v))?,
                _ => return Err(bad(&v)),
            };
            let k = 10f64.powi(i32::from(scale));
            Double((d * k).round() / k)
        }
        SqlType::Boolean => match &v {
            Bool(b) => Bool(*b),
            Str(s) if s.eq_ignore_ascii_case("true") => Bool(true),
            Str(s) if s.eq_ignore_ascii_case("false") => Bool(false),
            _ => return Err(bad(&v)),
        },
        SqlType::Timestamp | SqlType::Date | SqlType::Time => {
            let t = match &v {
                Timestamp(t) => *t,
                Str(s) if ty == SqlType::Time => {
                    crate::value::parse_time(s).ok_or_else(|| bad(&v))?
                }
                Str(s) => crate::value::parse_timestamp(s).ok_or_else(|| bad(&v))?,
                _ => return Err(bad(&v)),
            };
            // A DATE is the midnight of its day, a TIME its time of day on 1970-01-01.
            Timestamp(match ty {
                SqlType::Date => as_date(t)?,
                SqlType::Time => as_time(t),
                _ => t,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_whole_strings() {
        assert!(like("TECHNOLOGY", "%TECH%", None));
        assert!(like("abc", "a_c", None));
        assert!(!like("abcd", "a_c", None));
        assert!(like("50%", "50!%", Some('!')));
        assert!(!like("500", "50!%", Some('!')));
        assert!(like("", "%", None));
        assert!(like(&"a".repeat(1000), &"%a".repeat(50), None));
    }

    #[test]
    fn casts_truncate_round_and_refuse() {
        assert_eq!(
            cast(Value::Str("abcdef".into()), SqlType::Varchar(4)),
            Ok(Value::Str("abcd".into()))
        );
        assert_eq!(
            cast(Value::Str(" 42 ".into()), SqlType::Integer),
            Ok(Value::Int(42))
        );
        assert!(cast(Value::Str("x".into()), SqlType::Integer).is_err());
        assert!(cast(Value::Int(1 << 40), SqlType::Integer).is_err());
        assert_eq!(
            cast(Value::Double(-2.7), SqlType::Integer),
            Ok(Value::Int(-2))
        );
        assert_eq!(
            cast(Value::Double(1.005_1), SqlType::Decimal(5, 2)),
            Ok(Value::Double(1.01))
        );
    }

    #[test]
    fn time_functions_and_patterns() {
        let row = [
            Value::Timestamp(1_000),
            Value::Timestamp(4_500),
            Value::Null,
            Value::Str("a1b2".into()),
            Value::Str("[0-9]".into()),
        ];
        let run = |e: CExpr| {
            eval(
                &e,
                &Scope {
                    row: &row,
                    rowtime: 7,
                    keys: &[],
                    aggs: &[],
                    udf: &[],
                    now: 0,
                },
            )
        };
        let text = |t: &str| CExpr::Lit(Value::Str(t.into()));
        // TSDIFF(startTime, endTime): from the start to the end.
        assert_eq!(
            run(CExpr::Call(
                Func::Tsdiff,
                vec![CExpr::Col(0), CExpr::Col(1)]
            )),
            Ok(Value::Int(3_500))
        );
        assert_eq!(
            run(CExpr::Call(
                Func::Tsdiff,
                vec![CExpr::Lit(Value::Int(10)), CExpr::Lit(Value::Int(4))]
            )),
            Ok(Value::Int(-6))
        );
        assert_eq!(
            run(CExpr::Call(
                Func::Tsdiff,
                vec![CExpr::Col(0), CExpr::Col(2)]
            )),
            Ok(Value::Null)
        );
        assert!(run(CExpr::Call(
            Func::Tsdiff,
            vec![CExpr::Col(0), CExpr::Col(3)]
        ))
        .is_err());
        assert_eq!(
            run(CExpr::Call(Func::Monotonic, vec![CExpr::Col(3)])),
            Ok(Value::Str("a1b2".into()))
        );
        // TIMESTAMP_TO_CHAR of NULL is the string 'null', as the reference says.
        assert_eq!(
            run(CExpr::Call(
                Func::TimestampToChar,
                vec![text("yyyy"), CExpr::Col(2)]
            )),
            Ok(Value::Str("null".into()))
        );
        let compiled = CExpr::DateFormat(Box::new(DateFormat::new("HH:mm:ss.SSS").unwrap()));
        assert_eq!(
            run(CExpr::Call(
                Func::TimestampToChar,
                vec![compiled, CExpr::Col(1)]
            )),
            Ok(Value::Str("00:00:04.500".into()))
        );
        assert_eq!(
            run(CExpr::Call(
                Func::CharToTimestamp,
                vec![text("yyyy-MM-dd"), text("1970-01-02")]
            )),
            Ok(Value::Timestamp(86_400_000))
        );
        assert!(run(CExpr::Call(
            Func::CharToTimestamp,
            vec![text("yyyy-MM-dd"), text("01/02/1970")]
        ))
        .is_err());
        assert!(run(CExpr::Call(
            Func::CharToTimestamp,
            vec![text("yyyy-MM-dd T"), text("1970-01-02")]
        ))
        .is_err());
        // REGEX_REPLACE with the pattern from the row, and compiled.
        let replace = |pattern: CExpr, original: CExpr| {
            run(CExpr::Call(
                Func::RegexReplace,
                vec![
                    original,
                    pattern,
                    text("#"),
                    CExpr::Lit(Value::Int(1)),
                    CExpr::Lit(Value::Int(0)),
                ],
            ))
        };
        assert_eq!(
            replace(CExpr::Col(4), CExpr::Col(3)),
            Ok(Value::Str("a#b#".into()))
        );
        let letters = CExpr::Regex(Box::new(Pattern::java("[a-z]").unwrap()));
        assert_eq!(
            replace(letters, CExpr::Col(3)),
            Ok(Value::Str("#1#2".into()))
        );
        assert_eq!(replace(CExpr::Col(4), CExpr::Col(2)), Ok(Value::Null));
        assert!(replace(text("("), CExpr::Col(3)).is_err());
        // SIMILAR TO, its pattern from the row or compiled.
        let similar = |pattern: CExpr, e: CExpr, not: bool| {
            run(CExpr::Similar {
                e: Box::new(e),
                pattern: Box::new(pattern),
                escape: None,
                not,
            })
        };
        assert_eq!(
            similar(text("a_b%"), CExpr::Col(3), false),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            similar(text("a_b%"), CExpr::Col(3), true),
            Ok(Value::Bool(false))
        );
        assert_eq!(similar(text("a%"), CExpr::Col(2), false), Ok(Value::Null));
        let digits = CExpr::Regex(Box::new(Pattern::similar("([a-z][0-9])+", None).unwrap()));
        assert_eq!(similar(digits, CExpr::Col(3), false), Ok(Value::Bool(true)));
        assert!(similar(text("[a"), CExpr::Col(3), false).is_err());
    }

    /// Evaluates `e` over `row`, with ROWTIME 7 and the clock at `now`.
    fn at(e: CExpr, row: &[Value], now: i64) -> EvalResult {
        eval(
            &e,
            &Scope {
                row,
                rowtime: 7,
                keys: &[],
                aggs: &[],
                udf: &[],
                now,
            },
        )
    }

    fn lit(v: Value) -> CExpr {
        CExpr::Lit(v)
    }

    fn text_lit(t: &str) -> CExpr {
        CExpr::Lit(Value::Str(t.into()))
    }

    #[test]
    fn log10_as_the_reference_has_it() {
        let log10 = |v: Value| at(CExpr::Call(Func::Log10, vec![lit(v)]), &[], 0);
        // sql-reference-log10's examples.
        assert_eq!(log10(Value::Int(1)), Ok(Value::Double(0.0)));
        assert_eq!(log10(Value::Int(100)), Ok(Value::Double(2.0)));
        let decimal = cast(Value::Str("23".into()), SqlType::Decimal(19, 0)).unwrap();
        assert_eq!(log10(decimal), Ok(Value::Double(1.3617278360175928)));
        assert_eq!(log10(Value::Null), Ok(Value::Null));
        // "If the argument is negative or 0, an exception is raised."
        assert!(log10(Value::Int(0)).is_err());
        assert!(log10(Value::Double(-1.5)).is_err());
        assert!(log10(Value::Double(f64::NAN)).is_err());
        assert!(log10(Value::Str("10".into())).is_err());
        assert_eq!(
            log10(Value::Int(i64::MAX)),
            Ok(Value::Double((i64::MAX as f64).log10()))
        );
    }

    #[test]
    fn overlay_as_the_reference_has_it() {
        let over = |s: &str, r: &str, from: i64, len: Option<i64>| {
            let mut args = vec![text_lit(s), text_lit(r), lit(Value::Int(from))];
            args.extend(len.map(|l| lit(Value::Int(l))));
            at(CExpr::Call(Func::Overlay, args), &[], 0)
        };
        let txt = |t: &str| -> EvalResult { Ok(Value::Str(t.into())) };
        // sql-reference-overlay's examples, one by one.
        assert_eq!(over("12345", "foo", 1, None), txt("foo45"));
        assert_eq!(over("12345", "foo", 0, None), txt("foo345"));
        assert_eq!(over("12345", "foo", -2, None), txt("foo12345"));
        assert_eq!(over("12345", "foo", 4, None), txt("123foo"));
        assert_eq!(over("12345", "foo", 17, None), txt("12345foo"));
        assert_eq!(over("12345", "foo", 2, Some(0)), txt("1foo2345"));
        assert_eq!(over("12345", "foo", 2, Some(2)), txt("1foo45"));
        assert_eq!(over("12345", "foo", 2, Some(9)), txt("1foo"));
        // "If the string length is less than zero, an exception is raised."
        assert!(over("12345", "foo", 2, Some(-1)).is_err());
        // Characters, not bytes.
        assert_eq!(over("héllo wörld", "ñ", 2, None), txt("hñllo wörld"));
        assert_eq!(
            over("日本語のテキスト", "🦀", 4, Some(1)),
            txt("日本語🦀テキスト")
        );
        assert_eq!(over("", "x", 1, None), txt("x"));
        assert_eq!(over("abc", "", 2, None), txt("abc"));
        assert_eq!(over("abc", "", 2, Some(1)), txt("ac"));
        // Huge positions and lengths neither overflow nor panic.
        assert_eq!(over("abc", "x", i64::MAX, Some(i64::MAX)), txt("abcx"));
        assert_eq!(over("abc", "x", i64::MIN, None), txt("xabc"));
        assert_eq!(over("abc", "x", i64::MIN, Some(i64::MAX)), txt("xabc"));
        assert_eq!(over("abc", "x", 2, Some(i64::MAX)), txt("ax"));
        // Any NULL argument gives NULL.
        let null = at(
            CExpr::Call(
                Func::Overlay,
                vec![text_lit("abc"), lit(Value::Null), lit(Value::Int(1))],
            ),
            &[],
            0,
        );
        assert_eq!(null, Ok(Value::Null));
        let bad = at(
            CExpr::Call(
                Func::Overlay,
                vec![text_lit("abc"), text_lit("x"), text_lit("1")],
            ),
            &[],
            0,
        );
        assert!(bad.is_err());
    }

    #[test]
    fn to_timestamp_takes_bigint_milliseconds() {
        let to = |v: Value| at(CExpr::Call(Func::ToTimestamp, vec![lit(v)]), &[], 0);
        assert_eq!(
            to(Value::Int(1_714_557_600_123)),
            Ok(Value::Timestamp(1_714_557_600_123))
        );
        assert_eq!(
            to(Value::Int(-86_400_000)),
            Ok(Value::Timestamp(-86_400_000))
        );
        assert_eq!(to(Value::Null), Ok(Value::Null));
        assert!(to(Value::Int(i64::MAX)).is_err());
        assert!(to(Value::Int(i64::MIN)).is_err());
        assert!(to(Value::Str("1".into())).is_err());
    }

    #[test]
    fn dates_and_times_to_text_and_back() {
        let ts = crate::value::parse_timestamp("2024-05-01 10:11:12.345").unwrap();
        let row = [Value::Timestamp(ts), Value::Null];
        let run = |f: Func, format: &str, v: CExpr| {
            at(CExpr::Call(f, vec![text_lit(format), v]), &row, 0)
        };
        let txt = |t: &str| -> EvalResult { Ok(Value::Str(t.into())) };
        let stamp = |t: &str| -> EvalResult {
            Ok(Value::Timestamp(crate::value::parse_timestamp(t).unwrap()))
        };
        // A DATE is its day at midnight, a TIME its time of day on 1970-01-01.
        assert_eq!(
            run(
                Func::CharToDate,
                "dd/MM/yyyy HH:mm",
                text_lit("01/05/2024 10:11")
            ),
            stamp("2024-05-01")
        );
        assert_eq!(
            run(Func::CharToTime, "HH:mm:ss.SSS", text_lit("10:11:12.345")),
            stamp("1970-01-01 10:11:12.345")
        );
        assert_eq!(
            run(
                Func::CharToTime,
                "yyyy-MM-dd h:mm a",
                text_lit("2024-05-01 3:04 PM")
            ),
            stamp("1970-01-01 15:04:00")
        );
        assert!(run(Func::CharToDate, "yyyy-MM-dd", text_lit("2024-02-30")).is_err());
        assert!(run(Func::CharToTime, "HH:mm", text_lit("noon")).is_err());
        assert_eq!(
            run(Func::CharToDate, "yyyy", CExpr::Col(1)),
            Ok(Value::Null)
        );
        assert_eq!(
            run(Func::DateToChar, "yyyy-MM-dd HH:mm", CExpr::Col(0)),
            txt("2024-05-01 00:00")
        );
        assert_eq!(
            run(Func::TimeToChar, "yyyy-MM-dd HH:mm:ss.SSS", CExpr::Col(0)),
            txt("1970-01-01 10:11:12.345")
        );
        assert_eq!(
            run(Func::TimeToChar, "h:mm a", CExpr::Col(0)),
            txt("10:11 AM")
        );
        // Only TIMESTAMP_TO_CHAR writes NULL as 'null', as its page says.
        assert_eq!(
            run(Func::DateToChar, "yyyy", CExpr::Col(1)),
            Ok(Value::Null)
        );
        assert_eq!(run(Func::TimeToChar, "HH", CExpr::Col(1)), Ok(Value::Null));
        assert_eq!(run(Func::TimestampToChar, "HH", CExpr::Col(1)), txt("null"));
        assert!(run(Func::DateToChar, "yyyy", text_lit("2024-05-01")).is_err());
        // Compiled formats, as the plan makes them from literals.
        let compiled = CExpr::DateFormat(Box::new(DateFormat::new("EEEE").unwrap()));
        assert_eq!(
            at(
                CExpr::Call(Func::DateToChar, vec![compiled, CExpr::Col(0)]),
                &row,
                0
            ),
            txt("Wednesday")
        );
        // Casts to DATE and TIME keep the day and the time of day.
        assert_eq!(
            cast(Value::Str("2024-05-01 10:11:12".into()), SqlType::Date),
            stamp("2024-05-01")
        );
        assert_eq!(
            cast(Value::Timestamp(ts), SqlType::Time),
            stamp("1970-01-01 10:11:12.345")
        );
        assert_eq!(
            cast(Value::Str("23:59:58.5".into()), SqlType::Time),
            stamp("1970-01-01 23:59:58.500")
        );
        assert_eq!(
            cast(Value::Str("2024-05-01 07:08:09".into()), SqlType::Time),
            stamp("1970-01-01 07:08:09")
        );
        assert!(cast(Value::Str("25:00:00".into()), SqlType::Time).is_err());
        assert_eq!(
            cast(Value::Timestamp(-1), SqlType::Time),
            stamp("1970-01-01 23:59:59.999")
        );
        assert!(cast(Value::Timestamp(i64::MIN), SqlType::Date).is_err());
    }

    #[test]
    fn the_clock_functions_read_the_scope_clock() {
        let now = crate::value::parse_timestamp("2024-05-01 10:11:12.345").unwrap();
        let clock = |f: Func, now: i64| at(CExpr::Call(f, Vec::new()), &[], now);
        let stamp = |t: &str| -> EvalResult {
            Ok(Value::Timestamp(crate::value::parse_timestamp(t).unwrap()))
        };
        assert_eq!(
            clock(Func::CurrentTimestamp, now),
            Ok(Value::Timestamp(now))
        );
        assert_eq!(clock(Func::CurrentDate, now), stamp("2024-05-01"));
        assert_eq!(
            clock(Func::CurrentTime, now),
            stamp("1970-01-01 10:11:12.345")
        );
        // Before the epoch, the day and the time of day still hold.
        assert_eq!(clock(Func::CurrentDate, -1), stamp("1969-12-31"));
        assert_eq!(
            clock(Func::CurrentTime, -1),
            stamp("1970-01-01 23:59:59.999")
        );
        assert!(clock(Func::CurrentDate, i64::MIN).is_err());
        assert_eq!(
            clock(Func::CurrentTime, i64::MIN),
            Ok(Value::Timestamp(i64::MIN.rem_euclid(DAY_MS)))
        );
        // CURRENT_ROW_TIMESTAMP is the row's time, not the clock.
        assert_eq!(
            clock(Func::CurrentRowTimestamp, now),
            Ok(Value::Timestamp(7))
        );
        for (name, f) in [
            ("CURRENT_TIMESTAMP", Func::CurrentTimestamp),
            ("LOCALTIMESTAMP", Func::CurrentTimestamp),
            ("CURRENT_DATE", Func::CurrentDate),
            ("CURRENT_TIME", Func::CurrentTime),
            ("LOCALTIME", Func::CurrentTime),
        ] {
            assert_eq!(Func::by_name(name), Some((f, 0..=0)), "{name}");
            assert!(f.is_clock());
        }
        assert!(!Func::CurrentRowTimestamp.is_clock());
        let e = CExpr::Binary(
            BinOp::Add,
            Box::new(CExpr::Call(Func::CurrentTimestamp, Vec::new())),
            Box::new(lit(Value::Interval(1))),
        );
        assert!(e.reads_clock());
        assert!(!CExpr::Rowtime.reads_clock());
    }

    #[test]
    fn a_run_of_fields_of_one_call_parses_once_and_in_order() {
        let parser = || {
            Arc::new(
                LogParser::new(
                    "VARIABLE_COLUMN_LOG_PARSE",
                    &[Value::Int(2), Value::Str(",".into())],
                )
                .unwrap(),
            )
        };
        let (p, q) = (parser(), parser());
        let field = |parser: &Arc<LogParser>, field: usize| CExpr::LogParse {
            parser: Arc::clone(parser),
            arg: Box::new(CExpr::Col(0)),
            field,
        };
        let items = [field(&p, 1), field(&p, 0), CExpr::Col(0), field(&q, 1)];
        let row = [Value::Str("a,b".into())];
        let s = Scope {
            row: &row,
            rowtime: 0,
            keys: &[],
            aggs: &[],
            udf: &[],
            now: 0,
        };
        let mut out = Vec::new();
        eval_items(&items, &s, &mut out).unwrap();
        let text = |t: &str| Value::Str(t.into());
        assert_eq!(out, vec![text("b"), text("a"), text("a,b"), text("b")]);
        assert_eq!(eval(&items[1], &s), Ok(text("a")));
    }

    #[test]
    fn three_valued_logic_and_null_propagation() {
        let s = Scope {
            row: &[Value::Null, Value::Int(3)],
            rowtime: 0,
            keys: &[],
            aggs: &[],
            udf: &[],
            now: 0,
        };
        let null_and_false = CExpr::Binary(
            BinOp::And,
            Box::new(CExpr::Col(0)),
            Box::new(CExpr::Lit(Value::Bool(false))),
        );
        assert_eq!(eval(&null_and_false, &s), Ok(Value::Bool(false)));
        let plus = CExpr::Binary(BinOp::Add, Box::new(CExpr::Col(0)), Box::new(CExpr::Col(1)));
        assert_eq!(eval(&plus, &s), Ok(Value::Null));
        let div = CExpr::Binary(
            BinOp::Div,
            Box::new(CExpr::Col(1)),
            Box::new(CExpr::Lit(Value::Int(0))),
        );
        assert!(eval(&div, &s).is_err());
    }
}
