//! [`ModelResponder`]: a checkpoint of any family answering tasks through its own processor.

use seethink_data::Task;
use seethink_models::generate::{generate, Prompt, SamplingConfig};
use seethink_models::kernels::Kernels;
use seethink_models::parallel::map_parallel;
use seethink_models::processing::image::ImageBounds;
use seethink_models::processing::Processor;
use seethink_models::{ModelError, Vlm};

use crate::error::{EvalError, Result};
use crate::progress::Progress;
use crate::runner::{Responder, Response};

/// Answers tasks with a model: tasks are turned into chat prompts
/// ([`Processor::encode_task_within`] its image bounds, none by default), batched `batch_size` at a time, sampled `k` times each with
/// [`generate`], and decoded without special tokens.
pub struct ModelResponder<'a, B: Kernels, M: Vlm<B>> {
    model: &'a M,
    processor: &'a Processor,
    sampling: SamplingConfig,
    batch_size: usize,
    bounds: ImageBounds,
    device: B::Device,
    /// Whether answering shows its progress ([`Progress`]).
    shows_progress: bool,
}

impl<'a, B: Kernels, M: Vlm<B>> ModelResponder<'a, B, M> {
    /// A responder over `model` and its `processor`, sampling with `sampling`, `batch_size`
    /// tasks per generation call, on `device`. Errors when `batch_size` is 0.
    pub fn new(
        model: &'a M,
        processor: &'a Processor,
        sampling: SamplingConfig,
        batch_size: usize,
        device: B::Device,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(EvalError::Invalid("batch_size must be at least 1".into()));
        }
        Ok(ModelResponder {
            model,
            processor,
            sampling,
            batch_size,
            bounds: ImageBounds::NONE,
            device,
            shows_progress: true,
        })
    }

    /// The same responder bringing every image into `bounds` first (as training did).
    pub fn within(self, bounds: ImageBounds) -> Self {
        Self { bounds, ..self }
    }

    /// The same responder answering without showing its progress (for callers that show their
    /// own).
    pub fn quiet(self) -> Self {
        Self { shows_progress: false, ..self }
    }

    /// The encoded prompt of `task` ([`Processor::encode_task_within`] the bounds).
    pub fn prompt(&self, task: &Task) -> Result<Prompt<B>> {
        self.processor
            .encode_task_within(task, self.bounds, &self.device)
            .map_err(|source| EvalError::Model { task: task.id.clone(), source })
    }
}

impl<B: Kernels, M: Vlm<B>> ModelResponder<'_, B, M> {
    /// `k` responses to each task of `chunk`, the `b`-th batch of `batch_size` tasks: sample j
    /// of its task t draws from stream `(b·batch_size + t)·k + j` of `sampling.seed`.
    fn answer_batch(&self, b: usize, chunk: &[Task], k: usize) -> Result<Vec<Vec<Response>>> {
        let tokenizer = &self.processor.tokenizer;
        let prompts = chunk.iter().map(|t| self.prompt(t)).collect::<Result<Vec<_>>>()?;
        let first_sample = (b * self.batch_size * k) as u64;
        let sampling =
            SamplingConfig { stream: self.sampling.stream + first_sample, ..self.sampling.clone() };
        let batch_error = |source: ModelError| EvalError::Model { task: chunk[0].id.clone(), source };
        let completions = generate(self.model, &prompts, k, &sampling, &tokenizer.stop_ids, tokenizer.pad_id)
            .map_err(batch_error)?;
        let mut groups: Vec<Vec<Response>> = (0..chunk.len()).map(|_| Vec::with_capacity(k)).collect();
        for c in completions {
            let text = tokenizer
                .decode(&c.ids, true)
                .map_err(|source| EvalError::Model { task: chunk[c.prompt].id.clone(), source })?;
            groups[c.prompt].push(Response { text, tokens: c.ids.len() });
        }
        Ok(groups)
    }
}

impl<B: Kernels, M: Vlm<B> + Sync> Responder for ModelResponder<'_, B, M> {
    /// Sample j of task t draws from random stream `t·k + j` of `sampling.seed`
    /// ([`SamplingConfig::stream`]), so a run is reproducible and does not depend on the batch
    /// size. Batches are answered [`Kernels::batch_threads`] at a time, side by side (one per
    /// core on the CPU, where a batch's decoding keeps one core busy only part of the time).
    /// A response's token count is the number of generated ids, the stop token included.
    fn respond(&mut self, tasks: &[Task], k: usize) -> Result<Vec<Vec<Response>>> {
        let mut out: Vec<Vec<Response>> = Vec::with_capacity(tasks.len());
        let progress = self.shows_progress.then(|| Progress::new("answering", "task", 1, tasks.len()));
        let threads = B::batch_threads();
        let batches: Vec<(usize, &[Task])> = tasks.chunks(self.batch_size).enumerate().collect();
        let mut tokens = 0usize;
        for round in batches.chunks(threads) {
            let this = &*self;
            for groups in map_parallel(round.to_vec(), threads, |(b, chunk)| this.answer_batch(b, chunk, k)) {
                let groups = groups?;
                tokens += groups.iter().flatten().map(|r| r.tokens).sum::<usize>();
                out.extend(groups);
            }
            let mean = format!("{:.1} tokens per response", tokens as f64 / (out.len() * k).max(1) as f64);
            if let Some(progress) = &progress {
                progress.update(out.len(), &mean, &mean);
            }
        }
        Ok(out)
    }
}
