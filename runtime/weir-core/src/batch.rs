//! Batches: records column by column, as they move between stages.
//!
//! A batch keeps every record's data back to back in one buffer with an offset per record, and
//! its partition keys and sequence numbers the same way; arrival times are one column, and
//! what few records have (sub-sequence numbers, attributes, dynamic-partitioning values) is
//! kept sparse, by record index. Sources and acks come in runs: consecutive records usually
//! share both. So a batch of any size is a fixed number of allocations, a sink appends its
//! bytes without touching a per-record object, dropping it frees a handful of buffers, and the
//! Wasm adapter copies each column to a guest whole (the layout is `wit/`'s `batch`).
//!
//! The layout converts to Arrow without a copy (offsets start at 0, as Arrow's do), which is
//! how a SQL stage will read it; the core itself does not depend on Arrow, which would put its
//! compile time into every build.
//!
//! Invariants (kept by [`BatchBuilder`], the only way to make a batch):
//! - `offsets`, `keys.ends` and `seqs.ends` each hold `len + 1` entries, start at 0 and never
//!   decrease; `arrival` holds `len`;
//! - the sparse columns are sorted by record index, and every index is below `len`;
//! - `sources` and `acks` are runs: sorted by start, starting at 0 when the batch is not
//!   empty, with no two consecutive runs equal.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::ack::{Ack, Held};
use crate::record::Record;

/// A column of strings, back to back.
#[derive(Debug, Clone, PartialEq)]
struct Strings {
    text: String,
    ends: Vec<u32>,
}

impl Strings {
    fn with_capacity(records: usize) -> Self {
        let mut ends = Vec::with_capacity(records + 1);
        ends.push(0);
        Strings {
            text: String::new(),
            ends,
        }
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(offset(self.text.len()));
    }

    fn get(&self, i: usize) -> &str {
        &self.text[self.ends[i] as usize..self.ends[i + 1] as usize]
    }
}

/// An offset into a batch's buffers. A batch holds less than 4 GiB (batches are cut at a few
/// MiB, and a single Kinesis record is at most 10 MiB).
fn offset(n: usize) -> u32 {
    u32::try_from(n).expect("a batch holds less than 4 GiB")
}

/// The source of records pushed before any was named, shared: an empty batch costs no
/// allocation for it.
fn unnamed() -> Arc<str> {
    static UNNAMED: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    UNNAMED.get_or_init(|| Arc::from("")).clone()
}

/// Records, column by column (see the module docs).
///
/// The columns sit behind one box: a batch is a pointer wide where it waits in a channel (a
/// channel allocates its slots in blocks of 32, and an unboxed batch made each pipeline's three
/// channels some 30 KB larger), at the price of one allocation per batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch(Box<Columns>);

/// What a [`Batch`] holds (and, with its data still growing, what a [`BatchBuilder`] fills);
/// reached only through their methods.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq)]
pub struct Columns<D = Bytes> {
    data: D,
    offsets: Vec<u32>,
    keys: Strings,
    /// An empty sequence number stands for none: no source gives an empty one.
    seqs: Strings,
    arrival: Vec<i64>,
    sub_seqs: Vec<(u32, u64)>,
    sources: Vec<(u32, Arc<str>)>,
    attributes: Vec<(u32, String, String)>,
    partition_values: Vec<(u32, String, String)>,
    acks: Vec<(u32, Ack)>,
}

impl std::ops::Deref for Batch {
    type Target = Columns;
    fn deref(&self) -> &Columns {
        &self.0
    }
}

impl std::ops::DerefMut for Batch {
    fn deref_mut(&mut self) -> &mut Columns {
        &mut self.0
    }
}

impl Default for Batch {
    fn default() -> Self {
        BatchBuilder::new().finish()
    }
}

/// Data offsets that do not fit the records they are for, or the data they cut (what a guest
/// answered, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadOffsets(String);

