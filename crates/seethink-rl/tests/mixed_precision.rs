//! Mixed precision (`actor.mixed_precision`, [`seethink_models::nn::precision`]) on the generic
//! path (`Autodiff<NdArray<f64>>`, the code path of wgpu and cuda): the weights and AdamW's
//! moments in f64, every pass computed in f32, as a GPU run keeps f32 master weights and
//! computes in bf16.
//!
//! Its own test binary: burn 0.21 keeps one default float type per device type, which
//! `NdArray<f32>` and `NdArray<f64>` share, so a process creates tensors of one of them only.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, DType, Tensor};
use common::{image_and_text_tasks, logged, tiny_config, Letters};
use seethink_models::AnyVlm;
use seethink_rl::config::{ComputeType, TrainConfig, Trainer};
use seethink_rl::run::train_on;
use seethink_rl::sharding::Sharding;

type G = Autodiff<NdArray<f64>>;
type GI = NdArray<f64>;

/// The learning rate of [`tiny_config`].
const LR: f64 = 1e-3;

fn checkpoint_of(family: &str) -> PathBuf {
    common::checkpoint().join("../..").join(family).join("checkpoint")
}

/// Every float parameter in f64, in visiting order with its shape, and their types.
fn parameters<Bk: Backend, M: Module<Bk>>(model: &M) -> (Vec<(Vec<usize>, Vec<f64>)>, Vec<DType>) {
    struct Collect(Vec<(Vec<usize>, Vec<f64>)>, Vec<DType>);
    impl<Bk: Backend> ModuleVisitor<Bk> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
            let data = param.val().into_data();
            self.1.push(data.dtype);
            self.0.push((data.shape.to_vec(), data.convert::<f64>().to_vec::<f64>().unwrap()));
        }
    }
    let mut c = Collect(Vec::new(), Vec::new());
    model.visit(&mut c);
    (c.0, c.1)
}

/// Two GRPO steps of 4 prompts × 4 samples of `family`'s tiny checkpoint, the KL as a loss,
/// each layer recomputed in backward; `setup` changes the rest.
fn train(family: &str, out: &Path, setup: impl Fn(&mut TrainConfig)) -> AnyVlm<GI> {
    let mut config = tiny_config(out, Trainer::Grpo, 2, 4);
    config.model = checkpoint_of(family);
    config.algorithm.kl_coef = 0.05;
    config.algorithm.use_kl_loss = true;
    config.actor.activation_checkpointing = true;
    config.actor.mini_batches = 2;
    config.actor.micro_batch_size = 4;
    setup(&mut config);
    assert_eq!(config.actor.lr, LR);
    train_on::<G>(&config, image_and_text_tasks(), Arc::new(Letters), &Default::default()).unwrap()
}

const FAMILIES: [&str; 4] = ["qwen2_5_vl", "qwen3_vl", "internvl3", "internvl3_5"];

/// f32 compute over f64 weights trains to the f64 run's weights within f32's rounding. For
/// every tensor whose update is a real one (RMS at least 1% of the learning rate: AdamW's first
/// steps move a parameter by about the learning rate), `‖Δ_mixed − Δ_full‖ / ‖Δ_full‖` (Δ: the
/// change of two steps, four updates) is below 5e-3; measured at most 1.0e-4 (Qwen2.5-VL),
/// 1.5e-4 (Qwen3-VL), 6.0e-4 (InternVL3), 1.7e-3 (InternVL3.5, a vision MLP bias): AdamW divides
/// each gradient by its own scale, so a tensor with small gradients turns f32's absolute
/// rounding (relative to the activations') into a larger relative change of its update. The
/// others are the attention keys' biases, whose gradient softmax cancels exactly (adding `b` to
/// every key adds `q·b` to a query's every score), so it is rounding noise in either run that
/// AdamW scales up: there the difference's RMS is below 1% of the learning rate. The logged
/// rewards, KL, losses, entropies and gradient norms agree within 1e-5. The control: the two
/// runs are not bitwise equal (the passes did compute in f32), and the master weights stay f64.
#[test]
fn f32_compute_over_f64_weights_trains_as_f64_within_f32_rounding() {
    for family in FAMILIES {
        let (full_dir, mixed_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let full = train(family, full_dir.path(), |_| {});
        let mixed = train(family, mixed_dir.path(), |c| c.actor.mixed_precision = Some(ComputeType::F32));
        let start = AnyVlm::<GI>::load(checkpoint_of(family), &Default::default()).unwrap();
        let ((full, _), (mixed, mixed_types), (start, _)) =
            (parameters(&full), parameters(&mixed), parameters(&start));
        assert!(mixed_types.iter().all(|t| *t == DType::F64), "{family}: master weights stay f64");
        assert_ne!(mixed, full, "{family}: the mixed run computed in f32");
        let lr = LR;
        let mut worst = (0.0_f64, String::new());
        for (i, ((shape, before), ((_, a), (_, b)))) in start.iter().zip(mixed.iter().zip(&full)).enumerate()
        {
            let n = before.len() as f64;
            let (mut diff, mut step) = (0.0, 0.0);
            for ((a, b), w) in a.iter().zip(b).zip(before) {
                diff += (a - b).powi(2);
                step += (b - w).powi(2);
            }
            let (diff, step) = ((diff / n).sqrt(), (step / n).sqrt());
            let what = format!("parameter {i} of shape {shape:?}");
            if step < 0.01 * lr {
                assert!(diff < 0.01 * lr, "{family}: {what}, a zero-gradient update differs by {diff:e}");
            } else if diff / step > worst.0 {
                worst = (diff / step, what);
            }
        }
        println!("{family}: largest relative difference of a tensor's update {:.2e} ({})", worst.0, worst.1);
        assert!(worst.0 < 5e-3, "{family}: {:.2e} ({})", worst.0, worst.1);
        for key in ["reward", "kl", "pg_loss", "entropy", "grad_norm"] {
            let (m, f) = (logged(mixed_dir.path(), key), logged(full_dir.path(), key));
            let close = m.iter().zip(&f).all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1e-3));
            assert!(close, "{family}: {key} {m:?} against {f:?}");
        }
    }
}

/// With the weights sharded between two workers (ZeRO-3), each gathers the compute copy of a
/// part (f32 here, half the bytes of its f64 weights) and the f32 gradients are widened before
/// they are summed to their owners: the same weights as two unsharded workers computing in f32,
/// bitwise.
#[test]
fn sharded_weights_gathered_in_the_compute_type_train_as_unsharded() {
    for family in FAMILIES {
        let run = |sharding: Sharding| {
            let dir = tempfile::tempdir().unwrap();
            let model = train(family, dir.path(), |c| {
                c.actor.mixed_precision = Some(ComputeType::F32);
                c.trainer.devices = 2;
                c.trainer.sharding = sharding;
            });
            (parameters(&model).0, logged(dir.path(), "grad_norm"))
        };
        let (whole, whole_norms) = run(Sharding::None);
        let (sharded, sharded_norms) = run(Sharding::Weights);
        assert!(sharded == whole, "{family}: bitwise the unsharded weights");
        assert_eq!(sharded_norms, whole_norms, "{family}");
    }
}
