//! The image placeholders of a rendered prompt: counted against the images, then expanded to
//! the tokens the family's processor computes for each image.

use crate::error::{ModelError, Result};

/// Checks that `text` holds one `placeholder` per image (`images` of them).
pub fn check_placeholders(text: &str, placeholder: &str, images: usize) -> Result<()> {
    let found = text.matches(placeholder).count();
    if found != images {
        return Err(ModelError::Input(format!(
            "the prompt has {found} image placeholders ({placeholder}) but {images} images were given"
        )));
    }
    Ok(())
}

/// `text` with its k-th `placeholder` replaced by the k-th of `replacements` (one per
/// placeholder, see [`check_placeholders`]).
pub fn replace_placeholders(
    text: &str,
    placeholder: &str,
    replacements: impl IntoIterator<Item = String>,
) -> String {
    let mut pieces = text.split(placeholder);
    let mut expanded = pieces.next().unwrap_or_default().to_string();
    for (replacement, piece) in replacements.into_iter().zip(pieces) {
        expanded.push_str(&replacement);
        expanded.push_str(piece);
    }
    expanded
}
