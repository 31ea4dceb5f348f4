//! From text, images and tasks to model inputs: tokenizer, chat template, image decoding, the
//! processor (the family's image processor inside), task encoding.

pub mod image;
mod json;
pub mod pipeline;
pub mod placeholders;
mod resize;
mod task;
pub mod template;
pub mod tokenizer;

pub use pipeline::Processor;
pub use task::{task_images, task_message};
pub use template::{ChatTemplate, ContentPart, Message};
pub use tokenizer::TextTokenizer;
