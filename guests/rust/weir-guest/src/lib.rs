//! Helpers for Weir guests written in Rust.
//!
//! A `weir:plugin` batch is packed: each column (data, partition keys, sequence numbers) is one
//! blob plus a list of end offsets; so is a transform's answer. [`slices`] turns a blob and its
//! ends back into one slice per record without copying, and [`Packer`] builds the answer's blob.
//!
//! SQL functions (the `sql-udf` world) get and return columns packed the same way: strings as
//! `texts { data, ends }`, which [`str_slices`] reads and [`TextPacker`] builds, and NULLs as an
//! ascending list of rows, which [`null_flags`], [`any_null`] and [`check_nulls`] work with.
//!
//! They use plain slices and vectors so that they work with the bindings any
//! `wit_bindgen::generate!` call produces.

use std::ops::Range;

/// The byte range of each record in a blob, given the blob's end offsets.
pub fn spans(ends: &[u32]) -> impl ExactSizeIterator<Item = Range<usize>> + '_ {
    let mut start = 0usize;
    ends.iter().map(move |&end| {
        let range = start..end as usize;
        start = end as usize;
        range
    })
}

/// Each record's bytes in `blob` (e.g. `batch.data` with `batch.data_ends`).
pub fn slices<'a>(blob: &'a [u8], ends: &'a [u32]) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
    spans(ends).map(move |r| &blob[r])
}

/// Each record's text in `blob` (e.g. `batch.keys` with `batch.key_ends`). Offsets always fall
/// on character boundaries, since the host packs whole strings.
pub fn str_slices<'a>(
    blob: &'a str,
    ends: &'a [u32],
) -> impl ExactSizeIterator<Item = &'a str> + 'a {
    spans(ends).map(move |r| &blob[r])
}

/// Builds the packed output of a transform: `data` and `data_ends` of `transformed`.
#[derive(Debug, Default)]
pub struct Packer {
    pub data: Vec<u8>,
    pub ends: Vec<u32>,
}

impl Packer {
    /// Room for `records` records of about `bytes` bytes in all.
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        Packer {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(records),
        }
    }

    /// Appends one output record.
    pub fn push(&mut self, record: &[u8]) {
        self.data.extend_from_slice(record);
        self.ends.push(self.data.len() as u32);
    }

    /// Appends one output record that `write` writes in place, so that it is never copied. If
    /// `write` fails, whatever it wrote is discarded and no record is added.
    pub fn push_with<E>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.data.len();
        match write(&mut self.data) {
            Ok(()) => {
                self.ends.push(self.data.len() as u32);
                Ok(())
            }
            Err(e) => {
                self.data.truncate(start);
                Err(e)
            }
        }
    }
}

/// Builds a packed column of strings: `data` and `ends` of a `texts` record (the `sql-udf`
/// world), or of a batch's keys.
#[derive(Debug, Default)]
pub struct TextPacker {
    pub data: String,
    pub ends: Vec<u32>,
}

impl TextPacker {
    /// Room for `values` strings of about `bytes` bytes in all.
    pub fn with_capacity(values: usize, bytes: usize) -> Self {
        TextPacker {
            data: String::with_capacity(bytes),
            ends: Vec::with_capacity(values),
        }
    }

    /// Appends one string.
    pub fn push(&mut self, value: &str) {
        self.data.push_str(value);
        self.ends.push(self.data.len() as u32);
    }

    /// Appends one string that `write` appends to `data` in place, so that it is never built
    /// on its own. `write` must only append.
    pub fn push_with(&mut self, write: impl FnOnce(&mut String)) {
        write(&mut self.data);
        self.ends.push(self.data.len() as u32);
    }

    /// How many strings there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// Whether each of `rows` rows is NULL, given a column's `nulls` (the NULL rows, ascending).
pub fn null_flags(nulls: &[u32], rows: usize) -> impl ExactSizeIterator<Item = bool> + '_ {
    let mut next = nulls.iter().copied().peekable();
    (0..rows).map(move |row| {
        // Skips anything below `row` (repeats, if the list has any), then takes `row` itself.
        while next.next_if(|&n| (n as usize) < row).is_some() {}
        next.next_if(|&n| n as usize == row).is_some()
    })
}

