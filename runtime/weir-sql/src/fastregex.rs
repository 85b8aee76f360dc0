//! FAST_REGEX_LOG_PARSE's patterns: their syntax, and their lazy matching.
//!
//! The syntax is the one the SQL Reference tabulates ("Character Class Symbols for Fast
//! Regex"), that of the dk.brics.automaton regular expressions: `|` (union), `?`, `*`, `+`,
//! `{n}`, `{n,}` and `{n,m}`, `[...]` and `[^...]` classes with ranges, `.` (any character,
//! a line break too), `@` (any string), `"..."` (a string, as it is), `()` (the empty
//! string), `(...)` (a group: each is a column), `<Digit>` and the reference's other POSIX
//! names, `<n-m>` (a decimal number from n to m) and `\c` (the character c: `\d` is the
//! letter d). Any other character is itself, `~` included (the reference lists no complement).
//!
//! The matching is the reference's: the pattern is cut into a series of expressions, one for
//! each group and one for each run of the pattern between groups. A fixed-length start of an
//! expression is moved to the end of the one before (`x+` counting as `xx*`, as the reference
//! says), and an expression that is all of fixed length joins the one before. From the start
//! of the string, each expression of the series takes the shortest run of characters it
//! matches ("lazy"), with no going back, and the last one must take all the rest. A group's
//! column is what its parts took. Each expression is a regex-lite regular expression, and
//! [`Regex::shortest_match`] finds its shortest run (regex-lite's one engine stops at the
//! first position where a match ends).
//!
//! Refused, with the reason: `&` (intersection) and `#` (the empty language), which regex-lite
//! has no counterpart for; a `|` outside the groups, a group inside a group and a group under a
//! repetition, which make no single series of columns.
//!
//! Invariants: nothing here panics on any pattern or string. Positions in the string are
//! character boundaries (the ends of matches, or found by walking characters), parentheses and
//! repetitions nest at most [`MAX_DEPTH`] deep, and counts that do not fit are refused.

use std::fmt::Write;

use regex_lite::Regex;

use crate::pattern::push_literal;

/// How deep parentheses and repetitions may nest in a pattern.
pub const MAX_DEPTH: usize = 64;

/// The named patterns, for messages.
const NAMES: &str = "<Digit>, <Upper>, <Lower>, <ASCII>, <Alpha>, <Alnum>, <Punct>, <Blank>, \
                     <Space>, <Cntrl>, <XDigit>, <Print> and <Graph>";

/// A compiled FAST_REGEX_LOG_PARSE pattern.
#[derive(Debug, Clone)]
pub struct FastRegex {
    /// The pattern as written.
    pub text: String,
    /// Its groups, one per column.
    pub groups: usize,
    /// The series of expressions.
    pieces: Vec<Piece>,
}

impl PartialEq for FastRegex {
    fn eq(&self, other: &FastRegex) -> bool {
        self.text == other.text
    }
}

/// An expression of the series, with the fixed-length parts moved to its end.
#[derive(Debug, Clone)]
struct Piece {
    /// The group of its variable-length start, if it has one (`Some(None)`: a run outside the
    /// groups). It runs to where the tail begins.
    core: Option<Option<usize>>,
    /// Its fixed-length end, part by part: the part's group and its length in characters.
    tail: Vec<(Option<usize>, usize)>,
    /// The tail's length in characters.
    tail_chars: usize,
    /// `\A(?:...)`, and `\A(?:...)\z` for the last expression.
    re: Regex,
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Characters matched as they are: one, or a `"..."` string (empty: the empty string).
    Text(String),
    /// One character of the ranges, or (negated) one of none of them.
    Class(Vec<(char, char)>, bool),
    /// Any one character.
    Any,
    /// Any string.
    AnyString,
    Concat(Vec<Node>),
    Union(Vec<Node>),
    /// From `min` to `max` (unbounded: `None`) of a node.
    Repeat(Box<Node>, u32, Option<u32>),
    /// A parenthesized expression: a column.
    Group(Box<Node>),
    /// `<n-m>`: a decimal number from n to m, of that many digits (zero-padded) when both
    /// are written with as many, else of any number of digits (leading zeros allowed).
    Interval(u32, u32, usize),
}

/// An element of the series: the expression it belongs to, that expression's group, and its
/// length in characters if it has a fixed one.
struct Elem {
    expr: usize,
    group: Option<usize>,
    node: Node,
    fixed: Option<usize>,
}

