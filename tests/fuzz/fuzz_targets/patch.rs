//! The patch engines (JSON patch, merge patch, strategic merge patch, apply): any original
//! object and patch must give a result or an error, never a panic or a hang.
#![no_main]

use berth::api::patch::{PatchType, apply_patch};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // First byte: the engine; then the original and the patch, split at the first NUL.
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(2, |b| *b == 0);
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
        return;
    };
    let (Ok(original), Ok(patch)) = (
        serde_json::from_slice::<Value>(a),
        serde_json::from_slice::<Value>(b),
    ) else {
        return;
    };
    let kind = match which % 4 {
        0 => PatchType::Json,
        1 => PatchType::Merge,
        2 => PatchType::Strategic,
        _ => PatchType::Apply,
    };
    let _ = apply_patch(kind, &original, &patch);
});
