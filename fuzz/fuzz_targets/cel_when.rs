//! CEL `when` expressions as a PipelineRun's tasks use them (after substitution), and the
//! `input in/notin values` form: any expression must compile, run or fail with a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_model::kinds::pipeline::WhenExpression;
use slipway_model::subst::Scope;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut scope = Scope::new();
    scope.set_str("params.branch", "main");
    scope.set_str("tasks.build.results.ok", "true");
    let cel = WhenExpression {
        cel: Some(text.to_string()),
        ..Default::default()
    };
    let _ = slipway_engine::when::evaluate(&[cel], &scope);
    let (input, values) = text.split_once('\n').unwrap_or((text, ""));
    let plain = WhenExpression {
        input: Some(input.to_string()),
        operator: Some("notin".into()),
        values: Some(values.lines().map(str::to_string).collect()),
        ..Default::default()
    };
    let _ = slipway_engine::when::evaluate(&[plain], &scope);
});
