//! The sandbox's training is the same to the bit on every x86-64 CPU. Natively, two GRPO steps
//! of the committed base model (the CPU preset's settings at a smaller batch) write the committed
//! hash; under `qemu-x86_64` emulating CPUs of other vendors and SIMD levels, one smaller GRPO
//! step writes the same weights as on this CPU. Each emulated CPU reports its own CPUID, so the
//! kernels' runtime dispatch (SIMD level, cache-sized blocking, glibc's math variants) takes the
//! paths it would take on that CPU; the smaller step keeps emulation (tens of times slower than
//! native) to minutes. The emulated CPUs need `qemu-x86_64` (Debian: `qemu-user`): without it
//! they are skipped with a notice and only this CPU's hash is checked, unless
//! `SEETHINK_REQUIRE_EMULATION` is set (`.ci/run` sets it, and installs qemu-user).

use std::process::Command;

use burn::backend::{Autodiff, NdArray};
use seethink::preset::{CpuPreset, StageSteps};

/// [`weights_after_grpo`] on an AMD EPYC (Zen 4, AVX-512), with the host products summing in
/// blocks of at most 512 (since 2026-11-27; the figures of docs/results.md came from blocks of
/// 1024, hash `0f2524b835a22e28`): the code's numerics fingerprint. A test machine that
/// computes another hash trains to other weights; a change that means to alter the arithmetic
/// updates it, and the docs then mark the results made before it (`tests/committed_results.rs`).
const COMMITTED_HASH: &str = seethink::provenance::NUMERICS;

/// Set in the emulated child: it only prints its hash.
const CHILD: &str = "SEETHINK_CROSS_CPU_CHILD";

/// Set where the emulated CPUs must run (CI): a missing `qemu-x86_64` fails the test.
const REQUIRE_EMULATION: &str = "SEETHINK_REQUIRE_EMULATION";

/// qemu's CPU models: AVX2 + FMA without AVX-512 (qemu emulates none), with Intel's and AMD's
/// ways of reporting caches. (A CPU without FMA, e.g. `Nehalem-v2`, computes other bits:
/// `gemm` then multiplies and adds in two roundings.)
const CPUS: [&str; 3] = ["Haswell-v4", "Icelake-Server", "EPYC-Rome"];

/// How much GRPO [`weights_after_grpo`] runs.
#[derive(Clone, Copy)]
struct Workload {
    steps: usize,
    prompts_per_step: usize,
    samples: usize,
    max_new_tokens: usize,
}

/// What [`COMMITTED_HASH`] is the hash of: two GRPO steps of 4 prompts × 4 samples, up to 96
/// new tokens.
const COMMITTED: Workload = Workload { steps: 2, prompts_per_step: 4, samples: 4, max_new_tokens: 96 };

/// What every emulated CPU runs, and this CPU too to compare: one step of 2 prompts × 2
/// samples, up to 48 new tokens: the same model, tasks and kernels as [`COMMITTED`], less of
/// them.
const EMULATED: Workload = Workload { steps: 1, prompts_per_step: 2, samples: 2, max_new_tokens: 48 };

/// A hash (SipHash, fixed keys) of the final weights after `work`'s GRPO steps of the committed
/// base model on the sandbox's tasks, run in a temporary directory.
fn weights_after_grpo(work: Workload) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let preset = CpuPreset {
        out: dir.path().to_path_buf(),
        stage_steps: StageSteps::uniform(1),
        train_tasks: 8,
        heldout_tasks: 1,
        ..CpuPreset::default()
    };
    let mut config = preset.prepare().unwrap();
    config.curriculum = None;
    config.eval = None;
    config.trainer.steps = work.steps;
    config.trainer.prompts_per_step = work.prompts_per_step;
    config.rollout.n = work.samples;
    config.rollout.max_new_tokens = work.max_new_tokens;
    let run = seethink::rl::train::train::<Autodiff<NdArray>>(&config, &Default::default()).unwrap();
    let weights = std::fs::read(run.join("final/model.safetensors")).unwrap();
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&weights, &mut hasher);
    std::hash::Hasher::finish(&hasher)
}

#[test]
fn grpo_steps_write_the_same_weights_on_every_emulated_cpu() {
    if std::env::var_os(CHILD).is_some() {
        println!("weights hash {:016x}", weights_after_grpo(EMULATED));
        return;
    }
    assert_eq!(
        format!("{:016x}", weights_after_grpo(COMMITTED)),
        COMMITTED_HASH,
        "this CPU trains to other weights than the committed results'"
    );
    if Command::new("qemu-x86_64").arg("--version").output().is_err() {
        assert!(
            std::env::var_os(REQUIRE_EMULATION).is_none(),
            "{REQUIRE_EMULATION} is set but qemu-x86_64 does not run: install it (Debian: apt-get install qemu-user)"
        );
        println!(
            "NOTICE: qemu-x86_64 not found: the emulated CPUs ({}) are skipped, this CPU's hash is checked \
             (install qemu-user to compare them; set {REQUIRE_EMULATION} to require it)",
            CPUS.join(", ")
        );
        return;
    }
    let hash = weights_after_grpo(EMULATED);
    let exe = std::env::current_exe().unwrap();
    let emulated = |cpu: &str| {
        let output = Command::new("qemu-x86_64")
            .args(["-cpu", cpu])
            .arg(&exe)
            .args(["grpo_steps_write_the_same_weights_on_every_emulated_cpu", "--exact", "--nocapture"])
            .env(CHILD, "1")
            .output()
            .unwrap_or_else(|e| panic!("qemu-x86_64 ({e}): install it (Debian: apt-get install qemu-user)"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "under -cpu {cpu}:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let hash = stdout.lines().find_map(|line| line.strip_prefix("weights hash ").map(str::to_string));
        hash.unwrap_or_else(|| panic!("no hash under -cpu {cpu}:\n{stdout}"))
    };
    let hashes: Vec<String> = std::thread::scope(|s| {
        CPUS.map(|cpu| s.spawn(move || emulated(cpu))).map(|run| run.join().unwrap()).into()
    });
    for (cpu, theirs) in CPUS.iter().zip(hashes) {
        assert_eq!(theirs, format!("{hash:016x}"), "-cpu {cpu} trains to other weights than this CPU");
    }
}
