//! `identity`: returns every record unchanged. `weir bench` uses it to measure what crossing
//! the host/guest boundary costs per record.

#[cfg(target_arch = "wasm32")]
mod guest {
    wit_bindgen::generate!({ path: "../../../wit", world: "transform" });

    use weir::plugin::types::{OutputRecord, Transformed};

    struct Identity;

    impl Guest for Identity {
        fn init() -> Result<(), String> {
            Ok(())
        }

        fn transform(batch: Batch) -> Vec<Outcome> {
            weir_guest::slices(&batch.data, &batch.data_ends)
                .map(|data| {
                    Outcome::Ok(Transformed {
                        records: vec![OutputRecord {
                            data: data.to_vec(),
                            partition_key: None,
                        }],
                        partition_keys: Vec::new(),
                    })
                })
                .collect()
        }
    }

    export!(Identity);
}
