//! KPL de-aggregation of arbitrary record data: never a panic, never a key over Kinesis's
//! limit, and what it reads is what an aggregate of the same records reads back. Inputs get the
//! magic and a valid MD5 half the time, so that the fuzzer reaches the protobuf parser. (The
//! record-count and expanded-size caps need inputs far over the fuzzer's length limit: unit
//! tests in `kpl.rs` hit them.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::source::kinesis::kpl;

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
        assert!(records
            .iter()
            .all(|r| r.partition_key.chars().count() <= kpl::MAX_KEY_CHARS));
        let mut keys: Vec<&str> = Vec::new();
        let mut entries = Vec::new();
        for r in &records {
            let i = match keys.iter().position(|k| *k == &*r.partition_key) {
                Some(i) => i,
                None => {
                    keys.push(&r.partition_key);
                    keys.len() - 1
                }
            };
            entries.push((i as u64, &r.data[..]));
        }
        let again = bytes::Bytes::from(kpl::aggregate(&keys, &entries));
        let back = kpl::deaggregate(&again)
            .expect("an aggregate of what was read reads back")
            .expect("it is an aggregate");
        assert_eq!(back.len(), records.len());
        for (a, b) in back.iter().zip(&records) {
            assert_eq!(a.partition_key, b.partition_key);
            assert_eq!(a.data, b.data);
        }
    }
});
