package dev.quant4j.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The ggml block kernels of this JVM ({@link Kernels#ggml()}: vector at the preferred width, or at the width the
 * surefire execution forces) against the scalar reference, and both against the files ggml wrote: bytes identical,
 * floats identical in their bits ({@link Float#floatToIntBits}, so any NaN equals any NaN: Java does not fix a NaN's
 * payload).
 */
class GgmlBlockKernelsTest {

    static final GgmlBlockKernels REF = Kernels.ggmlScalar();
    static final GgmlBlockKernels VEC = Kernels.ggml();

    /** A block type: values per block, bytes per block, its kernels. */
    enum Type {
        Q4_0(32, 18),
        Q4_1(32, 20),
        Q5_0(32, 22),
        Q5_1(32, 24),
        Q8_0(32, 34),
        Q4_K(256, 144),
        Q5_K(256, 176),
        Q6_K(256, 210);

        final int qk;
        final int size;

        Type(int qk, int size) {
            this.qk = qk;
            this.size = size;
        }

        /** Whether the kernels quantize to it (q6_K's quantizer is {@code KQuants}, its search a kernel). */
        boolean quantizable() {
            return this != Q6_K;
        }

        String fixture() {
            return name().toLowerCase(Locale.ROOT).replace("_k", "_K"); // ggml's spelling: q4_0, q4_K
        }

        void quantize(GgmlBlockKernels k, float[] x, int xOff, byte[] y, int yOff, int n) {
            switch (this) {
                case Q4_0 -> k.quantizeQ4_0(x, xOff, y, yOff, n);
                case Q4_1 -> k.quantizeQ4_1(x, xOff, y, yOff, n);
                case Q5_0 -> k.quantizeQ5_0(x, xOff, y, yOff, n);
                case Q5_1 -> k.quantizeQ5_1(x, xOff, y, yOff, n);
                case Q8_0 -> k.quantizeQ8_0(x, xOff, y, yOff, n);
                case Q4_K -> k.quantizeQ4_K(x, xOff, y, yOff, n);
                case Q5_K -> k.quantizeQ5_K(x, xOff, y, yOff, n);
                default -> throw new IllegalArgumentException(name());
            }
        }

        void dequantize(GgmlBlockKernels k, byte[] x, int xOff, float[] y, int yOff, int n) {
            switch (this) {
                case Q4_0 -> k.dequantizeQ4_0(x, xOff, y, yOff, n);
                case Q4_1 -> k.dequantizeQ4_1(x, xOff, y, yOff, n);
                case Q5_0 -> k.dequantizeQ5_0(x, xOff, y, yOff, n);
                case Q5_1 -> k.dequantizeQ5_1(x, xOff, y, yOff, n);
                case Q8_0 -> k.dequantizeQ8_0(x, xOff, y, yOff, n);
                case Q4_K -> k.dequantizeQ4_K(x, xOff, y, yOff, n);
                case Q5_K -> k.dequantizeQ5_K(x, xOff, y, yOff, n);
                case Q6_K -> k.dequantizeQ6_K(x, xOff, y, yOff, n);
            }
        }
    }

    @Test
    void theVectorKernelsAreTheOnesUnderTest() {
        if (!Boolean.parseBoolean(System.getProperty("quant4j.vector", "true"))) {
            // the scalar execution: the reference everywhere, checked against ggml's files below
            assertThat(VEC).isSameAs(REF);
            return;
        }
        // surefire runs with --add-modules jdk.incubator.vector: this must test vector code, not scalar against itself
        assertThat(VEC).isInstanceOf(VectorGgmlBlockKernels.class);
        assertThat(VEC.name()).isEqualTo(Kernels.get().name()).isEqualTo("vector-" + KernelsTest.expectedBits());
        assertThat(REF).isInstanceOf(ScalarGgmlBlockKernels.class);
    }

    static final int[] BLOCKS_32 = {1, 2, 3, 5, 7, 16, 33, 129};
    static final int[] BLOCKS_256 = {1, 2, 3, 5, 17};

    static Stream<Arguments> typesBlocksSeeds() {
        List<Arguments> args = new ArrayList<>();
        for (Type t : Type.values()) {
            for (int nb : t.qk == 32 ? BLOCKS_32 : BLOCKS_256) {
                for (long seed = 1; seed <= 3; seed++) {
                    args.add(Arguments.of(t, nb, seed));
                }
            }
        }
        return args.stream();
    }

    /**
     * Seeded blocks of every kind the reference treats specially: Gaussian of varied scale, ties on each type's grid,
     * equal largest magnitudes of opposite signs (either first), signed zeros, constants, one-signed blocks,
     * subnormals, values near the float and FP16 limits, infinities and NaNs.
     */
    static float[] hardValues(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int b = 0; b < n / 32; b++) {
            int o = 32 * b;
            int kind = r.nextInt(20);
            float scale = (float) Math.pow(10, r.nextInt(-8, 9));
            for (int j = 0; j < 32; j++) {
                x[o + j] = (float) r.nextGaussian() * scale;
            }
            switch (kind) {
                case 0 -> { // ties: multiples of half a step of q8_0 (d = 1) and q4/q5 (d = -max / 8 or 16)
                    float d = r.nextBoolean() ? 1f : 0.25f;
                    for (int j = 0; j < 32; j++) {
                        x[o + j] = d * (r.nextInt(-254, 255) / 2f);
                    }
                    x[o + r.nextInt(32)] = 127 * d * (r.nextBoolean() ? 1 : -1);
                }
                case 1 -> { // largest magnitude twice, opposite signs, in either order
                    float m = Math.abs(x[o]) * 10 + 1;
                    int a = r.nextInt(32);
                    int c = r.nextInt(32);
                    x[o + a] = m;
                    x[o + c] = -m;
                }
                case 2 -> { // signed zeros among zeros
                    for (int j = 0; j < 32; j++) {
                        x[o + j] = r.nextBoolean() ? 0.0f : -0.0f;
                    }
                }
                case 3 -> { // signed zeros among one-signed values (zero is the minimum or the maximum)
                    float s = r.nextBoolean() ? 1 : -1;
                    for (int j = 0; j < 32; j++) {
                        x[o + j] = r.nextInt(3) == 0 ? (r.nextBoolean() ? 0.0f : -0.0f) : s * Math.abs(x[o + j]);
                    }
                }
                case 4 -> Arrays.fill(x, o, o + 32, (float) r.nextGaussian()); // constant
                case 5 -> { // one-signed
                    float s = r.nextBoolean() ? 1 : -1;
                    for (int j = 0; j < 32; j++) {
                        x[o + j] = s * Math.abs(x[o + j]);
                    }
                }
                case 6 -> { // subnormal floats (the scale underflows, 1 / d overflows)
                    for (int j = 0; j < 32; j++) {
                        x[o + j] = Float.intBitsToFloat(r.nextInt(1, 0x00800000)) * (r.nextBoolean() ? 1 : -1);
                    }
                }
                case 7 -> { // FP16 subnormal and overflowing scales
                    float s = r.nextBoolean() ? 1e-6f : 6e4f * 127;
                    for (int j = 0; j < 32; j++) {
                        x[o + j] *= s / scale;
                    }
                }
                case 8 -> { // near the float range's ends: max - min overflows
                    for (int j = 0; j < 32; j++) {
                        x[o + j] = (r.nextBoolean() ? Float.MAX_VALUE : -Float.MAX_VALUE) * (float) r.nextDouble();
                    }
                }
                case 9 -> x[o + r.nextInt(32)] = r.nextBoolean() ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY;
                case 10 -> x[o + r.nextInt(32)] = r.nextBoolean() ? Float.NaN : Float.intBitsToFloat(0xFFC00001);
                case 11 -> { // NaN and infinities together, or a block of NaN
                    if (r.nextBoolean()) {
                        Arrays.fill(x, o, o + 32, Float.NaN);
                    } else {
                        x[o + r.nextInt(32)] = Float.NaN;
                        x[o + r.nextInt(32)] = Float.POSITIVE_INFINITY;
                        x[o + r.nextInt(32)] = Float.NEGATIVE_INFINITY;
                    }
                }
                case 12 -> { // ties of q4_1/q5_1: min + (k + 1/2) d with d = (max - min) / 15
                    float min = (float) r.nextGaussian();
                    float d = 0.125f;
                    for (int j = 0; j < 32; j++) {
                        x[o + j] = min + d * (r.nextInt(0, 31) / 2f);
                    }
                    x[o] = min;
                    x[o + 31] = min + 15 * d;
                }
                default -> {}
            }
        }
        return x;
    }

    @ParameterizedTest(name = "{0} {1} blocks seed {2}")
    @MethodSource("typesBlocksSeeds")
    void quantizesAsTheReference(Type t, int nb, long seed) {
        if (!t.quantizable()) {
            return;
        }
        int n = nb * t.qk;
        float[] x = hardValues(n + 64, seed);
        if (t.qk == 256) {
            finite(x); // the K-quants' quantizers take finite values
        }
        int xOff = (int) (seed * 7) % 32;
        int yOff = (int) seed;
        byte[] expected = new byte[yOff + nb * t.size + 5];
        byte[] actual = expected.clone();
        t.quantize(REF, x, xOff, expected, yOff, n);
        t.quantize(VEC, x, xOff, actual, yOff, n);
        for (int b = 0; b < nb; b++) {
            int at = yOff + b * t.size;
            assertThat(Arrays.copyOfRange(actual, at, at + t.size))
                    .as(
                            "%s block %d of %s",
                            t, b, Arrays.toString(Arrays.copyOfRange(x, xOff + t.qk * b, xOff + t.qk * b + t.qk)))
                    .isEqualTo(Arrays.copyOfRange(expected, at, at + t.size));
        }
        assertThat(actual).isEqualTo(expected);
    }

    @ParameterizedTest(name = "{0} {1} blocks seed {2}")
    @MethodSource("typesBlocksSeeds")
    void dequantizesAsTheReference(Type t, int nb, long seed) {
        int n = nb * t.qk;
        SplittableRandom r = new SplittableRandom(seed);
        int xOff = r.nextInt(40);
        byte[] q = new byte[xOff + nb * t.size + 3];
        if (t.quantizable() && seed == 1) {
            t.quantize(REF, hardValues(n, seed), 0, q, xOff, n);
        } else {
            // any bytes: codes at every value, scales of every FP16 class (NaN, infinities, subnormals, zeros)
            r.nextBytes(q);
        }
        int yOff = r.nextInt(16);
        float[] expected = new float[yOff + n + 2];
        float[] actual = new float[yOff + n + 2];
        Arrays.fill(expected, 7f);
        Arrays.fill(actual, 7f);
        t.dequantize(REF, q, xOff, expected, yOff, n);
        t.dequantize(VEC, q, xOff, actual, yOff, n);
        assertSameBits(t + " " + nb + " blocks", actual, expected);
    }

    /**
     * {@code roundf} at its edges, with {@code d = 1} (127 in the block) so the values are q8_0's quotients: halves
     * away from zero, and {@code 0.5 - 2^-25}, whose sum with 0.5 rounds up to 1 in float, to zero. The 4-bit types
     * get the same values scaled onto their grids.
     */
    @Test
    void roundsLikeRoundf() {
        float[] edges = {
            0.49999997f,
            0.5f,
            Math.nextUp(0.5f),
            1.4999999f,
            1.5f,
            2.5f,
            3.5f,
            126.5f,
            Math.nextDown(126.5f),
            0x1p-149f,
            0.0f,
            -0.0f,
            7.5f,
            8.5f,
            15.5f,
            Math.nextDown(7.5f),
            Math.nextUp(7.5f),
            0.25f,
            0.75f
        };
        int n = 32 * 2 * edges.length;
        float[] x = new float[n];
        for (int i = 0; i < edges.length; i++) {
            for (int s = 0; s < 2; s++) {
                int o = 32 * (2 * i + s);
                for (int j = 0; j < 32; j++) {
                    float e = edges[(i + j) % edges.length];
                    x[o + j] = (j % 2 == s ? -e : e);
                }
                x[o + 31] = s == 0 ? 127f : -127f;
                x[o + 30] = s == 0 ? -8f : 8f;
            }
        }
        for (Type t : List.of(Type.Q8_0, Type.Q4_0, Type.Q4_1, Type.Q5_0, Type.Q5_1)) {
            byte[] expected = new byte[n / 32 * t.size];
            byte[] actual = new byte[n / 32 * t.size];
            t.quantize(REF, x, 0, expected, 0, n);
            t.quantize(VEC, x, 0, actual, 0, n);
            assertThat(actual).as("%s", t).isEqualTo(expected);
        }
        // the reference's own q8_0 codes of 0.49999997 and 0.5 (d = 1): 0 and 1
        byte[] q = new byte[34];
        float[] block = new float[32];
        block[0] = 0.49999997f;
        block[1] = 0.5f;
        block[2] = -0.5f;
        block[3] = -1.5f;
        block[31] = 127f;
        for (GgmlBlockKernels k : List.of(REF, VEC)) {
            k.quantizeQ8_0(block, 0, q, 0, 32);
            assertThat(new byte[] {q[2], q[3], q[4], q[5], q[33]}).as(k.name()).containsExactly(0, 1, -1, -2, 127);
        }
    }

    /**
     * The vector quantizers treat blocks in batches of one block per float lane: a special block at every position of
     * a batch (and in the partial batch that ends the row) among Gaussian ones, of each kind: a NaN, an infinity, all
     * zeros, signed zeros beside one-signed values (a zero extreme), the largest magnitude twice with the negative one
     * first, q8_0's ties at .5 (d = 1).
     */
    @ParameterizedTest(name = "kind {0}")
    @ValueSource(ints = {0, 1, 2, 3, 4, 5})
    void specialBlocksAtEveryPositionOfABatch(int kind) {
        int nb = 16 * 2 + 5;
        for (int at = 0; at < 16; at++) {
            SplittableRandom r = new SplittableRandom(31L * kind + at);
            float[] x = new float[nb * 32];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian();
            }
            for (int b : new int[] {at, at + 16, nb - 1 - at % 5}) {
                int o = 32 * b;
                switch (kind) {
                    case 0 -> x[o + r.nextInt(32)] = Float.NaN;
                    case 1 -> x[o + r.nextInt(32)] = Float.POSITIVE_INFINITY;
                    case 2 -> Arrays.fill(x, o, o + 32, 0.0f);
                    case 3 -> {
                        for (int j = 0; j < 32; j++) {
                            x[o + j] = j % 3 == 1 ? (j % 2 == 0 ? 0.0f : -0.0f) : -Math.abs(x[o + j]);
                        }
                    }
                    case 4 -> {
                        x[o + 3] = -9f;
                        x[o + 20] = 9f;
                    }
                    default -> {
                        for (int j = 0; j < 32; j++) {
                            x[o + j] = r.nextInt(-126, 127) + 0.5f;
                        }
                        x[o + 7] = -127f;
                    }
                }
            }
            for (Type t : List.of(Type.Q4_0, Type.Q4_1, Type.Q5_0, Type.Q5_1, Type.Q8_0)) {
                byte[] expected = new byte[nb * t.size];
                byte[] actual = new byte[nb * t.size];
                t.quantize(REF, x, 0, expected, 0, nb * 32);
                t.quantize(VEC, x, 0, actual, 0, nb * 32);
                assertThat(actual).as("%s, kind %d at %d", t, kind, at).isEqualTo(expected);
            }
        }
    }

    static void finite(float[] x) {
        for (int i = 0; i < x.length; i++) {
            if (!Float.isFinite(x[i])) {
                x[i] = 0f;
            }
        }
    }

    static Stream<Arguments> kQuantsSeeds() {
        List<Arguments> args = new ArrayList<>();
        for (Type t : List.of(Type.Q4_K, Type.Q5_K)) {
            for (long seed = 1; seed <= 12; seed++) {
                args.add(Arguments.of(t, seed));
            }
        }
        return args.stream();
    }

    /**
     * Rows of q4_K and q5_K super-blocks (1 to 9, so both halves of a 16-lane batch and a partial batch), each of a
     * kind {@code make_qkx2_quants} treats specially: Gaussian, heavy outliers, all zero, constant, tiny and subnormal,
     * large magnitude (sums of squares overflow), a single non-zero value, negative only, positive only, values on the
     * code grid, or sub-blocks of the 32-value types' hard kinds made finite; and within a super-block single
     * sub-blocks zeroed, constant or scaled far below the others (their 6-bit scale rounds to 0, keeping the search's
     * codes). Vector and reference bytes identical.
     */
    @ParameterizedTest(name = "{0} seed {1}")
    @MethodSource("kQuantsSeeds")
    void quantizesKQuantsAsTheReference(Type t, long seed) {
        SplittableRandom r = new SplittableRandom(seed * 1009);
        int nb = 1 + (int) (seed % 9);
        int xOff = r.nextInt(40);
        float[] x = new float[xOff + nb * 256 + 7];
        float[] hard = hardValues(nb * 256, seed);
        finite(hard);
        for (int b = 0; b < nb; b++) {
            int o = xOff + 256 * b;
            float scale = (float) Math.pow(10, r.nextInt(-6, 7));
            for (int i = 0; i < 256; i++) {
                x[o + i] = (float) r.nextGaussian() * scale;
            }
            switch (r.nextInt(11)) {
                case 0 -> { // heavy outliers
                    for (int k = 0; k < 4; k++) {
                        x[o + r.nextInt(256)] *= 1000f * (r.nextBoolean() ? 1 : -1);
                    }
                }
                case 1 -> Arrays.fill(x, o, o + 256, 0f);
                case 2 -> Arrays.fill(x, o, o + 256, (float) r.nextGaussian());
                case 3 -> { // tiny and subnormal
                    for (int i = 0; i < 256; i++) {
                        x[o + i] = r.nextBoolean()
                                ? Float.intBitsToFloat(r.nextInt(1, 0x00800000)) * (r.nextBoolean() ? 1 : -1)
                                : (float) r.nextGaussian() * 1e-30f;
                    }
                }
                case 4 -> { // large magnitude: x * x and the sums overflow
                    for (int i = 0; i < 256; i++) {
                        x[o + i] = (float) r.nextGaussian() * (r.nextBoolean() ? 1e20f : 1e37f);
                    }
                }
                case 5 -> {
                    Arrays.fill(x, o, o + 256, 0f);
                    x[o + r.nextInt(256)] = (float) r.nextGaussian() * scale;
                }
                case 6 -> {
                    for (int i = 0; i < 256; i++) {
                        x[o + i] = -Math.abs(x[o + i]);
                    }
                }
                case 7 -> {
                    for (int i = 0; i < 256; i++) {
                        x[o + i] = Math.abs(x[o + i]);
                    }
                }
                case 8 -> { // the code grid: integers times a power of two, ties of the first step
                    for (int i = 0; i < 256; i++) {
                        x[o + i] = r.nextInt(-31, 32) * 0.125f + (r.nextBoolean() ? 0.0625f : 0f);
                    }
                }
                case 9 -> System.arraycopy(hard, 256 * b, x, o, 256);
                default -> {}
            }
            for (int sb = 0; sb < 8; sb++) {
                int so = o + 32 * sb;
                switch (r.nextInt(12)) {
                    case 0 -> Arrays.fill(x, so, so + 32, 0f);
                    case 1 -> Arrays.fill(x, so, so + 32, x[so]);
                    case 2 -> {
                        for (int i = 0; i < 32; i++) {
                            x[so + i] *= 1e-4f;
                        }
                    }
                    case 3 -> {
                        for (int i = 0; i < 32; i++) {
                            x[so + i] = -Math.abs(x[so + i]) - 1f;
                        }
                    }
                    default -> {}
                }
            }
        }
        int yOff = r.nextInt(9);
        byte[] expected = new byte[yOff + nb * t.size + 5];
        byte[] actual = expected.clone();
        t.quantize(REF, x, xOff, expected, yOff, nb * 256);
        t.quantize(VEC, x, xOff, actual, yOff, nb * 256);
        for (int b = 0; b < nb; b++) {
            int at = yOff + b * t.size;
            assertThat(Arrays.copyOfRange(actual, at, at + t.size))
                    .as("%s super-block %d of %d", t, b, nb)
                    .isEqualTo(Arrays.copyOfRange(expected, at, at + t.size));
        }
        assertThat(actual).isEqualTo(expected);
    }

    /**
     * q6_K's scale search ({@code make_qx_quants} of 16 sub-blocks of 16) against the reference: codes and scales
     * identical in their bits, on the hard values made finite (the quantizers take finite values only), with all-zero
     * sub-blocks, sub-blocks below {@code GROUP_MAX_EPS}, a lone non-zero value, and values on the code grid.
     */
    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
    void searchesQ6_KScalesAsTheReference(long seed) {
        int supers = 4;
        float[] x = hardValues(supers * 256 + 16, seed);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < x.length; i++) {
            if (!Float.isFinite(x[i])) {
                x[i] = 0f;
            }
        }
        for (int sb = 0; sb < supers * 16; sb++) {
            int o = 16 * sb;
            switch (r.nextInt(8)) {
                case 0 -> Arrays.fill(x, o, o + 16, 0f);
                case 1 -> {
                    for (int i = 0; i < 16; i++) {
                        x[o + i] = (float) r.nextGaussian() * 1e-16f;
                    }
                }
                case 2 -> {
                    Arrays.fill(x, o, o + 16, 0f);
                    x[o + r.nextInt(16)] = (float) r.nextGaussian();
                }
                case 3 -> {
                    for (int i = 0; i < 16; i++) {
                        x[o + i] = r.nextInt(-64, 64) / 2f;
                    }
                }
                default -> {}
            }
        }
        int xOff = (int) seed % 16;
        for (int s = 0; s < supers; s++) {
            byte[] lExpected = new byte[256 + 3];
            byte[] lActual = new byte[256 + 3];
            float[] sExpected = new float[16 + 2];
            float[] sActual = new float[16 + 2];
            REF.makeQxQuantsQ6_K(x, xOff + 256 * s, lExpected, 3, sExpected, 2);
            VEC.makeQxQuantsQ6_K(x, xOff + 256 * s, lActual, 3, sActual, 2);
            assertThat(lActual).as("codes of super-block %d", s).isEqualTo(lExpected);
            assertSameBits("scales of super-block " + s, sActual, sExpected);
        }
    }

    /**
     * FP16 scales of every sign and exponent (NaN, infinities, subnormals, signed zeros) with several mantissas, as
     * each scale field of each type.
     */
    @Test
    void everyKindOfFp16ScaleDequantizesAsTheReference() {
        for (Type t : Type.values()) {
            int[] fp16At = t == Type.Q6_K
                    ? new int[] {208}
                    : t.qk == 256 || t == Type.Q4_1 || t == Type.Q5_1 ? new int[] {0, 2} : new int[] {0};
            int nb = t.qk == 32 ? 4096 : 1024; // the top 6 (K: 8) bits of the FP16 take every value
            byte[] q = new byte[nb * t.size];
            new SplittableRandom(5).nextBytes(q);
            for (int b = 0; b < nb; b++) {
                for (int f = 0; f < fp16At.length; f++) {
                    int h = (b * (65536 / nb)) | ((b * 37 + 11 * f) & (65536 / nb - 1));
                    q[b * t.size + fp16At[f]] = (byte) h;
                    q[b * t.size + fp16At[f] + 1] = (byte) (h >> 8);
                }
            }
            float[] expected = new float[nb * t.qk];
            float[] actual = new float[nb * t.qk];
            t.dequantize(REF, q, 0, expected, 0, nb * t.qk);
            t.dequantize(VEC, q, 0, actual, 0, nb * t.qk);
            assertSameBits(t + " fp16 scales", actual, expected);
        }
    }

    @ParameterizedTest
    @EnumSource(
            value = Type.class,
            names = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K"})
    void quantizesToGgmlsBytes(Type t) {
        float[] input = floats(fixture("input.f32"));
        byte[] expected = fixture(t.fixture() + ".bin");
        for (GgmlBlockKernels k : List.of(REF, VEC)) {
            byte[] actual = new byte[expected.length];
            t.quantize(k, input, 0, actual, 0, input.length);
            assertThat(actual).as("%s %s", k.name(), t).isEqualTo(expected);
        }
    }

    @ParameterizedTest
    @EnumSource(Type.class)
    void dequantizesToGgmlsFloats(Type t) {
        byte[] q = fixture(t.fixture() + ".bin");
        float[] expected = floats(fixture(t.fixture() + ".dequant.f32"));
        for (GgmlBlockKernels k : List.of(REF, VEC)) {
            float[] actual = new float[expected.length];
            t.dequantize(k, q, 0, actual, 0, expected.length);
            for (int i = 0; i < expected.length; i++) {
                if (Float.floatToRawIntBits(actual[i]) != Float.floatToRawIntBits(expected[i])) {
                    throw new AssertionError(
                            k.name() + " " + t + " value " + i + ": " + actual[i] + " != ggml's " + expected[i]);
                }
            }
        }
    }

    /** The fp16 conversion of the scales: ggml's, NaN included. */
    @Test
    void fp16IsGgmls() {
        assertThat(GgmlBlockKernels.fp32ToFp16(Float.intBitsToFloat(0xFFC12345)))
                .isEqualTo((short) 0xFE00);
        assertThat(GgmlBlockKernels.fp32ToFp16(Float.intBitsToFloat(0x7F812345)))
                .isEqualTo((short) 0x7E00);
        assertThat(GgmlBlockKernels.fp32ToFp16(65520f)).isEqualTo((short) 0x7C00);
        assertThat(GgmlBlockKernels.fp32ToFp16(-0.0f)).isEqualTo((short) 0x8000);
    }

    static void assertSameBits(String what, float[] actual, float[] expected) {
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToIntBits(actual[i]) != Float.floatToIntBits(expected[i])) {
                throw new AssertionError(what + ", value " + i + ": " + actual[i] + " != reference " + expected[i]);
            }
        }
    }

    static byte[] fixture(String name) {
        try (InputStream in = GgmlBlockKernelsTest.class.getResourceAsStream("/ggml/" + name)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource /ggml/" + name);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static float[] floats(byte[] b) {
        float[] f = new float[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
        return f;
    }
}
