//! Log-probabilities of given responses under a model: the inputs of every policy loss.

use burn::tensor::{activation::log_softmax, backend::Backend, Bool, Int, Tensor, TensorData};
use seethink_models::{ImageInput, Result, TokenBatch, Vlm};

/// Per-token log-probs of responses, right-aligned in `[sequences, longest response]`:
/// row b's response occupies its last `len_b` columns, where `mask` is 1.
pub struct ResponseLogprobs<B: Backend> {
    pub logp: Tensor<B, 2>,
    /// The logits that scored each response position, `[sequences, width, vocab]`
    /// (input-only tokens at −∞).
    pub logits: Tensor<B, 3>,
    /// The scored tokens, `[sequences, width]` (prompt tail where `mask` is 0).
    pub targets: Tensor<B, 2, Int>,
    /// Entropy of the model's next-token distribution at each response token,
    /// `H = −Σ_v p_v log p_v` (0 on padding).
    pub entropy: Tensor<B, 2>,
    pub mask: Tensor<B, 2>,
}

/// `log π(y_t | x, y_<t)` for each response token: the sequences `prompt ++ response` are
/// left-padded into one batch, and the token at position p is scored by the logits at p − 1
/// (computed for those positions only, [`Vlm::forward_at`]),
/// `log_softmax(logits[p − 1])[token_p]`, over the vocabulary without the model's input-only
/// tokens (exactly the distribution `generate` samples from at temperature 1).
pub fn response_logprobs<B: Backend, M: Vlm<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    responses: &[Vec<u32>],
    images: Option<&ImageInput<B>>,
    pad_id: u32,
) -> Result<ResponseLogprobs<B>> {
    let rows: Vec<Vec<u32>> =
        prompts.iter().zip(responses).map(|(p, r)| [p.as_slice(), r].concat()).collect();
    let tokens = TokenBatch::left_padded(&rows, pad_id);
    let width = responses.iter().map(Vec::len).max().unwrap_or(0);
    // logits only where a response token is scored: positions seq − width − 1 … seq − 2
    let scored_positions: Vec<usize> = (tokens.seq - width - 1..tokens.seq - 1).collect();
    let scoring = model.forward_at(&tokens, images, &mut model.new_state(), &scored_positions)?;
    let [batch, _, vocab] = scoring.dims();
    let device = scoring.device();
    let mut excluded = vec![false; vocab];
    for t in model.input_only_tokens() {
        if let Some(e) = excluded.get_mut(t as usize) {
            *e = true;
        }
    }
    let excluded = Tensor::<B, 3, Bool>::from_data(TensorData::new(excluded, [1, 1, vocab]), &device);
    let scoring = scoring.mask_fill(excluded.clone().expand([batch, width, vocab]), f32::NEG_INFINITY);
    let logp_all = log_softmax(scoring.clone(), 2);
    let targets: Vec<i64> =
        rows.iter().flat_map(|row| row[row.len() - width..].iter().map(|&t| t as i64)).collect();
    let targets = Tensor::<B, 3, Int>::from_data(TensorData::new(targets, [batch, width, 1]), &device);
    // p·log p with p = 0 at excluded tokens: take log p as 0 there to avoid 0·(−∞)
    let finite_logp = logp_all.clone().mask_fill(excluded.clone().expand([batch, width, vocab]), 0.0);
    let entropy = (logp_all.clone().exp() * finite_logp).sum_dim(2).reshape([batch, width]).neg();
    let logp = logp_all.gather(2, targets.clone()).reshape([batch, width]);
    let mask: Vec<f32> = responses
        .iter()
        .flat_map(|r| (0..width).map(move |t| if t >= width - r.len() { 1.0 } else { 0.0 }))
        .collect();
    let mask = Tensor::from_data(TensorData::new(mask, [batch, width]), &device);
    Ok(ResponseLogprobs {
        logp: logp * mask.clone(),
        logits: scoring,
        targets: targets.reshape([batch, width]),
        entropy: entropy * mask.clone(),
        mask,
    })
}
