package dev.quant4j.ggml;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

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
}
