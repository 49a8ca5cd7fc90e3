//! Stride-1 convolutions without an im2col matrix: one product per kernel tap.
//!
//! Each input plane is copied into a zero-padded plane of rows `width = W + pad_left + pad_right`
//! long. Output pixel `(oy, ox)` at tap `(ky, kx)` then reads padded element
//! `(oy + ky·dy)·width + ox + kx·dx`: every tap reads the padded planes at one fixed shift, so
//! for one image
//! - forward: `spread[Cout, oh·width] = Σ_taps W_tap[Cout, Cin] · padded[Cin, shift_tap ..]`,
//! - input gradient: `dpadded[Cin, shift_tap ..] += W_tapᵀ · spread_grad[Cout, oh·width]`,
//! - weight gradient: `dW_tapᵀ[Cin, Cout] = padded[Cin, shift_tap ..] · spread_gradᵀ`,
//!
//! where the "spread" matrices hold output rows `width` apart: the last `width − ow` values of each
//! row are positions that do not exist (their forward values are dropped, their gradients are
//! zero). Each product has `K = Cin` and reads the image's own padded planes, where im2col
//! writes `kh·kw` times the input and the product then reads it back. Measured single-threaded
//! on this host for a 3×3, 80-channel, 40×40 plane: one `K = 720` product over the im2col
//! matrix ran at 47–54 GFLOP/s, each `K = 80` tap product at 58–64 (with accumulation and the
//! strided weight view); with few input channels the tap products fall behind (16 channels: 43
//! against 63), hence a minimum of input channels (`Tuning` in `conv.rs`; 16 with AVX-512's
//! larger blocks and L2, where an im2col matrix of 16 channels no longer fits). Inside a YOLOv8n
//! training step (both threads busy, gemm packing each shifted view as it packed the im2col
//! matrix) the gain is smaller: over seven
//! alternating runs the layers that qualify took a median 143 against 151 ms per step forward,
//! 137 against 143 for the input gradient and 134 against 132 for the weight gradient, without
//! the im2col buffers (peak RSS 372–386 against 394 MiB).

use crate::gemm::{MatRef, matmul, matmul_add, matmul_rows_add};

use super::conv::ConvShape;

/// The padded-plane geometry of a stride-1 convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Taps {
    /// The convolution (of one image).
    shape: ConvShape,
    /// Length of a padded row: `W + pad_left + pad_right`.
    width: usize,
    /// Length of a padded plane: its rows, then `(kw − 1)·dx` zeros read by the last row's
    /// dropped positions.
    plane: usize,
    /// Output rows.
    rows: usize,
    /// Output columns (the first `columns` of each spread row).
    columns: usize,
}

impl Taps {
    /// The geometry of `shape` (stride 1) for one image.
    pub(super) fn new(shape: &ConvShape) -> Self {
        debug_assert_eq!(shape.stride, [1, 1], "taps need stride 1");
        let shape = shape.one_image();
        let width = shape.input[1] + shape.padding[1] + shape.padding_end[1];
        let height = shape.input[0] + shape.padding[0] + shape.padding_end[0];
        let [rows, columns] = shape.output();
        let tail = (shape.kernel[1] - 1) * shape.dilation[1];
        Self {
            shape,
            width,
            plane: height * width + tail,
            rows,
            columns,
        }
    }

    /// Length of one image's padded planes.
    pub(super) fn padded_len(&self) -> usize {
        self.shape.in_channels * self.plane
    }

    /// Length of one image's spread output (`[Cout, oh·width]`).
    pub(super) fn spread_len(&self) -> usize {
        self.shape.out_channels * self.spread_columns()
    }

    fn spread_columns(&self) -> usize {
        self.rows * self.width
    }

    /// Each tap's index into the weight's `kh·kw` block and its shift into a padded plane.
    fn shifts(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let ([kh, kw], [dy, dx], width) = (self.shape.kernel, self.shape.dilation, self.width);
        (0..kh * kw).map(move |tap| (tap, (tap / kw) * dy * width + (tap % kw) * dx))
    }