impl FastRegex {
    /// Compiles a pattern; the message says what is wrong with one that does not compile.
    pub fn new(text: &str) -> Result<FastRegex, String> {
        let top = Parser::new(text).pattern()?;
        let exprs = series(top)?;
        let groups = exprs.iter().filter(|(g, _)| g.is_some()).count();
        if groups == 0 {
            return Err("it has no group (each group is a column)".to_string());
        }
        // The elements in order, and where each expression's variable-length part starts: the
        // expressions of the series start there.
        let mut flat: Vec<Elem> = Vec::new();
        let mut cuts: Vec<usize> = Vec::new();
        for (expr, (group, nodes)) in exprs.into_iter().enumerate() {
            let mut cut = false;
            for node in nodes {
                let fixed = fixed_len(&node);
                if fixed.is_none() && !cut {
                    cuts.push(flat.len());
                    cut = true;
                }
                flat.push(Elem {
                    expr,
                    group,
                    node,
                    fixed,
                });
            }
        }
        // A fixed-length start of the pattern has no expression before it: it is one.
        if cuts.first() != Some(&0) {
            cuts.insert(0, 0);
        }
        let mut pieces = Vec::with_capacity(cuts.len());
        for (k, &from) in cuts.iter().enumerate() {
            let to = cuts.get(k + 1).copied().unwrap_or(flat.len());
            let last = k + 1 == cuts.len();
            pieces.push(piece(flat.get(from..to).unwrap_or(&[]), last)?);
        }
        Ok(FastRegex {
            text: text.to_string(),
            groups,
            pieces,
        })
    }

    /// The text of each group in `text`, or `None` when the pattern does not account for all
    /// of it.
    pub fn fields<'t>(&self, text: &'t str) -> Option<Vec<&'t str>> {
        let mut spans: Vec<Option<(usize, usize)>> = vec![None; self.groups];
        let mut at = 0;
        for (k, piece) in self.pieces.iter().enumerate() {
            let rest = text.get(at..)?;
            let end = if k + 1 == self.pieces.len() {
                // The last expression takes the rest of the string.
                if !piece.re.is_match(rest) {
                    return None;
                }
                text.len()
            } else {
                at + piece.re.shortest_match(rest)?
            };
            let mut cut = back(text, at, end, piece.tail_chars)?;
            if let Some(group) = piece.core {
                mark(&mut spans, group, at, cut);
            }
            for &(group, n) in &piece.tail {
                let to = forward(text, cut, n).min(end);
                mark(&mut spans, group, cut, to);
                cut = to;
            }
            at = end;
        }
        let out: Vec<&'t str> = spans
            .iter()
            .map(|s| s.and_then(|(a, b)| text.get(a..b)).unwrap_or(""))
            .collect();
        Some(out)
    }
}

/// Extends a group's span to `from..to` (a part outside the groups marks nothing).
fn mark(spans: &mut [Option<(usize, usize)>], group: Option<usize>, from: usize, to: usize) {
    if let Some(slot) = group.and_then(|g| spans.get_mut(g)) {
        *slot = Some(match *slot {
            Some((a, _)) => (a, to),
            None => (from, to),
        });
    }
}

/// Where the last `n` characters of `text[from..end]` begin.
fn back(text: &str, from: usize, end: usize, n: usize) -> Option<usize> {
    if n == 0 {
        return Some(end);
    }
    let run = text.get(from..end)?;
    run.char_indices().rev().nth(n - 1).map(|(b, _)| from + b)
}

/// Where `text` is `n` characters after `from` (or its end).
fn forward(text: &str, from: usize, n: usize) -> usize {
    let Some(rest) = text.get(from..) else {
        return text.len();
    };
    rest.char_indices()
        .nth(n)
        .map_or(text.len(), |(b, _)| from + b)
}

/// One expression of a pattern's series: its group's number (`None` for a run between
/// groups) and the elements it is made of.
type Expression = (Option<usize>, Vec<Node>);

/// The pattern's expressions, in order: each group's, with its number, and each run between
/// groups (`None`), as the elements they are made of.
fn series(top: Node) -> Result<Vec<Expression>, String> {
    let items = match top {
        Node::Concat(items) => items,
        Node::Union(_) => {
            return Err(
                "a `|` outside the groups is not supported by Weir (the pattern would not be \
                 one series of columns): put the alternatives inside a group"
                    .to_string(),
            )
        }
        other => vec![other],
    };
    let mut exprs: Vec<(Option<usize>, Vec<Node>)> = Vec::new();
    let mut groups = 0;
    for item in items {
        match item {
            Node::Group(inner) => {
                if has_group(&inner) {
                    return Err(
                        "a group inside a group is not supported by Weir (each group is a \
                         column of the series)"
                            .to_string(),
                    );
                }
                let nodes = match *inner {
                    Node::Concat(nodes) => nodes,
                    other => vec![other],
                };
                exprs.push((Some(groups), split_repeats(nodes)));
                groups += 1;
            }
            other => {
                if has_group(&other) {
                    return Err(
                        "a group under a repetition or among `|` alternatives is not \
                         supported by Weir (each group is a column of the series)"
                            .to_string(),
                    );
                }
                let nodes = split_repeats(vec![other]);
                let extend = matches!(exprs.last(), Some((None, _)));
                if extend {
                    if let Some((_, run)) = exprs.last_mut() {
                        run.extend(nodes);
                    }
                } else {
                    exprs.push((None, nodes));
                }
            }
        }
    }
    Ok(exprs)
}