/// The index of the run that record `i` belongs to.
fn run_of<T>(runs: &[(u32, T)], i: usize) -> usize {
    runs.partition_point(|(start, _)| *start as usize <= i) - 1
}

/// The entries of a sparse column that belong to record `i`.
fn sparse<T>(column: &[(u32, T)], i: usize) -> &[(u32, T)] {
    let from = column.partition_point(|(at, _)| (*at as usize) < i);
    let to = from + column[from..].partition_point(|(at, _)| *at as usize == i);
    &column[from..to]
}

/// As [`sparse`], for the columns of pairs.
fn sparse3(column: &[(u32, String, String)], i: usize) -> &[(u32, String, String)] {
    let from = column.partition_point(|(at, ..)| (*at as usize) < i);
    let to = from + column[from..].partition_point(|(at, ..)| *at as usize == i);
    &column[from..to]
}

impl Batch {
    pub fn len(&self) -> usize {
        self.arrival.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arrival.is_empty()
    }

    /// Every record's data, back to back.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Bytes of record data.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Where each record's data starts in [`Batch::data`], and where the last one ends
    /// (`len + 1` entries, from 0).
    pub fn offsets(&self) -> &[u32] {
        &self.offsets
    }

    pub fn get(&self, i: usize) -> RecordRef<'_> {
        assert!(i < self.len(), "record {i} of a batch of {}", self.len());
        RecordRef { batch: self, i }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'_>> + '_ {
        (0..self.len()).map(move |i| RecordRef { batch: self, i })
    }

    /// The runs of records that share an ack: `(first index, ack)`.
    pub fn ack_runs(&self) -> &[(u32, Ack)] {
        &self.acks
    }

    /// The runs of records that came from the same source: `(first index, source)`.
    pub fn source_runs(&self) -> &[(u32, Arc<str>)] {
        &self.sources
    }

    /// Every record's partition key, back to back, and the offsets that cut it (as
    /// [`Batch::offsets`]).
    pub fn key_column(&self) -> (&str, &[u32]) {
        (&self.keys.text, &self.keys.ends)
    }

    /// As [`Batch::key_column`], for sequence numbers (an empty one means none).
    pub fn sequence_column(&self) -> (&str, &[u32]) {
        (&self.seqs.text, &self.seqs.ends)
    }

    pub fn arrival_column(&self) -> &[i64] {
        &self.arrival
    }

    /// `(record index, sub-sequence number)`, sorted by index.
    pub fn sub_sequence_column(&self) -> &[(u32, u64)] {
        &self.sub_seqs
    }

    /// `(record index, key, value)`, sorted by index.
    pub fn attribute_column(&self) -> &[(u32, String, String)] {
        &self.attributes
    }

    /// `(record index, name, value)`, sorted by index.
    pub fn partition_value_column(&self) -> &[(u32, String, String)] {
        &self.partition_values
    }

    /// The newest arrival time in the batch.
    pub fn newest_arrival_ms(&self) -> Option<i64> {
        self.arrival.iter().copied().max()
    }

    /// Holds every ack of the batch in `held` (one per run).
    pub fn hold_acks(&self, held: &mut Held) {
        for (_, ack) in &self.acks {
            held.hold(ack);
        }
    }

    /// Holds the acks of records `range` in `held`.
    pub fn hold_acks_of(&self, range: Range<usize>, held: &mut Held) {
        if range.is_empty() {
            return;
        }
        let first = run_of(&self.acks, range.start);
        for (start, ack) in &self.acks[first..] {
            if *start as usize >= range.end {
                break;
            }
            held.hold(ack);
        }
    }

    /// Marks every ack of the batch failed.
    pub fn fail_acks(&self) {
        self.acks.iter().for_each(|(_, ack)| ack.fail());
    }

