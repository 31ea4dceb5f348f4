//! The family-independent seam: the dispatching loader gives the family's own model, and logits
//! asked for k positions are those rows of the full forward pass.

mod common;

use burn::tensor::Tensor;
use common::{copy_checkpoint, fixture_dir, Reference, B};
use seethink_models::processing::Processor;
use seethink_models::{AnyVlm, ModelError, QwenVl, TokenBatch, Vlm};

const FAMILIES: [&str; 2] = ["qwen2_5_vl", "qwen3_vl"];

fn values(t: Tensor<B, 3>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

#[test]
fn dispatching_loader_equals_the_family_type() {
    let device = Default::default();
    for family in FAMILIES {
        let dir = fixture_dir(family).join("checkpoint");
        let direct = QwenVl::<B>::load(&dir, &device).unwrap();
        let any = AnyVlm::<B>::load(&dir, &device).unwrap();
        assert!(matches!(any, AnyVlm::QwenVl(_)), "{family}");
        let reference = Reference::open(family);
        for case in ["text", "image", "batch"] {
            let (tokens, images) = reference.case_inputs(case);
            let expected = values(direct.forward(&tokens, images.as_ref()).unwrap());
            let actual = values(any.forward(&tokens, images.as_ref()).unwrap());
            assert_eq!(actual, expected, "{family}/{case}");
        }
        // the dispatching processor encodes like the family's checkpoint expects
        let processor = Processor::from_dir(&dir).unwrap();
        let prompt = processor.user_prompt::<B>("How many circles?", &[], &device).unwrap();
        assert!(prompt.images.is_none());
        let logits = any.forward(&TokenBatch::single(prompt.ids.clone()), None).unwrap();
        assert_eq!(logits.dims()[1], prompt.ids.len());
    }
}

#[test]
fn logits_at_k_positions_are_rows_of_the_full_forward() {
    let device = Default::default();
    for family in FAMILIES {
        let model = AnyVlm::<B>::load(fixture_dir(family).join("checkpoint"), &device).unwrap();
        let reference = Reference::open(family);
        let (tokens, images) = reference.case_inputs("batch");
        let full = model.forward(&tokens, images.as_ref()).unwrap();
        let [batch, seq, vocab] = full.dims();
        let full = values(full);
        for positions in [vec![seq - 1], vec![seq - 3, seq - 2, seq - 1], vec![0, 2, seq - 1]] {
            let k = positions.len();
            let some =
                model.forward_at(&tokens, images.as_ref(), &mut model.new_state(), &positions).unwrap();
            assert_eq!(some.dims(), [batch, k, vocab], "{family} {positions:?}");
            let some = values(some);
            for b in 0..batch {
                for (j, &p) in positions.iter().enumerate() {
                    let row = &some[(b * k + j) * vocab..][..vocab];
                    let expected = &full[(b * seq + p) * vocab..][..vocab];
                    let diff = row.iter().zip(expected).map(|(a, e)| (a - e).abs()).fold(0f32, f32::max);
                    assert!(diff <= 1e-5, "{family} row {b} position {p}: max|Δ| {diff}");
                }
            }
        }
        let err = model.forward_at(&tokens, images.as_ref(), &mut model.new_state(), &[seq]).unwrap_err();
        assert!(err.to_string().contains(&format!("position {seq}")), "{err}");
    }
}

#[test]
fn unknown_model_type_names_the_file_and_the_type() {
    let dir = copy_checkpoint("qwen3_vl");
    let config_path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["model_type"] = "llava".into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    let err = AnyVlm::<B>::load(dir.path(), &Default::default()).unwrap_err();
    assert!(matches!(&err, ModelError::UnknownModelType { found, .. } if found == "llava"), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");
    assert!(Processor::from_dir(dir.path()).is_err());
}
