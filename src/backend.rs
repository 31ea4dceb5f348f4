//! The compiled-in burn backends, selectable by name at run time.

use std::fmt;
use std::str::FromStr;

/// A backend this binary was compiled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// CPU, `ndarray` feature (default).
    #[cfg(feature = "ndarray")]
    Ndarray,
    /// GPU through wgpu (Vulkan/Metal/DX12), `wgpu` feature.
    #[cfg(feature = "wgpu")]
    Wgpu,
    /// NVIDIA GPU through CUDA, `cuda` feature.
    #[cfg(feature = "cuda")]
    Cuda,
}

/// Names of the compiled-in backends, best first: cuda, wgpu, ndarray.
pub const AVAILABLE: &[&str] = &[
    #[cfg(feature = "cuda")]
    "cuda",
    #[cfg(feature = "wgpu")]
    "wgpu",
    #[cfg(feature = "ndarray")]
    "ndarray",
];

/// The best backend compiled in (cuda, then wgpu, then ndarray): every `--backend`'s default,
/// so `--features cuda` alone trains on the GPU.
pub const BEST: &str = AVAILABLE[0];

/// Says on stderr which backend runs and which others `--backend` could choose.
pub fn announce(kind: BackendKind) {
    eprintln!("backend: {kind} (compiled in: {}; --backend chooses)", AVAILABLE.join(", "));
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            #[cfg(feature = "ndarray")]
            "ndarray" => Ok(Self::Ndarray),
            #[cfg(feature = "wgpu")]
            "wgpu" => Ok(Self::Wgpu),
            #[cfg(feature = "cuda")]
            "cuda" => Ok(Self::Cuda),
            other => Err(format!(
                "backend `{other}` is not compiled in (available: {}; enable the cargo feature of the same name)",
                AVAILABLE.join(", ")
            )),
        }
    }
}

impl BackendKind {
    /// Whether tensors live on a GPU (wgpu, cuda) rather than in host memory.
    pub fn is_gpu(self) -> bool {
        match self {
            #[cfg(feature = "ndarray")]
            Self::Ndarray => false,
            #[cfg(feature = "wgpu")]
            Self::Wgpu => true,
            #[cfg(feature = "cuda")]
            Self::Cuda => true,
        }
    }

    /// Whether this is the CUDA backend.
    pub fn is_cuda(self) -> bool {
        self.to_string() == "cuda"
    }

    /// What cubecl's memory pools hold on the default CUDA device for this thread's stream,
    /// once what is queued on it has run; `None` for the other backends.
    pub fn pooled_memory(self) -> Option<PooledMemory> {
        match self {
            #[cfg(feature = "cuda")]
            Self::Cuda => {
                use cubecl::Runtime as _;
                let device = Default::default();
                <burn::backend::Cuda as burn::tensor::backend::Backend>::sync(&device).ok()?;
                let usage = cubecl::cuda::CudaRuntime::client(&device).memory_usage().ok()?;
                Some(PooledMemory { in_use: usage.bytes_in_use, reserved: usage.bytes_reserved })
            }
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

/// A GPU's memory as its pools account for it, bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PooledMemory {
    /// Held by live tensors.
    pub in_use: u64,
    /// Taken from the driver by the pools, in use or kept for reuse (what `nvidia-smi` counts,
    /// besides the CUDA context).
    pub reserved: u64,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            #[cfg(feature = "ndarray")]
            Self::Ndarray => "ndarray",
            #[cfg(feature = "wgpu")]
            Self::Wgpu => "wgpu",
            #[cfg(feature = "cuda")]
            Self::Cuda => "cuda",
        };
        f.write_str(name)
    }
}

/// Runs `$body` with the type alias `$b` bound to the backend of `$kind`, after saying which
/// backend runs ([`announce`]).
#[macro_export]
macro_rules! with_backend {
    ($kind:expr, $b:ident => $body:expr) => {{
        let kind: $crate::backend::BackendKind = $kind;
        $crate::backend::announce(kind);
        match kind {
            #[cfg(feature = "ndarray")]
            $crate::backend::BackendKind::Ndarray => {
                type $b = burn::backend::NdArray<f32>;
                $body
            }
            #[cfg(feature = "wgpu")]
            $crate::backend::BackendKind::Wgpu => {
                type $b = burn::backend::Wgpu;
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::BackendKind::Cuda => {
                type $b = burn::backend::Cuda;
                $body
            }
        }
    }};
}
