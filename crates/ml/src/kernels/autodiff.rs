//! Our kernels as nodes of burn's autodiff graph, with our gradients as their backward steps.

use burn::backend::AutodiffBackend;
use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::tensor::Shape;

use super::{TrainGradients, TrainKernels};
use crate::models::activation::Activation;
use crate::nhwc::Window;

/// The backward step of [`TrainKernels::conv2d_gemm`]: gradients for whichever of the input and
/// the weight are tracked.
#[derive(Debug)]
struct Conv2dGemmBackward;

impl<B: TrainGradients> Backward<B, 2> for Conv2dGemmBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_state);
        let weight: FloatTensor<B> = checkpointer.retrieve_node_output(weight_state);
        let wanted = [node_x.is_some(), node_weight.is_some()];
        let [dx, dw] = B::conv2d_gemm_backward(x, weight, grad, options, wanted);
        for (node, gradient) in [(node_x, dx), (node_weight, dw)] {
            if let (Some(node), Some(gradient)) = (node, gradient) {
                grads.register::<B>(node.id, gradient);
            }
        }
    }
}

/// The backward step of [`TrainKernels::batch_norm_fused`]: gradients of the input, γ and β.
#[derive(Debug)]
struct BatchNormBackward;

/// What [`BatchNormBackward`] keeps: input, γ and β (checkpointed), the batch statistics as the
/// forward computed them, ε and the activation.
type BatchNormState<B> = ([NodeId; 3], FloatTensor<B>, FloatTensor<B>, f64, Activation);

impl<B: TrainGradients> Backward<B, 3> for BatchNormBackward {
    type State = BatchNormState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (states, mean, variance, epsilon, activation) = ops.state;
        let [x, gamma, beta]: [FloatTensor<B>; 3] =
            states.map(|state| checkpointer.retrieve_node_output(state));
        let gradients =
            B::batch_norm_fused_backward(x, gamma, beta, mean, variance, epsilon, activation, grad);
        for (node, gradient) in ops.parents.into_iter().zip(gradients) {
            if let Some(node) = node {
                grads.register::<B>(node.id, gradient);
            }
        }
    }
}

/// The end of a one-input backward step: the step's output gradient is consumed, and its parent,
/// when tracked, gets the gradient `compute` makes from it and the step's state.
fn to_parent<B: TrainGradients, S>(
    ops: Ops<S, 1>,
    grads: &mut Gradients,
    compute: impl FnOnce(FloatTensor<B>, S) -> FloatTensor<B>,
) {
    let grad = grads.consume::<B>(&ops.node);
    if let [Some(node)] = ops.parents {
        grads.register::<B>(node.id, compute(grad, ops.state));
    }
}

/// The backward step of [`TrainKernels::silu_fused`]: the input (checkpointed) is its state.
#[derive(Debug)]
struct SiluBackward;

impl<B: TrainGradients> Backward<B, 1> for SiluBackward {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        to_parent::<B, _>(ops, grads, |grad, x| {
            B::silu_fused_backward(checkpointer.retrieve_node_output(x), grad)
        });
    }
}

/// The backward step of [`TrainKernels::max_pool2d_fused`]: the input (checkpointed) and the
/// window are its state; the winners are found again from the input.
#[derive(Debug)]
struct MaxPoolBackward;

impl<B: TrainGradients> Backward<B, 1> for MaxPoolBackward {
    type State = (NodeId, Window);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        to_parent::<B, _>(ops, grads, |grad, (x, window)| {
            B::max_pool2d_fused_backward(checkpointer.retrieve_node_output(x), grad, window)
        });
    }
}

/// The backward step of a concatenation of `N` inputs ([`TrainKernels::cat2_fused`] and the
/// others): each input's extent along the concatenated axis, and the axis, are its state.
#[derive(Debug)]
struct CatBackward<const N: usize>;

impl<B: TrainGradients, const N: usize> Backward<B, N> for CatBackward<N> {
    type State = ([usize; N], usize);

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (sizes, dim) = ops.state;
        let wanted = ops.parents.each_ref().map(Option::is_some);
        let parts = B::cat_fused_backward(grad, dim, &sizes, &wanted);
        for (node, part) in ops.parents.into_iter().zip(parts) {
            if let (Some(node), Some(part)) = (node, part) {
                grads.register::<B>(node.id, part);
            }
        }
    }
}

/// The backward step of [`TrainKernels::narrow_fused`]: the input's shape, the axis and the
/// start are its state.
#[derive(Debug)]
struct NarrowBackward;

impl<B: TrainGradients> Backward<B, 1> for NarrowBackward {
    type State = (Shape, usize, usize);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        to_parent::<B, _>(ops, grads, |grad, (input, dim, start)| {
            B::narrow_fused_backward(grad, input, dim, start)
        });
    }
}

