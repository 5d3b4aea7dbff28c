package dev.quant4j.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every kernel implementation this CPU supports (the preferred width and every narrower one down to 128 bits) against
 * the scalar reference: integer results identical, float sums within {@code 1e-5 * (size + 1)} relative.
 */
class KernelsTest {

    static final int[] SIZES = {1, 7, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 4097};
    static final QuantKernels REF = Kernels.scalar();

    static List<QuantKernels> implementations() {
        List<QuantKernels> list = new ArrayList<>();
        for (int bits : new int[] {128, 256, 512, 1024, 2048}) {
            Kernels.vector(bits).ifPresent(list::add);
        }
        return list;
    }

    static Stream<Arguments> implsAndSizes() {
        List<Arguments> args = new ArrayList<>();
        for (QuantKernels k : implementations()) {
            for (int n : SIZES) {
                args.add(Arguments.of(k.name(), k, n));
            }
        }
        return args.stream();
    }

    @Test
    void vectorKernelsAreAvailableWithTheModule() {
        // surefire runs with --add-modules jdk.incubator.vector: the 128-bit path must always be testable
        assertThat(Kernels.vectorModulePresent()).isTrue();
        assertThat(implementations()).extracting(QuantKernels::name).contains("vector-128");
        assertThat(Kernels.get().name()).isEqualTo("vector-" + Kernels.preferredBits());
    }

    @Test
    void unsupportedWidthsGiveEmptyNotAnException() {
        assertThat(Kernels.vector(64)).isEmpty();
        assertThat(Kernels.vector(100)).isEmpty();
        assertThat(Kernels.vector(1 << 20)).isEmpty();
    }

