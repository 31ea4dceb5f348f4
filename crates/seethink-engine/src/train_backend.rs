//! The backends seethink trains on, as one bound: autodiff over an inner backend, both with the
//! models' [`Kernels`], the inner one (where parameters are updated) with the
//! [`OptimizerKernels`].

use burn::tensor::backend::AutodiffBackend;
use seethink_models::kernels::Kernels;

use crate::optim::OptimizerKernels;

/// An autodiff backend whose kernels are known: `Autodiff<B>` for any `B` with both kernel
/// traits (implemented for every such backend).
pub trait TrainBackend: AutodiffBackend<InnerBackend: Kernels + OptimizerKernels> + Kernels {}

impl<B> TrainBackend for B where B: AutodiffBackend<InnerBackend: Kernels + OptimizerKernels> + Kernels {}

/// A backend with both kernel sets: it runs the models, and `Autodiff` over it is a
/// [`TrainBackend`] (implemented for every such backend).
pub trait KernelBackend: Kernels + OptimizerKernels {}

impl<B: Kernels + OptimizerKernels> KernelBackend for B {}
