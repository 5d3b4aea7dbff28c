package dev.quant4j.matmul;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import dev.quant4j.testing.Pools;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Products on quantized weights against the definition: {@code y_r = sum_c dequantize(W)[r][c] x_c + b_r} in double,
 * within {@code 1e-5} of the sum of the terms' magnitudes (float sums reassociated), for every bit width, group size,
 * odd shapes, g_idx, AWQ scales and NF4/FP4.
 */
class QuantizedLinearTest {

    static final ForkJoinPool ONE = Pools.ONE;
    static final ForkJoinPool TWO = Pools.TWO;

    static void assertMatchesDefinition(FloatMatrix deq, float[] bias, float[] x, int xOff, float[] y, int yOff) {
        for (int r = 0; r < deq.rows(); r++) {
            double sum = bias == null ? 0 : bias[r];
            double mag = Math.abs(sum);
            for (int c = 0; c < deq.cols(); c++) {
                double term = (double) deq.get(r, c) * x[xOff + c];
                sum += term;
                mag += Math.abs(term);
            }
            assertThat((double) y[yOff + r]).as("row %d", r).isCloseTo(sum, within(1e-5 * mag + 1e-30));
        }
    }

    static Stream<Arguments> linearCases() {
        List<Arguments> list = new ArrayList<>();
        int[][] shapes = {{1, 32}, {7, 64}, {65, 96}, {130, 256}, {9, 4096}, {5, 33}, {3, 127}};
        for (int bits : new int[] {2, 3, 4, 5, 8}) {
            for (int[] shape : shapes) {
                for (int g : new int[] {-1, 0, 32, 64, 128}) {
                    if (g > 0 && shape[1] % g != 0) {
                        continue;
                    }
                    list.add(Arguments.of(bits, shape[0], shape[1], g));
                }
            }
        }
        return list.stream();
    }

    @ParameterizedTest(name = "bits={0} [{1} x {2}] group={3}")
    @MethodSource("linearCases")
    void matrixVectorMatchesTheDefinition(int bits, int rows, int cols, int g) {
        FloatMatrix w = Gaussian.matrix("w", bits * 100L + rows, rows, cols, 0.1);
        QuantizedTensor q = new RtnQuantizer(new LinearScheme(bits, Symmetry.ASYM, g)).quantize(w);
        float[] bias = Gaussian.samples(rows, rows, 1.0);
        float[] x = Gaussian.samples(cols + 7L, cols + 2, 1.0);
        QuantizedLinear layer = QuantizedLinear.of(q, bias, TWO);
        assertThat(layer.fused()).isEqualTo(bits == 4 && (g > 0 ? g : cols) % 32 == 0);
        float[] y = new float[rows + 1];
        layer.forward(x, 2, y, 1);
        assertMatchesDefinition(q.dequantize(), bias, x, 2, y, 1);
        // the scalar kernels, and one thread: the same within rounding, and thread count changes nothing
        float[] scalar = new float[rows];
        QuantizedLinear.withKernels(q, bias, ONE, Kernels.scalar()).forward(x, 2, scalar, 0);
        assertMatchesDefinition(q.dequantize(), bias, x, 2, scalar, 0);
        float[] one = new float[rows + 1];
        QuantizedLinear.of(q, bias, ONE).forward(x, 2, one, 1);
        assertThat(one).containsExactly(y);
    }

    static Stream<Arguments> int8Cases() {
        return Stream.of(
                Arguments.of(7, 64, 64),
                Arguments.of(65, 256, 64),
                Arguments.of(130, 256, 128),
                Arguments.of(9, 4096, 128),
                Arguments.of(9, 4096, 0),
                Arguments.of(3, 1024, 1024),
                Arguments.of(5, 192, -1));
    }

