//! The tile arithmetic of Winograd's minimal filtering F(2×2, 3×3), shared by the training
//! convolution (`kernels::conv_winograd`, NCHW) and the channels-last serving plans
//! (`nhwc::winograd`).
//!
//! A 2×2 output tile of a 3×3 convolution reads a 4×4 input tile `d`; with
//! `Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]`, `G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]` and
//! `Aᵀ = [1 1 1 0; 0 1 −1 −1]` it is `Y = Aᵀ [Σ_channels (G g Gᵀ) ⊙ (Bᵀ d B)] A`: the sum over
//! channels is one matrix product per point of the 4×4 transformed tile, with 2.25× fewer
//! multiplications than the direct sum. The matrices hold only 0, ±1 and ±½, so the result stays
//! within f32 rounding of the direct sum. Tiles are row-major 4×4 (`p = 4·row + column`).

/// Points of a transformed tile (4×4).
pub(crate) const POINTS: usize = 16;

/// Whether a convolution (dilation 1) with this kernel, stride and padding `[top, left, bottom,
/// right]` is one F(2×2, 3×3) computes: 3×3, stride 1, padding 1 on every side.
pub(crate) fn fits(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 4]) -> bool {
    kernel == [3, 3] && stride == [1, 1] && padding == [1; 4]
}

/// Input and output channels from which a layer runs by F(2×2, 3×3) (measured with AVX-512 on a
/// 2-core AMD EPYC Zen 4: 64–128-channel layers at 10²–40² took 0.68–0.94× the time of the best
/// other path in all three training passes, 32 channels tied, 16 channels at 80² lost; with
/// AVX2 on a 2-core EPYC, YOLOv8n training went from 13.3–14.9 to 15.7–17.5 img/s, alternating
/// runs, and from 64 or from 32 channels tied).
pub(crate) const MIN_CHANNELS: usize = 64;

/// Image columns from which a layer runs by F(2×2, 3×3). Each tile row carries one dropped slot
/// and odd sizes a half-empty tile, so small images save little: a 2×2 image is one tile plus a
/// slot, 32 products' columns where the direct sum has 36. With every size included, ResNet-18
/// training at 64² (3×3 layers at 16², 8², 4², 2²) fell to 57–58 img/s from 56–86 without
/// Winograd on this noisy host; 10² is the smallest size measured to gain (YOLOv8n's 128-channel
/// layers, 0.84–0.88× the time).
pub(crate) const MIN_WIDTH: usize = 10;

/// Values per block of [`map`] (one AVX-512 register).
const LANES: usize = 16;

/// `Bᵀ d B` of an input tile.
#[inline(always)]
pub(crate) fn input_tile(d: [f32; POINTS]) -> [f32; POINTS] {
    let t = |a: f32, b: f32, c: f32, e: f32| [a - c, b + c, c - b, b - e];
    let rows: [[f32; 4]; 4] =
        std::array::from_fn(|k| t(d[4 * k], d[4 * k + 1], d[4 * k + 2], d[4 * k + 3]));
    let columns: [[f32; 4]; 4] =
        std::array::from_fn(|b| t(rows[0][b], rows[1][b], rows[2][b], rows[3][b]));
    std::array::from_fn(|p| columns[p % 4][p / 4])
}

/// `Aᵀ m A` of a transformed product: the output tile `[y00, y01, y10, y11]`.
#[inline(always)]
pub(crate) fn output_tile(m: [f32; POINTS]) -> [f32; 4] {
    let t = |a: f32, b: f32, c: f32, e: f32| [a + b + c, b - c - e];
    let columns: [[f32; 2]; 4] = std::array::from_fn(|b| t(m[b], m[4 + b], m[8 + b], m[12 + b]));
    let [y00, y01] = t(columns[0][0], columns[1][0], columns[2][0], columns[3][0]);
    let [y10, y11] = t(columns[0][1], columns[1][1], columns[2][1], columns[3][1]);
    [y00, y01, y10, y11]
}

/// `A dY Aᵀ` of an output-gradient tile `[g00, g01, g10, g11]`: the gradient of the transformed
/// product.
#[inline(always)]
pub(crate) fn output_grad_tile([g00, g01, g10, g11]: [f32; 4]) -> [f32; POINTS] {
    let t = |a: f32, b: f32| [a, a + b, a - b, -b];
    let columns = [t(g00, g10), t(g01, g11)];
    std::array::from_fn(|p| t(columns[0][p / 4], columns[1][p / 4])[p % 4])
}

/// `G g Gᵀ` of a 3×3 kernel (row-major).
pub(crate) fn kernel_tile(g: &[f32]) -> [f32; POINTS] {
    let t = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let rows: [[f32; 4]; 3] = std::array::from_fn(|k| t(g[3 * k], g[3 * k + 1], g[3 * k + 2]));
    let columns: [[f32; 4]; 4] = std::array::from_fn(|b| t(rows[0][b], rows[1][b], rows[2][b]));
    std::array::from_fn(|p| columns[p % 4][p / 4])
}