    /// Tap `tap`'s weights `[Cout, Cin]`, a strided view of the `[Cout, Cin, kh, kw]` weight.
    fn tap_weight<'a>(&self, weight: &'a [f32], tap: usize) -> MatRef<'a> {
        let taps = self.shape.kernel[0] * self.shape.kernel[1];
        let cin = self.shape.in_channels;
        MatRef {
            data: &weight[tap..],
            rows: self.shape.out_channels,
            cols: cin,
            row_stride: cin * taps,
            col_stride: taps,
        }
    }

    /// The padded planes read at `shift`: `[Cin, oh·width]`.
    fn shifted<'a>(&self, padded: &'a [f32], shift: usize) -> MatRef<'a> {
        MatRef::rows(
            &padded[shift..],
            self.shape.in_channels,
            self.spread_columns(),
            self.plane,
        )
    }

    /// Copies one image (`[Cin, H, W]`) into `padded` inside its zero border.
    pub(super) fn pad(&self, image: &[f32], padded: &mut [f32]) {
        let [h, w] = self.shape.input;
        let (top, left) = (self.shape.padding[0], self.shape.padding[1]);
        for (plane, source) in padded.chunks_mut(self.plane).zip(image.chunks(h * w)) {
            let (head, body) = plane.split_at_mut(top * self.width);
            head.fill(0.0);
            let (body, tail) = body.split_at_mut(h * self.width);
            for (row, line) in body.chunks_mut(self.width).zip(source.chunks(w)) {
                row[..left].fill(0.0);
                row[left..left + w].copy_from_slice(line);
                row[left + w..].fill(0.0);
            }
            tail.fill(0.0);
        }
    }

    /// One image's output `[Cout, oh, ow]` into `out`, its padded planes in `padded` (from
    /// [`Self::pad`]) and `spread` as scratch.
    pub(super) fn forward(
        &self,
        padded: &[f32],
        weight: &[f32],
        spread: &mut [f32],
        out: &mut [f32],
    ) {
        for (tap, shift) in self.shifts() {
            let (lhs, rhs) = (self.tap_weight(weight, tap), self.shifted(padded, shift));
            if tap == 0 {
                matmul(spread, lhs, rhs, false);
            } else {
                matmul_add(spread, lhs, rhs, false);
            }
        }
        for (row, line) in out.chunks_mut(self.columns).zip(spread.chunks(self.width)) {
            row.copy_from_slice(&line[..self.columns]);
        }
    }

    /// One image's output gradient (`[Cout, oh, ow]`) spread into rows `width` apart, zeros at
    /// the positions that do not exist.
    pub(super) fn spread(&self, grad: &[f32], spread: &mut [f32]) {
        for (row, line) in spread.chunks_mut(self.width).zip(grad.chunks(self.columns)) {
            row[..self.columns].copy_from_slice(line);
            row[self.columns..].fill(0.0);
        }
    }

    /// One image's input gradient `[Cin, H, W]` into `dx`, given its spread output gradient
    /// (from [`Self::spread`]) and `dpadded` (padded planes) as scratch.
    pub(super) fn input_grad(
        &self,
        spread: &[f32],
        weight: &[f32],
        dpadded: &mut [f32],
        dx: &mut [f32],
    ) {
        let cout = self.shape.out_channels;
        let grad = MatRef::dense(spread, cout, self.spread_columns());
        dpadded.fill(0.0);
        for (tap, shift) in self.shifts() {
            let lhs = self.tap_weight(weight, tap).t();
            matmul_rows_add(&mut dpadded[shift..], self.plane, lhs, grad, false);
        }
        let [h, w] = self.shape.input;
        let (top, left) = (self.shape.padding[0], self.shape.padding[1]);
        for (plane, padded) in dx.chunks_mut(h * w).zip(dpadded.chunks(self.plane)) {
            for (row, line) in plane
                .chunks_mut(w)
                .zip(padded[top * self.width..].chunks(self.width))
            {
                row.copy_from_slice(&line[left..left + w]);
            }
        }
    }

    /// Adds one image's weight gradient, transposed per tap (`[kh·kw, Cin, Cout]`), onto
    /// `dwt` (overwritten instead when `first`), from its padded planes and spread output
    /// gradient.
    pub(super) fn weight_grad(&self, padded: &[f32], spread: &[f32], dwt: &mut [f32], first: bool) {
        let (cin, cout) = (self.shape.in_channels, self.shape.out_channels);
        let grad_t = MatRef::dense(spread, cout, self.spread_columns()).t();
        for ((_, shift), dst) in self.shifts().zip(dwt.chunks_mut(cin * cout)) {
            let lhs = self.shifted(padded, shift);
            if first {
                matmul(dst, lhs, grad_t, false);
            } else {
                matmul_add(dst, lhs, grad_t, false);
            }
        }
    }
}
