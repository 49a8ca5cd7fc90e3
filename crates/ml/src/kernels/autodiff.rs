//! The convolution as a node of burn's autodiff graph, with our gradients as its backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;

use super::{ConvGradients, TrainKernels};

/// The backward step of [`TrainKernels::conv2d_gemm`]: gradients for whichever of the input and
/// the weight are tracked.
#[derive(Debug)]
struct Conv2dGemmBackward;

impl<B: ConvGradients> Backward<B, 2> for Conv2dGemmBackward {
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

impl<B: TrainKernels + ConvGradients, C: CheckpointStrategy> TrainKernels for Autodiff<B, C> {
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
}