/// The backward step of [`TrainKernels::upsample_nearest_fused`]: the factor is its state.
#[derive(Debug)]
struct UpsampleBackward;

impl<B: TrainGradients> Backward<B, 1> for UpsampleBackward {
    type State = usize;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        to_parent::<B, _>(ops, grads, B::upsample_nearest_fused_backward);
    }
}

/// The inner backend's concatenation of `N` (2 to 4) tensors.
fn concat_array<B: TrainKernels, const N: usize>(
    tensors: [FloatTensor<B>; N],
    dim: usize,
) -> FloatTensor<B> {
    let mut tensors = tensors.into_iter();
    match (
        tensors.next(),
        tensors.next(),
        tensors.next(),
        tensors.next(),
    ) {
        (Some(a), Some(b), None, _) => B::cat2_fused(a, b, dim),
        (Some(a), Some(b), Some(c), None) => B::cat3_fused(a, b, c, dim),
        (Some(a), Some(b), Some(c), Some(d)) => B::cat4_fused(a, b, c, d, dim),
        (a, b, c, d) => B::float_cat([a, b, c, d].into_iter().flatten().collect(), dim),
    }
}

/// A concatenation of `N` tensors, tracked or not.
fn cat_of<B, C, const N: usize>(
    tensors: [FloatTensor<Autodiff<B, C>>; N],
    dim: usize,
) -> FloatTensor<Autodiff<B, C>>
where
    B: TrainKernels + TrainGradients,
    C: CheckpointStrategy,
{
    let sizes = tensors.each_ref().map(|t| t.shape()[dim]);
    let nodes = tensors.each_ref().map(|t| t.node());
    let primitives = tensors.map(|t| t.into_primitive());
    let output = concat_array::<B, N>(primitives, dim);
    match CatBackward::<N>
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((sizes, dim), output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

impl<B: TrainKernels + TrainGradients, C: CheckpointStrategy> TrainKernels for Autodiff<B, C> {
    fn conv2d_gemm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match Conv2dGemmBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out =
                    B::conv2d_gemm(x.into_primitive(), weight.into_primitive(), options.clone());
                prep.finish((x_state, weight_state, options), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_gemm(
                x.into_primitive(),
                weight.into_primitive(),
                options,
            )),
        }
    }

    fn batch_norm_fused(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        activation: Activation,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // The checkpoints are taken before the inputs are consumed; the kernel then runs once.
        let tracked = match BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let checkpoints = [
                    prep.checkpoint(&x),
                    prep.checkpoint(&gamma),
                    prep.checkpoint(&beta),
                ];
                Ok((prep, checkpoints))
            }
            OpsKind::UnTracked(prep) => Err(prep),
        };
        let (output, mean, variance) = B::batch_norm_fused(
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
            epsilon,
            activation,
        );
        let output = match tracked {
            Ok((prep, checkpoints)) => {
                let state = (
                    checkpoints,
                    mean.clone(),
                    variance.clone(),
                    epsilon,
                    activation,
                );
                prep.finish(state, output)
            }
            Err(prep) => prep.finish(output),
        };
        (output, Self::from_inner(mean), Self::from_inner(variance))
    }

    fn silu_fused(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match SiluBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, B::silu_fused(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::silu_fused(x.into_primitive())),
        }
    }

    fn max_pool2d_fused(x: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
        match MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(
                    (state, window),
                    B::max_pool2d_fused(x.into_primitive(), window),
                )
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::max_pool2d_fused(x.into_primitive(), window))
            }
        }
    }

    fn upsample_nearest_fused(x: FloatTensor<Self>, factor: usize) -> FloatTensor<Self> {
        match UpsampleBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                factor,
                B::upsample_nearest_fused(x.into_primitive(), factor),
            ),
            OpsKind::UnTracked(prep) => {
                prep.finish(B::upsample_nearest_fused(x.into_primitive(), factor))
            }
        }
    }

    fn narrow_fused(
        x: FloatTensor<Self>,
        dim: usize,
        start: usize,
        length: usize,
    ) -> FloatTensor<Self> {
        let input = x.shape();
        match NarrowBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                (input, dim, start),
                B::narrow_fused(x.into_primitive(), dim, start, length),
            ),
            OpsKind::UnTracked(prep) => {
                prep.finish(B::narrow_fused(x.into_primitive(), dim, start, length))
            }
        }
    }

    fn cat2_fused(a: FloatTensor<Self>, b: FloatTensor<Self>, dim: usize) -> FloatTensor<Self> {
        cat_of::<B, C, 2>([a, b], dim)
    }

    fn cat3_fused(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        dim: usize,
    ) -> FloatTensor<Self> {
        cat_of::<B, C, 3>([a, b, c], dim)
    }

    fn cat4_fused(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        d: FloatTensor<Self>,
        dim: usize,
    ) -> FloatTensor<Self> {
        cat_of::<B, C, 4>([a, b, c, d], dim)
    }
}
