//! KPL de-aggregation of arbitrary record data: never a panic, and never more user records,
//! or expanded bytes, than the limits allow. Inputs get the magic and a valid MD5 half the
//! time, so that the fuzzer reaches the protobuf parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::source::kpl;

fuzz_target!(|data: &[u8]| {
    let input = if data.first().is_some_and(|b| b & 1 == 1) {
        use md5::Digest;
        let body = &data[1..];
        let mut v = kpl::MAGIC.to_vec();
        v.extend_from_slice(body);
        v.extend_from_slice(&md5::Md5::digest(body));
        v
    } else {
        data.to_vec()
    };
    let input = bytes::Bytes::from(input);
    if let Ok(Some(records)) = kpl::deaggregate(&input) {
        assert!(records.len() <= kpl::MAX_USER_RECORDS);
        let expanded: usize = records
            .iter()
            .map(|r| r.data.len() + r.partition_key.len())
            .sum();
        assert!(expanded <= kpl::MAX_EXPANDED_BYTES);
        assert!(records
            .iter()
            .all(|r| r.partition_key.chars().count() <= kpl::MAX_KEY_CHARS));
    }
});