/// `x+` as `xx*` and `x{n,m}` as `x{n}x{0,m-n}` when `x` has a fixed length, so that the
/// fixed-length part can move (the reference: `_+` is "considered the same as `__*`").
fn split_repeats(nodes: Vec<Node>) -> Vec<Node> {
    let mut out = Vec::with_capacity(nodes.len());
    for node in nodes {
        match node {
            Node::Repeat(inner, min, max)
                if min > 0 && max != Some(min) && fixed_len(&inner).is_some_and(|f| f > 0) =>
            {
                out.push(Node::Repeat(inner.clone(), min, Some(min)));
                out.push(Node::Repeat(inner, 0, max.map(|m| m.saturating_sub(min))));
            }
            other => out.push(other),
        }
    }
    out
}

fn has_group(node: &Node) -> bool {
    match node {
        Node::Group(_) => true,
        Node::Concat(nodes) | Node::Union(nodes) => nodes.iter().any(has_group),
        Node::Repeat(inner, ..) => has_group(inner),
        _ => false,
    }
}

/// The length in characters of every string a node matches, if they all have one.
fn fixed_len(node: &Node) -> Option<usize> {
    match node {
        Node::Text(t) => Some(t.chars().count()),
        Node::Class(..) | Node::Any => Some(1),
        Node::AnyString => None,
        Node::Concat(nodes) => nodes
            .iter()
            .try_fold(0usize, |n, x| n.checked_add(fixed_len(x)?)),
        Node::Union(nodes) => {
            let first = fixed_len(nodes.first()?)?;
            nodes
                .iter()
                .all(|x| fixed_len(x) == Some(first))
                .then_some(first)
        }
        Node::Repeat(inner, min, max) => {
            let f = fixed_len(inner)?;
            if f == 0 {
                Some(0)
            } else if *max == Some(*min) {
                f.checked_mul(usize::try_from(*min).ok()?)
            } else {
                None
            }
        }
        Node::Group(inner) => fixed_len(inner),
        Node::Interval(_, _, digits) => (*digits > 0).then_some(*digits),
    }
}

/// An expression of the series, of its elements.
fn piece(elems: &[Elem], last: bool) -> Result<Piece, String> {
    let mut source = String::from(r"\A(?:");
    for e in elems {
        emit(&e.node, &mut source);
    }
    source.push(')');
    if last {
        source.push_str(r"\z");
    }
    let re = Regex::new(&source).map_err(|e| format!("it does not compile: {e}"))?;
    // A variable-length start runs to the end of its expression; what follows it, moved from
    // the expressions after, is of fixed length.
    let (core, rest) = match elems.first() {
        Some(first) if first.fixed.is_none() => {
            let n = elems.iter().take_while(|e| e.expr == first.expr).count();
            (Some(first.group), elems.get(n..).unwrap_or(&[]))
        }
        _ => (None, elems),
    };
    let mut tail: Vec<(Option<usize>, usize)> = Vec::new();
    for e in rest {
        let n = e.fixed.unwrap_or(0);
        let merge = tail.last().is_some_and(|(g, _)| *g == e.group);
        if merge {
            if let Some(part) = tail.last_mut() {
                part.1 += n;
            }
        } else {
            tail.push((e.group, n));
        }
    }
    let tail_chars: usize = tail.iter().map(|(_, n)| n).sum();
    Ok(Piece {
        core,
        tail,
        tail_chars,
        re,
    })
}

