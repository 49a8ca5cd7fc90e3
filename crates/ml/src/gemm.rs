//! The one call into `gemm`'s unsafe matrix product, behind a safe signature whose bounds are
//! checked before the call. Used by the channels-last serving plans and the training kernels.

use gemm::Parallelism;

/// A strided matrix view inside a slice: element `(r, c)` is
/// `data[r · row_stride + c · col_stride]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    /// Backing elements.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between the starts of consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive elements of a row.
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A contiguous row-major `rows × cols` matrix.
    pub fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::rows(data, rows, cols, cols)
    }

    /// A row-major `rows × cols` matrix whose rows start `row_stride` elements apart.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element `(r, c)` lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1)
                .checked_mul(self.row_stride)
                .zip((self.cols - 1).checked_mul(self.col_stride))
                .and_then(|(rows, cols)| rows.checked_add(cols))
                .is_some_and(|last| last < self.data.len())
    }
}

/// `dst = lhs · rhs`, `dst` a contiguous row-major `lhs.rows × rhs.cols` matrix (overwritten).
/// With `parallel`, gemm splits the product over rayon's threads.
///
/// # Panics
/// When the shapes do not agree or a view does not fit in its slice.
pub(crate) fn matmul(dst: &mut [f32], lhs: MatRef<'_>, rhs: MatRef<'_>, parallel: bool) {
    assert_eq!(dst.len(), lhs.rows * rhs.cols, "matmul: destination size");
    matmul_rows(dst, rhs.cols, lhs, rhs, parallel);
}

/// `dst = lhs · rhs` where `dst` is a row-major `lhs.rows × rhs.cols` matrix whose rows start
/// `dst_row_stride` elements apart (a column block of a wider matrix); only its elements are
/// written, the values between its rows are left as they are.
///
/// # Panics
/// When the shapes do not agree or a view (or `dst`) does not fit in its slice.
pub(crate) fn matmul_rows(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    parallel: bool,
) {
    product(dst, dst_row_stride, lhs, rhs, parallel, false);
}

/// `dst += lhs · rhs`, `dst` a contiguous row-major `lhs.rows × rhs.cols` matrix.
///
/// # Panics
/// When the shapes do not agree or a view does not fit in its slice.
pub(crate) fn matmul_add(dst: &mut [f32], lhs: MatRef<'_>, rhs: MatRef<'_>, parallel: bool) {
    assert_eq!(dst.len(), lhs.rows * rhs.cols, "matmul: destination size");
    product(dst, rhs.cols, lhs, rhs, parallel, true);
}

