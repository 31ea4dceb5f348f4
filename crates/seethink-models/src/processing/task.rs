//! A [`Task`] turned into model input: its chat message (EasyR1's `<image>` markers become
//! image parts) rendered with the checkpoint's template, and its images decoded.

use burn::tensor::backend::Backend;
use image::DynamicImage;
use seethink_data::{ImageRef, Task, IMAGE_MARKER};

use crate::error::{ModelError, Result};
use crate::generate::Prompt;
use crate::processing::image::{decode_image, load_image, ImageBounds};
use crate::processing::{ContentPart, Message, Processor};

impl Processor {
    /// The encoded prompt of `task`: its [`task_message`] rendered with the generation prompt,
    /// with its images as decoded ([`task_images`]). Errors name the task.
    pub fn encode_task<B: Backend>(&self, task: &Task, device: &B::Device) -> Result<Prompt<B>> {
        self.encode_task_within(task, ImageBounds::NONE, device)
    }

    /// [`encode_task`](Self::encode_task) with every image first brought into `bounds`
    /// ([`ImageBounds::apply`]), as EasyR1's training data loader does.
    pub fn encode_task_within<B: Backend>(
        &self,
        task: &Task,
        bounds: ImageBounds,
        device: &B::Device,
    ) -> Result<Prompt<B>> {
        let in_task = |e: ModelError| ModelError::Input(format!("task `{}`: {e}", task.id));
        let message = task_message(task)?;
        let images = task_images(task)
            .and_then(|images| images.into_iter().map(|i| bounds.apply(i)).collect::<Result<Vec<_>>>())
            .map_err(in_task)?;
        let text = self.render(&[message], true).map_err(in_task)?;
        self.encode::<B>(&text, &images, device).map_err(in_task)
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
        return Err(ModelError::Input(format!(
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
/// decoded with [`decode_image`] (labelled `<task id> image <i>` in errors).
pub fn task_images(task: &Task) -> Result<Vec<DynamicImage>> {
    task.images
        .iter()
        .enumerate()
        .map(|(i, image)| match image {
            ImageRef::Path(path) => load_image(path),
            ImageRef::Bytes(bytes) => decode_image(bytes, &format!("{} image {i}", task.id)),
        })
        .collect()
}