/// Appends a node as a regex-lite expression that a repetition may follow. Repetitions are
/// lazy, as the reference's matching is.
fn emit(node: &Node, out: &mut String) {
    match node {
        Node::Text(t) => {
            let mut chars = t.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => push_char(c, out),
                _ => {
                    out.push_str("(?:");
                    for c in t.chars() {
                        push_char(c, out);
                    }
                    out.push(')');
                }
            }
        }
        Node::Class(ranges, negated) => {
            out.push('[');
            if *negated {
                out.push('^');
            }
            for &(from, to) in ranges {
                push_char(from, out);
                if to != from {
                    out.push('-');
                    push_char(to, out);
                }
            }
            out.push(']');
        }
        Node::Any => out.push_str("(?s:.)"),
        Node::AnyString => out.push_str("(?s:.*?)"),
        Node::Concat(nodes) => {
            out.push_str("(?:");
            for x in nodes {
                emit(x, out);
            }
            out.push(')');
        }
        Node::Union(nodes) => {
            out.push_str("(?:");
            for (k, x) in nodes.iter().enumerate() {
                if k > 0 {
                    out.push('|');
                }
                emit(x, out);
            }
            out.push(')');
        }
        Node::Repeat(inner, min, max) => {
            out.push_str("(?:");
            emit(inner, out);
            let _ = match (*min, *max) {
                (0, None) => write!(out, "*?"),
                (1, None) => write!(out, "+?"),
                (0, Some(1)) => write!(out, "??"),
                (n, None) => write!(out, "{{{n},}}?"),
                (n, Some(m)) if n == m => write!(out, "{{{n}}}"),
                (n, Some(m)) => write!(out, "{{{n},{m}}}?"),
            };
            out.push(')');
        }
        Node::Group(inner) => emit(inner, out),
        Node::Interval(lo, hi, digits) => {
            out.push_str("(?:");
            interval_regex(*lo, *hi, *digits, out);
            out.push(')');
        }
    }
}

/// Appends a character that matches itself, inside a class or outside one.
fn push_char(c: char, out: &mut String) {
    if c.is_ascii_graphic() || c == ' ' {
        push_literal(c, out);
    } else {
        let _ = write!(out, "\\x{{{:x}}}", u32::from(c));
    }
}

/// The decimal numbers from `lo` to `hi` (`lo <= hi`): of `digits` digits, zero-padded, or,
/// with `digits` 0, of any number of digits, leading zeros allowed (as dk.brics.automaton's
/// `<n-m>` is).
fn interval_regex(lo: u32, hi: u32, digits: usize, out: &mut String) {
    if digits > 0 {
        let x = format!("{:0width$}", lo, width = digits);
        let y = format!("{:0width$}", hi, width = digits);
        between(x.as_bytes(), y.as_bytes(), out);
        return;
    }
    out.push_str("0*(?:");
    let (lo, hi) = (u64::from(lo), u64::from(hi));
    let lo_len = lo.to_string().len();
    let hi_len = hi.to_string().len();
    for len in lo_len..=hi_len {
        // The numbers of `len` digits in the interval.
        let from = if len == lo_len {
            lo
        } else {
            10u64.pow(len as u32 - 1)
        };
        let to = if len == hi_len {
            hi
        } else {
            10u64.pow(len as u32) - 1
        };
        if len > lo_len {
            out.push('|');
        }
        between(from.to_string().as_bytes(), to.to_string().as_bytes(), out);
    }
    out.push(')');
}

/// The digit strings from `x` to `y`, of one length (`x <= y`).
fn between(x: &[u8], y: &[u8], out: &mut String) {
    let (Some((&a, xs)), Some((&b, ys))) = (x.split_first(), y.split_first()) else {
        return;
    };
    if a == b {
        out.push(char::from(a));
        between(xs, ys, out);
        return;
    }
    let n = xs.len();
    let low = xs.iter().all(|&d| d == b'0');
    let high = ys.iter().all(|&d| d == b'9');
    out.push_str("(?:");
    // `a` then from xs up; the digits between with anything; `b` then up to ys.
    let first = if low {
        a
    } else {
        out.push(char::from(a));
        between(xs, &vec![b'9'; n], out);
        out.push('|');
        a + 1
    };
    let last = if high { b } else { b - 1 };
    if first <= last {
        push_digit_range(first, last, out);
        match n {
            0 => {}
            1 => out.push_str("[0-9]"),
            n => {
                let _ = write!(out, "[0-9]{{{n}}}");
            }
        }
    }
    if !high {
        if first <= last {
            out.push('|');
        }
        out.push(char::from(b));
        between(&vec![b'0'; n], ys, out);
    }
    out.push(')');
}

fn push_digit_range(a: u8, b: u8, out: &mut String) {
    if a == b {
        out.push(char::from(a));
    } else {
        out.push('[');
        out.push(char::from(a));
        out.push('-');
        out.push(char::from(b));
        out.push(']');
    }
}

