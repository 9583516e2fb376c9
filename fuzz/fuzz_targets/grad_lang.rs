//! Fuzzes the gradient language end to end: any bytes must either be
//! rejected with a LangError or give a value and gradients, never panic,
//! hang or overflow the stack.
#![no_main]

use chainrule_cli::grad::{gradient, parser, GradOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // The parser alone, then the whole pipeline with small limits so that
    // each input runs in milliseconds.
    if parser::parse(src).is_err() {
        return;
    }
    let inputs = vec![("x".to_string(), 1.5), ("y".to_string(), -0.25)];
    let opts = GradOptions {
        max_depth: 200,
        max_steps: 20_000,
        graph: true,
        hessian: false,
    };
    if let Ok(r) = gradient(src, &inputs, &opts) {
        assert!(r.value.is_finite());
        assert!(r.gradient.iter().all(|(_, g)| g.is_finite()));
        let g = r.graph.expect("graph asked for");
        let dot = g.to_dot();
        assert!(dot.starts_with("digraph"));
    }
});
