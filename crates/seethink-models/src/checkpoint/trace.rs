//! Recovering a model's HF tensors by replaying its loader against a tracing checkpoint.
//!
//! The loader is the one place that knows which HF tensor feeds which parameter and how
//! (as is, or transposed). Instead of a second table for export, the loader is run again
//! on [`Checkpoint::trace`]: every read is recorded and answered with a tensor filled with
//! a distinct marker value. The marker found in each parameter of that shadow model names
//! the read that produced it; parameters are visited in the same order in the shadow and
//! the real model, so the real parameter at the same position holds that tensor's value.
//! Marker tensors are broadcasts of one element: CubeCL backends (CUDA, wgpu) keep them as
//! zero-stride views, so the shadow model costs next to no device memory there (NdArray
//! materialises them, the size of the model once more in host memory).

use std::sync::{Mutex, PoisonError};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor, TensorData};

use super::{transpose, Checkpoint, HfTensor};
use crate::error::{ModelError, Result};

/// Markers per sign and exponent: the nonzero values of the 7 explicit mantissa bits that
/// bf16 and f16 share (zero is left out so that no marker is a power of two, such as the
/// 1.0 of a freshly initialised norm).
const MANTISSAS: usize = 127;
/// Exponents of normal f16 numbers, `2^-14 ..= 2^15`.
const EXPONENTS: usize = 30;
/// How many distinct markers exist: every value exact in f32, bf16 and f16.
const MARKERS: usize = 2 * EXPONENTS * MANTISSAS;

/// What the loader did to a stored tensor before putting it in a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TransformKind {
    /// Used as stored (same shape).
    Plain,
    /// `[rows, rest...]` stored, `[rest product, rows]` loaded.
    Transposed,
}

/// One read of the loader: canonical name, HF shape, transformation.
#[derive(Debug)]
pub(super) struct TracedRead {
    name: String,
    shape: Vec<usize>,
    kind: TransformKind,
}

/// The reads recorded so far.
#[derive(Debug, Default)]
pub(super) struct Trace {
    reads: Mutex<Vec<TracedRead>>,
}

impl Trace {
    /// Records a read and returns the marker value that stands for it.
    pub(super) fn record(&self, name: &str, shape: &[usize], kind: TransformKind) -> Result<f32> {
        let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
        let marker = marker(reads.len()).ok_or_else(|| {
            let message =
                format!("the loader reads more than {MARKERS} tensors, more than a trace tells apart");
            export_error(name, &message)
        })?;
        reads.push(TracedRead { name: name.to_string(), shape: shape.to_vec(), kind });
        Ok(marker)
    }

