//! `ModelResponder` on the tiny random Qwen3-VL checkpoint: runs end to end and returns `k`
//! responses per task (the answers themselves are noise).

mod common;

use std::path::PathBuf;

use burn::backend::NdArray;
use common::{synth_tasks, BoxedReward};
use seethink_eval::{evaluate, ModelResponder, Responder};
use seethink_models::generate::SamplingConfig;
use seethink_models::processing::{task_message, ContentPart, Processor};
use seethink_models::AnyVlm;

type B = NdArray<f32>;

fn checkpoint() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl/checkpoint")
}

#[test]
fn model_responder_answers_synthetic_tasks() {
    let device = Default::default();
    let model = AnyVlm::<B>::load(checkpoint(), &device).unwrap();
    let processor = Processor::from_dir(&checkpoint()).unwrap();
    // one task per capability: perception, text reasoning, visual reasoning
    let tasks = synth_tasks(1, 4);
    assert_eq!(tasks.len(), 3);
    let message = task_message(&tasks[0]).unwrap();
    assert!(matches!(message.content[0], ContentPart::Image {}));
    assert!(matches!(&message.content[1], ContentPart::Text { text } if text.starts_with('\n')));
    assert!(task_message(&tasks[1]).unwrap().content.iter().all(|p| matches!(p, ContentPart::Text { .. })));

    let sampling =
        SamplingConfig { max_new_tokens: 4, temperature: 1.0, top_p: 1.0, top_k: 0, seed: 1, stream: 0 };
    let mut responder = ModelResponder::new(&model, &processor, sampling, 2, device).unwrap();
    let responses = responder.respond(&tasks, 2).unwrap();
    assert_eq!(responses.len(), 3);
    for group in &responses {
        assert_eq!(group.len(), 2);
        assert!(group.iter().all(|r| (1..=4).contains(&r.tokens)), "{group:?}");
    }
    let report = evaluate(&mut responder, &tasks, &BoxedReward, 2).unwrap();
    assert_eq!(report.overall.samples, 6);
    assert!(report.overall.mean_tokens <= 4.0);
    println!("{}", report.to_markdown());
}

#[test]
fn model_responder_rejects_bad_settings_and_tasks() {
    let device = Default::default();
    let model = AnyVlm::<B>::load(checkpoint(), &device).unwrap();
    let processor = Processor::from_dir(&checkpoint()).unwrap();
    let sampling = SamplingConfig { max_new_tokens: 2, ..Default::default() };
    assert!(ModelResponder::new(&model, &processor, sampling.clone(), 0, device).is_err());
    let mut responder = ModelResponder::new(&model, &processor, sampling, 1, device).unwrap();
    let mut task = synth_tasks(1, 4).remove(0);
    task.images.push(seethink_data::ImageRef::Bytes(b"not an image".to_vec()));
    let err = responder.respond(std::slice::from_ref(&task), 1).unwrap_err();
    assert!(err.to_string().contains(&task.id), "{err}");
    task.prompt.push_str("<image>");
    let err = responder.respond(&[task.clone()], 1).unwrap_err();
    assert!(err.to_string().contains("cannot decode image"), "{err}");
}