/// `dst += lhs · rhs` where `dst` is a row-major `lhs.rows × rhs.cols` matrix whose rows start
/// `dst_row_stride` elements apart; the values between its rows are left as they are.
///
/// # Panics
/// When the shapes do not agree or a view (or `dst`) does not fit in its slice.
pub(crate) fn matmul_rows_add(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    parallel: bool,
) {
    product(dst, dst_row_stride, lhs, rhs, parallel, true);
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` with `accumulate`, on a row-major destination whose
/// rows start `dst_row_stride` elements apart.
fn product(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    parallel: bool,
    accumulate: bool,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "matmul: inner dimensions differ");
    assert!(
        lhs.in_bounds() && rhs.in_bounds(),
        "matmul: view out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        dst_row_stride >= n && (m - 1) * dst_row_stride + n <= dst.len(),
        "matmul: destination out of bounds"
    );
    if k == 0 {
        if accumulate {
            return;
        }
        for row in dst.chunks_mut(dst_row_stride).take(m) {
            row[..n].fill(0.0);
        }
        return;
    }
    let parallelism = if parallel {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    // SAFETY: `dst` is written at (r, c) ↦ r·dst_row_stride + c for r < m, c < n, all inside
    // the slice (checked above, with dst_row_stride ≥ n so no two elements share a place);
    // `lhs` and `rhs` were checked to contain every element their strides address (m×k and
    // k×n). `dst` is an exclusive borrow, so it cannot alias the inputs, and
    // with `read_dst = false` its previous contents are never read (with `true` they are
    // read, and every element read is one of those written).
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(lhs: MatRef<'_>, rhs: MatRef<'_>) -> Vec<f32> {
        let mut out = vec![0.0f32; lhs.rows * rhs.cols];
        for r in 0..lhs.rows {
            for c in 0..rhs.cols {
                out[r * rhs.cols + c] = (0..lhs.cols)
                    .map(|i| {
                        lhs.data[r * lhs.row_stride + i * lhs.col_stride]
                            * rhs.data[i * rhs.row_stride + c * rhs.col_stride]
                    })
                    .sum();
            }
        }
        out
    }

    proptest! {
        #[test]
        fn agrees_with_the_definition(
            m in 1usize..40, k in 1usize..40, n in 1usize..40, pad in 0usize..5, parallel: bool,
            seed in 0u64..1000,
        ) {
            let value = |i: usize| (((i as u64 * 2_654_435_761 + seed) % 1000) as f32 - 500.0) / 250.0;
            let lhs_data: Vec<f32> = (0..m * (k + pad)).map(value).collect();
            let rhs_data: Vec<f32> = (0..k * n).map(|i| value(i + 7)).collect();
            let lhs = MatRef::rows(&lhs_data, m, k, k + pad);
            // the right-hand side stored transposed, read through a transposed view
            let rhs = MatRef::dense(&rhs_data, n, k).t();
            let mut dst = vec![f32::NAN; m * n];
            matmul(&mut dst, lhs, rhs, parallel);
            for (a, b) in dst.iter().zip(naive(lhs, rhs)) {
                prop_assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }

        #[test]
        fn writes_a_column_block_and_nothing_else(
            m in 1usize..30, k in 0usize..30, n in 1usize..30, gap in 0usize..5, parallel: bool,
            add: bool,
        ) {
            let lhs_data: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 - 6.0).collect();
            let rhs_data: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 - 3.0).collect();
            let (lhs, rhs) = (MatRef::dense(&lhs_data, m, k), MatRef::dense(&rhs_data, k, n));
            let stride = n + gap;
            let mut dst = vec![99.0f32; (m - 1) * stride + n];
            if add {
                matmul_rows_add(&mut dst, stride, lhs, rhs, parallel);
            } else {
                matmul_rows(&mut dst, stride, lhs, rhs, parallel);
            }
            let expected = naive(lhs, rhs);
            for (i, v) in dst.iter().enumerate() {
                let (r, c) = (i / stride, i % stride);
                let block = if add { 99.0 + expected[r * n + c.min(n - 1)] } else { expected[r * n + c.min(n - 1)] };
                let want = if c < n { block } else { 99.0 };
                prop_assert!((v - want).abs() <= 1e-4 * (1.0 + want.abs()), "({r}, {c}): {v} vs {want}");
            }
        }
    }

    proptest! {
        #[test]
        fn adds_onto_the_destination(
            m in 1usize..30, k in 0usize..30, n in 1usize..30, parallel: bool,
        ) {
            let lhs_data: Vec<f32> = (0..m * k).map(|i| (i % 11) as f32 - 5.0).collect();
            let rhs_data: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
            let (lhs, rhs) = (MatRef::dense(&lhs_data, m, k), MatRef::dense(&rhs_data, k, n));
            let start: Vec<f32> = (0..m * n).map(|i| (i % 3) as f32).collect();
            let mut dst = start.clone();
            matmul_add(&mut dst, lhs, rhs, parallel);
            for ((v, s), p) in dst.iter().zip(&start).zip(naive(lhs, rhs)) {
                prop_assert!((v - (s + p)).abs() <= 1e-4 * (1.0 + p.abs()), "{v} vs {s} + {p}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "destination out of bounds")]
    fn a_destination_too_short_for_its_stride_is_refused() {
        let data = [1.0f32; 6];
        let lhs = MatRef::dense(&data, 2, 3);
        let rhs = MatRef::dense(&data[..3], 3, 1);
        matmul_rows(&mut [0.0; 2], 2, lhs, rhs, false);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn a_view_larger_than_its_slice_is_refused() {
        let data = [0.0f32; 5];
        let lhs = MatRef::dense(&data, 2, 3);
        let rhs = MatRef::dense(&data[..3], 3, 1);
        matmul(&mut [0.0; 2], lhs, rhs, false);
    }
}
