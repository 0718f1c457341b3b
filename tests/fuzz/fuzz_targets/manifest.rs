//! Manifests as `berth apply -f` reads them, then through the API's decoding, defaulting
//! and validation (a dry-run create in a real store): any input must give documents or a
//! clear error, never a panic, a hang or unbounded memory.
#![no_main]

use std::sync::{Arc, OnceLock};

use berth::store::{Store, StoreOptions};
use libfuzzer_sys::fuzz_target;

fn store() -> &'static Arc<Store> {
    static STORE: OnceLock<(tempfile::TempDir, Arc<Store>)> = OnceLock::new();
    &STORE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let opts = StoreOptions {
                map_size: 1 << 30,
                ..StoreOptions::default()
            };
            let store = Arc::new(Store::open(dir.path(), opts).expect("store"));
            (dir, store)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = berth::cli::manifest::parse("fuzz.yaml", text) else {
        return;
    };
    for doc in docs {
        let api_version = doc.object["apiVersion"].as_str().unwrap_or_default();
        let kind = doc.object["kind"].as_str().unwrap_or_default();
        let Some(rt) = berth::api::registry::by_kind(api_version, kind) else {
            continue;
        };
        let ns = doc.object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default");
        let ns = rt.namespaced.then_some(ns);
        let _ = store().create(rt, ns, doc.object.clone(), true);
    }
});