    /// The recorded reads, in order.
    pub(super) fn into_reads(self) -> Vec<TracedRead> {
        self.reads.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A tensor of `shape` whose every element is `marker` (a broadcast of one element).
pub(super) fn marker_tensor<B: Backend, const D: usize>(
    marker: f32,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::<B, D>::from_data(TensorData::new(vec![marker], [1; D]), device).expand(shape)
}

/// Marker number `k`: `±(1 + m/128)·2^(e−14)` with `1 ≤ m < 128`, exact in f32, bf16 and f16.
fn marker(k: usize) -> Option<f32> {
    if k >= MARKERS {
        return None;
    }
    let (sign, rest) = ((k % 2) as u32, k / 2);
    let (exponent, mantissa) = ((rest / MANTISSAS) as u32, (rest % MANTISSAS + 1) as u32);
    Some(f32::from_bits(sign << 31 | (exponent + 127 - 14) << 23 | mantissa << 16))
}

/// The number of marker `value`, if it is one.
fn marker_index(value: f32) -> Option<usize> {
    let bits = value.to_bits();
    let sign = (bits >> 31) as usize;
    let exponent = (((bits >> 23) & 0xff) as usize).checked_sub(127 - 14)?;
    let mantissa = (((bits >> 16) & 0x7f) as usize).checked_sub(1)?;
    let k = (exponent * MANTISSAS + mantissa) * 2 + sign;
    (marker(k)?.to_bits() == bits).then_some(k)
}

/// An export error about tensor (or parameter) `name`.
fn export_error(name: &str, message: &str) -> ModelError {
    ModelError::Export(format!("`{name}`: {message}"))
}

/// Every tensor the loader of `model` reads, as HF stores it: `(canonical name, HF shape,
/// row-major values)` in the order the loader reads them.
///
/// `load` must build a model of the same structure as `model` (typically its loader with
/// `model`'s config) from the checkpoint it is given; it is run once on a tracing checkpoint.
/// Fails if a parameter of `model` was not loaded from a checkpoint tensor, if a tensor read
/// by the loader is held by no parameter or by several, or if shapes disagree.
pub fn export_tensors<B: Backend, M: Module<B>>(
    model: &M,
    load: impl FnOnce(&Checkpoint) -> Result<M>,
) -> Result<Vec<HfTensor>> {
    let trace = Checkpoint::trace();
    let shadow = load(&trace)?;
    let mut markers = FirstElements(Vec::new());
    shadow.visit(&mut markers);
    drop(shadow);
    let reads = trace.traced_reads();
    let owners = owners(&markers.0, &reads)?;
    let mut values = ParamValues(Vec::new());
    model.visit(&mut values);
    if values.0.len() != markers.0.len() {
        return Err(ModelError::Export(format!(
            "the model has {} float parameters, but its loader builds {}",
            values.0.len(),
            markers.0.len()
        )));
    }
    let mut values: Vec<Option<_>> = values.0.into_iter().map(Some).collect();
    reads
        .into_iter()
        .zip(owners)
        .map(|(read, owner)| {
            let (dims, data) = values[owner].take().expect("owners are distinct parameters");
            read.export(dims, data)
        })
        .collect()
}

/// For each read, the index of the (shadow) parameter holding its marker.
fn owners(markers: &[Option<f32>], reads: &[TracedRead]) -> Result<Vec<usize>> {
    let mut owner: Vec<Option<usize>> = vec![None; reads.len()];
    for (param, first) in markers.iter().enumerate() {
        let read = first.and_then(marker_index).filter(|&k| k < reads.len()).ok_or_else(|| {
            export_error(&format!("parameter #{param}"), "it is not loaded from a checkpoint tensor")
        })?;
        if owner[read].replace(param).is_some() {
            return Err(export_error(&reads[read].name, "it is loaded into more than one parameter"));
        }
    }
    owner
        .into_iter()
        .zip(reads)
        .map(|(o, r)| o.ok_or_else(|| export_error(&r.name, "the loader reads it but no parameter holds it")))
        .collect()
}

impl TracedRead {
    /// The HF tensor of this read from the parameter `dims`/`data` it was loaded into.
    fn export(self, dims: Vec<usize>, data: TensorData) -> Result<HfTensor> {
        let rows = self.shape.first().copied().unwrap_or(1);
        let cols = self.shape.iter().skip(1).product::<usize>();
        let loaded = match self.kind {
            TransformKind::Plain => self.shape.clone(),
            TransformKind::Transposed => vec![cols, rows],
        };
        if dims != loaded {
            let message = format!("the parameter has shape {dims:?}, the loader makes {loaded:?}");
            return Err(export_error(&self.name, &message));
        }
        let values = data
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| export_error(&self.name, &format!("{e:?}")))?;
        let values = match self.kind {
            TransformKind::Plain => values,
            TransformKind::Transposed => transpose(&values, cols, rows),
        };
        Ok((self.name, self.shape, values))
    }
}

/// The shape and values of every float parameter, in visiting order.
struct ParamValues(Vec<(Vec<usize>, TensorData)>);

impl<B: Backend> ModuleVisitor<B> for ParamValues {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let tensor = param.val();
        self.0.push((tensor.dims().to_vec(), tensor.into_data()));
    }
}

/// The first element of every float parameter (`None` if empty), in visiting order.
struct FirstElements(Vec<Option<f32>>);

impl<B: Backend> ModuleVisitor<B> for FirstElements {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let tensor = param.val();
        let first = (tensor.shape().num_elements() > 0).then(|| {
            let corner = tensor.slice(core::array::from_fn::<_, D, _>(|_| 0..1));
            corner.into_data().convert::<f32>().into_vec::<f32>().ok().and_then(|v| v.first().copied())
        });
        self.0.push(first.flatten());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_are_exact_in_half_types() {
        for k in 0..MARKERS {
            let m = marker(k).unwrap();
            assert_eq!(marker_index(m), Some(k));
            assert_eq!(half::bf16::from_f32(m).to_f32(), m);
            assert_eq!(half::f16::from_f32(m).to_f32(), m);
        }
        assert_eq!(marker(MARKERS), None);
    }

    #[test]
    fn ordinary_values_are_not_markers() {
        for v in [0.0, 1.0, -1.0, 0.5, 2.0, 1e-9, 0.1, 3.3, -7.77, 1e6, f32::NAN, f32::INFINITY] {
            assert_eq!(marker_index(v), None, "{v}");
        }
    }
}
