//! A stable hash of names (task ids, tensor names, parameter paths), the same on every machine
//! and in every run, for seeding streams and naming things reproducibly.

/// 64-bit FNV-1a hash: h₀ = 0xcbf29ce484222325, hᵢ₊₁ = (hᵢ ⊕ byte) · 0x100000001b3.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn fnv1a_matches_reference_values() {
        assert_eq!(fnv1a(""), 0xcbf29ce484222325);
        assert_eq!(fnv1a("a"), 0xaf63dc4c8601ec8c);
    }
}
