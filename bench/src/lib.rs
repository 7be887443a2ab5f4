//! Shared helpers of the benchmark binaries under `benches/`.
