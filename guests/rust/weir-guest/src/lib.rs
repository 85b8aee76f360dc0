//! Helpers for Weir guests written in Rust.
//!
//! A `weir:plugin` batch is packed: each column (data, partition keys, sequence numbers) is one
//! blob plus a list of end offsets; so is a transform's answer. [`slices`] turns a blob and its
//! ends back into one slice per record without copying, and [`Packer`] builds the answer's blob.
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
}
