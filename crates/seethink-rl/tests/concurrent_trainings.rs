//! Trainings in one process are independent: four at once on four threads (LoRA, full,
//! mixed precision, weights sharded over two workers) each end with its solo run's weights,
//! bitwise, round after round.
//!
//! burn-autodiff keeps one process-wide map of its graphs, and every `backward` sweeps all of
//! them for orphans. An op that let go of its input before registering its own step left the
//! input's graph looking orphaned meanwhile, so another thread's sweep could free a step this
//! training still needed, and a gradient went missing (vendor/SEETHINK.md, burn-autodiff).
//!
//! On `Autodiff<NdArray<f64>>` (the generic path, that of wgpu and cuda), where mixed
//! precision runs: burn 0.21 keeps one default float type per device type, so a process holds
//! tensors of one of `NdArray<f32>` and `NdArray<f64>`. One sharded training at a time: the
//! collective is the process's.

mod common;

use std::path::Path;
use std::sync::Arc;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor};
use common::{image_and_text_tasks, tiny_config, Letters};
use seethink_models::nn::LoraConfig;
use seethink_rl::config::{ComputeType, TrainConfig, Trainer};
use seethink_rl::run::train_on;
use seethink_rl::sharding::Sharding;

type G = Autodiff<NdArray<f64>>;

/// How many times the four trainings run side by side.
const ROUNDS: usize = 20;

/// Every float parameter's bits, in visiting order.
fn bits<Bk: Backend, M: Module<Bk>>(model: &M) -> Vec<u64> {
    struct Collect(Vec<u64>);
    impl<Bk: Backend> ModuleVisitor<Bk> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
            let values = param.val().into_data().convert::<f64>().to_vec::<f64>().unwrap();
            self.0.extend(values.into_iter().map(f64::to_bits));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// One training of the four: its family's tiny checkpoint and what sets it apart.
struct Training {
    name: &'static str,
    family: &'static str,
    setup: fn(&mut TrainConfig),
}

const TRAININGS: [Training; 4] = [
    Training {
        name: "LoRA",
        family: "qwen3_vl",
        setup: |c| c.actor.lora = Some(LoraConfig { rank: 4, alpha: 8.0, ..Default::default() }),
    },
    Training { name: "full", family: "qwen2_5_vl", setup: |_| {} },
    Training {
        name: "mixed precision",
        family: "internvl3",
        setup: |c| c.actor.mixed_precision = Some(ComputeType::F32),
    },
    Training {
        name: "sharded, 2 workers",
        family: "internvl3_5",
        setup: |c| {
            c.trainer.devices = 2;
            c.trainer.sharding = Sharding::Weights;
            c.actor.activation_checkpointing = true;
        },
    },
];

/// One GRPO step of 4 prompts × 4 samples with the KL as a loss, in 2 mini-batches of one
/// micro-batch each (two backward passes and optimizer steps); the trained weights' bits.
fn train(training: &Training, out: &Path) -> Vec<u64> {
    let mut config = tiny_config(out, Trainer::Grpo, 1, 4);
    config.model = common::checkpoint().join("../..").join(training.family).join("checkpoint");
    config.algorithm.kl_coef = 0.05;
    config.algorithm.use_kl_loss = true;
    config.actor.mini_batches = 2;
    config.actor.micro_batch_size = 4;
    (training.setup)(&mut config);
    bits(&train_on::<G>(&config, image_and_text_tasks(), Arc::new(Letters), &Default::default()).unwrap())
}

#[test]
fn four_trainings_on_four_threads_each_equal_their_solo_run() {
    let solo: Vec<Vec<u64>> =
        TRAININGS.iter().map(|training| train(training, tempfile::tempdir().unwrap().path())).collect();
    for round in 0..ROUNDS {
        let together: Vec<Vec<u64>> = std::thread::scope(|scope| {
            let threads: Vec<_> = TRAININGS
                .iter()
                .map(|training| scope.spawn(move || train(training, tempfile::tempdir().unwrap().path())))
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for ((training, alone), beside) in TRAININGS.iter().zip(&solo).zip(&together) {
            let differing = alone.iter().zip(beside).filter(|(a, b)| a != b).count();
            assert_eq!(differing, 0, "round {round}: {} differs from its solo run", training.name);
        }
    }
}
