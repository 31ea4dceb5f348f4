//! Fitting a run to a device: the run's plans per phase ([`plans_of`]) on a [`PlanDevice`],
//! the rollout's batch fitted to the device's memory ([`fit_batch_size`]), and the report
//! `seethink plan` prints, with the knobs that would make a run fit ([`report`]).

use seethink_models::checkpoint::{stored_dtype, Dtype};
use seethink_models::generate::KV_BLOCK;
use seethink_models::nn::LoraConfig;
use seethink_models::ModelSize;

use super::{gib, KernelPath, MemoryPlan, Target};
use crate::config::{ComputeType, TrainConfig};
use crate::data_parallel::NodesConfig;
use crate::error::TrainError;
use crate::phases::with_phase_settings;
use crate::sharding::Sharding;

type Result<T> = std::result::Result<T, TrainError>;

/// The device a plan is for: any of seethink's backends, compiled into this binary or not
/// (`seethink plan --for cuda` plans a GPU run on a laptop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanDevice {
    Ndarray,
    Wgpu,
    Cuda,
}

impl PlanDevice {
    /// Every device with its name.
    pub const NAMED: [(&'static str, Self); 3] =
        [("ndarray", Self::Ndarray), ("wgpu", Self::Wgpu), ("cuda", Self::Cuda)];
}

impl std::str::FromStr for PlanDevice {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Self, String> {
        let found = Self::NAMED.iter().find(|(n, _)| *n == name);
        found
            .map(|(_, device)| *device)
            .ok_or_else(|| format!("unknown device `{name}` (ndarray, wgpu or cuda)"))
    }
}

impl std::fmt::Display for PlanDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, _) = Self::NAMED.iter().find(|(_, device)| device == self).expect("every device is named");
        f.write_str(name)
    }
}

/// Where `device` keeps a run's tensors: the host kernels of ndarray (one generation call and
/// frozen pass per core) or burn's generic ops on one GPU, f32 either way. Frozen weights of a
/// checkpoint `stored` in bf16 or f16, and the passes of a run with `mixed` precision, are
/// counted in that type on CUDA, which stores both; in f32 on ndarray, which stores neither,
/// and on wgpu, where it depends on the adapter.
pub fn target(device: PlanDevice, stored: Dtype, mixed: Option<ComputeType>) -> Target {
    match device {
        PlanDevice::Ndarray => Target {
            kernels: KernelPath::Host,
            element_bytes: 4,
            compute_bytes: 4,
            frozen_bytes: 4,
            threads: seethink_models::parallel::cores(),
        },
        PlanDevice::Wgpu => Target {
            kernels: KernelPath::Generic,
            element_bytes: 4,
            compute_bytes: 4,
            frozen_bytes: 4,
            threads: 1,
        },
        PlanDevice::Cuda => Target {
            kernels: KernelPath::Generic,
            element_bytes: 4,
            compute_bytes: mixed.map_or(4, |m| m.dtype().size()),
            frozen_bytes: stored.size().min(4),
            threads: 1,
        },
    }
}

/// The run's plans from its checkpoint's `config.json`: the run config's own, and each
/// curriculum phase's with its settings (`trainer`, `freeze_vision`, `kl_coef`, `set`, ...)
/// applied.
pub fn plans_of(config: &TrainConfig, device: PlanDevice) -> Result<Vec<(String, MemoryPlan)>> {
    let size = ModelSize::from_dir(&config.model)?;
    let stored = stored_dtype(&config.model)?;
    if let Some(lora) = &config.actor.lora {
        lora.check_vision_modules(&size.vision_linear_names())?;
    }
    let target = target(device, stored, config.actor.mixed_precision);
    let mut plans = vec![("the run config".to_string(), MemoryPlan::new(&size, config, target))];
    for (name, settings) in config.curriculum.iter().flat_map(|c| &c.phases) {
        let phase = with_phase_settings(config, settings)
            .map_err(|message| TrainError::Phase { phase: name.clone(), message })?;
        plans.push((format!("phase `{name}`"), MemoryPlan::new(&size, &phase, target)));
    }
    Ok(plans)
}

/// The largest peak of `config`'s plans.
fn peak_of(config: &TrainConfig, device: PlanDevice) -> Result<u64> {
    Ok(plans_of(config, device)?.iter().map(|(_, plan)| plan.peak()).max().unwrap_or(0))
}

/// One change of the run config a user can make, and what it does to the plan.
struct Knob {
    name: String,
    change: fn(&mut TrainConfig) -> bool,
}

