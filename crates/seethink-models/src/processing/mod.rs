//! From text and images to model inputs: image preprocessing, tokenizer, chat template.

pub mod image;
mod json;
pub mod pipeline;
pub mod template;
pub mod tokenizer;

pub use pipeline::Processor;
pub use template::{ChatTemplate, ContentPart, Message};
pub use tokenizer::TextTokenizer;