    /**
     * Int8 activations: the product equals the definition on the activations as the path rounds them ({@code d_g =
     * max|x_g| / 127}, {@code x^_c = d_g rint(x_c / d_g)}, computed here independently), and differs from the float
     * path by no more than the rounding allows, {@code sum_c |W_rc| d_g / 2}. Scalar and vector kernels, one and two
     * threads.
     */
    @ParameterizedTest(name = "[{0} x {1}] group={2}")
    @MethodSource("int8Cases")
    void int8ActivationsMatchTheDefinitionOnRoundedActivations(int rows, int cols, int g) {
        FloatMatrix w = Gaussian.matrix("w", rows * 3L + g, rows, cols, 0.1);
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, g)).quantize(w);
        float[] bias = Gaussian.samples(rows + 1L, rows, 1.0);
        float[] x = Gaussian.samples(cols * 5L, cols + 2, 1.0);
        x[2 + cols / 3] = 9f; // an outlier in one group
        QuantizedLinear layer = QuantizedLinear.of(q, bias, TWO).withInt8Activations(true);
        assertThat(layer.int8Activations()).isTrue();
        float[] y = new float[rows + 1];
        layer.forward(x, 2, y, 1);
        int group = g > 0 ? g : cols;
        float[] rounded = new float[cols];
        float[] step = new float[cols];
        for (int g0 = 0; g0 < cols; g0 += group) {
            float amax = 0f;
            for (int c = g0; c < g0 + group; c++) {
                amax = Math.max(amax, Math.abs(x[2 + c]));
            }
            float d = amax / 127;
            for (int c = g0; c < g0 + group; c++) {
                rounded[c] = d * (float) Math.rint(x[2 + c] / d);
                step[c] = d;
            }
        }
        FloatMatrix deq = q.dequantize();
        assertMatchesDefinition(deq, bias, rounded, 0, y, 1);
        float[] exact = QuantizedLinear.of(q, bias, TWO).forward(java.util.Arrays.copyOfRange(x, 2, cols + 2));
        for (int r = 0; r < rows; r++) {
            double bound = 0;
            double mag = Math.abs(bias[r]);
            for (int c = 0; c < cols; c++) {
                bound += Math.abs(deq.get(r, c)) * step[c] / 2;
                mag += Math.abs((double) deq.get(r, c) * x[2 + c]);
            }
            assertThat((double) y[1 + r]).as("row %d", r).isCloseTo(exact[r], within(bound + 2e-5 * mag));
        }
        float[] scalar = new float[rows];
        QuantizedLinear.withKernels(q, bias, ONE, Kernels.scalar())
                .withInt8Activations(true)
                .forward(x, 2, scalar, 0);
        assertMatchesDefinition(deq, bias, rounded, 0, scalar, 0);
        float[] one = new float[rows + 1];
        QuantizedLinear.of(q, bias, ONE).withInt8Activations(true).forward(x, 2, one, 1);
        assertThat(one).containsExactly(y);
    }

    /** Int8 activations apply where the fused kernel does with groups of 64 or more; elsewhere the request is moot. */
    @Test
    void int8ActivationsWhereSupportedAndAwqScalesHonoured() {
        FloatMatrix w = Gaussian.matrix("w", 3, 16, 128, 0.1);
        assertThat(QuantizedLinear.of(new RtnQuantizer(LinearScheme.asym(4, 32)).quantize(w))
                        .withInt8Activations(true)
                        .int8Activations())
                .isFalse();
        assertThat(QuantizedLinear.of(new RtnQuantizer(LinearScheme.asym(8, 64)).quantize(w))
                        .withInt8Activations(true)
                        .int8Activations())
                .isFalse();
        QuantizedTensor g64 = new RtnQuantizer(LinearScheme.asym(4, 64)).quantize(w);
        assertThat(QuantizedLinear.of(g64)
                        .withInt8Activations(true)
                        .withInt8Activations(false)
                        .int8Activations())
                .isFalse();
        FloatMatrix calib = Gaussian.matrix("x", 4, 600, 128, 1.0);
        AwqStatistics stats = new AwqStatistics("w", 128, 600);
        stats.add(calib);
        QuantizedTensor awq = new Awq(AwqConfig.defaults(4).withGroupSize(64), TWO)
                .quantize(w, stats)
                .tensor();
        float[] x = Gaussian.samples(5, 128, 1.0);
        float[] y = QuantizedLinear.of(awq, null, TWO).withInt8Activations(true).forward(x);
        float[] exact = QuantizedLinear.of(awq, null, TWO).forward(x);
        for (int r = 0; r < 16; r++) {
            assertThat(y[r]).as("row %d", r).isCloseTo(exact[r], within(0.02f * (Math.abs(exact[r]) + 1f)));
        }
        float[] nan = x.clone();
        nan[70] = Float.NaN;
        for (float v : QuantizedLinear.of(g64).withInt8Activations(true).forward(nan)) {
            assertThat(Float.isFinite(v)).isFalse(); // IEEE propagation through the group scale, documented
        }
    }

    @Test
    void batchMatchesTheDefinitionRowByRow() {
        FloatMatrix w = Gaussian.matrix("w", 1, 71, 256, 0.1); // odd: rows go two by two, the last alone
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, 64)).quantize(w);
        FloatMatrix x = Gaussian.matrix("x", 2, 9, 256, 1.0);
        FloatMatrix y = QuantizedLinear.of(q, null, TWO).forward(x);
        assertThat(y.rows()).isEqualTo(9);
        assertThat(y.cols()).isEqualTo(71);
        for (int t = 0; t < 9; t++) {
            float[] yt = new float[71];
            System.arraycopy(y.array(), t * 71, yt, 0, 71);
            assertMatchesDefinition(q.dequantize(), null, x.array(), t * 256, yt, 0);
        }
    }

    @Test
    void gptqActOrderAndAwqScalesAreHonoured() {
        FloatMatrix w = Gaussian.matrix("w", 3, 48, 128, 0.1);
        FloatMatrix calib = Gaussian.matrix("x", 4, 300, 128, 1.0);
        HessianAccumulator h = new HessianAccumulator("w", 128, TWO);
        h.add(calib);
        QuantizedTensor gptq = new Gptq(GptqConfig.defaults(4).withGroupSize(32).withActOrder(true), TWO)
                .quantize(w, h)
                .tensor();
        assertThat(gptq.hasGIdx()).isTrue();
        AwqStatistics stats = new AwqStatistics("w", 128, 300);
        stats.add(calib);
        QuantizedTensor awq = new Awq(AwqConfig.defaults(4).withGroupSize(32), TWO)
                .quantize(w, stats)
                .tensor();
        assertThat(awq.hasInputScales()).isTrue();
        float[] x = Gaussian.samples(5, 128, 1.0);
        for (QuantizedTensor q : List.of(gptq, awq)) {
            QuantizedLinear layer = QuantizedLinear.of(q, null, TWO);
            assertMatchesDefinition(q.dequantize(), null, x, 0, layer.forward(x), 0);
        }
        assertThat(QuantizedLinear.of(awq, null, TWO).fused()).isTrue();
        assertThat(QuantizedLinear.of(gptq, null, TWO).fused()).isFalse();
        // row by row, with and without a caller's buffer: the rows of the whole dequantized matrix
        QuantizedTensor plain = new RtnQuantizer(LinearScheme.asym(4, 32)).quantize(w);
        for (QuantizedTensor q : List.of(gptq, awq, plain)) {
            float[] all = q.dequantize().toArray();
            float[] row = new float[130];
            for (int r : new int[] {0, 17, 47}) {
                q.dequantizeRow(r, row, 2);
                assertThat(java.util.Arrays.copyOfRange(row, 2, 130))
                        .containsExactly(java.util.Arrays.copyOfRange(all, r * 128, (r + 1) * 128));
                q.dequantizeRow(r, row, 1, new byte[128]);
                assertThat(java.util.Arrays.copyOfRange(row, 1, 129))
                        .containsExactly(java.util.Arrays.copyOfRange(all, r * 128, (r + 1) * 128));
            }
            assertThatThrownBy(() -> q.dequantizeRow(0, row, 0, new byte[127]))
                    .isInstanceOf(IndexOutOfBoundsException.class);
        }
    }

    @Test
    void nf4AndFp4RowsMayStartInsideABlockAndInsideAByte() {
        for (CodebookScheme scheme :
                List.of(CodebookScheme.nf4(64), CodebookScheme.fp4(32).withDoubleQuant())) {
            FloatMatrix w = Gaussian.matrix("w", 6, 13, 45, 0.1); // odd columns: rows start mid-byte and mid-block
            CodebookTensor q = new BlockwiseQuantizer(scheme).quantize(w);
            float[] x = Gaussian.samples(7, 45, 1.0);
            float[] bias = Gaussian.samples(8, 13, 1.0);
            float[] y = QuantizedLinear.of(q, bias, TWO).forward(x);
            assertMatchesDefinition(q.dequantize(), bias, x, 0, y, 0);
        }
    }

    @Test
    void badInputsAreClearErrors() {
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, 32)).quantize(Gaussian.matrix("fc", 1, 8, 64, 0.1));
        QuantizedLinear layer = QuantizedLinear.of(q);
        assertThatThrownBy(() -> layer.forward(new float[63]))
                .hasMessageContaining("layer 'fc' [8, 64]: x has 63 values from offset 0, needs 64");
        assertThatThrownBy(() -> layer.forward(Gaussian.matrix("x", 1, 2, 65, 1.0)))
                .hasMessageContaining("activations 'x' have 65 columns, needs 64");
        assertThatThrownBy(() -> QuantizedLinear.of(q, new float[7], ONE))
                .hasMessageContaining("bias has 7 values, the weight has 8 rows");
        float[] nan = new float[64];
        nan[5] = Float.NaN;
        assertThat(layer.forward(nan)).containsOnly(Float.NaN); // IEEE propagation, documented
    }
}