    /// Gives every record of the batch `ack`, in place of what they carried (`Ack::none()`
    /// lets go of them: the records were handed over in another form).
    pub fn set_ack(&mut self, ack: Ack) {
        self.acks.clear();
        if !self.is_empty() {
            self.acks.push((0, ack));
        }
    }

    /// Gives the records new data, every other column kept: record `i`'s data becomes
    /// `data[ends[i - 1]..ends[i]]` (from 0 for the first). What a record-for-record transform
    /// answered, taken over without a copy; bytes past the last end are not kept.
    pub fn replace_data(&mut self, data: Bytes, ends: &[u32]) -> Result<(), BadOffsets> {
        if ends.len() != self.len() {
            return Err(BadOffsets(format!(
                "{} data offsets for {} records",
                ends.len(),
                self.len()
            )));
        }
        let mut last = 0;
        for &e in ends {
            if e < last || e as usize > data.len() {
                return Err(BadOffsets(format!(
                    "data offset {e} is out of order or past the data's {} bytes",
                    data.len()
                )));
            }
            last = e;
        }
        self.offsets.truncate(1);
        self.offsets[0] = 0;
        self.offsets.extend_from_slice(ends);
        self.data = data.slice(..last as usize);
        Ok(())
    }

    /// Records `range` as a batch of their own; the data is shared, not copied.
    pub fn slice(&self, range: Range<usize>) -> Batch {
        if range.start == 0 && range.end == self.len() {
            return self.clone();
        }
        let mut b = BatchBuilder::with_capacity(range.len(), 0);
        b.append_columns(self, range.clone(), false);
        let mut slice = b.finish();
        let (d0, d1) = (self.offsets[range.start], self.offsets[range.end]);
        slice.data = self.data.slice(d0 as usize..d1 as usize);
        slice.offsets = self.offsets[range.start..=range.end]
            .iter()
            .map(|o| o - d0)
            .collect();
        slice
    }

    /// Every record as a [`Record`] of its own (for components that keep records one by one).
    pub fn into_records(self) -> Vec<Record> {
        self.iter().map(|r| r.to_record()).collect()
    }

    /// One batch of `batches`, in order.
    pub fn concat(mut batches: Vec<Batch>) -> Batch {
        batches.retain(|b| !b.is_empty());
        if batches.len() <= 1 {
            return batches.pop().unwrap_or_default();
        }
        let records = batches.iter().map(Batch::len).sum();
        let bytes = batches.iter().map(Batch::data_len).sum();
        let mut b = BatchBuilder::with_capacity(records, bytes);
        for batch in &batches {
            b.append(batch, 0..batch.len());
        }
        b.finish()
    }
}

impl From<Vec<Record>> for Batch {
    fn from(records: Vec<Record>) -> Batch {
        let bytes = records.iter().map(|r| r.data.len()).sum();
        let mut b = BatchBuilder::with_capacity(records.len(), bytes);
        for r in records {
            b.push_record(r);
        }
        b.finish()
    }
}

/// One record of a batch.
#[derive(Clone, Copy)]
pub struct RecordRef<'a> {
    batch: &'a Batch,
    i: usize,
}

impl std::fmt::Debug for RecordRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordRef")
            .field("index", &self.i)
            .field("data", &String::from_utf8_lossy(self.data()))
            .field("key", &self.key())
            .field("sequence_number", &self.sequence_number())
            .finish()
    }
}

impl<'a> RecordRef<'a> {
    /// Its index in the batch.
    pub fn index(&self) -> usize {
        self.i
    }

    fn range(&self) -> Range<usize> {
        let o = &self.batch.offsets;
        o[self.i] as usize..o[self.i + 1] as usize
    }

