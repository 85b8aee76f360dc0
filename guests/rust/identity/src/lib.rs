//! `identity`: returns every record unchanged. `weir bench` uses it to measure what crossing
//! the host/guest boundary costs per record.

#[cfg(target_arch = "wasm32")]
mod guest {
    wit_bindgen::generate!({ path: "../../../wit", world: "transform" });

    use weir::plugin::types::Outcome;

    struct Identity;

    impl Guest for Identity {
        fn init() -> Result<(), String> {
            Ok(())
        }

        fn transform(batch: Batch) -> Transformed {
            // Every record comes back as it was, so the input blob is the output blob.
            Transformed {
                outcomes: vec![Outcome::Ok(1); batch.data_ends.len()],
                data: batch.data,
                data_ends: batch.data_ends,
                keys: Vec::new(),
                partition_keys: Vec::new(),
            }
        }
    }

    export!(Identity);
}
