//! `seethink plan`: a run's memory per component before any weight is read, whether it fits
//! the device, and which knob would make it fit; and the same check before `seethink train`
//! on a GPU backend. The planning itself is seethink-rl's (`seethink_rl::plan`, re-exported
//! here); this module reads the device and the command line.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::backend::BackendKind;
use crate::rl::config::TrainConfig;
use crate::rl::plan::gib;
pub use crate::rl::plan::{fit_batch_size, plans_of, report, target, PlanDevice, Workers};

impl From<BackendKind> for PlanDevice {
    fn from(kind: BackendKind) -> Self {
        match (kind.is_gpu(), kind.is_cuda()) {
            (false, _) => Self::Ndarray,
            (true, false) => Self::Wgpu,
            (true, true) => Self::Cuda,
        }
    }
}

/// A size such as `80GiB`, `80GB`, `512MiB` or a number of bytes.
pub fn parse_bytes(text: &str) -> Result<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().with_context(|| format!("`{text}` is not a size such as 80GiB"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => bail!("`{text}`: unknown unit `{other}` (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"),
    };
    Ok((number * scale) as u64)
}

/// The memory of `device`: `given`, else on CUDA what `nvidia-smi` reports for the first GPU;
/// `None` when unknown.
pub fn device_memory(device: PlanDevice, given: Option<u64>) -> Option<u64> {
    given.or_else(|| match device == PlanDevice::Cuda {
        true => nvidia_smi_memory()?.first().copied(),
        false => None,
    })
}

/// Each GPU's total memory from `nvidia-smi`, if it runs.
fn nvidia_smi_memory() -> Option<Vec<u64>> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.total", "--format=csv,noheader,nounits"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().map(|line| line.trim().parse::<u64>().ok().map(|mib| mib << 20)).collect()
}

/// The `config.json` files of real checkpoints seethink ships (tests/fixtures/real_configs), by
/// the name of the checkpoint directory the paper's configs point at.
const SHIPPED_CONFIGS: [(&str, &str); 3] = [
    ("Qwen2.5-VL-7B-Instruct", include_str!("../tests/fixtures/real_configs/qwen2_5_vl_7b/config.json")),
    ("Qwen2.5-VL-3B-Instruct", include_str!("../tests/fixtures/real_configs/qwen2_5_vl_3b/config.json")),
    ("Qwen3-VL-8B-Instruct", include_str!("../tests/fixtures/real_configs/qwen3_vl_8b/config.json")),
];

/// Where `model` has no `config.json` and its directory is named after a checkpoint whose
/// `config.json` seethink ships: that file, written into `scratch`, which then stands for the
/// checkpoint (a plan reads nothing else).
fn shipped_config(model: &Path, scratch: &Path) -> Result<Option<PathBuf>> {
    if model.join("config.json").exists() {
        return Ok(None);
    }
    let name = model.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Some((_, json)) = SHIPPED_CONFIGS.iter().find(|(shipped, _)| *shipped == name) else {
        return Ok(None);
    };
    let path = scratch.join("config.json");
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(scratch.to_path_buf()))
}

/// `seethink plan`: prints the report for one of `workers` on `device`; an error when the run
/// does not fit. A checkpoint that is not there is planned from its shipped `config.json`
/// when seethink has it ([`SHIPPED_CONFIGS`]).
pub fn plan(
    config_path: &Path,
    overrides: &[String],
    workers: Workers,
    device: PlanDevice,
    memory: Option<u64>,
) -> Result<()> {
    let mut config = TrainConfig::load(config_path, overrides)?;
    workers.apply(&mut config);
    let scratch = tempfile::tempdir().context("a scratch directory for a shipped config.json")?;
    if let Some(dir) = shipped_config(&config.model, scratch.path())? {
        println!(
            "{} has no config.json: planning from the one seethink ships for {} (no weights are read)\n",
            config.model.display(),
            config.model.file_name().and_then(|n| n.to_str()).unwrap_or_default()
        );
        config.model = dir;
    }
    let topology = config.trainer.topology();
    println!(
        "one worker of {} ({} per machine × {} machine(s)), trainer.sharding {:?}\n",
        topology.workers(),
        topology.local(),
        topology.machines(),
        topology.sharding
    );
    let (text, fits) = report(&config, device, device_memory(device, memory))?;
    print!("{text}");
    if !fits {
        bail!("{}: the run does not fit in the device's memory", config_path.display());
    }
    Ok(())
}

/// Before `seethink train` on a GPU backend: refuses, with the plan, a run whose peak exceeds
/// the device's memory (`memory`, else what the device reports), after setting
/// `rollout.batch_size: 0` to as many as fit ([`fit_batch_size`]). On the host nothing is
/// refused (memory there is the machine's, swap included).
pub fn refuse_unfit(
    config: &mut TrainConfig,
    config_path: &Path,
    kind: BackendKind,
    memory: Option<u64>,
) -> Result<()> {
    if !kind.is_gpu() && memory.is_none() {
        return Ok(());
    }
    let device = PlanDevice::from(kind);
    let mut memory = device_memory(device, memory);
    // workers beyond the GPUs share them (devices `i mod gpus`): each worker's plan must fit
    // its share of a GPU's memory
    let gpus = match device {
        PlanDevice::Cuda => nvidia_smi_memory().map(|gpus| gpus.len()).filter(|&n| n > 0),
        _ => None,
    };
    if let Some(gpus) = gpus.filter(|&gpus| config.trainer.devices > gpus) {
        let sharing = config.trainer.devices.div_ceil(gpus);
        memory = memory.map(|bytes| bytes / sharing as u64);
        tracing::info!(
            "trainer.devices is {} on {gpus} GPU(s): up to {sharing} workers share a GPU, each planned within {:.2} GiB",
            config.trainer.devices,
            memory.map_or(0.0, gib)
        );
    }
    if let Some(line) = fit_batch_size(config, device, memory)? {
        tracing::info!("{}", line.trim_end());
    }
    let (text, fits) = report(config, device, memory)?;
    if !fits {
        bail!("{}: the run cannot fit on this device; refusing to start\n\n{text}", config_path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_read_binary_and_decimal_units() {
        assert_eq!(parse_bytes("80GiB").unwrap(), 80 << 30);
        assert_eq!(parse_bytes("80 GB").unwrap(), 80_000_000_000);
        assert_eq!(parse_bytes("1.5MiB").unwrap(), 3 << 19);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("GiB").is_err());
        assert!(parse_bytes("12 parsecs").unwrap_err().to_string().contains("unknown unit `parsecs`"));
    }
}