/// A named pattern's class (the reference's POSIX names, in any case).
fn named_class(name: &str) -> Option<Node> {
    const ALPHA: [(char, char); 2] = [('a', 'z'), ('A', 'Z')];
    const DIGIT: (char, char) = ('0', '9');
    const PUNCT: [(char, char); 4] = [('!', '/'), (':', '@'), ('[', '`'), ('{', '~')];
    let mut ranges: Vec<(char, char)> = Vec::new();
    match name.to_ascii_lowercase().as_str() {
        "digit" => ranges.push(DIGIT),
        "upper" => ranges.push(('A', 'Z')),
        "lower" => ranges.push(('a', 'z')),
        "ascii" => ranges.push(('\0', '\u{7f}')),
        "alpha" => ranges.extend(ALPHA),
        "alnum" => {
            ranges.extend(ALPHA);
            ranges.push(DIGIT);
        }
        "punct" => ranges.extend(PUNCT),
        "blank" => ranges.extend([(' ', ' '), ('\t', '\t')]),
        // Space, tab, line feed, vertical tab, form feed and carriage return.
        "space" => ranges.extend([(' ', ' '), ('\t', '\r')]),
        "cntrl" => ranges.extend([('\0', '\u{1f}'), ('\u{7f}', '\u{7f}')]),
        // The reference writes "0-9a-fA-F", without the brackets of a class.
        "xdigit" => ranges.extend([DIGIT, ('a', 'f'), ('A', 'F')]),
        // The reference: <Print> is <Alnum>|<Punct>, and <Graph> is <Print>.
        "print" | "graph" => {
            ranges.extend(ALPHA);
            ranges.push(DIGIT);
            ranges.extend(PUNCT);
        }
        _ => return None,
    }
    Some(Node::Class(ranges, false))
}

/// `<n-m>`'s inside: two decimal numbers, either way round.
fn interval(text: &str) -> Result<Node, String> {
    let bad = || format!("`<{text}>` is not a numerical interval `<n-m>` (nor a named pattern)");
    let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !decimal(lo) || !decimal(hi) {
        return Err(bad());
    }
    let a: u32 = lo.parse().map_err(|_| bad())?;
    let b: u32 = hi.parse().map_err(|_| bad())?;
    let digits = if lo.len() == hi.len() { lo.len() } else { 0 };
    Ok(Node::Interval(a.min(b), a.max(b), digits))
}

/// A recursive-descent reader of the syntax, as dk.brics.automaton reads it.
struct Parser {
    chars: Vec<char>,
    at: usize,
    /// How deep in parentheses it is.
    depth: usize,
}

impl Parser {
    fn new(text: &str) -> Parser {
        Parser {
            chars: text.chars().collect(),
            at: 0,
            depth: 0,
        }
    }

