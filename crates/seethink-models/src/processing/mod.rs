//! From text and images to model inputs: image preprocessing, tokenizer, chat template.

pub mod image;