    pub fn data(&self) -> &'a [u8] {
        &self.batch.data[self.range()]
    }

    /// The data as a handle on the batch's buffer, without a copy.
    pub fn data_bytes(&self) -> Bytes {
        self.batch.data.slice(self.range())
    }

    pub fn key(&self) -> &'a str {
        self.batch.keys.get(self.i)
    }

    pub fn sequence_number(&self) -> Option<&'a str> {
        Some(self.batch.seqs.get(self.i)).filter(|s| !s.is_empty())
    }

    pub fn sub_sequence_number(&self) -> Option<u64> {
        sparse(&self.batch.sub_seqs, self.i)
            .first()
            .map(|(_, n)| *n)
    }

    pub fn arrival_ms(&self) -> i64 {
        self.batch.arrival[self.i]
    }

    pub fn source(&self) -> &'a Arc<str> {
        &self.batch.sources[run_of(&self.batch.sources, self.i)].1
    }

    pub fn ack(&self) -> &'a Ack {
        &self.batch.acks[run_of(&self.batch.acks, self.i)].1
    }

    /// `(key, value)` pairs.
    pub fn attributes(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        sparse3(&self.batch.attributes, self.i)
            .iter()
            .map(|(_, k, v)| (k.as_str(), v.as_str()))
    }

    /// `(name, value)` pairs.
    pub fn partition_values(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        sparse3(&self.batch.partition_values, self.i)
            .iter()
            .map(|(_, k, v)| (k.as_str(), v.as_str()))
    }

    /// Names the record in messages: its source and sequence number.
    pub fn describe(&self) -> String {
        match self.sequence_number() {
            Some(seq) => format!("{} #{seq}", self.source()),
            None => self.source().to_string(),
        }
    }

    /// The record on its own (its data shared, not copied).
    pub fn to_record(&self) -> Record {
        Record {
            data: self.data_bytes(),
            partition_key: if self.key().is_empty() {
                crate::record::no_key()
            } else {
                Arc::from(self.key())
            },
            sequence_number: self.sequence_number().map(str::to_string),
            sub_sequence_number: self.sub_sequence_number(),
            arrival_ms: self.arrival_ms(),
            source: self.source().clone(),
            attributes: self
                .attributes()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            partition_values: self
                .partition_values()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ack: self.ack().clone(),
        }
    }
}

/// What a record has besides its data, for [`BatchBuilder::push`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta<'a> {
    pub key: &'a str,
    pub sequence_number: Option<&'a str>,
    pub sub_sequence_number: Option<u64>,
    pub arrival_ms: i64,
}

