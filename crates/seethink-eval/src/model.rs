//! [`ModelResponder`]: a Qwen-VL checkpoint answering tasks through its own processor.

use burn::tensor::backend::Backend;
use image::DynamicImage;
use seethink_data::{ImageRef, Task, IMAGE_MARKER};
use seethink_models::generate::{generate, Prompt, SamplingConfig};
use seethink_models::processing::image::{decode_image, load_image};
use seethink_models::processing::{ContentPart, Message, Processor};
use seethink_models::{ModelError, QwenVl};

use crate::error::{EvalError, Result};
use crate::runner::{Responder, Response};

/// Answers tasks with a [`QwenVl`] model: tasks are turned into chat prompts
/// ([`task_message`]), batched `batch_size` at a time, sampled `k` times each with
/// [`generate`], and decoded without special tokens.
pub struct ModelResponder<'a, B: Backend> {
    model: &'a QwenVl<B>,
    processor: &'a Processor,
    sampling: SamplingConfig,
    batch_size: usize,
    device: B::Device,
}

impl<'a, B: Backend> ModelResponder<'a, B> {
    /// A responder over `model` and its `processor`, sampling with `sampling`, `batch_size`
    /// tasks per generation call, on `device`. Errors when `batch_size` is 0.
    pub fn new(
        model: &'a QwenVl<B>,
        processor: &'a Processor,
        sampling: SamplingConfig,
        batch_size: usize,
        device: B::Device,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(EvalError::Invalid("batch_size must be at least 1".into()));
        }
        Ok(ModelResponder { model, processor, sampling, batch_size, device })
    }

    /// The encoded prompt of `task`: its [`task_message`] rendered with the generation prompt,
    /// with its images ([`task_images`]).
    pub fn prompt(&self, task: &Task) -> Result<Prompt<B>> {
        encode_task(self.processor, task, &self.device)
    }
}

/// The encoded prompt of `task` for `processor`'s model: its [`task_message`] rendered with
/// the generation prompt, with its images ([`task_images`]).
pub fn encode_task<B: Backend>(processor: &Processor, task: &Task, device: &B::Device) -> Result<Prompt<B>> {
    let model_error = |source: ModelError| EvalError::Model { task: task.id.clone(), source };
    let message = task_message(task)?;
    let images = task_images(task)?;
    let text = processor.render(&[message], true).map_err(model_error)?;
    processor.encode::<B>(&text, &images, device).map_err(model_error)
}

impl<B: Backend> Responder for ModelResponder<'_, B> {
    /// Batch `b` (tasks `b·batch_size …`) is sampled with seed `sampling.seed + b`, so batches
    /// draw different streams and a run is reproducible. A response's token count is the
    /// number of generated ids, the stop token included.
    fn respond(&mut self, tasks: &[Task], k: usize) -> Result<Vec<Vec<Response>>> {
        let tokenizer = &self.processor.tokenizer;
        let mut out = Vec::with_capacity(tasks.len());
        for (b, chunk) in tasks.chunks(self.batch_size).enumerate() {
            let prompts = chunk.iter().map(|t| self.prompt(t)).collect::<Result<Vec<_>>>()?;
            let sampling =
                SamplingConfig { seed: self.sampling.seed.wrapping_add(b as u64), ..self.sampling.clone() };
            let batch_error = |source: ModelError| EvalError::Model { task: chunk[0].id.clone(), source };
            let completions =
                generate(self.model, &prompts, k, &sampling, &tokenizer.stop_ids, tokenizer.pad_id)
                    .map_err(batch_error)?;
            let mut groups: Vec<Vec<Response>> = (0..chunk.len()).map(|_| Vec::with_capacity(k)).collect();
            for c in completions {
                let text = tokenizer
                    .decode(&c.ids, true)
                    .map_err(|source| EvalError::Model { task: chunk[c.prompt].id.clone(), source })?;
                groups[c.prompt].push(Response { text, tokens: c.ids.len() });
            }
            out.extend(groups);
        }
        Ok(out)
    }
}

/// The user message of `task`, as EasyR1 builds it: the prompt is split at each `<image>`
/// marker, the i-th marker becomes the i-th image part and the text between markers becomes
/// text parts (verbatim; empty pieces dropped). Without markers: one image part per image,
/// then the whole prompt. Errors when the markers do not match the images in number.
pub fn task_message(task: &Task) -> Result<Message> {
    let markers = task.prompt.matches(IMAGE_MARKER).count();
    if markers == 0 {
        return Ok(Message::user(task.images.len(), &task.prompt));
    }
    if markers != task.images.len() {
        return Err(EvalError::Invalid(format!(
            "task `{}`: the prompt has {markers} {IMAGE_MARKER} markers but the task has {} images",
            task.id,
            task.images.len()
        )));
    }
    let mut content = Vec::with_capacity(2 * markers + 1);
    for (i, piece) in task.prompt.split(IMAGE_MARKER).enumerate() {
        if i > 0 {
            content.push(ContentPart::Image {});
        }
        if !piece.is_empty() {
            content.push(ContentPart::Text { text: piece.to_string() });
        }
    }
    Ok(Message { role: "user".into(), content })
}

/// The decoded images of `task`, in order: files are read with [`load_image`], in-memory bytes
/// decoded with [`decode_image`].
pub fn task_images(task: &Task) -> Result<Vec<DynamicImage>> {
    task.images
        .iter()
        .enumerate()
        .map(|(i, image)| match image {
            ImageRef::Path(path) => load_image(path),
            ImageRef::Bytes(bytes) => decode_image(bytes, &format!("{} image {i}", task.id)),
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|source| EvalError::Model { task: task.id.clone(), source })
}