/// The knobs `seethink plan` tries when a run does not fit, each applied alone.
fn knobs() -> Vec<Knob> {
    vec![
        Knob {
            name: "actor.micro_batch_size = 1".into(),
            change: |c| std::mem::replace(&mut c.actor.micro_batch_size, 1) != 1,
        },
        Knob {
            name: "actor.activation_checkpointing = true (each decoder layer and vision block recomputed in backward)".into(),
            change: |c| !std::mem::replace(&mut c.actor.activation_checkpointing, true),
        },
        Knob {
            name: "trainer.sharding = Gradients (ZeRO-2: AdamW's moments and the gradients 1/N per worker)"
                .into(),
            change: |c| {
                let sharded = std::mem::replace(&mut c.trainer.sharding, Sharding::Gradients);
                c.trainer.topology().workers() > 1 && sharded != Sharding::Gradients
            },
        },
        Knob {
            name: "trainer.sharding = Weights, actor.activation_checkpointing = true (ZeRO-3: the weights \
                   too 1/N per worker between uses, each decoder layer gathered as it runs)"
                .into(),
            change: |c| {
                let sharded = std::mem::replace(&mut c.trainer.sharding, Sharding::Weights);
                c.actor.activation_checkpointing = true;
                c.trainer.topology().workers() > 1 && sharded != Sharding::Weights
            },
        },
        Knob {
            name: "actor.mixed_precision = Some(BF16) (every pass on a bf16 copy of the policy; on cuda)"
                .into(),
            change: |c| c.actor.mixed_precision.replace(ComputeType::BF16).is_none(),
        },
        Knob {
            name: "actor.logits_chunk_tokens = 256".into(),
            change: |c| std::mem::replace(&mut c.actor.logits_chunk_tokens, 256) > 256,
        },
        Knob {
            name: "rollout.batch_size = rollout.n".into(),
            change: |c| std::mem::replace(&mut c.rollout.batch_size, c.rollout.n) != c.rollout.n,
        },
        Knob {
            name: "actor.lora = (rank: 16, alpha: 32) (decoder adapters; the base is the KL reference)"
                .into(),
            change: |c| {
                let none = c.actor.lora.is_none();
                c.actor.lora.get_or_insert(LoraConfig { rank: 16, alpha: 32.0, ..Default::default() });
                none
            },
        },
        Knob {
            name: "actor.freeze_vision = true".into(),
            change: |c| !std::mem::replace(&mut c.actor.freeze_vision, true),
        },
        Knob {
            name: "algorithm.kl_coef = 0 (no reference copy; changes the objective)".into(),
            change: |c| std::mem::replace(&mut c.algorithm.kl_coef, 0.0) != 0.0,
        },
    ]
}

/// What a GPU's memory pools reserve over the plan, left free when the rollout's batch is fitted
/// to a device: 1.16× the plan at the H200 run's peak (docs/benchmarks.md), rounded up.
const GPU_POOLS_OVER_PLAN: f64 = 1.2;

/// `rollout.batch_size: 0` ("as many as fit") made concrete for a device of `memory` bytes
/// (on a GPU, within `memory / `[`GPU_POOLS_OVER_PLAN`]), as vLLM fills a GPU: the most prompts
/// per generation call (up to a worker's whole share) whose plan fits, on a GPU with the
/// samples' own KV cache at its least (a block per row, and one whole response), spread evenly
/// over as few calls as that needs; then, if the
/// plan with every response at its limit does not fit, the largest bound on the own cache that
/// does (`rollout.kv_cache_positions`: rows that outgrow it are preempted and resumed). Each is
/// found by bisection (a plan's peak grows with it). Returns the line that says which. Nothing
/// changes when the batch size is set or the memory unknown (a call then takes a worker's whole
/// share).
pub fn fit_batch_size(
    config: &mut TrainConfig,
    device: PlanDevice,
    memory: Option<u64>,
) -> Result<Option<String>> {
    let (0, Some(memory)) = (config.rollout.batch_size, memory) else {
        return Ok(None);
    };
    let memory = match device {
        PlanDevice::Ndarray => memory,
        PlanDevice::Wgpu | PlanDevice::Cuda => (memory as f64 / GPU_POOLS_OVER_PLAN) as u64,
    };
    let n = config.rollout.n.max(1);
    let share = (config.trainer.prompts_per_step / config.trainer.topology().workers()).max(1);
    let peak_at = |prompts: usize, own_positions: usize| {
        let mut tried = config.clone();
        tried.rollout.batch_size = prompts * n;
        tried.rollout.kv_cache_positions = own_positions;
        peak_of(&tried, device)
    };
    // the largest of `fits..fails` that fits, `fits` fitting and `fails` not
    let bisect = |mut fits: usize, mut fails: usize, peak: &dyn Fn(usize) -> Result<u64>| -> Result<usize> {
        while fails - fits > 1 {
            let mid = (fits + fails) / 2;
            match peak(mid)? <= memory {
                true => fits = mid,
                false => fails = mid,
            }
        }
        Ok(fits)
    };
    // on a GPU the samples' own KV cache can be bounded, down to a block per row and one whole
    // response: the most prompts per call that fit so, then the largest bound that fits
    let gpu = device != PlanDevice::Ndarray;
    let (block, limit) = (KV_BLOCK, config.rollout.max_new_tokens.div_ceil(KV_BLOCK));
    let fewest_blocks = |prompts: usize| (prompts * n).max(limit);
    let peak_at_least =
        |prompts: usize| peak_at(prompts, if gpu { fewest_blocks(prompts) * block } else { 0 });
    let most = match peak_at_least(share)? <= memory {
        true => share,
        false => bisect(1, share + 1, &peak_at_least)?,
    };
    // as few calls as that needs, evenly filled: the rest of the memory to the own cache
    let prompts = share.div_ceil(share.div_ceil(most));
    let rows = prompts * n;
    let blocks = match !gpu || peak_at(prompts, 0)? <= memory {
        true => None,
        false => {
            Some(bisect(fewest_blocks(prompts), rows * limit, &|blocks| peak_at(prompts, blocks * block))?)
        }
    };
    config.rollout.batch_size = prompts * n;
    config.rollout.kv_cache_positions = blocks.map_or(0, |blocks| blocks * block);
    let bound = match blocks {
        None => String::new(),
        Some(blocks) => format!(
            ", the samples' own KV cache bounded at {} positions ({:.0}% of every row at its limit; \
             rows that outgrow it are preempted and resume in a later wave)",
            blocks * block,
            100.0 * blocks as f64 / (rows * limit) as f64
        ),
    };
    Ok(Some(format!(
        "rollout.batch_size 0 (as many as fit): {} rows per generation call, {} call(s) for a worker's {share} prompts{bound} (plans within {:.2} GiB)\n",
        prompts * n,
        share.div_ceil(prompts),
        gib(memory)
    )))
}

