package dev.quant4j.ggml;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.withinPercentage;

import dev.quant4j.ggml.GgmlGptq.Order;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import dev.quant4j.testing.Pools;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

class GgmlGptqTest {

    /** Calibration activations with correlated features, as real layers see them: X = Z A. */
    static FloatMatrix activations(long seed, int n, int cols) {
        float[] z = Gaussian.samples(seed, n * cols, 1.0);
        float[] a = Gaussian.samples(seed + 1, cols * cols, 1.0 / Math.sqrt(cols));
        float[] x = new float[n * cols];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < cols; k++) {
                float zik = z[i * cols + k];
                for (int j = 0; j < cols; j++) {
                    x[i * cols + j] += zik * a[k * cols + j];
                }
            }
        }
        for (int i = 0; i < n; i++) {
            x[i * cols] *= 5; // one strong feature
        }
        return FloatMatrix.of("x", n, cols, x, 0);
    }

    @ParameterizedTest
    @CsvSource({"Q4_0, 1", "Q4_0, 2", "Q4_1, 3", "Q4_1, 4", "Q8_0, 5", "Q8_0, 6"})
    void storesWhatTheErrorFeedbackUsedAndBeatsRtn(GgmlType type, long seed) {
        int rows = 24;
        int cols = 256;
        FloatMatrix w = Gaussian.matrix("w", seed, rows, cols, 0.1);
        HessianAccumulator h = new HessianAccumulator("x", cols);
        h.add(activations(seed + 10, 512, cols));
        GgmlGptq.Result r = GgmlGptq.quantize(type, w, h, 0.01, ForkJoinPool.commonPool());
        assertThat(r.data()).hasSize(rows * (int) type.rowSize(cols));
        // ggml's dequantizer reads back exactly the values GPTQ fed its error with: the FP16 scales came first
        assertThat(GgmlQuants.dequantize(type, r.data(), rows, cols)).containsExactly(r.dequantized());
        double gptq = h.outputError(w, FloatMatrix.of("q", rows, cols, r.dequantized(), 0));
        double rtn = h.outputError(
                w,
                FloatMatrix.of(
                        "rtn",
                        rows,
                        cols,
                        GgmlQuants.dequantize(type, GgmlQuants.quantize(type, w.toArray(), rows, cols), rows, cols),
                        0));
        assertThat(gptq).as("%s output error, GPTQ vs ggml's RTN", type).isLessThan(rtn);
        // the same result on one thread
        GgmlGptq.Result one = GgmlGptq.quantize(type, w, h, 0.01, new ForkJoinPool(1));
        assertThat(one.data()).isEqualTo(r.data());
    }

    @Test
    void refusesWhatGgmlBlocksCannotHold() {
        HessianAccumulator h = new HessianAccumulator("x", 48);
        h.add(activations(1, 64, 48));
        FloatMatrix w = Gaussian.matrix("w", 1, 4, 48, 0.1);
        assertThatThrownBy(() -> GgmlGptq.quantize(GgmlType.Q4_0, w, h, 0.01, ForkJoinPool.commonPool()))
                .hasMessageContaining("not a multiple of the q4_0 block size 32");
        assertThatThrownBy(() -> GgmlGptq.quantize(GgmlType.Q4_K, w, h, 0.01, ForkJoinPool.commonPool()))
                .hasMessageContaining("q4_0, q4_1 or q8_0");
    }

    /** Every type at odd and even row counts, each with its own seed. */
    static List<Arguments> typesRowsSeeds() {
        List<Arguments> cases = new ArrayList<>();
        long seed = 100;
        for (GgmlType type : List.of(GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q8_0)) {
            for (int rows : new int[] {1, 7, 13, 24}) {
                cases.add(Arguments.of(type, rows, seed++));
            }
        }
        return cases;
    }

    /** {@code activations} with input features {@code dead} zero in every token. */
    static HessianAccumulator hessian(long seed, int n, int cols, int... dead) {
        float[] x = activations(seed, n, cols).toArray();
        for (int i = 0; i < n; i++) {
            for (int c : dead) {
                x[i * cols + c] = 0f;
            }
        }
        HessianAccumulator h = new HessianAccumulator("x", cols);
        h.add(FloatMatrix.of("x", n, cols, x, 0));
        return h;
    }

    /** {@code w} with the columns GPTQ sets to 0, those whose {@code diag(H)} is 0. */
    static float[] deadZeroed(FloatMatrix w, HessianAccumulator h) {
        float[] H = h.hessian();
        float[] wz = w.toArray();
        for (int c = 0; c < w.cols(); c++) {
            if (H[c * w.cols() + c] == 0f) {
                for (int r = 0; r < w.rows(); r++) {
                    wz[r * w.cols() + c] = 0f;
                }
            }
        }
        return wz;
    }

    /**
     * Static groups, in column order and in act-order: ggml's dequantizer reads back exactly what the error feedback
     * used; every block's head (D, and M for q4_1) is ggml's reference quantizer's on the dead-zeroed weights, as
     * static groups fix them before any feedback; the blocks do not depend on the thread count; the loss is reported.
     */
    @ParameterizedTest
    @MethodSource("typesRowsSeeds")
    void staticGroupsAreGgmlsParametersOfTheOriginalWeights(GgmlType type, int rows, long seed) {
        int cols = 320; // three lazy batches, the last one partial
        FloatMatrix w = Gaussian.matrix("w", seed, rows, cols, 0.1);
        HessianAccumulator h = hessian(seed + 10, 512, cols, 3, 150);
        int[] perm = GgmlGptq.actOrder(h.hessian(), cols);
        assertThat(perm)
                .as("act-order moves columns here")
                .isNotEqualTo(IntStream.range(0, cols).toArray());
        byte[] reference = GgmlQuants.quantize(type, deadZeroed(w, h), rows, cols);
        int headBytes = type == GgmlType.Q4_1 ? 4 : 2;
        for (Order order : List.of(Order.STATIC_GROUPS, Order.ACT_ORDER)) {
            GgmlGptq.Result r = GgmlGptq.quantize(type, w, h, 0.01, order, Pools.TWO);
            assertThat(r.data()).hasSize(rows * (int) type.rowSize(cols));
            assertThat(GgmlQuants.dequantize(type, r.data(), rows, cols))
                    .as("%s %s", type, order)
                    .containsExactly(r.dequantized());
            for (int b = 0; b < rows * cols / 32; b++) {
                int at = b * type.typeSize();
                for (int k = 0; k < headBytes; k++) {
                    assertThat(r.data()[at + k])
                            .as("%s %s: block %d head byte %d", type, order, b, k)
                            .isEqualTo(reference[at + k]);
                }
            }
            assertThat(r.deadColumns()).isEqualTo(2);
            assertThat(r.loss()).as("%s %s loss", type, order).isPositive().isFinite();
            GgmlGptq.Result one = GgmlGptq.quantize(type, w, h, 0.01, order, Pools.ONE);
            assertThat(one.data()).as("%s %s on one thread", type, order).isEqualTo(r.data());
            assertThat(one.loss()).isEqualTo(r.loss());
        }
    }

    /**
     * Where act-order keeps the column order (a Hessian whose diagonal already descends), act-order with static groups
     * is the static-groups run in column order, bit for bit: the same columns, the same {@code Hinv}, the same
     * parameters.
     */
    @ParameterizedTest
    @MethodSource("typesRowsSeeds")
    void actOrderOnADescendingDiagonalIsStaticGroupsInColumnOrder(GgmlType type, int rows, long seed) {
        int cols = 256;
        int n = 256;
        // correlated activations plus a term sqrt(400 (cols - c)) on feature c in its own token: diag(H) descends by
        // 2 * 400 / (n + cols) = 1.6 per column, far more than the correlated part's spread between neighbours
        float[] z = activations(seed + 20, n, cols).toArray();
        float[] x = new float[(n + cols) * cols];
        System.arraycopy(z, 0, x, 0, z.length);
        for (int c = 0; c < cols; c++) {
            x[(n + c) * cols + c] = (float) Math.sqrt(400.0 * (cols - c));
        }
        HessianAccumulator h = new HessianAccumulator("x", cols);
        h.add(FloatMatrix.of("x", n + cols, cols, x, 0));
        assertThat(GgmlGptq.actOrder(h.hessian(), cols))
                .isEqualTo(IntStream.range(0, cols).toArray());
        FloatMatrix w = Gaussian.matrix("w", seed, rows, cols, 0.1);
        GgmlGptq.Result act = GgmlGptq.quantize(type, w, h, 0.01, Order.ACT_ORDER, Pools.TWO);
        GgmlGptq.Result stat = GgmlGptq.quantize(type, w, h, 0.01, Order.STATIC_GROUPS, Pools.TWO);
        assertThat(act.data()).isEqualTo(stat.data());
        assertThat(act.dequantized()).containsExactly(stat.dequantized());
        assertThat(act.loss()).isEqualTo(stat.loss());
    }

    /**
     * In the first lazy batch (columns 0..127) {@code W} still holds the dead-zeroed weights when each block's first
     * column is reached (gptq.py finds a group's parameters from {@code W}, which the batch's own feedback does not
     * touch until the batch ends), so static groups and first-column parameters coincide: a matrix of at most 128
     * columns gets the same bytes either way.
     */
    @ParameterizedTest
    @MethodSource("typesRowsSeeds")
    void withinTheFirstLazyBatchStaticGroupsAreTheFirstColumnParameters(GgmlType type, int rows, long seed) {
        for (int cols = 32; cols <= GgmlGptq.BLOCKSIZE; cols += 32) {
            FloatMatrix w = Gaussian.matrix("w", seed, rows, cols, 0.1);
            HessianAccumulator h = hessian(seed + 30, 256, cols, 1);
            GgmlGptq.Result plain = GgmlGptq.quantize(type, w, h, 0.01, Pools.TWO);
            GgmlGptq.Result stat = GgmlGptq.quantize(type, w, h, 0.01, Order.STATIC_GROUPS, Pools.TWO);
            assertThat(stat.data()).as("%s, %d columns", type, cols).isEqualTo(plain.data());
            assertThat(stat.loss()).isEqualTo(plain.loss());
        }
        // one column more than a batch and the parameters of later blocks see the first batch's feedback
        int cols = 2 * GgmlGptq.BLOCKSIZE;
        FloatMatrix w = Gaussian.matrix("w", seed, rows, cols, 0.1);
        HessianAccumulator h = hessian(seed + 30, 256, cols, 1);
        GgmlGptq.Result plain = GgmlGptq.quantize(type, w, h, 0.01, Pools.TWO);
        GgmlGptq.Result stat = GgmlGptq.quantize(type, w, h, 0.01, Order.STATIC_GROUPS, Pools.TWO);
        int firstBatch = (int) type.rowSize(GgmlGptq.BLOCKSIZE);
        int rowSize = (int) type.rowSize(cols);
        for (int r = 0; r < rows; r++) {
            assertThat(Arrays.copyOfRange(stat.data(), r * rowSize, r * rowSize + firstBatch))
                    .as("%s row %d, first batch", type, r)
                    .isEqualTo(Arrays.copyOfRange(plain.data(), r * rowSize, r * rowSize + firstBatch));
        }
    }

    /**
     * A diagonal Hessian (each calibration token activates one feature) has a diagonal {@code Hinv}: no column's
     * error reaches another, so every order quantizes each weight alone with the parameters of the untouched weights:
     * act-order, static groups and the plain path write the same bytes, and the loss is {@code sum (w - q)^2 (H_cc +
     * damp) / 2} ({@code Hinv_cc = 1 / sqrt(H_cc + damp)}).
     */
    @ParameterizedTest
    @MethodSource("typesRowsSeeds")
    void withADiagonalHessianEveryOrderWritesThePlainBlocks(GgmlType type, int rows, long seed) {
        int cols = 288;
        int n = 2 * cols;
        float[] a = Gaussian.samples(seed + 40, n, 1.0);
        float[] x = new float[n * cols];
        for (int i = 0; i < n; i++) {
            x[i * cols + i % cols] = a[i] * (1 + (i * 37 % cols) / 16f);
        }
        HessianAccumulator h = new HessianAccumulator("x", cols);
        h.add(FloatMatrix.of("x", n, cols, x, 0));
        float[] H = h.hessian();
        for (int i = 0; i < cols; i++) {
            for (int j = 0; j < cols; j++) {
                assertThat(i == j || H[i * cols + j] == 0f).isTrue();
            }
        }
        assertThat(GgmlGptq.actOrder(H, cols))
                .isNotEqualTo(IntStream.range(0, cols).toArray());
        FloatMatrix w = Gaussian.matrix("w", seed, rows, cols, 0.1);
        GgmlGptq.Result plain = GgmlGptq.quantize(type, w, h, 0.01, Pools.TWO);
        double meanDiag = 0;
        for (int c = 0; c < cols; c++) {
            meanDiag += H[c * cols + c];
        }
        float damp = (float) (0.01 * meanDiag / cols);
        double expectedLoss = 0;
        float[] W = w.toArray();
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                double e = W[r * cols + c] - plain.dequantized()[r * cols + c];
                expectedLoss += e * e * (H[c * cols + c] + damp) / 2;
            }
        }
        for (Order order : List.of(Order.STATIC_GROUPS, Order.ACT_ORDER)) {
            GgmlGptq.Result r = GgmlGptq.quantize(type, w, h, 0.01, order, Pools.TWO);
            assertThat(r.data()).as("%s %s", type, order).isEqualTo(plain.data());
            assertThat(r.dequantized()).containsExactly(plain.dequantized());
            assertThat(r.loss()).as("%s %s loss", type, order).isCloseTo(expectedLoss, withinPercentage(1e-3));
        }
        assertThat(plain.loss()).isCloseTo(expectedLoss, withinPercentage(1e-3));
    }
}
