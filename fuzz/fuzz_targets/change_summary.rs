//! Change summaries: `formats::change::summarize` over two arbitrary
//! documents, as the CLI runs it on the current and proposed policies a
//! daemon (or whoever answers in its place) sends in a change view, before a
//! custodian approves. It must never panic; a summary it makes must render
//! and round-trip through JSON; a document compared with itself changes nothing.
//!
//! Input: `len (2 bytes, BE) ‖ current (len bytes) ‖ proposed (the rest)`.
#![no_main]

use breakglass_formats::change::{summarize, Summary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let n = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (current, proposed) = rest.split_at(n);
    if let Ok(s) = summarize(current, proposed) {
        let _ = s.lines();
        let json = serde_json::to_vec(&s).unwrap_or_else(|e| panic!("a summary encodes: {e}"));
        let back: Summary =
            serde_json::from_slice(&json).unwrap_or_else(|e| panic!("a summary decodes: {e}"));
        assert_eq!(back, s);
    }
    if let Ok(same) = summarize(current, current) {
        assert!(
            !same.rekey && same.is_empty(),
            "a policy compared with itself changes nothing: {same:?}"
        );
    }
});