/// The rows that are NULL in any of `columns` (each a column's `nulls`), ascending and without
/// repeats: the `nulls` of a function that is NULL when any argument is.
pub fn any_null(columns: &[&[u32]]) -> Vec<u32> {
    let mut with_nulls = columns.iter().filter(|nulls| !nulls.is_empty());
    match (with_nulls.next(), with_nulls.next()) {
        (None, _) => Vec::new(),
        (Some(only), None) => only.to_vec(),
        _ => {
            let mut all: Vec<u32> = columns.concat();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

/// Checks a column's `nulls` against its row count: ascending, no repeats, all below `rows`.
pub fn check_nulls(nulls: &[u32], rows: usize) -> Result<(), String> {
    if let Some(pair) = nulls.windows(2).find(|pair| pair[0] >= pair[1]) {
        return Err(format!(
            "NULL rows are not ascending: {} after {}",
            pair[1], pair[0]
        ));
    }
    match nulls.last() {
        Some(&last) if last as usize >= rows => Err(format!(
            "NULL row {last} is out of range: there are {rows} rows"
        )),
        _ => Ok(()),
    }
}

/// Checks end offsets against the blob they slice (`len` bytes): never decreasing and within
/// it, so that [`slices`] cannot panic.
pub fn check_ends(len: usize, ends: &[u32]) -> Result<(), String> {
    check_offsets(len, ends, |_| true)
}

/// Checks end offsets against the text they slice as [`check_ends`] does, and that each falls on
/// a character boundary, so that [`str_slices`] cannot panic.
pub fn check_str_ends(text: &str, ends: &[u32]) -> Result<(), String> {
    check_offsets(text.len(), ends, |end| text.is_char_boundary(end))
}

fn check_offsets(
    len: usize,
    ends: &[u32],
    on_boundary: impl Fn(usize) -> bool,
) -> Result<(), String> {
    let mut start = 0usize;
    for (i, &end) in ends.iter().enumerate() {
        let end = end as usize;
        if end < start || end > len {
            return Err(format!(
                "value {i} ends at byte {end}, outside {start}..={len}"
            ));
        }
        if !on_boundary(end) {
            return Err(format!("value {i} ends at byte {end}, inside a character"));
        }
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_split_a_blob_at_its_ends() {
        let got: Vec<&[u8]> = slices(b"abcdef", &[1, 1, 4, 6]).collect();
        assert_eq!(got, vec![&b"a"[..], b"", b"bcd", b"ef"]);
        let keys: Vec<&str> = str_slices("kéy2", &[3, 5]).collect();
        assert_eq!(keys, vec!["ké", "y2"]);
    }

    #[test]
    fn packer_appends_records_and_discards_failed_writes() {
        let mut p = Packer::default();
        p.push(b"ab");
        let failed: Result<(), ()> = p.push_with(|buf| {
            buf.extend_from_slice(b"half");
            Err(())
        });
        assert!(failed.is_err());
        p.push_with::<()>(|buf| {
            buf.extend_from_slice(b"cde");
            Ok(())
        })
        .unwrap();
        assert_eq!(
            (p.data.as_slice(), p.ends.as_slice()),
            (&b"abcde"[..], &[2, 5][..])
        );
        assert_eq!(
            slices(&p.data, &p.ends).collect::<Vec<_>>(),
            vec![&b"ab"[..], b"cde"]
        );
    }

    #[test]
    fn text_packer_builds_texts_that_str_slices_reads_back() {
        let mut p = TextPacker::with_capacity(3, 8);
        p.push("é");
        p.push("");
        p.push_with(|buf| buf.extend("ab".chars().map(|c| c.to_ascii_uppercase())));
        assert_eq!(
            (p.data.as_str(), p.ends.as_slice()),
            ("éAB", &[2, 2, 4][..])
        );
        assert_eq!(p.len(), 3);
        assert!(!p.is_empty() && TextPacker::default().is_empty());
        assert_eq!(
            str_slices(&p.data, &p.ends).collect::<Vec<_>>(),
            vec!["é", "", "AB"]
        );
        assert!(check_str_ends(&p.data, &p.ends).is_ok());
    }

    #[test]
    fn null_lists_become_flags_and_unions() {
        let flags: Vec<bool> = null_flags(&[0, 2, 3], 5).collect();
        assert_eq!(flags, vec![true, false, true, true, false]);
        assert_eq!(null_flags(&[], 3).collect::<Vec<_>>(), vec![false; 3]);
        assert_eq!(null_flags(&[1, 1, 9], 3).len(), 3);
        assert_eq!(
            null_flags(&[1, 1, 9], 3).collect::<Vec<_>>(),
            vec![false, true, false]
        );

        assert_eq!(any_null(&[]), Vec::<u32>::new());
        assert_eq!(any_null(&[&[], &[]]), Vec::<u32>::new());
        assert_eq!(any_null(&[&[], &[1, 4]]), vec![1, 4]);
        assert_eq!(any_null(&[&[0, 4], &[], &[1, 4], &[7]]), vec![0, 1, 4, 7]);
    }

    #[test]
    fn checks_refuse_what_would_panic() {
        assert!(check_nulls(&[], 0).is_ok());
        assert!(check_nulls(&[0, 3], 4).is_ok());
        assert!(check_nulls(&[3, 3], 4)
            .unwrap_err()
            .contains("not ascending"));
        assert!(check_nulls(&[4], 4).unwrap_err().contains("out of range"));

        assert!(check_ends(3, &[0, 2, 3]).is_ok());
        assert!(check_ends(3, &[2, 1]).unwrap_err().contains("outside"));
        assert!(check_ends(3, &[4]).unwrap_err().contains("outside"));
        assert!(check_str_ends("ké", &[1, 3]).is_ok());
        assert!(check_str_ends("ké", &[2, 3])
            .unwrap_err()
            .contains("inside a character"));
    }
}
