//! The parser of the KDA SQL dialect (the KDA SQL Reference is the spec): statements are
//! `CREATE [OR REPLACE] STREAM` and `CREATE [OR REPLACE] PUMP ... AS INSERT INTO ... SELECT
//! STREAM ...`, separated by semicolons.
//!
//! Invariant: recursion is bounded ([`MAX_DEPTH`]), so no input exhausts the stack.

use crate::ast::*;
use crate::error::{Pos, SqlError};
use crate::lex::{tokenize, Tok, Token};
use crate::value::{parse_time, parse_timestamp, SqlType, Unit, Value};

/// How deep an expression tree may be: nesting (parentheses, NOT, unary minus, subqueries)
/// counts [`NEST`] a level, and each operator of a chain (`a OR b OR c`) one. It bounds the
/// parser's recursion and that of everything that walks the tree later (compiling, evaluating).
const MAX_DEPTH: usize = 128;
const NEST: usize = 8;

/// The most rows a `ROWS n PRECEDING` frame may hold before the current one.
pub(crate) const MAX_ROWS: u64 = 100_000;

/// Parses a whole application. Errors carry a byte offset; [`crate::compile`] turns it into
/// a line and column.
pub fn parse(src: &str) -> Result<Vec<Statement>, SqlError> {
    let mut p = Parser {
        toks: tokenize(src)?,
        at: 0,
        depth: 0,
    };
    let mut out = Vec::new();
    loop {
        while p.eat_sym(";") {}
        if matches!(p.peek().tok, Tok::End) {
            return Ok(out);
        }
        out.push(p.statement()?);
        if !p.eat_sym(";") && !matches!(p.peek().tok, Tok::End) {
            return Err(p.unexpected("`;` after the statement"));
        }
    }
}

/// Parses a column type as a schema gives it (`VARCHAR(4)`, `DECIMAL(10,2)`).
pub fn parse_type(src: &str) -> Result<SqlType, String> {
    let mut p = Parser {
        toks: tokenize(src).map_err(|e| e.to_string())?,
        at: 0,
        depth: 0,
    };
    let ty = p.sql_type().map_err(|e| message(&e))?;
    p.expect_end().map_err(|e| message(&e))?;
    Ok(ty)
}

/// One column of a log parser's list of columns, as the SQL Reference writes them:
/// `name [TYPE] [type ['format']] [NOT NULL] [START n [FOR m]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogColumnSpec {
    pub name: String,
    pub ty: Option<SqlType>,
    /// A TIMESTAMP's SimpleDateFormat pattern, as `"name" TYPE TIMESTAMP 'dd/MMM/yyyy'`.
    pub format: Option<String>,
    pub not_null: bool,
    /// FIXED_COLUMN_LOG_PARSE's `START n [FOR m]`: where the field is, in characters from 0.
    pub start: Option<(u64, Option<u64>)>,
}

/// Parses a log parser's list of columns (the text of its string literal).
pub fn parse_log_columns(src: &str) -> Result<Vec<LogColumnSpec>, String> {
    let mut p = Parser {
        toks: tokenize(src).map_err(|e| message(&e))?,
        at: 0,
        depth: 0,
    };
    p.log_columns().map_err(|e| message(&e))
}

