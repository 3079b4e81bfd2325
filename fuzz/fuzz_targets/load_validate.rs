//! The YAML loader and the validator: any text, as one file, must load and validate with
//! diagnostics (each with a position) and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_model::validate::{Limits, validate};
use slipway_model::{Diagnostics, Library};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lib = Library::default();
    let mut diags = Diagnostics::default();
    lib.add_source("fuzz.yaml".into(), text.to_string(), &mut diags);
    for d in &diags.0 {
        assert!(d.pos.line >= 1, "a diagnostic without a line: {d}");
    }
    let checked = validate(&lib, &Limits::default());
    let _ = checked.render_plain();
    // Every string in the input is also tried as the values the model parses on its own.
    for word in text.split_whitespace().take(64) {
        let _ = slipway_model::duration::parse(word);
        let _ = slipway_model::quantity::bytes(word);
        let _ = slipway_model::quantity::millicores(word);
    }
});
