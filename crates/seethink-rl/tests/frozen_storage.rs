//! Frozen weights stored in a narrower float type ([`seethink_models::nn::frozen`]), end to end
//! on the generic path (`Autodiff<NdArray<f64>>`, the code path of wgpu and cuda).
//!
//! There, a checkpoint stored in f32 keeps its frozen matrices in f32 while the run computes in
//! f64, as a bf16 checkpoint keeps them in bf16 on a GPU. The same values in a bf16 file, which
//! f64 compute keeps in f64 (ndarray stores no bf16), must train to bitwise the same model.
//!
//! Its own test binary: burn 0.21 keeps one default float type per device type, which
//! `NdArray<f32>` and `NdArray<f64>` share, so a process creates tensors of one of them only.

mod common;

use std::path::Path;
use std::sync::Arc;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, DType, Tensor};
use common::{checkpoint, logged, task, tiny_config, Letters};
use seethink_models::checkpoint::{Dtype, ExportOptions};
use seethink_models::nn::LoraConfig;
use seethink_models::AnyVlm;
use seethink_rl::config::{ActorConfig, AlgorithmConfig, RolloutConfig, TrainConfig, Trainer};
use seethink_rl::grpo::Grpo;
use seethink_rl::learner::new_learner;
use seethink_rl::run::train_on;

type G = Autodiff<NdArray<f64>>;
type GI = NdArray<f64>;

/// Every float parameter of a module in f64, and the types of its matrices, in visiting order.
fn values_and_matrix_types<Bk: Backend, M: Module<Bk>>(model: &M) -> (Vec<f64>, Vec<DType>) {
    struct Collect(Vec<f64>, Vec<DType>);
    impl<Bk: Backend> ModuleVisitor<Bk> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
            let data = param.val().into_data();
            if D == 2 {
                self.1.push(data.dtype);
            }
            self.0.extend(data.convert::<f64>().to_vec::<f64>().unwrap());
        }
    }
    let mut c = Collect(Vec::new(), Vec::new());
    model.visit(&mut c);
    (c.0, c.1)
}

/// The committed (bf16) checkpoint's weights as an f32 checkpoint in `dir`.
fn as_f32_checkpoint(dir: &Path) {
    let model = AnyVlm::<GI>::load(checkpoint(), &Default::default()).unwrap();
    model
        .save_pretrained(checkpoint(), dir, ExportOptions { dtype: Some(Dtype::F32), ..Default::default() })
        .unwrap();
}

fn train(model: &Path, out: &Path, setup: fn(&mut TrainConfig)) -> AnyVlm<GI> {
    let mut config = tiny_config(out, Trainer::Grpo, 2, 2);
    config.model = model.to_path_buf();
    config.algorithm.kl_coef = 0.1;
    config.algorithm.use_kl_loss = true;
    setup(&mut config);
    let tasks = vec![task("one", "one", "1"), task("two", "two", "2"), task("three", "three", "3")];
    train_on::<G>(&config, tasks, Arc::new(Letters), &Default::default()).unwrap()
}

#[test]
fn frozen_matrices_kept_in_f32_under_f64_compute_train_to_the_same_model() {
    let f32_checkpoint = tempfile::tempdir().unwrap();
    as_f32_checkpoint(f32_checkpoint.path());
    let lora =
        |c: &mut TrainConfig| c.actor.lora = Some(LoraConfig { rank: 4, alpha: 8.0, ..Default::default() });
    let frozen_vision = |c: &mut TrainConfig| c.actor.freeze_vision = true;
    for (name, setup) in [("LoRA", lora as fn(&mut TrainConfig)), ("frozen vision tower", frozen_vision)] {
        let (wide_dir, narrow_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let wide = train(&checkpoint(), wide_dir.path(), setup);
        let narrow = train(f32_checkpoint.path(), narrow_dir.path(), setup);
        let ((wide, wide_types), (narrow, narrow_types)) =
            (values_and_matrix_types(&wide), values_and_matrix_types(&narrow));
        // the control: the bf16 file's run keeps every matrix in f64, the f32 file's run keeps
        // its frozen ones in f32 (the base under LoRA; the vision tower) and its trained ones in f64
        assert!(wide_types.iter().all(|t| *t == DType::F64), "{name}");
        let kept = |t: DType| narrow_types.iter().filter(|x| **x == t).count();
        assert!(kept(DType::F32) > 0 && kept(DType::F64) > 0, "{name}: {} f32 matrices", kept(DType::F32));
        assert_eq!(narrow, wide, "{name}: bitwise the same trained weights");
        for key in ["reward", "kl", "pg_loss", "entropy", "grad_norm"] {
            assert_eq!(logged(narrow_dir.path(), key), logged(wide_dir.path(), key), "{name}: {key}");
        }
    }
}

#[test]
fn the_kl_reference_is_stored_in_the_learners_frozen_type() {
    let model = AnyVlm::<G>::load(checkpoint(), &Default::default()).unwrap();
    let learner = new_learner(model, &ActorConfig::default(), 0).with_frozen_storage(DType::F32);
    let algorithm = AlgorithmConfig { kl_coef: 0.1, ..Default::default() };
    let grpo = Grpo::new(&learner, algorithm, ActorConfig::default(), RolloutConfig::default());
    let (_, reference) = values_and_matrix_types(grpo.reference().unwrap());
    assert!(reference.iter().all(|t| *t == DType::F32), "{reference:?}");
    let (_, policy) = values_and_matrix_types(&learner.model());
    assert!(policy.iter().all(|t| *t == DType::F64), "the trained policy keeps f64: {policy:?}");
}

/// A resumed run keeps its frozen matrices in their stored type. Not bitwise here: a checkpoint
/// records f32 (burn's `FullPrecisionSettings`), so f64 weights resume rounded to f32 (resume is
/// bitwise where the backend computes in f32, `tests/resume.rs`).
#[test]
fn a_run_with_narrower_frozen_matrices_resumes_with_them() {
    let f32_checkpoint = tempfile::tempdir().unwrap();
    as_f32_checkpoint(f32_checkpoint.path());
    let frozen_vision = |c: &mut TrainConfig| c.actor.freeze_vision = true;
    let (straight_dir, resumed_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let straight = train(f32_checkpoint.path(), straight_dir.path(), frozen_vision);
    // the same run stopped after step 1 (its checkpoint records f32), then resumed to step 2
    let first_step = |c: &mut TrainConfig| {
        c.actor.freeze_vision = true;
        c.trainer.steps = 1;
    };
    train(f32_checkpoint.path(), resumed_dir.path(), first_step);
    let resumed = train(f32_checkpoint.path(), resumed_dir.path(), frozen_vision);
    let ((straight, straight_types), (resumed, resumed_types)) =
        (values_and_matrix_types(&straight), values_and_matrix_types(&resumed));
    assert!(resumed_types.contains(&DType::F32), "the frozen tower is stored in f32 again after the resume");
    assert_eq!(resumed_types, straight_types);
    let gap = resumed.iter().zip(&straight).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(gap < 1e-5, "the same weights within f32 rounding: {gap:e}");
}