/// `Gᵀ dU G` of a transformed kernel gradient: the 3×3 kernel gradient (row-major).
pub(crate) fn kernel_grad_tile(du: &[f32; POINTS]) -> [f32; 9] {
    let t = |x: [f32; 4]| {
        [
            x[0] + 0.5 * (x[1] + x[2]),
            0.5 * (x[1] - x[2]),
            0.5 * (x[1] + x[2]) + x[3],
        ]
    };
    let columns: [[f32; 3]; 4] = std::array::from_fn(|b| t(std::array::from_fn(|a| du[a * 4 + b])));
    let rows: [[f32; 3]; 3] = std::array::from_fn(|k| t(std::array::from_fn(|b| columns[b][k])));
    std::array::from_fn(|i| rows[i / 3][i % 3])
}

/// `N` disjoint runs of `len` values of `values`, the `i`-th at `start + i·stride` (row `i` of a
/// matrix of `N` rows `stride` apart, from column `start`): the rows [`map`] reads or writes.
pub(crate) fn rows<const N: usize>(
    values: &mut [f32],
    stride: usize,
    start: usize,
    len: usize,
) -> [&mut [f32]; N] {
    let mut rows = values
        .chunks_mut(stride.max(1))
        .map(|row| &mut row[start..][..len]);
    std::array::from_fn(|_| rows.next().unwrap_or_default())
}

/// `out[·][t] = f(input[·][t])` for every `t` of the first output: an elementwise map of `I`
/// rows to `O` rows, run over blocks of [`LANES`] values copied into local arrays so that the
/// compiler vectorises it (on the rows themselves it did not: it cannot rule out their
/// overlapping). Call it inside `simd::vectorized`.
#[inline(always)]
pub(crate) fn map<const I: usize, const O: usize>(
    mut out: [&mut [f32]; O],
    input: [&[f32]; I],
    f: impl Fn([f32; I]) -> [f32; O],
) {
    let len = out.first().map_or(0, |o| o.len());
    let lanes = |x: &[[f32; LANES]; I]| {
        let mut y = [[0.0f32; LANES]; O];
        for lane in 0..LANES {
            let values = f(std::array::from_fn(|k| x[k][lane]));
            for (y, value) in y.iter_mut().zip(values) {
                y[lane] = value;
            }
        }
        y
    };
    let whole = len / LANES * LANES;
    for start in (0..whole).step_by(LANES) {
        let mut x = [[0.0f32; LANES]; I];
        for (x, row) in x.iter_mut().zip(&input) {
            x.copy_from_slice(&row[start..start + LANES]);
        }
        for (row, y) in out.iter_mut().zip(&lanes(&x)) {
            row[start..start + LANES].copy_from_slice(y);
        }
    }
    if whole < len {
        let n = len - whole;
        let mut x = [[0.0f32; LANES]; I];
        for (x, row) in x.iter_mut().zip(&input) {
            x[..n].copy_from_slice(&row[whole..len]);
        }
        for (row, y) in out.iter_mut().zip(&lanes(&x)) {
            row[whole..len].copy_from_slice(&y[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The direct 3×3 convolution of a 4×4 tile: its 2×2 valid outputs.
    fn direct(d: &[f32; POINTS], g: &[f32; 9]) -> [f32; 4] {
        std::array::from_fn(|o| {
            let (oy, ox) = (o / 2, o % 2);
            (0..9)
                .map(|k| d[(oy + k / 3) * 4 + ox + k % 3] * g[k])
                .sum()
        })
    }

    proptest! {
        #[test]
        fn a_tile_is_the_direct_convolution(
            d in prop::array::uniform16(-1.0f32..1.0),
            g in prop::array::uniform9(-1.0f32..1.0),
        ) {
            let (v, u) = (input_tile(d), kernel_tile(&g));
            let y = output_tile(std::array::from_fn(|p| u[p] * v[p]));
            for (a, b) in y.iter().zip(direct(&d, &g)) {
                prop_assert!((a - b).abs() < 1e-5, "{} vs {}", a, b);
            }
        }

        #[test]
        fn gradients_are_the_adjoints(
            d in prop::array::uniform16(-1.0f32..1.0),
            dy in prop::array::uniform4(-1.0f32..1.0),
        ) {
            // d⟨dy, conv(d, g)⟩/dg_k = Σ_o dy_o · d[o + k].
            let dm = output_grad_tile(dy);
            let v = input_tile(d);
            let dg = kernel_grad_tile(&std::array::from_fn(|p| dm[p] * v[p]));
            for (k, got) in dg.iter().enumerate() {
                let unit: [f32; 9] = std::array::from_fn(|i| f32::from(u8::from(i == k)));
                let expected: f32 = direct(&d, &unit).iter().zip(&dy).map(|(y, g)| y * g).sum();
                prop_assert!((got - expected).abs() < 1e-5, "{}: {} vs {}", k, got, expected);
            }
        }
    }

    #[test]
    fn map_covers_whole_blocks_and_the_tail() {
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..37).map(|i| 2.0 * i as f32).collect();
        let (mut sum, mut difference) = (vec![0.0; 37], vec![0.0; 37]);
        map([&mut sum, &mut difference], [&a, &b], |[x, y]| {
            [x + y, y - x]
        });
        for i in 0..37 {
            assert_eq!(sum[i], 3.0 * i as f32);
            assert_eq!(difference[i], i as f32);
        }
    }
}
