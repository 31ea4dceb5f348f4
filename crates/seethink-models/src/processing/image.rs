//! Image preprocessing (being written).
