package dev.quant4j.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.scheme.Codebook;
import dev.quant4j.scheme.Symmetry;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The kernels this JVM uses against the scalar reference: integer results identical, float sums within {@code 1e-5 *
 * (size + 1)} relative. The surefire executions of quant-core run this class once per vector width (the preferred one,
 * then {@code -Dquant4j.vector.bits=256} and {@code 128}), since the width is fixed per JVM.
 */
class KernelsTest {

    static final int[] SIZES = {1, 7, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 4097};
    static final QuantKernels REF = Kernels.scalar();

    static List<QuantKernels> implementations() {
        return List.of(Kernels.get());
    }

    /** The width this JVM was asked to use: the preferred one, or a narrower one forced by the property. */
    static int expectedBits() {
        int preferred = Kernels.preferredBits();
        String forced = System.getProperty("quant4j.vector.bits");
        int bits = forced == null ? preferred : Math.min(preferred, Integer.parseInt(forced));
        return bits >= 512 ? 512 : bits >= 256 ? 256 : bits >= 128 ? 128 : 0;
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
    void vectorKernelsAreTheOnesUnderTest() {
        // surefire runs with --add-modules jdk.incubator.vector: this must test vector code, not scalar against itself
        assertThat(Kernels.vectorModulePresent()).isTrue();
        assertThat(expectedBits()).isGreaterThanOrEqualTo(128);
        assertThat(Kernels.get().name()).isEqualTo("vector-" + expectedBits());
    }

    /**
     * The kernels this JVM uses are the vector ones: {@code VectorKernelSet}, whose families are the {@code Vector*Kernels}
     * classes by their declared types. That each vector class implements every kernel of its family is the compiler's
     * to check: each is a final class that implements its family's interface and inherits no scalar code, so a kernel
     * left out does not compile (this replaces a reflection test over the methods).
     */
    @Test
    void theVectorKernelSetIsSelected() {
        assertThat(Kernels.get()).isInstanceOf(VectorKernelSet.class);
        assertThat(Kernels.scalar()).isInstanceOf(ScalarKernelSet.class);
    }

    static float[] data(int n, long seed, boolean boundaries) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n + 3];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextGaussian() * 2.0);
        }
        if (boundaries) {
            // exact halves, zeros, huge and tiny values: rounding ties and clamps at both ends
            // and values whose quotient crosses the +-2^22 and -1.5 * 2^23 limits of the vector rounding trick
            float[] special = {
                0.5f,
                -0.5f,
                1.5f,
                2.5f,
                -2.5f,
                0f,
                -0f,
                1e30f,
                -1e30f,
                1e-30f,
                3.5f,
                7.5f,
                -8.5f,
                4194303.5f,
                -4194304.5f,
                12582913f,
                -12582913f,
                -12582911f,
                -25165824f,
                8388609f,
                Float.MAX_VALUE,
                -Float.MAX_VALUE
            };
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
        long expected = REF.minMax(x, 1, n);
        long actual = k.minMax(x, 1, n);
        // exact as values; the sign of a zero is unspecified (within(0f) accepts -0.0 == 0.0)
        assertThat(StatisticsKernels.min(actual)).isCloseTo(StatisticsKernels.min(expected), within(0f));
        assertThat(StatisticsKernels.max(actual)).isCloseTo(StatisticsKernels.max(expected), within(0f));
        assertThat(k.absMax(x, 1, n)).isEqualTo(REF.absMax(x, 1, n));
    }

    @ParameterizedTest(name = "{0} n={2}")
    @MethodSource("implsAndSizes")
    void nonFiniteValuesAreFoundWherever(String name, QuantKernels k, int n) {
        assertThat(k.allFinite(data(n, n, true), 1, n)).isTrue();
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            for (int at : new int[] {0, n / 2, n - 1}) {
                float[] x = data(n, n, true);
                x[1 + at] = bad;
                assertThat(k.allFinite(x, 1, n)).as("%s at %d", bad, at).isFalse();
                assertThat(k.allFinite(x, 2 + at, n - at - 1))
                        .as("outside the range")
                        .isTrue();
            }
        }
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

    /**
     * Values whose quotient {@code x / scale} is at or next to a half-integer, where a multiplication by the
     * reciprocal could round to the other integer than the division of the reference (GPTQ's {@code x / scale}): the
     * codes must still be identical. The test first checks that such values exist among its inputs, so that it can
     * fail. (The vector kernels multiply by the reciprocal and correct the quotient by one fused multiply-add, which
     * gives the correctly rounded quotient; this keeps any such change honest.)
     */
    @Test
    void quantizeRoundsTiesAsTheDivisionDoes() {
        for (QuantKernels k : implementations()) {
            for (float scale : new float[] {0.1f, 0.0137f, 1f / 15, 3.7f, 1e-3f / 7}) {
                float inv = 1.0f / scale;
                float[] x = new float[3 * 601];
                int disagree = 0;
                for (int j = -300; j <= 300; j++) {
                    float t = (j + 0.5f) * scale;
                    int at = 3 * (j + 300);
                    x[at] = t;
                    x[at + 1] = Math.nextUp(t);
                    x[at + 2] = Math.nextDown(t);
                    for (int d = 0; d < 3; d++) {
                        if (Math.rint(x[at + d] / scale) != Math.rint(x[at + d] * inv)) {
                            disagree++;
                        }
                    }
                }
                assertThat(disagree)
                        .as("scale %s: inputs where x * inv rounds apart", scale)
                        .isPositive();
                for (int zero : new int[] {0, 128, 255}) {
                    byte[] expected = new byte[x.length];
                    byte[] actual = new byte[x.length];
                    REF.quantize(x, 0, x.length, scale, zero, 0, 255, expected, 0);
                    k.quantize(x, 0, x.length, scale, zero, 0, 255, actual, 0);
                    assertThat(actual)
                            .as("%s scale=%s zero=%d", k.name(), scale, zero)
                            .containsExactly(expected);
                }
            }
        }
    }

    /**
     * Rows of groups of several kinds, by group: mixed signs, one sign only (both signs), zeros with negative zeros,
     * constant, huge, subnormal, near ties, and values far from zero with a narrow range (whose quotients are huge in
     * llm-awq's min/max form).
     */
    static float[] groupRows(int groups, int gsize, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[groups * gsize + 2];
        for (int g = 0; g < groups; g++) {
            for (int i = 0; i < gsize; i++) {
                float v = (float) r.nextGaussian();
                x[1 + g * gsize + i] = switch ((int) ((g + seed) % 9)) {
                    case 0 -> v;
                    case 1 -> Math.abs(v);
                    case 2 -> -Math.abs(v) - 1e-3f;
                    case 3 -> i % 2 == 0 ? 0f : -0f;
                    case 4 -> 5f;
                    case 5 -> v * 1e30f;
                    case 6 -> v * 1e-40f;
                    case 7 -> (r.nextInt(31) - 15 + 0.5f) * 0.1f;
                    default -> 1000f + v * 1e-3f;
                };
            }
        }
        return x;
    }

    /**
     * The fused row kernel against the reference's composition of minMax, linearParams, quantize and pack: scales,
     * zero-points and packed bytes identical for every width and form, group sizes that are whole vectors (the fused
     * path) and not, full and partial batches of groups.
     */
    @Test
    void quantizeGroupsMatchesTheComposedReference() {
        QuantKernels k = Kernels.get();
        for (int gsize : new int[] {1, 7, 8, 16, 32, 48, 64, 128, 256, 4096}) {
            for (int groups : new int[] {1, 3, 16, 17, 33}) {
                float[] x = groupRows(groups, gsize, gsize * 131L + groups);
                int n = groups * gsize;
                for (int bits = 2; bits <= 8; bits++) {
                    for (Symmetry form : Symmetry.values()) {
                        int qmin = form == Symmetry.SIGNED ? 1 : 0;
                        float[] es = new float[groups + 2];
                        float[] as = new float[groups + 2];
                        byte[] ez = new byte[groups + 2];
                        byte[] az = new byte[groups + 2];
                        byte[] ep = new byte[LinearKernels.packedBytes(n, bits) + 2];
                        byte[] ap = new byte[ep.length];
                        assertThat(REF.quantizeGroups(x, 1, groups, gsize, bits, form, qmin, es, 1, ez, 2, ep, 1))
                                .isTrue();
                        assertThat(k.quantizeGroups(x, 1, groups, gsize, bits, form, qmin, as, 1, az, 2, ap, 1))
                                .isTrue();
                        String what = "gsize=%d groups=%d bits=%d form=%s".formatted(gsize, groups, bits, form);
                        assertThat(as).as("scales " + what).containsExactly(es);
                        assertThat(az).as("zeros " + what).containsExactly(ez);
                        assertThat(ap).as("packed " + what).containsExactly(ep);
                    }
                }
            }
        }
    }

    /**
     * Groups built to land on the clamps: each group's values are near-ties {@code (k + 1/2) * s} (and their float
     * neighbours) for a random step {@code s} and {@code k} across the whole code range, so codes at both ends hinge on
     * how ties round; the fused kernel clamps from below only in llm-awq's form (see the proof in VectorLinearKernels), and
     * must still agree with the reference everywhere.
     */
    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3, 4, 5, 6})
    void quantizeGroupsAgreesAtTheClampsOnNearTies(long seed) {
        QuantKernels k = Kernels.get();
        SplittableRandom r = new SplittableRandom(seed);
        int gsize = 128;
        int groups = 512;
        float[] x = new float[groups * gsize];
        for (int g = 0; g < groups; g++) {
            float step = (float) Math.scalb(1 + r.nextDouble(), r.nextInt(-20, 20));
            int span = 1 << r.nextInt(1, 9);
            int shift = r.nextInt(-span, span + 1);
            for (int i = 0; i < gsize; i++) {
                float v = (r.nextInt(-span, span + 1) + shift + 0.5f) * step;
                x[g * gsize + i] = switch (r.nextInt(3)) {
                    case 0 -> v;
                    case 1 -> Math.nextUp(v);
                    default -> Math.nextDown(v);
                };
            }
        }
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (Symmetry form : Symmetry.values()) {
                int qmin = form == Symmetry.SIGNED ? 1 : 0;
                float[] es = new float[groups];
                float[] as = new float[groups];
                byte[] ez = new byte[groups];
                byte[] az = new byte[groups];
                byte[] ep = new byte[LinearKernels.packedBytes(x.length, bits)];
                byte[] ap = new byte[ep.length];
                REF.quantizeGroups(x, 0, groups, gsize, bits, form, qmin, es, 0, ez, 0, ep, 0);
                k.quantizeGroups(x, 0, groups, gsize, bits, form, qmin, as, 0, az, 0, ap, 0);
                assertThat(as).as("scales bits=%d form=%s", bits, form).containsExactly(es);
                assertThat(az).as("zeros bits=%d form=%s", bits, form).containsExactly(ez);
                assertThat(ap).as("packed bits=%d form=%s", bits, form).containsExactly(ep);
            }
        }
    }

    /**
     * A NaN of either sign or an infinity anywhere makes the fused kernel say false: in rows of groups of every kind,
     * and in rows of mixed-sign groups only (where the kernel takes its shortest way).
     */
    @Test
    void quantizeGroupsFindsEveryNonFiniteValue() {
        QuantKernels k = Kernels.get();
        float[] bad = {Float.NaN, Float.intBitsToFloat(0xFFC00000), Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        for (int gsize : new int[] {32, 128}) {
            int groups = 17;
            for (float b : bad) {
                for (int at : new int[] {0, gsize + 5, 2 * gsize + 1, 5 * gsize - 1, groups * gsize - 1}) {
                    for (boolean mixedOnly : new boolean[] {false, true}) {
                        float[] x = mixedOnly ? data(groups * gsize, at, false) : groupRows(groups, gsize, 3);
                        x[1 + at] = b;
                        for (int bits : new int[] {4, 8}) {
                            byte[] packed = new byte[groups * gsize];
                            boolean ok = k.quantizeGroups(
                                    x,
                                    1,
                                    groups,
                                    gsize,
                                    bits,
                                    Symmetry.ASYM,
                                    0,
                                    new float[groups],
                                    0,
                                    new byte[groups],
                                    0,
                                    packed,
                                    0);
                            assertThat(ok)
                                    .as("%s at %d, gsize %d, %d bits", b, at, gsize, bits)
                                    .isFalse();
                        }
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} n={2}")
    @MethodSource("implsAndSizes")
    void linearParamsAreBitIdentical(String name, QuantKernels k, int n) {
        SplittableRandom r = new SplittableRandom(n * 17L);
        float[] mins = new float[n];
        float[] maxs = new float[n];
        float[][] specials = {
            {0f, 0f},
            {-0f, 0f},
            {5f, 5f},
            {-3f, -3f},
            {0.25f, 1f},
            {-1f, -0.5f},
            {1e-40f, 2e-40f},
            {-1e-41f, 0f},
            {-3e38f, 3e38f},
            {-Float.MAX_VALUE, Float.MAX_VALUE},
            {-1f, 2f},
            {-2f, 1f}
        };
        for (int i = 0; i < n; i++) {
            if (i % 3 == 1) {
                float[] sp = specials[(i / 3) % specials.length];
                mins[i] = sp[0];
                maxs[i] = sp[1];
            } else {
                float a = (float) r.nextGaussian();
                float b = (float) r.nextGaussian();
                mins[i] = Math.min(a, b);
                maxs[i] = Math.max(a, b);
            }
        }
        for (int bits = 2; bits <= 8; bits++) {
            for (Symmetry form : Symmetry.values()) {
                float[] es = new float[n + 1];
                float[] ez = new float[n + 2];
                float[] as = new float[n + 1];
                float[] az = new float[n + 2];
                REF.linearParams(mins, maxs, n, bits, form, es, 1, ez, 2);
                k.linearParams(mins, maxs, n, bits, form, as, 1, az, 2);
                assertThat(as).as("scales bits=%d form=%s", bits, form).containsExactly(es);
                assertThat(az).as("zeros bits=%d form=%s", bits, form).containsExactly(ez);
            }
        }
    }

    @ParameterizedTest(name = "{0} n={2}")
    @MethodSource("implsAndSizes")
    void codebookCodesAreIdenticalAndMatchTheReferenceTrees(String name, QuantKernels k, int n) {
        float[] x = data(n, 13L * n, true);
        // the thresholds themselves and their neighbours: the ties that decide a code (x > t, strictly)
        int at = 1;
        for (Codebook book : Codebook.values()) {
            for (float t : book.thresholds()) {
                for (float v : new float[] {t, Math.nextUp(t), Math.nextDown(t), -t}) {
                    if (at < x.length) {
                        x[at] = v;
                        at += 2;
                    }
                }
            }
        }
        for (Codebook book : Codebook.values()) {
            // inv = +Inf is what an all-zero block gives: 0 * Inf = NaN lanes
            for (float inv : new float[] {1f, 0.37f, 3.5f, Float.POSITIVE_INFINITY}) {
                byte[] expected = new byte[n + 1];
                byte[] actual = new byte[n + 1];
                REF.encodeCodebook(x, 1, n, inv, book.thresholds(), book == Codebook.FP4, expected, 1);
                k.encodeCodebook(x, 1, n, inv, book.thresholds(), book == Codebook.FP4, actual, 1);
                assertThat(actual).as("%s inv=%s", book, inv).containsExactly(expected);
                for (int i = 0; i < n; i++) {
                    assertThat(expected[1 + i]).isEqualTo((byte) book.encode(x[1 + i] * inv));
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} n={2}")
    @MethodSource("implsAndSizes")
    void packHighFirst4MatchesTheReference(String name, QuantKernels k, int n) {
        int even = n + (n & 1);
        byte[] codes = new byte[even + 1];
        SplittableRandom r = new SplittableRandom(n + 9L);
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) r.nextInt(16);
        }
        byte[] expected = new byte[even / 2 + 2];
        byte[] actual = new byte[even / 2 + 2];
        REF.packHighFirst4(codes, 1, even, expected, 1);
        k.packHighFirst4(codes, 1, even, actual, 1);
        assertThat(actual).containsExactly(expected);
        assertThat(expected[1]).isEqualTo((byte) (codes[1] << 4 | codes[2]));
    }

    /**
     * The fused blockwise kernel against the block-by-block calls of the reference, for every block size the format
     * allows up to 4096 and block counts with odd tails: absmax, packed bytes. Block 0 holds the thresholds of the
     * codebook and their float neighbours with an absmax of exactly 1 (so {@code x * inv} is {@code x}, the ties of
     * bitsandbytes' rule included), block 1 (where there is one) is all zeros (code 0, as bitsandbytes), the rest
     * Gaussian with one outlier; each code is also checked against the reference's decision tree.
     */
    @Test
    void quantizeBlocks4MatchesTheBlockByBlockReference() {
        for (QuantKernels k : implementations()) {
            for (Codebook book : Codebook.values()) {
                for (int bs : new int[] {32, 64, 128, 256, 4096}) {
                    for (int blocks : new int[] {1, 2, 3, 7}) {
                        int n = bs * blocks;
                        SplittableRandom r = new SplittableRandom(bs * 31L + blocks);
                        float[] x = new float[n + 3];
                        for (int i = 0; i < x.length; i++) {
                            x[i] = (float) r.nextGaussian() * 0.02f;
                        }
                        int at = 2;
                        x[at++] = -1f;
                        for (float t : book.thresholds()) {
                            for (float v : new float[] {t, Math.nextUp(t), Math.nextDown(t), -t}) {
                                if (at < 1 + bs) {
                                    x[at++] = v;
                                }
                            }
                        }
                        if (blocks > 1) {
                            Arrays.fill(x, 1 + bs, 1 + 2 * bs, 0f);
                        }
                        if (blocks > 2) {
                            x[1 + n - 1] = 3.5f; // an outlier in a later block
                        }
                        if (blocks > 3) {
                            // a block of subnormals: 1 / absmax overflows to +Inf, so its zeros give 0 * Inf = NaN,
                            // which the reference codes as it codes NaN, and its other values +-Inf
                            for (int i = 1 + 3 * bs; i < 1 + 4 * bs; i++) {
                                x[i] = i % 3 == 0 ? 0f : (float) r.nextGaussian() * 1e-40f;
                            }
                        }
                        float[] expectedMax = new float[blocks + 2];
                        float[] actualMax = new float[blocks + 2];
                        byte[] expected = new byte[n / 2 + 3];
                        byte[] actual = new byte[n / 2 + 3];
                        boolean fp4 = book == Codebook.FP4;
                        REF.quantizeBlocks4(x, 1, blocks, bs, book.thresholds(), fp4, expectedMax, 1, expected, 2);
                        k.quantizeBlocks4(x, 1, blocks, bs, book.thresholds(), fp4, actualMax, 1, actual, 2);
                        String what = String.format("%s %s bs=%d blocks=%d", k.name(), book, bs, blocks);
                        assertThat(actualMax).as(what).containsExactly(expectedMax);
                        assertThat(actual).as(what).containsExactly(expected);
                        assertThat(expectedMax[1]).isEqualTo(1f);
                        for (int i = 0; i < n; i++) {
                            float inv = 1.0f / expectedMax[1 + i / bs];
                            int b = expected[2 + i / 2] & 0xFF;
                            int code = (i & 1) == 0 ? b >>> 4 : b & 0xF;
                            assertThat(code).as("%s at %d", what, i).isEqualTo(book.encode(x[1 + i] * inv));
                        }
                    }
                }
            }
        }
    }

    /** The fused block decoder against the reference, bit for bit, with a different absmax per block. */
    @Test
    void decodeBlocks4MatchesTheReference() {
        for (QuantKernels k : implementations()) {
            for (int bs : new int[] {16, 32, 64, 128, 4096}) {
                for (int blocks : new int[] {1, 2, 3, 7}) {
                    int n = bs * blocks;
                    SplittableRandom r = new SplittableRandom(bs * 7L + blocks);
                    byte[] packed = new byte[n / 2 + 3];
                    r.nextBytes(packed);
                    float[] absmax = new float[blocks + 1];
                    for (int b = 0; b < absmax.length; b++) {
                        absmax[b] = (float) r.nextDouble(0.001, 3);
                    }
                    float[] expected = new float[n + 2];
                    float[] actual = new float[n + 2];
                    float[] book = Codebook.NF4.table();
                    REF.decodeBlocks4(packed, 1, blocks, bs, book, absmax, 1, expected, 1);
                    k.decodeBlocks4(packed, 1, blocks, bs, book, absmax, 1, actual, 1);
                    assertThat(actual)
                            .as("%s bs=%d blocks=%d", k.name(), bs, blocks)
                            .containsExactly(expected);
                    // element i of block b is codebook[code] * absmax[b], the first code in the high nibble
                    int last = n - 1;
                    int code = (packed[1 + last / 2] & 0xFF) & 0xF;
                    assertThat(expected[1 + last]).isEqualTo(book[code] * absmax[1 + last / bs]);
                    assertThat(expected[1]).isEqualTo(book[(packed[1] & 0xFF) >>> 4] * absmax[1]);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} n={2}")
    @MethodSource("implsAndSizes")
    void decode4MatchesTheReference(String name, QuantKernels k, int n) {
        byte[] packed = new byte[n / 2 + 3];
        new SplittableRandom(n + 5L).nextBytes(packed);
        float[] table = new float[16];
        for (int c = 0; c < 16; c++) {
            table[c] = Codebook.NF4.value(c) * 0.731f;
        }
        float[] expected = new float[n + 2];
        float[] actual = new float[n + 2];
        REF.decode4(packed, 1, n, table, expected, 1);
        k.decode4(packed, 1, n, table, actual, 1);
        assertThat(actual).containsExactly(expected);
        // element 0 is the high nibble of the first byte
        assertThat(expected[1]).isEqualTo(table[(packed[1] & 0xFF) >>> 4]);
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

    /**
     * The fused row dequantizer against its definition, {@code unpack} then {@code dequantize} per group, bit for bit:
     * every width, group sizes with odd tails (and odd ones at 4 bits, whose groups do not start on a byte), offsets
     * on every array, a different scale and zero-point per group.
     */
    @Test
    void dequantizeGroupsEqualsUnpackThenDequantize() {
        List<QuantKernels> kernels = new ArrayList<>(implementations());
        kernels.add(REF);
        for (QuantKernels k : kernels) {
            for (int bits = 2; bits <= 8; bits++) {
                for (int gs : new int[] {1, 2, 7, 16, 31, 32, 33, 62, 64, 127, 128, 196, 4098}) {
                    for (int groups : new int[] {1, 3}) {
                        int n = gs * groups;
                        SplittableRandom r = new SplittableRandom(bits * 1000L + gs * 10L + groups);
                        byte[] packed = new byte[1 + LinearKernels.packedBytes(n, bits) + 16];
                        r.nextBytes(packed);
                        float[] scales = new float[groups + 1];
                        byte[] zeros = new byte[groups + 2];
                        for (int g = 0; g < groups; g++) {
                            scales[1 + g] = (float) r.nextDouble(1e-4, 2);
                            zeros[2 + g] = (byte) r.nextInt(1 << bits);
                        }
                        byte[] codes = new byte[n];
                        REF.unpack(packed, 1, n, bits, codes, 0);
                        float[] expected = new float[n + 3];
                        for (int g = 0; g < groups; g++) {
                            REF.dequantize(codes, g * gs, gs, scales[1 + g], zeros[2 + g] & 0xFF, expected, 2 + g * gs);
                        }
                        float[] actual = new float[n + 3];
                        k.dequantizeGroups(packed, 1, n, bits, gs, scales, 1, zeros, 2, actual, 2);
                        assertThat(actual)
                                .as("%s bits=%d groupSize=%d groups=%d", k.name(), bits, gs, groups)
                                .containsExactly(expected);
                        // the codes ending exactly at the array's end: no kernel may read past it
                        byte[] exact = Arrays.copyOf(packed, 1 + LinearKernels.packedBytes(n, bits));
                        float[] atEnd = new float[n + 3];
                        k.dequantizeGroups(exact, 1, n, bits, gs, scales, 1, zeros, 2, atEnd, 2);
                        assertThat(atEnd)
                                .as("%s bits=%d groupSize=%d groups=%d, packed to the end", k.name(), bits, gs, groups)
                                .containsExactly(expected);
                    }
                }
            }
        }
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
            int bytes = LinearKernels.packedBytes(n, bits);
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
    void axpyIsBitExact(String name, QuantKernels k, int n) {
        float[] x = data(n, 3L * n, false);
        float[] expected = data(n, 5L * n, false);
        float[] actual = expected.clone();
        REF.axpy(-0.37f, x, 1, expected, 2, n);
        k.axpy(-0.37f, x, 1, actual, 2, n);
        assertThat(actual).containsExactly(expected);
    }

    /** Packed 4-bit rows against prepared activations: every length and group size, within float rounding. */
    @Test
    void dotNibblesAgreesWithTheReferenceAndTheDefinition() {
        for (QuantKernels k : implementations()) {
            for (int n : new int[] {32, 64, 96, 128, 256, 4096}) {
                for (int g : new int[] {32, 64, 128, n}) {
                    if (n % g != 0) {
                        continue;
                    }
                    byte[] packed = new byte[n / 2 + 3];
                    new SplittableRandom(n * 31L + g).nextBytes(packed);
                    float[] x = data(n, 7L * n + g, false);
                    float[] xp = new float[n + 1];
                    PackedProductKernels.deinterleaveForNibbles(x, 1, n, xp, 1);
                    float[] scales = data(n / g, 3L * g, false);
                    float expected = REF.dotNibbles(packed, 3, xp, 1, n, g, scales, 1);
                    float actual = k.dotNibbles(packed, 3, xp, 1, n, g, scales, 1);
                    // the definition, in double, on the natural order of x
                    double def = 0;
                    double mag = 0;
                    for (int i = 0; i < n; i++) {
                        int b = packed[3 + i / 2] & 0xFF;
                        int code = (i & 1) == 0 ? b & 0xF : b >>> 4;
                        double term = (double) scales[1 + i / g] * code * x[1 + i];
                        def += term;
                        mag += Math.abs(term);
                    }
                    assertThat((double) expected).as("scalar n=%d g=%d", n, g).isCloseTo(def, within(1e-5 * mag));
                    assertThat((double) actual)
                            .as("%s n=%d g=%d", k.name(), n, g)
                            .isCloseTo(def, within(1e-5 * mag));
                }
            }
        }
    }

    /**
     * Packed 4-bit rows against int8 activation codes: the integer sums are exact, so scalar, vector and the
     * definition (in double, on the natural order) agree to the rounding of the group scales only. Group sizes up to
     * 1024 cross the kernel's 16-bit flush at every width; the codes are at the extremes (15 and +-127) so that an
     * overflow of the 16-bit lanes could not hide.
     */
    @Test
    void dotNibblesInt8AgreesWithTheReferenceAndTheDefinition() {
        for (QuantKernels k : implementations()) {
            for (int n : new int[] {64, 128, 192, 256, 1024, 4096}) {
                for (int g : new int[] {64, 128, 256, 1024, n}) {
                    if (n % g != 0) {
                        continue;
                    }
                    for (boolean extreme : new boolean[] {false, true}) {
                        SplittableRandom rnd = new SplittableRandom(n * 37L + g + (extreme ? 1 : 0));
                        byte[] packed = new byte[n / 2 + 3];
                        rnd.nextBytes(packed);
                        short[] xq = new short[n + 2];
                        for (int i = 0; i < xq.length; i++) {
                            xq[i] = (short) rnd.nextInt(-127, 128);
                        }
                        if (extreme) {
                            Arrays.fill(packed, (byte) 0xFF);
                            Arrays.fill(xq, (short) -127);
                        }
                        float[] scales = data(n / g + 1, 5L * g, false);
                        float[] xScales = data(n / g + 2, 9L * g, false);
                        float expected = REF.dotNibblesInt8(packed, 3, xq, 2, n, g, scales, 1, xScales, 2);
                        float actual = k.dotNibblesInt8(packed, 3, xq, 2, n, g, scales, 1, xScales, 2);
                        double def = 0;
                        double mag = 0;
                        int half = QuantKernels.NIBBLE_CHUNK_INT8 / 2;
                        for (int gi = 0; gi < n / g; gi++) {
                            long isum = 0;
                            for (int i = gi * g; i < (gi + 1) * g; i++) {
                                int b = packed[3 + i / 2] & 0xFF;
                                int code = (i & 1) == 0 ? b & 0xF : b >>> 4;
                                int chunk = i - i % QuantKernels.NIBBLE_CHUNK_INT8;
                                int j = i % QuantKernels.NIBBLE_CHUNK_INT8;
                                int pos = chunk + ((j & 1) == 0 ? j / 2 : half + j / 2);
                                isum += (long) code * xq[2 + pos];
                            }
                            double sd = (double) (scales[1 + gi] * xScales[2 + gi]);
                            def += sd * isum;
                            mag += Math.abs(sd * isum);
                        }
                        String what = String.format("n=%d g=%d extreme=%s", n, g, extreme);
                        assertThat((double) expected).as("scalar " + what).isCloseTo(def, within(1e-6 * mag));
                        assertThat((double) actual).as(k.name() + " " + what).isCloseTo(def, within(1e-6 * mag));
                    }
                }
            }
        }
    }

    /**
     * The activation half of the int8 path, against hand-checkable values: {@code d = amax / 127}, codes {@code
     * rint(x / d)} in the chunk order of the kernel; an all-zero group gets {@code d = 0} and zero codes; NaN gives a
     * NaN scale.
     */
    @Test
    void activationsQuantizeToInt8PerGroup() {
        int n = 128;
        float[] x = new float[n + 1];
        for (int i = 0; i < 64; i++) {
            x[1 + i] = (i - 32) / 32f; // -1 .. 0.96875: amax 1
        }
        short[] xq = new short[n + 3];
        float[] d = new float[3];
        PackedProductKernels.quantizeActivationsInt8(x, 1, n, 64, xq, 3, d, 1);
        assertThat(d[1]).isEqualTo(1f / 127);
        assertThat(d[2]).isZero(); // the second group is all zero
        // element 0 (-1) is the first even value, element 1 (-31/32) the first odd one, at position 32
        assertThat(xq[3]).isEqualTo((short) -127);
        assertThat(xq[3 + 32]).isEqualTo((short) Math.rint((-31 / 32f) / (1f / 127)));
        // element 33 (1/32 -> 3.97 -> 4) is odd: position 32 + 16
        assertThat(xq[3 + 48]).isEqualTo((short) 4);
        for (int i = 64; i < 128; i++) {
            assertThat(xq[3 + i]).isZero();
        }
        x[5] = Float.NaN;
        PackedProductKernels.quantizeActivationsInt8(x, 1, n, 64, xq, 3, d, 1);
        assertThat(d[1]).isNaN();
        assertThat(d[2]).isZero();
    }

    /** Many dot products at once: every tile shape and tail against the scalar loop and the definition. */
    @Test
    void dotManyAgreesWithTheDefinition() {
        for (QuantKernels k : implementations()) {
            for (int m : new int[] {1, 2, 3, 5}) {
                for (int n : new int[] {1, 3, 4, 9}) {
                    for (int len : new int[] {1, 17, 64, 129}) {
                        float[] a = data(m * (len + 2) + 1, 11L * m + len, false);
                        float[] b = data(n * (len + 1) + 2, 13L * n + len, false);
                        float[] c = new float[m * n * 2 + 3];
                        float[] r = new float[m * n * 2 + 3];
                        k.dotMany(m, n, len, a, 1, len + 2, b, 2, len + 1, c, 3, 1, m);
                        REF.dotMany(m, n, len, a, 1, len + 2, b, 2, len + 1, r, 3, 1, m);
                        for (int i = 0; i < m; i++) {
                            for (int j = 0; j < n; j++) {
                                double def = 0;
                                double mag = 0;
                                for (int t = 0; t < len; t++) {
                                    double term = (double) a[1 + i * (len + 2) + t] * b[2 + j * (len + 1) + t];
                                    def += term;
                                    mag += Math.abs(term);
                                }
                                assertThat((double) c[3 + i + j * m])
                                        .as("%s m=%d n=%d len=%d (%d,%d)", k.name(), m, n, len, i, j)
                                        .isCloseTo(def, within(1e-5 * (mag + 1e-30)));
                                assertThat((double) r[3 + i + j * m]).isCloseTo(def, within(1e-5 * (mag + 1e-30)));
                            }
                        }
                    }
                }
            }
        }
    }

    /** Eight activation rows at once equal eight single rows (same float operations per row, in the same order). */
    @Test
    void dotNibbles8AgreesWithEightSingleRows() {
        for (QuantKernels k : implementations()) {
            for (int n : new int[] {32, 128, 4096}) {
                for (int g : new int[] {32, 128, n}) {
                    if (n % g != 0) {
                        continue;
                    }
                    byte[] packed = new byte[n / 2 + 1];
                    new SplittableRandom(n + 5L * g).nextBytes(packed);
                    float[] xp = data(8 * (n + 3), 3L * n + g, false);
                    float[] scales = data(n / g + 2, 7L * g, false);
                    float[] out = new float[10];
                    k.dotNibbles8(packed, 1, xp, 2, n + 3, n, g, scales, 2, out, 1);
                    for (int b = 0; b < 8; b++) {
                        float single = REF.dotNibbles(packed, 1, xp, 2 + b * (n + 3), n, g, scales, 2);
                        double mag = 0;
                        for (int i = 0; i < n; i++) {
                            mag += Math.abs(15.0 * xp[2 + b * (n + 3) + i] * scales[2 + i / g]);
                        }
                        assertThat(out[1 + b])
                                .as("%s n=%d g=%d b=%d", k.name(), n, g, b)
                                .isCloseTo(single, within((float) (1e-5 * mag)));
                    }
                }
            }
        }
    }

    /** Two weight rows at once equal two calls of dotNibbles8, bit for bit. */
    @Test
    void dotNibbles2x8EqualsTwoDotNibbles8() {
        for (QuantKernels k : implementations()) {
            for (int n : new int[] {32, 128, 4096}) {
                for (int g : new int[] {32, 128, n}) {
                    if (n % g != 0) {
                        continue;
                    }
                    byte[] packed = new byte[n + 3];
                    new SplittableRandom(n + 7L * g).nextBytes(packed);
                    float[] xp = data(8 * (n + 3), 5L * n + g, false);
                    float[] scales = data(2 * (n / g) + 3, 11L * g, false);
                    float[] both = new float[17];
                    k.dotNibbles2x8(packed, 1, 2 + n / 2, xp, 2, n + 3, n, g, scales, 1, 2 + n / g, both, 1);
                    float[] row0 = new float[8];
                    float[] row1 = new float[8];
                    k.dotNibbles8(packed, 1, xp, 2, n + 3, n, g, scales, 1, row0, 0);
                    k.dotNibbles8(packed, 2 + n / 2, xp, 2, n + 3, n, g, scales, 2 + n / g, row1, 0);
                    assertThat(Arrays.copyOfRange(both, 1, 9))
                            .as("%s n=%d g=%d row 0", k.name(), n, g)
                            .containsExactly(row0);
                    assertThat(Arrays.copyOfRange(both, 9, 17))
                            .as("%s n=%d g=%d row 1", k.name(), n, g)
                            .containsExactly(row1);
                }
            }
        }
    }

    static Stream<Arguments> gemmShapes() {
        List<Arguments> args = new ArrayList<>();
        for (QuantKernels k : implementations()) {
            for (int m : new int[] {1, 3, 4, 5, 9}) {
                // n crosses one vector, three vectors and the 18-vector panel of every width
                for (int n : new int[] {1, 7, 31, 33, 49, 129, 301}) {
                    for (int kk : new int[] {1, 5, 17}) {
                        args.add(Arguments.of(k.name(), k, m, n, kk));
                    }
                }
            }
        }
        return args.stream();
    }

    /** Every element is one fused multiply-add chain in the same order, so all implementations agree bit for bit. */
    @ParameterizedTest(name = "{0} m={2} n={3} k={4}")
    @MethodSource("gemmShapes")
    void gemmAccIsBitExactForBothLayoutsOfA(String name, QuantKernels k, int m, int n, int kk) {
        int lda = kk + 2;
        int ldb = n + 3;
        int ldc = n + 1;
        float[] a = data(m * lda + kk * (m + 2), 13L * m + n, false);
        float[] b = data(kk * ldb + 1, 17L * n + kk, false);
        float[] c0 = data(m * ldc + 2, 19L * m * n + kk, false);
        // row-major A: A(i, t) = a[1 + i * lda + t]; transposed: A(i, t) = a[1 + t * (m + 2) + i]
        int[][] strides = {{lda, 1}, {1, m + 2}};
        for (int[] st : strides) {
            float[] expected = c0.clone();
            float[] actual = c0.clone();
            REF.gemmAcc(m, n, kk, a, 1, st[0], st[1], b, 1, ldb, expected, 2, ldc);
            k.gemmAcc(m, n, kk, a, 1, st[0], st[1], b, 1, ldb, actual, 2, ldc);
            assertThat(actual).as("strides %d,%d", st[0], st[1]).containsExactly(expected);
        }
        // and the definition, in double, to float rounding
        float[] c = c0.clone();
        k.gemmAcc(m, n, kk, a, 1, lda, 1, b, 1, ldb, c, 2, ldc);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = c0[2 + i * ldc + j];
                double mag = Math.abs(sum);
                for (int t = 0; t < kk; t++) {
                    sum += (double) a[1 + i * lda + t] * b[1 + t * ldb + j];
                    mag += Math.abs((double) a[1 + i * lda + t] * b[1 + t * ldb + j]);
                }
                assertThat((double) c[2 + i * ldc + j]).isCloseTo(sum, within(1e-6 * (kk + 1) * mag));
            }
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
        float[] expected = new float[6];
        float[] actual = new float[6];
        REF.diffStats(a, 1, b, 2, n, expected);
        k.diffStats(a, 1, b, 2, n, actual);
        // sums of magnitudes, to scale the tolerance: |d|^2, |d|, a^2, b^2 are their own; |a b| for the dot product
        double[] magnitude = {
            expected[QuantKernels.SUM_SQ_DIFF],
            expected[QuantKernels.SUM_ABS_DIFF],
            0,
            expected[QuantKernels.SUM_SQ_A],
            expected[QuantKernels.SUM_SQ_B],
            scale(a, b, n)
        };
        for (int j = 0; j < 6; j++) {
            assertThat(actual[j]).as("diffStats[%d]", j).isCloseTo(expected[j], within((float) (tol * magnitude[j])));
        }
        // the maximum is exact
        assertThat(actual[QuantKernels.MAX_ABS_DIFF]).isEqualTo(expected[QuantKernels.MAX_ABS_DIFF]);
        assertThat(expected[QuantKernels.SUM_SQ_A]).isEqualTo(REF.sumSquares(a, 1, n));
        assertThat(expected[QuantKernels.SUM_AB]).isEqualTo(REF.dot(a, 1, b, 2, n));
    }

    /**
     * The largest difference of {@code diffStats} is exact wherever it lies (vector body or tail) and, like {@code
     * Math.max}, a NaN once one difference is NaN; an infinite difference is infinite.
     */
    @ParameterizedTest(name = "{0} n={2}")
    @MethodSource("implsAndSizes")
    void diffStatsMaximumIsExactAndKeepsNaN(String name, QuantKernels k, int n) {
        if (n == 0) {
            return;
        }
        float[] a = data(n, 13L * n, false);
        float[] b = data(n, 17L * n, false);
        float[] out = new float[6];
        for (int at : new int[] {0, n / 2, n - 1}) {
            float[] big = b.clone();
            big[2 + at] = a[1 + at] - 1e30f;
            k.diffStats(a, 1, big, 2, n, out);
            assertThat(out[QuantKernels.MAX_ABS_DIFF]).as("at %d", at).isEqualTo(Math.abs(a[1 + at] - big[2 + at]));
            float[] inf = b.clone();
            inf[2 + at] = Float.NEGATIVE_INFINITY;
            k.diffStats(a, 1, inf, 2, n, out);
            assertThat(out[QuantKernels.MAX_ABS_DIFF]).as("at %d", at).isEqualTo(Float.POSITIVE_INFINITY);
            float[] nan = b.clone();
            nan[2 + at] = Float.NaN;
            k.diffStats(a, 1, nan, 2, n, out);
            assertThat(out[QuantKernels.MAX_ABS_DIFF]).as("at %d", at).isNaN();
        }
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