    fn pattern(mut self) -> Result<Node, String> {
        let node = self.union()?;
        match self.peek() {
            None => Ok(node),
            Some(c) => {
                let at = self.at + 1;
                Err(format!("the `{c}` at character {at} closes no `(`"))
            }
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// The characters from `start` to where it is.
    fn since(&self, start: usize) -> String {
        self.chars
            .get(start..self.at)
            .unwrap_or(&[])
            .iter()
            .collect()
    }

    /// `a|b|...`
    fn union(&mut self) -> Result<Node, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("its parentheses nest more than {MAX_DEPTH} deep"));
        }
        let mut alternatives = vec![self.concat()?];
        while self.eat('|') {
            alternatives.push(self.concat()?);
        }
        if self.peek() == Some('&') {
            return Err("`&` (intersection) is not supported by Weir".to_string());
        }
        self.depth -= 1;
        Ok(if alternatives.len() == 1 {
            alternatives.swap_remove(0)
        } else {
            Node::Union(alternatives)
        })
    }

    /// A sequence, up to a `)`, a `|` or a `&`. (Its first element may be any character: a
    /// leading `)` or `|` is itself, as in dk.brics.automaton.)
    fn concat(&mut self) -> Result<Node, String> {
        let mut items = vec![self.repeat()?];
        while self.peek().is_some_and(|c| !matches!(c, ')' | '|' | '&')) {
            items.push(self.repeat()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Node::Concat(items)
        })
    }

    /// An atom and its repetitions.
    fn repeat(&mut self) -> Result<Node, String> {
        let mut node = self.atom()?;
        let mut ops = 0;
        loop {
            let (min, max) = match self.peek() {
                Some('?') => {
                    self.at += 1;
                    (0, Some(1))
                }
                Some('*') => {
                    self.at += 1;
                    (0, None)
                }
                Some('+') => {
                    self.at += 1;
                    (1, None)
                }
                Some('{') => {
                    self.at += 1;
                    self.counts()?
                }
                _ => return Ok(node),
            };
            ops += 1;
            if self.depth + ops > MAX_DEPTH {
                return Err(format!("it nests repetitions more than {MAX_DEPTH} deep"));
            }
            node = Node::Repeat(Box::new(node), min, max);
        }
    }

    /// `{n}`, `{n,}` or `{n,m}`, after its `{`.
    fn counts(&mut self) -> Result<(u32, Option<u32>), String> {
        let min = self
            .number()?
            .ok_or_else(|| "a `{` repetition has no count".to_string())?;
        let max = if self.eat(',') {
            self.number()?
        } else {
            Some(min)
        };
        if !self.eat('}') {
            return Err("a `{` repetition is not closed by `}`".to_string());
        }
        if max.is_some_and(|m| m < min) {
            return Err("a `{n,m}` repetition has m less than n".to_string());
        }
        Ok((min, max))
    }

    fn number(&mut self) -> Result<Option<u32>, String> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        if start == self.at {
            return Ok(None);
        }
        let digits = self.since(start);
        digits
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("the count {digits} is too large"))
    }

    /// A character: itself, or the one after a backslash.
    fn char_exp(&mut self) -> Result<char, String> {
        self.eat('\\');
        let c = self
            .peek()
            .ok_or_else(|| "it ends where a character is expected".to_string())?;
        self.at += 1;
        Ok(c)
    }

    fn atom(&mut self) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Err("it ends where an expression is expected".to_string());
        };
        match c {
            '[' => {
                self.at += 1;
                self.class()
            }
            '.' => {
                self.at += 1;
                Ok(Node::Any)
            }
            '@' => {
                self.at += 1;
                Ok(Node::AnyString)
            }
            '#' => Err(
                "`#` (the empty language, which matches nothing) is not supported by Weir \
                 (`\\#` is the character)"
                    .to_string(),
            ),
            '"' => {
                self.at += 1;
                let start = self.at;
                while self.peek().is_some_and(|x| x != '"') {
                    self.at += 1;
                }
                let text = self.since(start);
                if !self.eat('"') {
                    return Err("a `\"` string is not closed".to_string());
                }
                Ok(Node::Text(text))
            }
            '(' => {
                self.at += 1;
                if self.eat(')') {
                    return Ok(Node::Group(Box::new(Node::Text(String::new()))));
                }
                let inner = self.union()?;
                if !self.eat(')') {
                    return Err("a `(` is not closed by `)`".to_string());
                }
                Ok(Node::Group(Box::new(inner)))
            }
            '<' => {
                self.at += 1;
                let start = self.at;
                while self.peek().is_some_and(|x| x != '>') {
                    self.at += 1;
                }
                let name = self.since(start);
                if !self.eat('>') {
                    return Err("a `<` is not closed by `>`".to_string());
                }
                if name.contains('-') {
                    return interval(&name);
                }
                named_class(&name).ok_or_else(|| {
                    format!("`<{name}>` is not a named pattern (the reference's are {NAMES})")
                })
            }
            _ => Ok(Node::Text(self.char_exp()?.to_string())),
        }
    }

    /// A class, after its `[`: its first character is one even if it is `]`, and a `-`
    /// before the `]` is itself.
    fn class(&mut self) -> Result<Node, String> {
        let negated = self.eat('^');
        let mut ranges = Vec::new();
        loop {
            let from = self.class_char()?;
            if self.eat('-') {
                if self.peek() == Some(']') {
                    ranges.push((from, from));
                    ranges.push(('-', '-'));
                } else {
                    let to = self.class_char()?;
                    if to < from {
                        return Err(format!("the class range `{from}-{to}` is backwards"));
                    }
                    ranges.push((from, to));
                }
            } else {
                ranges.push((from, from));
            }
            if self.eat(']') {
                return Ok(Node::Class(ranges, negated));
            }
        }
    }

    fn class_char(&mut self) -> Result<char, String> {
        self.char_exp()
            .map_err(|_| "a `[` is not closed by `]`".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pattern: &str, text: &str) -> Option<Vec<String>> {
        let re = FastRegex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        re.fields(text)
            .map(|f| f.into_iter().map(str::to_string).collect())
    }

    fn row(fields: &[&str]) -> Option<Vec<String>> {
        Some(fields.iter().map(|f| f.to_string()).collect())
    }

    const MARY: &str = "Mary_had_a_little_lamb";
    const MARY4: &str = "Mary____had_a_little_lamb";

    #[test]
    fn the_references_examples() {
        // SQL Reference, FAST_REGEX_LOG_PARSER, First FRLP Example. The reference prints
        // a_little_lamb as COLUMN2, which the pattern cannot give: the `_.*` after the group
        // needs an underscore after it. Java's greedy matcher gives a_little too.
        assert_eq!(
            fields("(.*)_(._.*)_.*", MARY),
            row(&["Mary_had", "a_little"])
        );
        // "If the Fast Regex pattern had omitted the final asterisk, no results would be
        // obtained."
        assert_eq!(fields("(.*)_(._.*)_.", MARY), None);
        // Example A: the first underscore goes to `_+` and, with no going back, `._` then
        // fails on "ha" ("the second will not match").
        assert_eq!(fields("(.*)_+(._.*)", MARY), None);
        // Example B: "the '+' is superfluous because of the lazy semantics": `_*` has nothing
        // after it to end it, so it takes nothing, and the second group takes the other three
        // underscores. (The reference prints had_a_little_lamb, which would make the `+`
        // matter.)
        let b = row(&["Mary", "___had_a_little_lamb"]);
        assert_eq!(fields("(.*)_+(.*)", MARY4), b);
        assert_eq!(fields("(.*)_(.*)", MARY4), b);
        // Example C: "the plus is not superfluous, because the <Alpha> ... is fixed length thus
        // will be used as a delimiter".
        assert_eq!(
            fields("(.*)_+(<Alpha>.*)", MARY4),
            row(&["Mary", "had_a_little_lamb"])
        );
        assert_eq!(
            fields("(.*)_(<Alpha>.*)", MARY4),
            row(&["Mary___", "had_a_little_lamb"])
        );
    }

    #[test]
    fn the_series_is_the_references() {
        // Example A "gets turned into three searches: (.*)_ then _*(._ then .*)".
        let re = FastRegex::new("(.*)_+(._.*)").unwrap();
        type Shape = (Option<Option<usize>>, Vec<(Option<usize>, usize)>);
        let shapes: Vec<Shape> = re.pieces.iter().map(|p| (p.core, p.tail.clone())).collect();
        let want: Vec<Shape> = vec![
            (Some(Some(0)), vec![(None, 1)]),
            (Some(None), vec![(Some(1), 2)]),
            (Some(Some(1)), vec![]),
        ];
        assert_eq!(shapes, want);
        // Example C: '.*_', '_*<Alpha>', '.*$'.
        let re = FastRegex::new("(.*)_+(<Alpha>.*)").unwrap();
        assert_eq!(re.pieces.len(), 3);
        assert_eq!(re.pieces[1].tail, [(Some(1), 1)]);
        // A fixed-length start of the pattern is an expression of its own.
        let re = FastRegex::new("ab(c)(.*)").unwrap();
        assert_eq!(re.pieces.len(), 2);
        assert_eq!(re.pieces[0].core, None);
        assert_eq!(re.pieces[0].tail, [(None, 2), (Some(0), 1)]);
        assert_eq!(fields("ab(c)(.*)", "abcde"), row(&["c", "de"]));
    }

    #[test]
    fn lazy_with_no_going_back() {
        // Each field runs to the first delimiter after it.
        assert_eq!(fields("(.*),(.*),(.*)", "a,b,c,d"), row(&["a", "b", "c,d"]));
        assert_eq!(fields("(.*)(.*)", "abc"), row(&["", "abc"]));
        assert_eq!(fields("(.*)", "abc"), row(&["abc"]));
        assert_eq!(fields("(.*)", ""), row(&[""]));
        // The last expression takes all the rest, or nothing matches.
        assert_eq!(fields("(.*)x", "axbx"), row(&["axb"]));
        assert_eq!(fields("(a*)", "aab"), None);
        // Shortest, not first of the alternatives.
        assert_eq!(fields("(ab|a)(.*)", "abc"), row(&["a", "bc"]));
        assert_eq!(fields("(a|bc)(.*)", "bcd"), row(&["bc", "d"]));
        // A count: its fixed part first, then the least of the rest.
        assert_eq!(fields("(a{2,3})(.*)", "aaaa"), row(&["aa", "aa"]));
        assert_eq!(fields("(<Digit>+) (.*)", "123 abc"), row(&["123", "abc"]));
        assert_eq!(fields("(<Digit>+) (.*)", "x23 abc"), None);
        // `.` and `@` take line breaks and anything else.
        assert_eq!(fields("(.*)x", "a\nbx"), row(&["a\nb"]));
        assert_eq!(fields("(@)!(@)", "é!ü!"), row(&["é", "ü!"]));
        // Characters are counted as characters.
        assert_eq!(fields("(.*)_(..)(.*)", "é_üé€"), row(&["é", "üé", "€"]));
    }

    #[test]
    fn the_syntax_is_the_references() {
        // Strings are as they are, and a backslash makes the next character itself.
        assert_eq!(fields("\"[\"(.*)\"]\"", "[x]"), row(&["x"]));
        assert_eq!(fields("(\\d+)", "ddd"), row(&["ddd"]));
        assert_eq!(fields("(\\d+)", "123"), None);
        assert_eq!(fields("(a\\*)", "a*"), row(&["a*"]));
        assert_eq!(fields("(~+)", "~~"), row(&["~~"]));
        assert_eq!(fields("(.$)", "x$"), row(&["x$"]));
        // Classes: a leading `]` and a trailing `-` are themselves.
        assert_eq!(fields("([]a-]+)", "a]-a"), row(&["a]-a"]));
        assert_eq!(fields("([^,]*),(.*)", "a,b,c"), row(&["a", "b,c"]));
        assert_eq!(fields("([a-c]+)", "abcd"), None);
        // The empty string, as a group.
        assert_eq!(fields("()(.*)", "abc"), row(&["", "abc"]));
        // Named patterns, in any case.
        assert_eq!(
            fields("(<Upper><lower>*)<Space>(<XDigit>+)", "Abc\t0fA"),
            row(&["Abc", "0fA"])
        );
        let punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
        assert_eq!(fields("(<Punct>+)", punct), row(&[punct]));
        assert_eq!(fields("(<Alnum>+)", "a b"), None);
        // Intervals: of as many digits as both ends are written with, or of any number.
        assert_eq!(fields("(<00-59>):(<00-59>)", "07:45"), row(&["07", "45"]));
        assert_eq!(fields("(<00-59>):(<00-59>)", "7:45"), None);
        assert_eq!(fields("(<00-59>):(<00-59>)", "07:60"), None);
        let ip = "(<0-255>)\\.(<0-255>)";
        assert_eq!(fields(ip, "10.255"), row(&["10", "255"]));
        assert_eq!(fields(ip, "007.0"), row(&["007", "0"]));
        assert_eq!(fields(ip, "256.1"), None);
        assert_eq!(fields("(<255-0>)", "199"), row(&["199"]));
        assert_eq!(fields("(<13-27>)", "12"), None);
        assert_eq!(fields("(<13-27>)", "13"), row(&["13"]));
        assert_eq!(fields("(<13-27>)", "27"), row(&["27"]));
        assert_eq!(fields("(<13-27>)", "28"), None);
        assert_eq!(fields("(<5-1000>)", "999"), row(&["999"]));
        assert_eq!(fields("(<5-1000>)", "1001"), None);
        assert_eq!(fields("(<5-1000>)", "4"), None);
    }

    #[test]
    fn what_is_refused() {
        for bad in [
            "abc",
            "",
            "(a)&(b)",
            "(#)",
            "(a)|(b)",
            "a|(b)",
            "((a))",
            "(a)*",
            "(a|(b))",
            "(a",
            "(a))",
            "([a",
            "([b-a])",
            "(\"a)",
            "(<Nope>)",
            "(<1-2-3>)",
            "(<1->)",
            "(<99999999999-1>)",
            "(a{2,1})",
            "(a{)",
            "(a{x})",
            "(a{99999999999})",
            "(a\\",
            "(<Digit)",
        ] {
            assert!(FastRegex::new(bad).is_err(), "{bad}");
        }
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(FastRegex::new(&deep).unwrap_err().contains("deep"));
        let stars = format!("(a{})", "*".repeat(100));
        assert!(FastRegex::new(&stars).unwrap_err().contains("deep"));
        // Leading `)` and `|` are characters, as in dk.brics.automaton.
        assert_eq!(fields("(|a)", "|a"), row(&["|a"]));
    }

    #[test]
    fn no_input_panics() {
        let patterns = [
            "(.)(é*)(<Alpha>)",
            "(é)_(.*)",
            "(<0-9>)(.*)",
            "(.*)(.)",
            "(.*)_(.)_(.*)",
            "()()",
            "(a?b?)(.*?)",
            "(<1-100>)(@)(.)",
            "x(.*)y(..)z",
        ];
        let inputs = [
            "",
            "é",
            "éé_x",
            "_",
            "a\u{10FFFF}b",
            "_é_",
            "x€y€€z",
            "\n",
            "é_é_é",
        ];
        for p in patterns {
            let re = FastRegex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            for i in inputs {
                if let Some(f) = re.fields(i) {
                    assert_eq!(f.len(), re.groups, "{p} {i:?}");
                }
            }
        }
    }
}
