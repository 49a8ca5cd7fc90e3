//! Our kernels as nodes of burn's autodiff graph, with our gradients as their backward steps.

use burn::backend::AutodiffBackend;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;

use super::{TrainGradients, TrainKernels};
use crate::models::activation::Activation;

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
        let grad = grads.consume::<B>(&ops.node);
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(ops.state);
        let [node] = ops.parents;
        if let Some(node) = node {
            grads.register::<B>(node.id, B::silu_fused_backward(x, grad));
        }
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
}