fn message(e: &SqlError) -> String {
    match e {
        SqlError::Sql { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Parses one expression (for tests and `weir sql`).
pub fn parse_expr(src: &str) -> Result<Expr, SqlError> {
    let mut p = Parser {
        toks: tokenize(src)?,
        at: 0,
        depth: 0,
    };
    let e = p.expr()?;
    p.expect_end()?;
    Ok(e)
}

struct Parser {
    toks: Vec<Token>,
    at: usize,
    depth: usize,
}

/// Words that end an expression or a select item, so that `SELECT a FROM` is not read as
/// `a` aliased `FROM`.
const RESERVED: &[&str] = &[
    "FROM",
    "WHERE",
    "GROUP",
    "HAVING",
    "BY",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IS",
    "IN",
    "BETWEEN",
    "LIKE",
    "SIMILAR",
    "ESCAPE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "SELECT",
    "STREAM",
    "INSERT",
    "INTO",
    "CREATE",
    "PUMP",
    "ON",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "CROSS",
    "WINDOW",
    "WINDOWED",
    "ORDER",
    "UNION",
    "TO",
    "FOR",
    "OVER",
    "PARTITION",
    "LIMIT",
];

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.at.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.at + n).min(self.toks.len() - 1)]
    }

    fn pos(&self) -> Pos {
        Pos(self.peek().pos)
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.at < self.toks.len() - 1 {
            self.at += 1;
        }
        t
    }

    fn is_kw(&self, word: &str) -> bool {
        self.peek().keyword() == Some(word)
    }

    fn is_kw_at(&self, n: usize, word: &str) -> bool {
        self.peek_at(n).keyword() == Some(word)
    }

    fn eat_kw(&mut self, word: &str) -> bool {
        if self.is_kw(word) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, word: &str) -> Result<(), SqlError> {
        if self.eat_kw(word) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{word}`")))
        }
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek().tok, Tok::Sym(t) if t == s)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if self.is_sym(s) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), SqlError> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{s}`")))
        }
    }

    fn expect_end(&mut self) -> Result<(), SqlError> {
        if matches!(self.peek().tok, Tok::End) {
            Ok(())
        } else {
            Err(self.unexpected("the end"))
        }
    }

    fn unexpected(&self, wanted: &str) -> SqlError {
        let t = self.peek();
        let found = match &t.tok {
            Tok::Ident { text, quoted: true } => format!("\"{text}\""),
            Tok::Ident { text, .. } => format!("`{text}`"),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Number(n) => format!("`{n}`"),
            Tok::Sym(s) => format!("`{s}`"),
            Tok::End => "the end of the SQL".to_string(),
        };
        SqlError::syntax(Pos(t.pos), format!("expected {wanted}, found {found}"))
    }

    fn name(&mut self, what: &str) -> Result<Name, SqlError> {
        match &self.peek().tok {
            Tok::Ident { text, .. } => {
                let name = Name {
                    text: text.clone(),
                    pos: self.pos(),
                };
                self.bump();
                Ok(name)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn statement(&mut self) -> Result<Statement, SqlError> {
        self.expect_kw("CREATE")?;
        if self.eat_kw("OR") {
            self.expect_kw("REPLACE")?;
        }
        if self.eat_kw("STREAM") {
            let name = self.name("a stream name")?;
            self.expect_sym("(")?;
            let mut columns = Vec::new();
            let mut not_null = Vec::new();
            loop {
                let col = self.name("a column name")?;
                let ty = self.sql_type()?;
                columns.push((col, ty));
                if self.eat_kw("NOT") {
                    self.expect_kw("NULL")?;
                    not_null.push(true);
                } else {
                    self.eat_kw("NULL");
                    not_null.push(false);
                }
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
            // Stream options (`DESCRIPTION '...'`) are accepted and ignored, as KDA did.
            if self.eat_kw("DESCRIPTION") {
                if let Tok::Str(_) = self.peek().tok {
                    self.bump();
                }
            }
            return Ok(Statement::Stream(CreateStream {
                name,
                columns,
                not_null,
            }));
        }
        if self.eat_kw("PUMP") {
            let name = self.name("a pump name")?;
            self.expect_kw("AS")?;
            self.expect_kw("INSERT")?;
            self.expect_kw("INTO")?;
            let target = self.name("a stream name")?;
            let columns = if self.eat_sym("(") {
                let mut cols = vec![self.name("a column name")?];
                while self.eat_sym(",") {
                    cols.push(self.name("a column name")?);
                }
                self.expect_sym(")")?;
                Some(cols)
            } else {
                None
            };
            let select = self.select()?;
            let mut union = Vec::new();
            while self.is_kw("UNION") {
                let at = self.pos();
                self.bump();
                if !self.eat_kw("ALL") {
                    return Err(SqlError::name(
                        at,
                        "UNION",
                        "a stream has no end to find duplicates by: write UNION ALL",
                    ));
                }
                union.push(self.select()?);
            }
            if let Some(s) = std::iter::once(&select)
                .chain(&union)
                .find(|s| !union.is_empty() && !s.order_by.is_empty())
            {
                return Err(SqlError::syntax(
                    s.order_by[0].0.pos(),
                    "ORDER BY over a UNION ALL is not supported by Weir yet: pump the union \
                     into a stream and order that",
                ));
            }
            return Ok(Statement::Pump(Box::new(CreatePump {
                name,
                target,
                columns,
                select,
                union,
            })));
        }
        Err(self.unexpected("`STREAM` or `PUMP`"))
    }

    fn sql_type(&mut self) -> Result<SqlType, SqlError> {
        let pos = self.pos();
        let word = self
            .peek()
            .keyword()
            .map(str::to_string)
            .ok_or_else(|| self.unexpected("a type"))?;
        self.bump();
        let ty = match word.as_str() {
            "VARCHAR" | "CHAR" | "CHARACTER" => {
                if word == "VARCHAR" || (word == "CHARACTER" && self.eat_kw("VARYING")) {
                    SqlType::Varchar(self.length()?.unwrap_or(u32::MAX))
                } else {
                    SqlType::Char(self.length()?.unwrap_or(1))
                }
            }
            "TINYINT" => SqlType::Tinyint,
            "SMALLINT" => SqlType::Smallint,
            "INTEGER" | "INT" => SqlType::Integer,
            "BIGINT" => SqlType::Bigint,
            "REAL" => SqlType::Real,
            "FLOAT" => SqlType::Double,
            "DOUBLE" => {
                self.eat_kw("PRECISION");
                SqlType::Double
            }
            "DECIMAL" | "NUMERIC" | "DEC" => {
                let (mut p, mut s) = (19u8, 0u8);
                if self.eat_sym("(") {
                    p = self.small_number()?;
                    if self.eat_sym(",") {
                        s = self.small_number()?;
                    }
                    self.expect_sym(")")?;
                }
                SqlType::Decimal(p, s)
            }
            "BOOLEAN" => SqlType::Boolean,
            "TIMESTAMP" => SqlType::Timestamp,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            _ => return Err(SqlError::name(pos, &word, format!("unknown type `{word}`"))),
        };
        Ok(ty)
    }

    fn length(&mut self) -> Result<Option<u32>, SqlError> {
        if !self.eat_sym("(") {
            return Ok(None);
        }
        let n = match &self.peek().tok {
            Tok::Number(n) => n.parse::<u32>().ok(),
            _ => None,
        }
        .ok_or_else(|| self.unexpected("a length"))?;
        self.bump();
        self.expect_sym(")")?;
        Ok(Some(n))
    }

    fn small_number(&mut self) -> Result<u8, SqlError> {
        let n = match &self.peek().tok {
            Tok::Number(n) => n.parse::<u8>().ok(),
            _ => None,
        }
        .ok_or_else(|| self.unexpected("a number"))?;
        self.bump();
        Ok(n)
    }

    fn select(&mut self) -> Result<Select, SqlError> {
        let pos = self.pos();
        self.expect_kw("SELECT")?;
        // A pump's query is a streaming one whether or not it says so: the Developer Guide's
        // own HOTSPOTS and RANDOM_CUT_FOREST_WITH_EXPLANATION pumps write a plain SELECT.
        self.eat_kw("STREAM");
        let mut items = Vec::new();
        loop {
            items.push(self.item()?);
            if !self.eat_sym(",") {
                break;
            }
        }
        self.expect_kw("FROM")?;
        let mut function = None;
        if self.is_kw("TABLE") && matches!(self.peek_at(1).tok, Tok::Sym("(")) {
            self.bump();
            self.bump();
            let name = self.name("a function name")?;
            self.expect_sym("(")?;
            self.expect_kw("CURSOR")?;
            self.expect_sym("(")?;
            self.depth += NEST;
            if self.depth > MAX_DEPTH {
                return Err(SqlError::syntax(name.pos, "queries nested too deeply"));
            }
            let cursor = self.select();
            self.depth -= NEST;
            let cursor = Box::new(cursor?);
            self.expect_sym(")")?;
            let mut args = Vec::new();
            while self.eat_sym(",") {
                args.push(self.expr()?);
            }
            self.expect_sym(")")?;
            self.expect_sym(")")?;
            function = Some(TableFn { name, cursor, args });
        }
        let mut subquery = None;
        if function.is_none() && self.is_sym("(") && self.is_kw_at(1, "SELECT") {
            let at = self.pos();
            self.bump();
            self.depth += NEST;
            if self.depth > MAX_DEPTH {
                return Err(SqlError::syntax(at, "queries nested too deeply"));
            }
            let inner = self.select();
            self.depth -= NEST;
            let inner = Box::new(inner?);
            self.expect_sym(")")?;
            subquery = Some((at, inner));
        }
        if self.is_sym("(") {
            return Err(SqlError::syntax(
                self.pos(),
                "expected a stream, TABLE(...) or a subquery (SELECT STREAM ...)",
            ));
        }
        let from = match (&function, &subquery) {
            (Some(f), _) => Name {
                text: format!("{}${}", f.name.text, f.name.pos.0),
                pos: f.name.pos,
            },
            (None, Some((at, _))) => Name {
                text: format!("SUBQUERY${}", at.0),
                pos: *at,
            },
            (None, None) => self.name("a stream name")?,
        };
        let from_over = self.over()?.map(|o| *o);
        let alias = self.alias()?;
        // `AS l(r)`: names for the subquery's columns, as the Developer Guide's W3C_LOG_PARSE
        // example has.
        let mut alias_columns = Vec::new();
        if subquery.is_some() && alias.is_some() && self.eat_sym("(") {
            loop {
                alias_columns.push(self.name("a column name")?);
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
        }
        let kind = if self.eat_kw("INNER") {
            Some(JoinKind::Inner)
        } else if self.eat_kw("CROSS") {
            Some(JoinKind::Cross)
        } else if self.is_kw("JOIN") {
            Some(JoinKind::Inner)
        } else {
            let outer = [
                ("LEFT", JoinKind::Left),
                ("RIGHT", JoinKind::Right),
                ("FULL", JoinKind::Full),
            ];
            let kind = outer.iter().find(|(w, _)| self.is_kw(w)).map(|(_, k)| *k);
            if kind.is_some() {
                self.bump();
                self.eat_kw("OUTER");
            }
            kind
        };
        let join = match kind {
            None => None,
            Some(kind) => {
                self.expect_kw("JOIN")?;
                let table = self.name("a table or stream name")?;
                let over = self.over()?.map(|o| *o);
                let alias = self.alias()?;
                let on = if kind == JoinKind::Cross {
                    None
                } else {
                    self.expect_kw("ON")?;
                    Some(self.expr()?)
                };
                Some(Join {
                    kind,
                    table,
                    over,
                    alias,
                    on,
                })
            }
        };
        let filter = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let stagger = if self.is_kw("WINDOWED") {
            self.bump();
            self.expect_kw("BY")?;
            self.expect_kw("STAGGER")?;
            let spec = self.window_spec_of(false)?;
            if spec.partition.is_empty() {
                return Err(SqlError::syntax(
                    spec.pos,
                    "a stagger window needs PARTITION BY",
                ));
            }
            Some(spec)
        } else {
            None
        };
        let mut group_by = Vec::new();
        if self.eat_kw("GROUP") {
            self.expect_kw("BY")?;
            loop {
                group_by.push(self.expr()?);
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let having = if self.eat_kw("HAVING") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut windows = Vec::new();
        if self.eat_kw("WINDOW") {
            loop {
                let name = self.name("a window name")?;
                self.expect_kw("AS")?;
                windows.push((name, self.window_spec()?));
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let mut order_by = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let e = self.expr()?;
                let desc = if self.eat_kw("DESC") {
                    true
                } else {
                    self.eat_kw("ASC");
                    false
                };
                order_by.push((e, desc));
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        for unsupported in ["JOIN", "LEFT", "INNER", "CROSS", "RIGHT", "FULL"] {
            if self.is_kw(unsupported) {
                return Err(SqlError::name(
                    self.pos(),
                    unsupported,
                    format!("`{unsupported}` is not supported by Weir yet"),
                ));
            }
        }
        Ok(Select {
            pos,
            items,
            from,
            from_over,
            alias,
            filter,
            group_by,
            having,
            windows,
            stagger,
            join,
            function,
            subquery: subquery.map(|(_, s)| s),
            alias_columns,
            order_by,
        })
    }

    /// `.FIELD` after a row (a column that is a row, a log parser's call, a parenthesised
    /// expression), if there. One level only, so that a chain of them cannot make the tree
    /// deep: rows do not nest.
    fn field_of(&mut self, e: Expr) -> Result<Expr, SqlError> {
        if !(self.is_sym(".") && matches!(self.peek_at(1).tok, Tok::Ident { .. })) {
            return Ok(e);
        }
        self.bump();
        let field = self.name("a field name")?;
        if self.is_sym(".") {
            return Err(SqlError::syntax(
                self.pos(),
                "a field of a field: rows do not nest",
            ));
        }
        Ok(Expr::Field {
            e: Box::new(e),
            field,
        })
    }

    fn alias(&mut self) -> Result<Option<Name>, SqlError> {
        if self.eat_kw("AS") {
            return self.name("an alias").map(Some);
        }
        match &self.peek().tok {
            Tok::Ident { text, quoted } if *quoted || !RESERVED.contains(&text.as_str()) => {
                self.name("an alias").map(Some)
            }
            _ => Ok(None),
        }
    }

    fn item(&mut self) -> Result<Item, SqlError> {
        if self.is_sym("*") {
            let pos = self.pos();
            self.bump();
            return Ok(Item::Star(pos));
        }
        if matches!(self.peek().tok, Tok::Ident { .. })
            && matches!(self.peek_at(1).tok, Tok::Sym("."))
            && matches!(self.peek_at(2).tok, Tok::Sym("*"))
        {
            let pos = self.pos();
            self.at += 3;
            return Ok(Item::Star(pos));
        }
        let expr = self.expr()?;
        let alias = self.alias()?;
        Ok(Item::Expr { expr, alias })
    }

    pub fn expr(&mut self) -> Result<Expr, SqlError> {
        self.depth += NEST;
        if self.depth > MAX_DEPTH {
            return Err(SqlError::syntax(self.pos(), "expression nested too deeply"));
        }
        let e = self.or();
        self.depth -= NEST;
        e
    }

    /// One more operator in a chain (see [`MAX_DEPTH`]); `chain` counts them, to give back.
    fn link(&mut self, chain: &mut usize) -> Result<(), SqlError> {
        *chain += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= *chain;
            return Err(SqlError::syntax(
                self.pos(),
                "expression too long or nested too deeply",
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, SqlError> {
        let mut chain = 0;
        let mut l = self.and()?;
        while self.is_kw("OR") {
            self.link(&mut chain)?;
            let pos = self.pos();
            self.bump();
            let r = self.and()?;
            l = bin(BinOp::Or, l, r, pos);
        }
        self.depth -= chain;
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, SqlError> {
        let mut chain = 0;
        let mut l = self.not()?;
        while self.is_kw("AND") {
            self.link(&mut chain)?;
            let pos = self.pos();
            self.bump();
            let r = self.not()?;
            l = bin(BinOp::And, l, r, pos);
        }
        self.depth -= chain;
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, SqlError> {
        if self.is_kw("NOT") {
            let pos = self.pos();
            self.bump();
            self.depth += NEST;
            if self.depth > MAX_DEPTH {
                return Err(SqlError::syntax(pos, "expression nested too deeply"));
            }
            let e = self.not();
            self.depth -= NEST;
            return Ok(Expr::Unary {
                op: UnOp::Not,
                e: Box::new(e?),
                pos,
            });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SqlError> {
        let l = self.additive()?;
        let pos = self.pos();
        let op = match self.peek().tok {
            Tok::Sym("=") => Some(BinOp::Eq),
            Tok::Sym("<>") | Tok::Sym("!=") => Some(BinOp::NotEq),
            Tok::Sym("<") => Some(BinOp::Lt),
            Tok::Sym("<=") => Some(BinOp::LtEq),
            Tok::Sym(">") => Some(BinOp::Gt),
            Tok::Sym(">=") => Some(BinOp::GtEq),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let r = self.additive()?;
            return Ok(bin(op, l, r, pos));
        }
        if self.eat_kw("IS") {
            let not = self.eat_kw("NOT");
            self.expect_kw("NULL")?;
            return Ok(Expr::IsNull {
                e: Box::new(l),
                not,
                pos,
            });
        }
        let not = if self.is_kw("NOT")
            && (self.is_kw_at(1, "BETWEEN")
                || self.is_kw_at(1, "IN")
                || self.is_kw_at(1, "LIKE")
                || self.is_kw_at(1, "SIMILAR"))
        {
            self.bump();
            true
        } else {
            false
        };
        if self.eat_kw("BETWEEN") {
            let lo = self.additive()?;
            self.expect_kw("AND")?;
            let hi = self.additive()?;
            return Ok(Expr::Between {
                e: Box::new(l),
                lo: Box::new(lo),
                hi: Box::new(hi),
                not,
                pos,
            });
        }
        if self.eat_kw("IN") {
            self.expect_sym("(")?;
            let mut list = vec![self.expr()?];
            while self.eat_sym(",") {
                list.push(self.expr()?);
            }
            self.expect_sym(")")?;
            return Ok(Expr::In {
                e: Box::new(l),
                list,
                not,
                pos,
            });
        }
        let similar = if self.eat_kw("SIMILAR") {
            self.expect_kw("TO")?;
            Some(true)
        } else if self.eat_kw("LIKE") {
            Some(false)
        } else {
            None
        };
        if let Some(similar) = similar {
            let pattern = self.additive()?;
            let escape = if self.eat_kw("ESCAPE") {
                Some(Box::new(self.additive()?))
            } else {
                None
            };
            return Ok(Expr::Like {
                e: Box::new(l),
                pattern: Box::new(pattern),
                escape,
                not,
                similar,
                pos,
            });
        }
        if not {
            return Err(self.unexpected("`BETWEEN`, `IN`, `LIKE` or `SIMILAR TO`"));
        }
        Ok(l)
    }

    fn additive(&mut self) -> Result<Expr, SqlError> {
        let mut chain = 0;
        let mut l = self.multiplicative()?;
        loop {
            let pos = self.pos();
            let op = match self.peek().tok {
                Tok::Sym("+") => BinOp::Add,
                Tok::Sym("-") => BinOp::Sub,
                Tok::Sym("||") => BinOp::Concat,
                _ => {
                    self.depth -= chain;
                    return Ok(l);
                }
            };
            self.link(&mut chain)?;
            self.bump();
            let r = self.multiplicative()?;
            l = bin(op, l, r, pos);
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, SqlError> {
        let mut chain = 0;
        let mut l = self.unary()?;
        loop {
            let pos = self.pos();
            let op = match self.peek().tok {
                Tok::Sym("*") => BinOp::Mul,
                Tok::Sym("/") => BinOp::Div,
                Tok::Sym("%") => BinOp::Mod,
                _ => {
                    self.depth -= chain;
                    return Ok(l);
                }
            };
            self.link(&mut chain)?;
            self.bump();
            let r = self.unary()?;
            l = bin(op, l, r, pos);
        }
    }

    fn unary(&mut self) -> Result<Expr, SqlError> {
        let pos = self.pos();
        if self.eat_sym("-") {
            self.depth += NEST;
            if self.depth > MAX_DEPTH {
                return Err(SqlError::syntax(pos, "expression nested too deeply"));
            }
            let e = self.unary();
            self.depth -= NEST;
            return Ok(Expr::Unary {
                op: UnOp::Neg,
                e: Box::new(e?),
                pos,
            });
        }
        if self.eat_sym("+") {
            return self.unary();
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        let pos = self.pos();
        let tok = self.peek().tok.clone();
        match tok {
            Tok::Number(n) => {
                self.bump();
                let v = if n.contains(['.', 'e', 'E']) {
                    n.parse::<f64>().map(Value::Double).ok()
                } else {
                    n.parse::<i64>().map(Value::Int).ok()
                };
                v.map(|v| Expr::Lit(v, pos))
                    .ok_or_else(|| SqlError::syntax(pos, format!("bad number `{n}`")))
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::Lit(Value::Str(s), pos))
            }
            Tok::Sym("(") => {
                self.bump();
                let e = self.expr()?;
                self.expect_sym(")")?;
                // `(REGEX_LOG_PARSE(s, p)).COLUMN1`: a field of the row.
                if self.is_sym(".") {
                    return self.field_of(e);
                }
                // `(a - b) SECOND`: a timestamp difference as an interval.
                if let Some(unit) = self.peek().keyword().and_then(Unit::from_keyword) {
                    self.bump();
                    return Ok(Expr::IntervalOf {
                        e: Box::new(e),
                        unit,
                        pos,
                    });
                }
                Ok(e)
            }
            Tok::Ident { text, quoted } => {
                if !quoted {
                    if let Some(e) = self.keyword_expr(&text, pos)? {
                        return Ok(e);
                    }
                }
                let first = self.name("a name")?;
                if self.is_sym("(") {
                    let call = self.call(first)?;
                    return self.field_of(call);
                }
                if self.eat_sym(".") {
                    let name = self.name("a column name")?;
                    // `t.r.COLUMN1`: a field of row `r` of `t`.
                    return self.field_of(Expr::Column {
                        table: Some(first),
                        name,
                    });
                }
                Ok(Expr::Column {
                    table: None,
                    name: first,
                })
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// Literals and special forms that start with a keyword; `None` if `word` starts none.
    fn keyword_expr(&mut self, word: &str, pos: Pos) -> Result<Option<Expr>, SqlError> {
        let next_is_paren = matches!(self.peek_at(1).tok, Tok::Sym("("));
        let e = match word {
            "NULL" => {
                self.bump();
                Expr::Lit(Value::Null, pos)
            }
            "TRUE" | "FALSE" => {
                self.bump();
                Expr::Lit(Value::Bool(word == "TRUE"), pos)
            }
            "TIMESTAMP" | "DATE" if matches!(self.peek_at(1).tok, Tok::Str(_)) => {
                self.bump();
                let Tok::Str(text) = self.bump().tok else {
                    unreachable!("checked above")
                };
                let ms = parse_timestamp(&text)
                    .and_then(|ms| {
                        if word == "DATE" {
                            crate::eval::as_date(ms).ok()
                        } else {
                            Some(ms)
                        }
                    })
                    .ok_or_else(|| SqlError::syntax(pos, format!("bad {word} literal '{text}'")))?;
                Expr::Lit(Value::Timestamp(ms), pos)
            }
            "TIME" if matches!(self.peek_at(1).tok, Tok::Str(_)) => {
                self.bump();
                let Tok::Str(text) = self.bump().tok else {
                    unreachable!("checked above")
                };
                let ms = parse_time(&text)
                    .ok_or_else(|| SqlError::syntax(pos, format!("bad TIME literal '{text}'")))?;
                Expr::Lit(Value::Timestamp(ms), pos)
            }
            // The functions of the clock, written without parentheses as in standard SQL (and
            // CURRENT_ROW_TIMESTAMP, as the reference writes it). With them, they are calls.
            "CURRENT_TIMESTAMP"
            | "LOCALTIMESTAMP"
            | "CURRENT_DATE"
            | "CURRENT_TIME"
            | "LOCALTIME"
            | "CURRENT_ROW_TIMESTAMP"
                if !next_is_paren =>
            {
                self.bump();
                Expr::Func {
                    name: Name {
                        text: word.to_string(),
                        pos,
                    },
                    args: Vec::new(),
                    star: false,
                    distinct: false,
                    over: None,
                    ignore_nulls: false,
                }
            }
            "INTERVAL" => {
                self.bump();
                let negative = self.eat_sym("-");
                let text = match self.bump().tok {
                    Tok::Str(s) => s,
                    Tok::Number(n) => n,
                    _ => return Err(SqlError::syntax(pos, "expected the interval's value")),
                };
                let unit = self
                    .peek()
                    .keyword()
                    .and_then(Unit::from_keyword)
                    .ok_or_else(|| self.unexpected("an interval unit (SECOND, MINUTE, ...)"))?;
                self.bump();
                // `(precision)` after the unit, as `SECOND(3)`, is accepted and ignored.
                if self.eat_sym("(") {
                    self.small_number()?;
                    self.expect_sym(")")?;
                }
                let ms = interval_millis(&text, unit).ok_or_else(|| {
                    SqlError::syntax(pos, format!("bad interval '{text}' {unit:?}"))
                })?;
                Expr::Lit(Value::Interval(if negative { -ms } else { ms }), pos)
            }
            "CASE" => {
                self.bump();
                let operand = if self.is_kw("WHEN") {
                    None
                } else {
                    Some(Box::new(self.expr()?))
                };
                let mut whens = Vec::new();
                while self.eat_kw("WHEN") {
                    let w = self.expr()?;
                    self.expect_kw("THEN")?;
                    whens.push((w, self.expr()?));
                }
                if whens.is_empty() {
                    return Err(self.unexpected("`WHEN`"));
                }
                let otherwise = if self.eat_kw("ELSE") {
                    Some(Box::new(self.expr()?))
                } else {
                    None
                };
                self.expect_kw("END")?;
                Expr::Case {
                    operand,
                    whens,
                    otherwise,
                    pos,
                }
            }
            "CAST" if next_is_paren => {
                self.bump();
                self.bump();
                let e = self.expr()?;
                self.expect_kw("AS")?;
                let ty = self.sql_type()?;
                self.expect_sym(")")?;
                Expr::Cast {
                    e: Box::new(e),
                    ty,
                    pos,
                }
            }
            "FLOOR" | "CEIL" | "CEILING" if next_is_paren => {
                self.bump();
                self.bump();
                let e = self.expr()?;
                let unit = if self.eat_kw("TO") {
                    let unit = self
                        .peek()
                        .keyword()
                        .and_then(Unit::from_keyword)
                        .ok_or_else(|| self.unexpected("a time unit"))?;
                    self.bump();
                    Some(unit)
                } else {
                    None
                };
                self.expect_sym(")")?;
                Expr::Floor {
                    e: Box::new(e),
                    unit,
                    ceil: word != "FLOOR",
                    pos,
                }
            }
            "STEP" if next_is_paren => {
                self.bump();
                self.bump();
                let e = self.expr()?;
                self.expect_kw("BY")?;
                let by = self.expr()?;
                self.expect_sym(")")?;
                Expr::Step {
                    e: Box::new(e),
                    by: Box::new(by),
                    pos,
                }
            }
            "SUBSTRING" if next_is_paren => {
                self.bump();
                self.bump();
                let e = self.expr()?;
                let from = if self.eat_kw("FROM") || self.eat_sym(",") {
                    self.expr()?
                } else {
                    return Err(self.unexpected("`FROM`"));
                };
                let len = if self.eat_kw("FOR") || self.eat_sym(",") {
                    Some(Box::new(self.expr()?))
                } else {
                    None
                };
                self.expect_sym(")")?;
                Expr::Substring {
                    e: Box::new(e),
                    from: Box::new(from),
                    len,
                    pos,
                }
            }
            // OVERLAY(s PLACING r FROM n [FOR m]): the call OVERLAY(s, r, n [, m]).
            "OVERLAY" if next_is_paren => {
                self.bump();
                self.bump();
                let mut args = vec![self.expr()?];
                self.expect_kw("PLACING")?;
                args.push(self.expr()?);
                self.expect_kw("FROM")?;
                args.push(self.expr()?);
                if self.eat_kw("FOR") {
                    args.push(self.expr()?);
                }
                self.expect_sym(")")?;
                Expr::Func {
                    name: Name {
                        text: word.to_string(),
                        pos,
                    },
                    args,
                    star: false,
                    distinct: false,
                    over: None,
                    ignore_nulls: false,
                }
            }
            "POSITION" if next_is_paren => {
                self.bump();
                self.bump();
                let needle = self.additive()?;
                self.expect_kw("IN")?;
                let hay = self.expr()?;
                self.expect_sym(")")?;
                Expr::Position {
                    needle: Box::new(needle),
                    hay: Box::new(hay),
                    pos,
                }
            }
            "TRIM" if next_is_paren => {
                self.bump();
                self.bump();
                let side = if self.eat_kw("LEADING") {
                    Some(TrimSide::Leading)
                } else if self.eat_kw("TRAILING") {
                    Some(TrimSide::Trailing)
                } else if self.eat_kw("BOTH") {
                    Some(TrimSide::Both)
                } else {
                    None
                };
                let (what, e) = if self.eat_kw("FROM") {
                    (None, self.expr()?)
                } else {
                    let first = self.expr()?;
                    if self.eat_kw("FROM") {
                        (Some(Box::new(first)), self.expr()?)
                    } else {
                        (None, first)
                    }
                };
                self.expect_sym(")")?;
                Expr::Trim {
                    e: Box::new(e),
                    what,
                    side: side.unwrap_or(TrimSide::Both),
                    pos,
                }
            }
            "EXTRACT" if next_is_paren => {
                self.bump();
                self.bump();
                let unit = self
                    .peek()
                    .keyword()
                    .and_then(Unit::from_keyword)
                    .ok_or_else(|| self.unexpected("a time unit"))?;
                self.bump();
                self.expect_kw("FROM")?;
                let e = self.expr()?;
                self.expect_sym(")")?;
                Expr::Extract {
                    unit,
                    e: Box::new(e),
                    pos,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(e))
    }

    fn call(&mut self, name: Name) -> Result<Expr, SqlError> {
        self.expect_sym("(")?;
        if self.is_sym("*") {
            self.bump();
            self.expect_sym(")")?;
            let over = self.over()?;
            return Ok(Expr::Func {
                name,
                args: Vec::new(),
                star: true,
                distinct: false,
                over,
                ignore_nulls: false,
            });
        }
        let distinct = self.eat_kw("DISTINCT");
        if !distinct {
            self.eat_kw("ALL");
        }
        let mut args = Vec::new();
        if !self.is_sym(")") {
            loop {
                args.push(self.expr()?);
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        self.expect_sym(")")?;
        let ignore_nulls = if self.eat_kw("IGNORE") {
            self.expect_kw("NULLS")?;
            true
        } else {
            if self.eat_kw("RESPECT") {
                self.expect_kw("NULLS")?;
            }
            false
        };
        let over = self.over()?;
        Ok(Expr::Func {
            name,
            args,
            star: false,
            distinct,
            over,
            ignore_nulls,
        })
    }

    fn log_columns(&mut self) -> Result<Vec<LogColumnSpec>, SqlError> {
        let mut out = Vec::new();
        loop {
            let name = self.name("a column name")?.text;
            let mut col = LogColumnSpec {
                name,
                ty: None,
                format: None,
                not_null: false,
                start: None,
            };
            let typed = self.eat_kw("TYPE")
                || self
                    .peek()
                    .keyword()
                    .is_some_and(|w| !matches!(w, "NOT" | "START" | "FOR"));
            if typed {
                col.ty = Some(self.sql_type()?);
                if let Tok::Str(f) = self.peek().tok.clone() {
                    col.format = Some(f);
                    self.bump();
                }
            }
            loop {
                if self.eat_kw("NOT") {
                    self.expect_kw("NULL")?;
                    col.not_null = true;
                } else if col.start.is_none() && self.eat_kw("START") {
                    let start = self.whole_number()?;
                    let len = if self.eat_kw("FOR") {
                        Some(self.whole_number()?)
                    } else {
                        None
                    };
                    col.start = Some((start, len));
                } else {
                    break;
                }
            }
            out.push(col);
            if !self.eat_sym(",") {
                break;
            }
        }
        if !matches!(self.peek().tok, Tok::End) {
            return Err(self.unexpected("`,` or the end of the list"));
        }
        Ok(out)
    }

    fn whole_number(&mut self) -> Result<u64, SqlError> {
        let n = match &self.peek().tok {
            Tok::Number(n) => n.parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| self.unexpected("a whole number"))?;
        self.bump();
        Ok(n)
    }

    /// `OVER name` or `OVER (spec)`, if there.
    fn over(&mut self) -> Result<Option<Box<Over>>, SqlError> {
        if !self.eat_kw("OVER") {
            return Ok(None);
        }
        if self.is_sym("(") {
            return Ok(Some(Box::new(Over::Spec(self.window_spec()?))));
        }
        Ok(Some(Box::new(Over::Named(self.name("a window name")?))))
    }

    /// `( [PARTITION BY e, ...] RANGE INTERVAL 'n' unit PRECEDING | ROWS n PRECEDING )`.
    fn window_spec(&mut self) -> Result<WindowSpec, SqlError> {
        self.window_spec_of(true)
    }

    /// A window spec; a stagger window's (`sliding` false) is `RANGE interval` alone.
    fn window_spec_of(&mut self, sliding: bool) -> Result<WindowSpec, SqlError> {
        let pos = self.pos();
        self.expect_sym("(")?;
        let mut partition = Vec::new();
        if self.eat_kw("PARTITION") {
            self.expect_kw("BY")?;
            loop {
                partition.push(self.expr()?);
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        if self.is_kw("ORDER") {
            return Err(SqlError::name(
                self.pos(),
                "ORDER",
                "a window is ordered by ROWTIME: KDA took no ORDER BY in it",
            ));
        }
        let frame = if self.eat_kw("RANGE") {
            let at = self.pos();
            match self.primary()? {
                Expr::Lit(Value::Interval(ms), _) if ms > 0 => Frame::Range(ms),
                _ => {
                    return Err(SqlError::syntax(
                        at,
                        "expected a positive INTERVAL after RANGE",
                    ))
                }
            }
        } else if sliding && self.eat_kw("ROWS") {
            let n = match &self.peek().tok {
                Tok::Number(n) => n.parse::<u64>().ok(),
                _ => None,
            }
            .filter(|n| *n <= MAX_ROWS)
            .ok_or_else(|| self.unexpected("a number of rows (at most 100000)"))?;
            self.bump();
            Frame::Rows(n)
        } else if sliding {
            return Err(self.unexpected("`RANGE` or `ROWS`"));
        } else {
            return Err(self.unexpected("`RANGE`"));
        };
        if sliding {
            self.expect_kw("PRECEDING")?;
        }
        self.expect_sym(")")?;
        Ok(WindowSpec {
            pos,
            partition,
            frame,
        })
    }
}

fn bin(op: BinOp, l: Expr, r: Expr, pos: Pos) -> Expr {
    Expr::Binary {
        op,
        l: Box::new(l),
        r: Box::new(r),
        pos,
    }
}

/// `INTERVAL 'text' unit` in milliseconds: a number of units (fractions allowed for seconds).
fn interval_millis(text: &str, unit: Unit) -> Option<i64> {
    let per = unit.millis()?;
    let n: f64 = text.trim().parse().ok()?;
    let ms = n * per as f64;
    (ms.is_finite() && ms.abs() < 9.0e15).then_some(ms.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::line_column;

    #[test]
    fn parses_the_documented_tumbling_window_application() {
        let sql = r#"
            CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), ticker_count INTEGER);
            -- a comment
            CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
                SELECT STREAM ticker_symbol, COUNT(*) AS ticker_count
                FROM "SOURCE_SQL_STREAM_001"
                GROUP BY ticker_symbol, FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO MINUTE);
        "#;
        let stmts = parse(sql).unwrap();
        assert_eq!(stmts.len(), 2);
        let Statement::Stream(s) = &stmts[0] else {
            panic!("a stream")
        };
        assert_eq!(s.name.text, "DESTINATION_SQL_STREAM");
        assert_eq!(s.columns[0].0.text, "TICKER_SYMBOL");
        assert_eq!(s.columns[0].1, SqlType::Varchar(4));
        let Statement::Pump(p) = &stmts[1] else {
            panic!("a pump")
        };
        assert_eq!(p.select.group_by.len(), 2);
        assert!(matches!(
            &p.select.group_by[1],
            Expr::Floor {
                unit: Some(Unit::Minute),
                ..
            }
        ));
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let sql = "CREATE STREAM s (a INTEGER);\nCREATE PUMP p AS INSERT INTO s\n  SELECT a FROM ;";
        let err = parse(sql).unwrap_err().located(sql);
        let SqlError::Sql {
            line,
            column,
            message,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!((*line, *column), (3, 17));
        assert!(message.contains("stream name"), "{message}");
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse_expr(&deep).is_err());
        assert!(parse_expr(&"NOT ".repeat(5000)).is_err());
    }

    #[test]
    fn interval_forms_and_special_functions() {
        let e =
            parse_expr("FLOOR((ROWTIME - TIMESTAMP '1970-01-01 00:00:00') SECOND / 10 TO SECOND)")
                .unwrap();
        assert!(matches!(e, Expr::Floor { .. }));
        let e = parse_expr("STEP(s.ROWTIME BY INTERVAL '60' SECOND)").unwrap();
        let Expr::Step { by, .. } = e else {
            panic!("step")
        };
        assert_eq!(*by, Expr::Lit(Value::Interval(60_000), Pos(18)));
        for ok in [
            "SUBSTRING(a FROM 2 FOR 3)",
            "POSITION('x' IN a)",
            "TRIM(LEADING 'x' FROM a)",
            "a NOT LIKE 'x%' ESCAPE '!'",
            "a NOT BETWEEN 1 AND 2 OR b IN (1, 2)",
            "CASE WHEN a > 1 THEN 'big' ELSE 'small' END",
            "CAST(a AS DECIMAL(10, 2))",
            "EXTRACT(HOUR FROM ROWTIME)",
            "'a' SIMILAR TO '%b%'",
            "a NOT SIMILAR TO '(x|y)!%' ESCAPE '!'",
            "REGEX_REPLACE(a, '(T)', '$1', 1, 0)",
            "MONOTONIC(STEP(CHAR_TO_TIMESTAMP('dd/MMM/yyyy:HH:mm:ss z', a) BY INTERVAL '1' HOUR))",
            "OVERLAY('12345' PLACING 'foo' FROM 2 FOR 2) || OVERLAY(a PLACING b FROM -2)",
            "CURRENT_DATE - INTERVAL '1' DAY < CURRENT_TIMESTAMP",
            "TIME '10:11:12' = CAST(LOCALTIMESTAMP AS TIME)",
        ] {
            parse_expr(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "OVERLAY('a' FROM 1)",
            "OVERLAY('a' PLACING 'b')",
            "OVERLAY('a' PLACING 'b' FROM 1 FOR)",
            "TIME '25:00'",
        ] {
            assert!(parse_expr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlay_and_the_clock_are_calls() {
        let call = |src: &str| match parse_expr(src).unwrap() {
            Expr::Func { name, args, .. } => (name.text, args.len()),
            other => panic!("{src}: {other:?}"),
        };
        assert_eq!(call("OVERLAY(a PLACING 'x' FROM 2)"), ("OVERLAY".into(), 3));
        assert_eq!(
            call("overlay(a placing 'x' from 2 for 1)"),
            ("OVERLAY".into(), 4)
        );
        for word in [
            "CURRENT_TIMESTAMP",
            "LOCALTIMESTAMP",
            "CURRENT_DATE",
            "CURRENT_TIME",
            "LOCALTIME",
            "CURRENT_ROW_TIMESTAMP",
        ] {
            assert_eq!(call(word), (word.to_string(), 0));
            assert_eq!(call(&word.to_lowercase()), (word.to_string(), 0));
            assert_eq!(call(&format!("{word}()")), (word.to_string(), 0));
        }
        // Quoted, it is a column.
        assert!(matches!(
            parse_expr("\"CURRENT_DATE\"").unwrap(),
            Expr::Column { .. }
        ));
        assert_eq!(
            parse_expr("DATE '2024-05-01 10:00:00'").unwrap(),
            Expr::Lit(Value::Timestamp(1_714_521_600_000), Pos(0))
        );
        assert_eq!(
            parse_expr("TIME '10:00:00'").unwrap(),
            Expr::Lit(Value::Timestamp(36_000_000), Pos(0))
        );
    }

    #[test]
    fn subqueries_row_fields_and_log_columns() {
        // The Developer Guide's W3C_LOG_PARSE example, with the other forms of a field.
        let sql = r#"CREATE OR REPLACE PUMP "P" AS INSERT INTO "D"
            SELECT STREAM l.r.COLUMN1, l.r."x", (REGEX_LOG_PARSE(a, '(.)')).COLUMN1,
                REGEX_LOG_PARSE(a, '(.)').COLUMN1
            FROM (SELECT STREAM W3C_LOG_PARSE("log", 'COMMON')
                  FROM "SOURCE_SQL_STREAM_001") AS l(r);"#;
        let stmts = parse(sql).unwrap();
        let Statement::Pump(p) = &stmts[0] else {
            panic!("a pump")
        };
        let sub = p.select.subquery.as_ref().expect("a subquery");
        assert_eq!(sub.from.text, "SOURCE_SQL_STREAM_001");
        assert!(p.select.from.text.starts_with("SUBQUERY$"));
        assert_eq!(p.select.alias.as_ref().map(|a| a.text.as_str()), Some("L"));
        let names: Vec<&str> = p
            .select
            .alias_columns
            .iter()
            .map(|n| n.text.as_str())
            .collect();
        assert_eq!(names, ["R"]);
        let Item::Expr {
            expr: Expr::Field { e, field },
            ..
        } = &p.select.items[0]
        else {
            panic!("{:?}", p.select.items[0])
        };
        assert_eq!(field.text, "COLUMN1");
        let Expr::Column {
            table: Some(t),
            name,
        } = &**e
        else {
            panic!("{e:?}")
        };
        assert_eq!((t.text.as_str(), name.text.as_str()), ("L", "R"));
        let Item::Expr {
            expr: Expr::Field { field, .. },
            ..
        } = &p.select.items[1]
        else {
            panic!("{:?}", p.select.items[1])
        };
        assert_eq!(field.text, "x");
        for item in &p.select.items[2..] {
            let Item::Expr {
                expr: Expr::Field { e, .. },
                ..
            } = item
            else {
                panic!("{item:?}")
            };
            assert!(matches!(**e, Expr::Func { .. }), "{item:?}");
        }
        // Rows do not nest, and subqueries nest only so deep.
        assert!(parse_expr("a.b.c.d").is_err());
        let nested = |n: usize| {
            format!(
                "CREATE PUMP p AS INSERT INTO d SELECT STREAM * FROM {}s{};",
                "(SELECT STREAM * FROM ".repeat(n),
                ") x".repeat(n)
            )
        };
        parse(&nested(3)).unwrap();
        assert!(parse(&nested(40)).is_err());
        assert!(
            parse("CREATE PUMP p AS INSERT INTO d SELECT STREAM * FROM (VALUES (1));").is_err()
        );
        // A log parser's list of columns.
        let cols = parse_log_columns(
            "COL_1 TYPE VARCHAR(16), \"ts\" TYPE TIMESTAMP 'dd/MMM/yyyy:HH:mm:ss' NOT NULL,
             a TYPE Integer START 0 FOR 3, b START 4",
        )
        .unwrap();
        assert_eq!(
            cols[0],
            LogColumnSpec {
                name: "COL_1".into(),
                ty: Some(SqlType::Varchar(16)),
                format: None,
                not_null: false,
                start: None,
            }
        );
        assert_eq!(cols[1].name, "ts");
        assert_eq!(cols[1].ty, Some(SqlType::Timestamp));
        assert_eq!(cols[1].format.as_deref(), Some("dd/MMM/yyyy:HH:mm:ss"));
        assert!(cols[1].not_null);
        assert_eq!(cols[2].name, "A");
        assert_eq!(cols[2].ty, Some(SqlType::Integer));
        assert_eq!(cols[2].start, Some((0, Some(3))));
        assert_eq!((cols[3].ty, cols[3].start), (None, Some((4, None))));
        for bad in [
            "",
            "a TYPE",
            "a b c",
            "a START",
            "a START -1",
            "a,",
            "a INTEGER x",
        ] {
            assert!(parse_log_columns(bad).is_err(), "{bad}");
        }
    }
}
