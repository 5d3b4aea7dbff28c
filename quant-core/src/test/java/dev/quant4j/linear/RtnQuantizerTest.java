package dev.quant4j.linear;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

class RtnQuantizerTest {

    private static byte[] packed(QuantizedTensor q) {
        byte[] b = new byte[q.packedCodes().remaining()];
        q.packedCodes().get(b);
        return b;
    }

    @Test
    void researchNoteWorkedExample() {
        // x = 0.75, S = 0.1, Z = 0: 0.75 / 0.1 = 7.5 in float32, rounded half to even gives Q = 8, x^ = 0.8
        byte[] code = new byte[1];
        Kernels.scalar().quantize(new float[] {0.75f}, 0, 1, 0.1f, 0f, 0, 255, code, 0);
        assertThat(code[0]).isEqualTo((byte) 8);
        float[] back = new float[1];
        Kernels.scalar().dequantize(code, 0, 1, 0.1f, 0f, back, 0);
        assertThat(back[0]).isEqualTo(0.8f);
    }

    @Test
    void asymGoldenMatchesGptqQuantPy() {
        // xmin = -1, xmax = 2: S = 3/15 = 0.2, Z = round(1/0.2) = 5;
        // q = clamp(round(x/S) + 5): -1 -> 0, 0.5 -> round(2.5) = 2 (half to even) -> 7, 2 -> 15, 0.25 -> 1 -> 6
        FloatMatrix w = FloatMatrix.of(1, 4, new float[] {-1f, 0.5f, 2f, 0.25f});
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, LinearScheme.PER_CHANNEL)).quantize(w);
        assertThat(q.scale(0)).isEqualTo(3f / 15f);
        assertThat(q.zero(0)).isEqualTo(5);
        assertThat(new int[] {q.code(0, 0), q.code(0, 1), q.code(0, 2), q.code(0, 3)})
                .containsExactly(0, 7, 15, 6);
        // LSB first: byte 0 = 0 | 7 << 4, byte 1 = 15 | 6 << 4
        assertThat(packed(q)).containsExactly(0x70, 0x6F);
        assertThat(q.dequantize().toArray()).containsExactly(0.2f * -5, 0.2f * 2, 0.2f * 10, 0.2f * 1);
    }

    @Test
    void symWithoutNegativesKeepsXminZeroAsGptqDoes() {
        // no negative value: xmin stays 0, xmax = 1, S = 1/15, Z = 8; codes above 8 only, 1.0 clamps to 15
        FloatMatrix w = FloatMatrix.of(1, 4, new float[] {0f, 0.2f, 0.4f, 1f});
        QuantizedTensor q = new RtnQuantizer(LinearScheme.sym(4, LinearScheme.PER_CHANNEL)).quantize(w);
        assertThat(q.scale(0)).isEqualTo(1f / 15f);
        assertThat(q.zero(0)).isEqualTo(8);
        assertThat(new int[] {q.code(0, 0), q.code(0, 1), q.code(0, 2), q.code(0, 3)})
                .containsExactly(8, 11, 14, 15);
    }

    @Test
    void symWithNegativesIsSymmetric() {
        // xmin = -2, xmax = 1 -> xmax = 2, xmin = -2, S = 4/15, Z = 8
        FloatMatrix w = FloatMatrix.of(1, 3, new float[] {-2f, 1f, 0f});
        QuantizedTensor q = new RtnQuantizer(LinearScheme.sym(4, LinearScheme.PER_CHANNEL)).quantize(w);
        assertThat(q.scale(0)).isEqualTo(4f / 15f);
        assertThat(q.zero(0)).isEqualTo(8);
        // S = 4/15 rounds up to 0.26666668f, so -2 / S = -7.4999995f (not -7.5) and rounds to -7: code 1, as
        // torch computes it in float32
        assertThat(q.code(0, 0)).isEqualTo(1);
        assertThat(q.code(0, 2)).isEqualTo(8);
    }

    @Test
    void signedGolden() {
        // amax = 0.7, S = 0.7 / 7 = 0.1; q = round(x/S) in [-7, 7], stored + 8
        FloatMatrix w = FloatMatrix.of(1, 4, new float[] {-0.7f, 0.3f, 0.1f, 0f});
        QuantizedTensor q = new RtnQuantizer(LinearScheme.signed(4, LinearScheme.PER_CHANNEL)).quantize(w);
        assertThat(q.scale(0)).isEqualTo(0.7f / 7);
        assertThat(q.zero(0)).isEqualTo(8);
        assertThat(new int[] {q.code(0, 0), q.code(0, 1), q.code(0, 2), q.code(0, 3)})
                .containsExactly(1, 11, 9, 8);
    }

    /**
     * llm-awq's {@code pseudo_quantize_tensor} (zero_point=True) by hand: {@code S = max(max - min, 1e-5) / maxq}, {@code
     * Z = clamp(-round(min / S), 0, maxq)}; the range is not widened to contain 0, so the all-positive first group gets
     * {@code Z = 0}.
     */
    @Test
    void minMaxFormFollowsLlmAwq() {
        FloatMatrix w = FloatMatrix.of(1, 8, new float[] {0.1f, 0.5f, 0.9f, 0.3f, -0.3f, 0.2f, 0.7f, -0.1f});
        QuantizedTensor two = new RtnQuantizer(new LinearScheme(2, Symmetry.MINMAX, 4)).quantize(w);
        assertThat(two.scale(0)).isEqualTo((0.9f - 0.1f) / 3);
        assertThat(two.zero(0)).isZero();
        assertThat(two.rowCodes(0)).startsWith(0, 2, 3, 1);
        assertThat(two.scale(1)).isEqualTo((0.7f - -0.3f) / 3);
        // -round(-0.3 / 0.3333) = -round(-0.9) = 1
        assertThat(two.zero(1)).isEqualTo(1);
        QuantizedTensor three = new RtnQuantizer(new LinearScheme(3, Symmetry.MINMAX, 4)).quantize(w);
        float s = (0.7f - -0.3f) / 7;
        assertThat(three.scale(1)).isEqualTo(s);
        assertThat(three.zero(1)).isEqualTo(2); // -round(-2.1)
        assertThat(Arrays.copyOfRange(three.rowCodes(0), 4, 8)).containsExactly(0, 3, 7, 1);
        assertThat(three.dequantize().get(0, 6)).isEqualTo(s * (7 - 2));
        // an all-equal group: the range is clamped to 1e-5, never a zero scale
        QuantizedTensor flat = new RtnQuantizer(new LinearScheme(4, Symmetry.MINMAX, -1))
                .quantize(FloatMatrix.of(1, 4, new float[] {0.25f, 0.25f, 0.25f, 0.25f}));
        assertThat(flat.scale(0)).isEqualTo(1e-5f / 15);
    }

    @Test
    void allZeroRowUsesUnitRange() {
        // GPTQ: xmin = xmax = 0 becomes [-1, 1]
        FloatMatrix w = FloatMatrix.of(1, 8, new float[8]);
        for (Symmetry s : Symmetry.values()) {
            QuantizedTensor q = new RtnQuantizer(new LinearScheme(4, s, -1)).quantize(w);
            assertThat(q.scale(0)).isPositive();
            assertThat(q.dequantize().toArray()).containsOnly(0f);
        }
    }

    @ParameterizedTest
    @ValueSource(floats = {5f, -3f, 1e-40f, -1e-41f, 3e38f, 1e-30f})
    void allEqualRowIsDefinedAndFinite(float v) {
        float[] data = new float[16];
        java.util.Arrays.fill(data, v);
        for (Symmetry s : Symmetry.values()) {
            for (int bits = 2; bits <= 8; bits++) {
                QuantizedTensor q =
                        new RtnQuantizer(new LinearScheme(bits, s, -1)).quantize(FloatMatrix.of(1, 16, data));
                assertThat(q.scale(0)).isPositive().isFinite();
                float[] back = q.dequantize().toArray();
                for (float b : back) {
                    assertThat(b).isFinite();
                    assertThat(Math.abs(b - v)).isLessThanOrEqualTo(Math.abs(v) + q.scale(0));
                }
            }
        }
    }

    @Test
    void extremeRangeDoesNotOverflowToInfinity() {
        FloatMatrix w = FloatMatrix.of(1, 2, new float[] {-3e38f, 3e38f});
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(8, -1)).quantize(w);
        assertThat(q.scale(0)).isFinite().isPositive();
        for (float f : q.dequantize().toArray()) {
            assertThat(f).isFinite();
        }
    }

    static Stream<Arguments> schemes() {
        List<Arguments> list = new ArrayList<>();
        for (int bits = 2; bits <= 8; bits++) {
            for (Symmetry s : Symmetry.values()) {
                for (int g : new int[] {0, -1, 8, 32, 96}) {
                    list.add(Arguments.of(new LinearScheme(bits, s, g)));
                }
            }
        }
        return list.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("schemes")
    void errorIsAtMostHalfAStepForEveryInRangeValue(LinearScheme scheme) {
        FloatMatrix w = Gaussian.matrix("w", 42 + scheme.bits(), 5, 96, 0.15);
        QuantizedTensor q = new RtnQuantizer(scheme).quantize(w);
        FloatMatrix back = q.dequantize();
        int inRange = 0;
        for (int r = 0; r < w.rows(); r++) {
            for (int c = 0; c < w.cols(); c++) {
                int g = q.groupIndex(r, c);
                float s = q.scale(g);
                int z = q.zero(g);
                int qmin = scheme.symmetry() == Symmetry.SIGNED ? 1 : 0;
                float x = w.get(r, c);
                // representable range of the group, widened by half a step
                if (x < s * (qmin - z) - s / 2 || x > s * (scheme.maxq() - z) + s / 2) {
                    continue;
                }
                inRange++;
                assertThat(Math.abs(x - back.get(r, c)))
                        .as("(%d, %d) x=%s", r, c, x)
                        .isLessThanOrEqualTo(s / 2 * (1 + 1e-5f));
            }
        }
        // the groups' ranges cover the data except at GPTQ-sym's clamped edge: most values must be checked
        assertThat(inRange).isGreaterThan(w.rows() * w.cols() * 9 / 10);
    }

    @ParameterizedTest
    @ValueSource(strings = {"ASYM", "SYM", "SIGNED"})
    void errorFallsAsBitsRiseOnTheNotesWeights(String symmetry) {
        // the research note's study: N(0, 0.15^2) weights at 2, 3, 4, 6, 8 bits
        FloatMatrix w = Gaussian.matrix("w", 42, 256, 512, 0.15);
        double previous = Double.MAX_VALUE;
        for (int bits : new int[] {2, 3, 4, 6, 8}) {
            QuantizedTensor q = new RtnQuantizer(new LinearScheme(bits, Symmetry.valueOf(symmetry), 128)).quantize(w);
            ErrorMetrics m = ErrorMetrics.compare(w, q.dequantize());
            assertThat(m.mse()).as("%d bits", bits).isLessThan(previous / 3);
            previous = m.mse();
        }
        // at 8 bits a uniform quantizer's noise is about S^2 / 12
        assertThat(previous).isLessThan(1e-5);
    }

    /**
     * The same tensor whatever the threads and kernels: the vector kernels' fused path (4 and 8 bits, whole vectors per
     * group) and their fall-backs, rows that fill whole bytes (a task's rows quantized in one call) and rows that do not
     * (row by row), several tasks (300 rows), every form.
     */
    @ParameterizedTest
    @CsvSource({
        "3, 64, 256, ASYM",
        "4, 128, 256, ASYM",
        "4, 32, 256, SYM",
        "4, -1, 256, SIGNED",
        "8, 128, 256, ASYM",
        "8, 16, 256, SIGNED",
        "8, 0, 256, ASYM",
        "3, 12, 36, ASYM",
        "4, 4, 36, SYM",
        "5, 32, 256, ASYM"
    })
    void resultDoesNotDependOnThreadsOrKernels(int bits, int groupSize, int cols, String symmetry) {
        FloatMatrix w = Gaussian.matrix("w", 7, 300, cols, 1.0);
        LinearScheme scheme = new LinearScheme(bits, Symmetry.valueOf(symmetry), groupSize);
        QuantizedTensor one = new RtnQuantizer(scheme, new ForkJoinPool(1)).quantize(w);
        QuantizedTensor many = new RtnQuantizer(scheme, new ForkJoinPool(4)).quantize(w);
        assertThat(many).isEqualTo(one);
        QuantizedTensor scalar = new RtnQuantizer(scheme).quantize(w, Kernels.scalar());
        assertThat(scalar).isEqualTo(one);
        // one is computed with Kernels.get(), the vector kernels of this JVM's width
        assertThat(Kernels.get().name()).startsWith("vector-");
    }

    @Test
    void perTensorSharesOneScale() {
        FloatMatrix w = FloatMatrix.of(2, 2, new float[] {-1f, 0f, 0f, 2f});
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(8, 0)).quantize(w);
        assertThat(q.scales()).hasSize(1);
        assertThat(q.scale(0)).isEqualTo(3f / 255f);
        assertThat(q.groupIndex(1, 1)).isZero();
    }

    @Test
    void inputIsNotModified() {
        FloatMatrix w = Gaussian.matrix("w", 3, 4, 64, 1.0);
        float[] before = w.toArray();
        new RtnQuantizer(LinearScheme.asym(2, 16)).quantize(w);
        assertThat(w.toArray()).containsExactly(before);
    }

    @Test
    void badInputsNameTheProblem() {
        float[] data = new float[12];
        data[7] = Float.NaN;
        assertThatThrownBy(() ->
                        new RtnQuantizer(LinearScheme.asym(4, -1)).quantize(FloatMatrix.of("layer.w", 3, 4, data, 0)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("layer.w")
                .hasMessageContaining("NaN")
                .hasMessageContaining("[1, 3]");
        data[7] = Float.NEGATIVE_INFINITY;
        assertThatThrownBy(() -> new RtnQuantizer(LinearScheme.asym(4, -1)).quantize(FloatMatrix.of(3, 4, data)))
                .hasMessageContaining("-Infinity");
        assertThatThrownBy(() ->
                        new RtnQuantizer(LinearScheme.asym(4, 5)).quantize(FloatMatrix.of("m", 3, 4, new float[12], 0)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'m'")
                .hasMessageContaining("group size 5 does not divide the column count 4");
        assertThatThrownBy(() -> LinearScheme.asym(9, -1)).hasMessageContaining("bits must be in 2..8, got 9");
        assertThatThrownBy(() -> LinearScheme.asym(1, -1)).hasMessageContaining("got 1");
        assertThatThrownBy(() -> LinearScheme.asym(4, -2)).hasMessageContaining("got -2");
        assertThatThrownBy(() -> FloatMatrix.of(0, 4, new float[0])).hasMessageContaining("empty");
    }

    @Test
    void bitsPerWeightCountsScalesAndZeros() {
        FloatMatrix w = Gaussian.matrix("w", 1, 4, 256, 1.0);
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, 128)).quantize(w);
        // 4 bits + (32 + 8) / 128
        assertThat(q.bitsPerWeight()).isEqualTo(4 + 40.0 / 128);
    }
}
