//! Helpers for Weir guests written in Rust.
//!
//! A `weir:plugin` batch is packed: each column (data, partition keys, sequence numbers) is one
//! blob plus a list of end offsets. These functions turn a blob and its ends back into one slice
//! per record, without copying. They take plain slices so that they work with the bindings any
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
}