/// The largest plan's table (with every phase's peak when there are several), the verdict
/// against `memory`, and when it does not fit, the peak each knob would give.
/// `rollout.batch_size: 0` is planned as [`fit_batch_size`] sets it.
pub fn report(config: &TrainConfig, device: PlanDevice, memory: Option<u64>) -> Result<(String, bool)> {
    let mut config = config.clone();
    let fitted = fit_batch_size(&mut config, device, memory)?;
    let config = &config;
    let plans = plans_of(config, device)?;
    let (name, plan) = plans.iter().max_by_key(|(_, plan)| plan.peak()).expect("the run config's plan");
    let passes = match (device, config.actor.mixed_precision) {
        (PlanDevice::Cuda, Some(compute)) => format!("passes in {compute:?} (actor.mixed_precision)"),
        _ => "passes in f32".to_string(),
    };
    let mut out = format!(
        "memory plan of one step on {device} (f32 weights; {passes}; frozen weights in the checkpoint's type where \
         {device} stores it), {name}:\n\n{}\n",
        plan.table()
    );
    if plans.len() > 1 {
        for (name, plan) in &plans {
            out.push_str(&format!("peak of {name}: {:.2} GiB\n", gib(plan.peak())));
        }
        out.push('\n');
    }
    out.extend(fitted);
    let Some(memory) = memory else {
        out.push_str("device memory unknown (give --memory, e.g. --memory 80GiB): no verdict\n");
        return Ok((out, true));
    };
    let fits = plan.peak() <= memory;
    out.push_str(&format!(
        "peak {:.2} GiB {} the device's {:.2} GiB\n",
        gib(plan.peak()),
        if fits { "fits in" } else { "does NOT fit in" },
        gib(memory)
    ));
    if !fits {
        out.push_str("\nwhat each change alone would give:\n");
        for knob in knobs() {
            let mut changed = config.clone();
            if !(knob.change)(&mut changed) {
                continue;
            }
            let peak = peak_of(&changed, device)?;
            let verdict = if peak <= memory { "fits" } else { "does not fit" };
            out.push_str(&format!("  {}: peak {:.2} GiB, {verdict}\n", knob.name, gib(peak)));
        }
    }
    Ok((out, fits))
}

/// The workers `seethink plan --devices --nodes` plans one of, over the run config's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Workers {
    /// `trainer.devices`.
    pub devices: Option<usize>,
    /// `trainer.nodes.count` (a plan needs no addresses).
    pub nodes: Option<usize>,
}

impl Workers {
    /// `config` with these workers.
    pub fn apply(self, config: &mut TrainConfig) {
        if let Some(devices) = self.devices {
            config.trainer.devices = devices;
        }
        if let Some(count) = self.nodes {
            let nodes = config.trainer.nodes.get_or_insert_with(|| NodesConfig {
                count,
                rank: 0,
                orchestrator: "ws://planned:1".into(),
                address: "ws://planned:2".into(),
            });
            nodes.count = count;
        }
    }
}
