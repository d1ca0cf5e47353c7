//! Parse + check + render benchmarks (being written).
fn main() {}