/// Makes a batch, record by record or from slices of other batches.
#[derive(Debug)]
pub struct BatchBuilder {
    c: Columns<BytesMut>,
    /// The source and ack of the records pushed from now on.
    source: Arc<str>,
    ack: Ack,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder::new()
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        BatchBuilder::with_capacity(0, 0)
    }

    /// Room for `records` records of `bytes` bytes of data in all.
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(records + 1);
        offsets.push(0);
        BatchBuilder {
            c: Columns {
                data: BytesMut::with_capacity(bytes),
                offsets,
                keys: Strings::with_capacity(records),
                seqs: Strings::with_capacity(records),
                arrival: Vec::with_capacity(records),
                sub_seqs: Vec::new(),
                sources: Vec::new(),
                attributes: Vec::new(),
                partition_values: Vec::new(),
                acks: Vec::new(),
            },
            source: unnamed(),
            ack: Ack::none(),
        }
    }

    pub fn len(&self) -> usize {
        self.c.arrival.len()
    }

    pub fn is_empty(&self) -> bool {
        self.c.arrival.is_empty()
    }

    /// Bytes of data so far.
    pub fn data_len(&self) -> usize {
        self.c.data.len()
    }

    /// The records pushed from now on came from `source`.
    pub fn set_source(&mut self, source: Arc<str>) {
        self.source = source;
    }

    /// The records pushed from now on carry `ack`.
    pub fn set_ack(&mut self, ack: Ack) {
        self.ack = ack;
    }

    /// As [`BatchBuilder::set_source`] and [`BatchBuilder::set_ack`] for records copied one by
    /// one, cloning only where they change: records in a row usually share both, and a clone
    /// is an atomic increment (and its drop a decrement) per record otherwise.
    fn carry(&mut self, source: &Arc<str>, ack: &Ack) {
        if !Arc::ptr_eq(&self.source, source) {
            self.source = source.clone();
        }
        if !self.ack.same(ack) {
            self.ack = ack.clone();
        }
    }

    fn start_record(&mut self) -> u32 {
        let i = offset(self.len());
        if self
            .c
            .sources
            .last()
            .is_none_or(|(_, s)| !Arc::ptr_eq(s, &self.source))
        {
            self.c.sources.push((i, self.source.clone()));
        }
        if self.c.acks.last().is_none_or(|(_, a)| !a.same(&self.ack)) {
            self.c.acks.push((i, self.ack.clone()));
        }
        i
    }

    /// Adds a record; returns its index.
    pub fn push(&mut self, data: &[u8], meta: Meta<'_>) -> usize {
        let i = self.start_record();
        self.c.data.extend_from_slice(data);
        self.c.offsets.push(offset(self.c.data.len()));
        self.c.keys.push(meta.key);
        self.c.seqs.push(meta.sequence_number.unwrap_or(""));
        self.c.arrival.push(meta.arrival_ms);
        if let Some(n) = meta.sub_sequence_number {
            self.c.sub_seqs.push((i, n));
        }
        i as usize
    }

    /// Adds an attribute to the record last pushed.
    pub fn attribute(&mut self, key: &str, value: &str) {
        let i = offset(self.len().checked_sub(1).expect("a record was pushed"));
        self.c.attributes.push((i, key.into(), value.into()));
    }

    /// Adds a dynamic-partitioning value to the record last pushed.
    pub fn partition_value(&mut self, name: &str, value: &str) {
        let i = offset(self.len().checked_sub(1).expect("a record was pushed"));
        self.c.partition_values.push((i, name.into(), value.into()));
    }

    /// Adds a record made on its own, with everything it carries.
    pub fn push_record(&mut self, r: Record) {
        self.carry(&r.source, &r.ack);
        self.push(
            &r.data,
            Meta {
                key: &r.partition_key,
                sequence_number: r.sequence_number.as_deref(),
                sub_sequence_number: r.sub_sequence_number,
                arrival_ms: r.arrival_ms,
            },
        );
        for (k, v) in &r.attributes {
            self.attribute(k, v);
        }
        for (k, v) in &r.partition_values {
            self.partition_value(k, v);
        }
    }

    /// Adds record `i` of `batch` with everything it carries, but with `data` for its data
    /// (what a transform made of it), and `key` and `partition_values` in place of its own
    /// when given; returns the new record's index.
    pub fn push_derived(
        &mut self,
        batch: &Batch,
        i: usize,
        data: &[u8],
        key: Option<&str>,
        partition_values: Option<&[(String, String)]>,
    ) -> usize {
        let r = batch.get(i);
        self.carry(r.source(), r.ack());
        let at = self.push(
            data,
            Meta {
                key: key.unwrap_or(r.key()),
                sequence_number: r.sequence_number(),
                sub_sequence_number: r.sub_sequence_number(),
                arrival_ms: r.arrival_ms(),
            },
        );
        for (k, v) in r.attributes() {
            self.attribute(k, v);
        }
        match partition_values {
            Some(values) => values.iter().for_each(|(k, v)| self.partition_value(k, v)),
            None => r
                .partition_values()
                .for_each(|(k, v)| self.partition_value(k, v)),
        }
        at
    }

    /// Adds records `range` of `batch`, column by column.
    pub fn append(&mut self, batch: &Batch, range: Range<usize>) {
        self.append_columns(batch, range, true);
    }

    /// As [`BatchBuilder::append`]; without `data`, every column but the data and its
    /// offsets (which the caller sets).
    fn append_columns(&mut self, batch: &Batch, range: Range<usize>, data: bool) {
        if range.is_empty() {
            return;
        }
        let base = offset(self.len());
        let (from, to) = (range.start, range.end);
        // The runs the range's records are in, rebased; the builder goes on with the last.
        for (start, s) in &batch.sources[run_of(&batch.sources, from)..] {
            if *start as usize >= to {
                break;
            }
            let at = base + (*start as usize).saturating_sub(from) as u32;
            if self
                .c
                .sources
                .last()
                .is_none_or(|(_, last)| !Arc::ptr_eq(last, s))
            {
                self.c.sources.push((at, s.clone()));
            }
            self.source = s.clone();
        }
        for (start, a) in &batch.acks[run_of(&batch.acks, from)..] {
            if *start as usize >= to {
                break;
            }
            let at = base + (*start as usize).saturating_sub(from) as u32;
            if self.c.acks.last().is_none_or(|(_, last)| !last.same(a)) {
                self.c.acks.push((at, a.clone()));
            }
            self.ack = a.clone();
        }
        if data {
            let o = &batch.offsets;
            let (d0, d1) = (o[from] as usize, o[to] as usize);
            let shift = offset(self.c.data.len()) as i64 - d0 as i64;
            self.c.data.extend_from_slice(&batch.data[d0..d1]);
            self.c
                .offsets
                .extend(o[from + 1..=to].iter().map(|e| (*e as i64 + shift) as u32));
        }
        for (mine, theirs) in [
            (&mut self.c.keys, &batch.keys),
            (&mut self.c.seqs, &batch.seqs),
        ] {
            let (s0, s1) = (theirs.ends[from] as usize, theirs.ends[to] as usize);
            let shift = offset(mine.text.len()) as i64 - s0 as i64;
            mine.text.push_str(&theirs.text[s0..s1]);
            mine.ends.extend(
                theirs.ends[from + 1..=to]
                    .iter()
                    .map(|e| (*e as i64 + shift) as u32),
            );
        }
        self.c.arrival.extend_from_slice(&batch.arrival[from..to]);
        let rebase = |at: u32| base + (at - from as u32);
        let within = |at: &u32| (from..to).contains(&(*at as usize));
        self.c.sub_seqs.extend(
            batch
                .sub_seqs
                .iter()
                .filter(|(at, _)| within(at))
                .map(|(at, n)| (rebase(*at), *n)),
        );
        for (mine, theirs) in [
            (&mut self.c.attributes, &batch.attributes),
            (&mut self.c.partition_values, &batch.partition_values),
        ] {
            mine.extend(
                theirs
                    .iter()
                    .filter(|(at, ..)| within(at))
                    .map(|(at, k, v)| (rebase(*at), k.clone(), v.clone())),
            );
        }
    }

    /// The batch. Its data is frozen in place, not copied.
    pub fn finish(self) -> Batch {
        let c = self.c;
        Batch(Box::new(Columns {
            data: c.data.freeze(),
            offsets: c.offsets,
            keys: c.keys,
            seqs: c.seqs,
            arrival: c.arrival,
            sub_seqs: c.sub_seqs,
            sources: c.sources,
            attributes: c.attributes,
            partition_values: c.partition_values,
            acks: c.acks,
        }))
    }

    /// As [`BatchBuilder::finish`], with `data` (and its offsets) given whole instead of
    /// pushed: what a transform answered, taken over without a copy. `ends` holds each
    /// record's end in `data` (bytes past the last end are not kept); the records' other
    /// columns must have been pushed with empty data.
    pub fn finish_with_data(self, data: Bytes, ends: &[u32]) -> Result<Batch, BadOffsets> {
        let mut batch = self.finish();
        batch.replace_data(data, ends)?;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::{Acker, Poison};

    fn record(data: &str, key: &str, seq: Option<&str>, source: &Arc<str>) -> Record {
        let mut r = Record::new(data.as_bytes().to_vec(), source.clone(), 7);
        r.partition_key = Arc::from(key);
        r.sequence_number = seq.map(str::to_string);
        r
    }

    #[test]
    fn records_round_trip_through_a_batch() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("file:a"), Arc::from("file:b"));
        let mut one = record("first", "k1", Some("1"), &a);
        one.attributes.push(("x".into(), "1".into()));
        one.sub_sequence_number = Some(3);
        let two = record("", "", None, &a);
        let mut three = record("third", "k3", Some("3"), &b);
        three
            .partition_values
            .push(("customer".into(), "c7".into()));
        let records = vec![one, two, three];
        let batch = Batch::from(records.clone());
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.data_len(), 10);
        assert_eq!(batch.source_runs().len(), 2);
        assert_eq!(batch.into_records(), records);
    }

    #[test]
    fn a_slice_shares_the_data_and_keeps_every_column() {
        let s: Arc<str> = Arc::from("gen");
        let records: Vec<Record> = (0..10)
            .map(|n| {
                let mut r = record(&format!("r{n}"), &format!("k{n}"), Some(&n.to_string()), &s);
                if n % 3 == 0 {
                    r.attributes.push(("n".into(), n.to_string()));
                }
                r
            })
            .collect();
        let batch = Batch::from(records.clone());
        let slice = batch.slice(4..8);
        let from = batch.offsets()[4] as usize;
        assert_eq!(
            slice.data().as_ptr(),
            batch.data()[from..].as_ptr(),
            "a slice shares the batch's data"
        );
        assert_eq!(slice.into_records(), records[4..8].to_vec());
        let parts = vec![batch.slice(0..3), batch.slice(3..3), batch.slice(3..10)];
        assert_eq!(Batch::concat(parts), batch);
    }

    #[test]
    fn acks_come_in_runs_and_are_held_once_per_run() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let acker = Acker::new(tx, Poison::default());
        let s: Arc<str> = Arc::from("k");
        let mut b = BatchBuilder::new();
        b.set_source(s);
        for token in [1, 2] {
            b.set_ack(acker.ack(token));
            for _ in 0..3 {
                b.push(b"x", Meta::default());
            }
        }
        b.set_ack(Ack::none());
        let batch = b.finish();
        assert_eq!(batch.ack_runs().len(), 2);
        assert!(batch.get(2).ack().same(&batch.ack_runs()[0].1));
        let mut held = Held::default();
        batch.slice(4..6).hold_acks(&mut held);
        drop(batch);
        let first = rx.try_recv().expect("the first run is let go");
        assert_eq!(first.token, 1);
        assert!(
            rx.try_recv().is_err(),
            "the slice's buffer holds the second"
        );
        held.release();
        assert_eq!(rx.try_recv().unwrap().token, 2);
    }

    #[test]
    fn data_given_whole_is_checked_against_its_offsets() {
        let s: Arc<str> = Arc::from("t");
        let input = Batch::from(vec![record("a", "k", None, &s), record("b", "k", None, &s)]);
        let build = |ends: &[u32], data: &'static [u8]| {
            let mut b = BatchBuilder::new();
            for i in 0..2 {
                b.push_derived(&input, i, b"", None, None);
            }
            b.finish_with_data(Bytes::from_static(data), ends)
        };
        let out = build(&[3, 5], b"AAABB").expect("well formed");
        assert_eq!(out.get(0).data(), b"AAA");
        assert_eq!(out.get(1).data(), b"BB");
        assert_eq!(out.get(1).key(), "k");
        assert!(build(&[3], b"AAA").is_err(), "one offset for two records");
        assert!(build(&[3, 2], b"AAA").is_err(), "offsets go back");
        assert!(build(&[3, 9], b"AAABB").is_err(), "past the data");
        let short = build(&[1, 2], b"AAABB").expect("bytes past the last end are left out");
        assert_eq!(short.data().as_ref(), b"AA");
    }
}