    static float[] data(int n, long seed, boolean boundaries) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n + 3];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextGaussian() * 2.0);
        }
        if (boundaries) {
            // exact halves, zeros, huge and tiny values: rounding ties and clamps at both ends
            float[] special = {0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0f, -0f, 1e30f, -1e30f, 1e-30f, 3.5f, 7.5f, -8.5f};
            for (int i = 0; i < n; i += 3) {
                x[i + 1] = special[(i / 3) % special.length];
            }
        }
        return x;
    }

    @ParameterizedTest(name = "{0} n={2}")
    @MethodSource("implsAndSizes")
    void minMaxAbsMaxAreExact(String name, QuantKernels k, int n) {
        float[] x = data(n, n, true);
        assertThat(k.min(x, 1, n)).isEqualTo(REF.min(x, 1, n));
        assertThat(k.max(x, 1, n)).isEqualTo(REF.max(x, 1, n));
        assertThat(k.absMax(x, 1, n)).isEqualTo(REF.absMax(x, 1, n));
    }

    @ParameterizedTest(name = "{0} n={2}")
    @MethodSource("implsAndSizes")
    void quantizeCodesAreIdenticalForEveryWidthAndZero(String name, QuantKernels k, int n) {
        float[] x = data(n, 31L * n, true);
        for (int bits = 2; bits <= 8; bits++) {
            int maxq = (1 << bits) - 1;
            for (float scale : new float[] {0.1f, 0.5f, 1f / maxq, 3.7f}) {
                for (int zero : new int[] {0, (maxq + 1) / 2, maxq}) {
                    byte[] expected = new byte[n + 2];
                    byte[] actual = new byte[n + 2];
                    REF.quantize(x, 1, n, scale, zero, 0, maxq, expected, 1);
                    k.quantize(x, 1, n, scale, zero, 0, maxq, actual, 1);
                    assertThat(actual)
                            .as("bits=%d scale=%s zero=%d", bits, scale, zero)
                            .containsExactly(expected);
                }
            }
            // signed range
            int half = 1 << (bits - 1);
            byte[] expected = new byte[n];
            byte[] actual = new byte[n];
            REF.quantize(x, 1, n, 0.3f, half, 1, maxq, expected, 0);
            k.quantize(x, 1, n, 0.3f, half, 1, maxq, actual, 0);
            assertThat(actual).containsExactly(expected);
        }
    }

    @ParameterizedTest(name = "{0} n={2}")
    @MethodSource("implsAndSizes")
    void dequantizeIsBitExact(String name, QuantKernels k, int n) {
        byte[] codes = new byte[n + 1];
        new SplittableRandom(n).nextBytes(codes);
        float[] expected = new float[n + 2];
        float[] actual = new float[n + 2];
        REF.dequantize(codes, 1, n, 0.0123f, 131f, expected, 2);
        k.dequantize(codes, 1, n, 0.0123f, 131f, actual, 2);
        assertThat(actual).containsExactly(expected);
    }

    @ParameterizedTest(name = "{0} n={2}")
    @MethodSource("implsAndSizes")
    void packAndUnpackMatchReferenceAndRoundTrip(String name, QuantKernels k, int n) {
        for (int bits = 2; bits <= 8; bits++) {
            byte[] codes = new byte[n + 1];
            SplittableRandom r = new SplittableRandom(bits * 1000L + n);
            for (int i = 0; i < codes.length; i++) {
                codes[i] = (byte) r.nextInt(1 << bits);
            }
            int bytes = QuantKernels.packedBytes(n, bits);
            byte[] expected = new byte[bytes + 2];
            byte[] actual = new byte[bytes + 2];
            REF.pack(codes, 1, n, bits, expected, 1);
            k.pack(codes, 1, n, bits, actual, 1);
            assertThat(actual).as("pack bits=%d", bits).containsExactly(expected);
            byte[] back = new byte[n + 1];
            k.unpack(actual, 1, n, bits, back, 1);
            assertThat(Arrays.copyOfRange(back, 1, n + 1))
                    .as("round trip bits=%d", bits)
                    .containsExactly(Arrays.copyOfRange(codes, 1, n + 1));
        }
    }

    @ParameterizedTest(name = "{0} n={2}")
    @MethodSource("implsAndSizes")
    void floatSumsAgreeWithinTolerance(String name, QuantKernels k, int n) {
        float[] a = data(n, 7L * n, false);
        float[] b = data(n, 11L * n, false);
        double tol = 1e-5 * (n + 1);
        assertThat(k.dot(a, 1, b, 2, n)).isCloseTo(REF.dot(a, 1, b, 2, n), within((float) (tol * scale(a, b, n))));
        assertThat(k.sumSquares(a, 1, n))
                .isCloseTo(REF.sumSquares(a, 1, n), within((float) (tol * REF.sumSquares(a, 1, n))));
        float ssd = REF.sumSquaredDiff(a, 1, b, 2, n);
        assertThat(k.sumSquaredDiff(a, 1, b, 2, n)).isCloseTo(ssd, within((float) (tol * ssd)));
        float sad = REF.sumAbsDiff(a, 1, b, 2, n);
        assertThat(k.sumAbsDiff(a, 1, b, 2, n)).isCloseTo(sad, within((float) (tol * sad)));
        assertThat(k.maxAbsDiff(a, 1, b, 2, n)).isEqualTo(REF.maxAbsDiff(a, 1, b, 2, n));
    }

    private static double scale(float[] a, float[] b, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            s += Math.abs(a[1 + i] * b[2 + i]);
        }
        return s;
    }

    @Test
    void scalarPackGoldenBytes() {
        // code j at bits [3j, 3j+3), LSB first: 8 codes in exactly 3 bytes
        byte[] packed = new byte[3];
        REF.pack(new byte[] {1, 2, 3, 4, 5, 6, 7, 0}, 0, 8, 3, packed, 0);
        assertThat(packed).containsExactly(0xd1, 0x58, 0x1f);
        // a partial last byte keeps its unused bits zero
        byte[] five = new byte[2];
        REF.pack(new byte[] {1, 2, 3, 4, 5}, 0, 5, 3, five, 0);
        assertThat(five).containsExactly(0xd1, 0x58);
        byte[] two = new byte[2];
        REF.pack(new byte[] {3, 0, 1, 2, 3}, 0, 5, 2, two, 0);
        assertThat(two).containsExactly(0x93, 0x03);
        byte[] seven = new byte[3];
        REF.pack(new byte[] {0x55, 0x2a, 0x7f}, 0, 3, 7, seven, 0);
        assertThat(seven).containsExactly(0x55, 0xd5, 0x1f);
        byte[] four = new byte[2];
        REF.pack(new byte[] {0x1, 0xA, 0xF}, 0, 3, 4, four, 0);
        assertThat(four).containsExactly(0xA1, 0x0F);
    }
}
