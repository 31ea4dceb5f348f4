//! Task records, loaders and the procedural capability benchmark.
