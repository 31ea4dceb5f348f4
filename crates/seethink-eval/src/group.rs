//! A report's capability groups: each capability, and `unlabelled` for tasks whose records had
//! none (EasyR1's public data sets; [`crate::EvalReport::with_unlabelled`]), written as the
//! capability's name or `unlabelled` in reports.

use seethink_data::Capability;
use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

/// The name of the group of tasks without a capability.
pub const UNLABELLED: &str = "unlabelled";

/// The group's name: the capability's (`perception`, …), or [`UNLABELLED`].
pub fn group_name(capability: Option<Capability>) -> &'static str {
    capability.map_or(UNLABELLED, Capability::as_str)
}

/// The order of groups in reports: capabilities in curriculum order, then the unlabelled.
pub(crate) fn group_order(capability: Option<Capability>) -> (bool, Option<Capability>) {
    (capability.is_none(), capability)
}

/// Writes a group as its [`group_name`].
pub(crate) fn serialize<S: Serializer>(capability: &Option<Capability>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(group_name(*capability))
}

/// Reads a group from its [`group_name`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Capability>, D::Error> {
    let name = String::deserialize(d)?;
    match name.as_str() {
        UNLABELLED => Ok(None),
        _ => name.parse().map(Some).map_err(|bad| {
            D::Error::custom(format!("unknown capability group `{bad}` (perception, text_reasoning, visual_reasoning or {UNLABELLED})"))
        }),
    }
}
