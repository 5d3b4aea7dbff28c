package dev.quant4j.codebook;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.scheme.Codebook;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Golden values derived by hand from bitsandbytes' kQuantizeBlockwise, dQuantizeNF4 and dQuantizeFP4. */
class BlockwiseQuantizerTest {

    private static byte[] packed(CodebookTensor t) {
        byte[] b = new byte[t.packedCodes().remaining()];
        t.packedCodes().get(b);
        return b;
    }

    @Test
    void nf4Golden() {
        // absmax 1, inv 1: 1.0 -> 15; -0.5 lies between the midpoints -0.6106 and -0.4600 -> 2;
        // 0.25 between 0.2035 and 0.2920 -> 10; 0.0 between -0.0455 and 0.0398 -> 7
        CodebookTensor t = new BlockwiseQuantizer(CodebookScheme.nf4(64))
                .quantize(FloatMatrix.of(1, 4, new float[] {1f, -0.5f, 0.25f, 0f}));
        assertThat(t.absmax()).containsExactly(1f);
        // first element in the high nibble
        assertThat(packed(t)).containsExactly(0xF2, 0xA7);
        assertThat(t.dequantize().toArray()).containsExactly(1f, -0.5250730514526367f, 0.24611230194568634f, 0f);
        assertThat(t.bitsPerWeight()).isEqualTo((2 * 8 + 32) / 4.0);
    }

    @Test
    void oddLengthIsPaddedWithTheCodeOfZero() {
        // absmax 2, inv 0.5: 1.0 -> 15, -1.0 -> 0, 0.5 between 0.3893 and 0.5017 -> 12; pad encode(0) = 7
        CodebookTensor t = new BlockwiseQuantizer(CodebookScheme.nf4(64))
                .quantize(FloatMatrix.of(1, 3, new float[] {2f, -2f, 1f}));
        assertThat(t.absmax()).containsExactly(2f);
        assertThat(packed(t)).containsExactly(0xF0, 0xC7);
        assertThat(t.dequantize().toArray()).containsExactly(2f, -2f, 0.44070982933044434f * 2f);
    }

    @Test
    void fp4Golden() {
        // 1.0 -> 0b0011; -0.25 -> sign | 0b0111; 0.1 -> 0b0110; -0.001 -> sign | 0b0000
        CodebookTensor t = new BlockwiseQuantizer(CodebookScheme.fp4(64))
                .quantize(FloatMatrix.of(1, 4, new float[] {1f, -0.25f, 0.1f, -0.001f}));
        assertThat(packed(t)).containsExactly(0x3F, 0x68);
        float[] back = t.dequantize().toArray();
        assertThat(back[0]).isEqualTo(1f);
        assertThat(back[1]).isEqualTo(-0.25f);
        assertThat(back[2]).isEqualTo(0.16666667f);
        assertThat(back[3]).isCloseTo(0f, within(0f));
    }

    @Test
    void allZeroBlockDequantizesToZerosAndBlocksSpanRows() {
        // 3 x 50 = 150 values in blocks of 64: [0, 64) all zero, [64, 128), [128, 150) partial
        float[] x = new float[150];
        for (int i = 64; i < 150; i++) {
            x[i] = (i % 7 - 3) * 0.1f * (i < 128 ? 1 : 10);
        }
        CodebookTensor t = new BlockwiseQuantizer(CodebookScheme.nf4(64)).quantize(FloatMatrix.of(3, 50, x));
        assertThat(t.absmax()).containsExactly(0f, 0.3f, 3f);
        for (int i = 0; i < 64; i++) {
            // the code of exactly 0 (bitsandbytes computes 0 * (1 / 0) = NaN there and stores code 0)
            assertThat(t.code(i)).isEqualTo(7);
        }
        float[] back = t.dequantize().toArray();
        for (int i = 0; i < 150; i++) {
            assertThat(back[i]).isCloseTo(x[i], within(i < 128 ? 0.3f * 0.14f : 3f * 0.14f));
        }
        for (int i = 0; i < 64; i++) {
            assertThat(back[i]).isCloseTo(0f, within(0f));
        }
    }

    /**
     * An all-zero block comes back as exactly 0 at every block size, with and without double quantization, for both
     * codebooks: whole blocks (the fused kernel) and a partial last block of odd length (the per-block path) alike.
     * With double quantization the restored absmax of such a block is not 0, so its codes must be the code of 0.
     */
    @ParameterizedTest
    @ValueSource(ints = {32, 64, 128, 256, 4096})
    void allZeroBlocksDequantizeToExactlyZero(int blockSize) {
        // rows of zeros between Gaussian rows; the last, partial block (odd length) is all zero too
        int rows = 9;
        int cols = 2 * blockSize + 1;
        FloatMatrix g = Gaussian.matrix("g", 7, rows, cols, 1.0);
        float[] x = g.toArray();
        for (int r = 0; r < rows; r += 2) {
            java.util.Arrays.fill(x, r * cols, (r + 1) * cols, 0f);
        }
        int tail = rows * cols % blockSize;
        java.util.Arrays.fill(x, rows * cols - tail, rows * cols, 0f);
        for (Codebook book : Codebook.values()) {
            for (boolean dq : new boolean[] {false, true}) {
                CodebookTensor t = new BlockwiseQuantizer(new CodebookScheme(book, blockSize, dq))
                        .quantize(FloatMatrix.of("w", rows, cols, x, 0));
                float[] back = t.dequantize().toArray();
                int zeroBlocks = 0;
                for (long b = 0; b < t.scheme().blocks(x.length); b++) {
                    int from = (int) (b * blockSize);
                    int to = Math.min(x.length, from + blockSize);
                    boolean allZero = true;
                    for (int i = from; i < to; i++) {
                        allZero &= x[i] == 0f;
                    }
                    if (allZero) {
                        zeroBlocks++;
                        for (int i = from; i < to; i++) {
                            // +0 or -0: a restored absmax may be slightly negative (map[code] * absmax2 + offset)
                            assertThat(back[i] == 0f)
                                    .as("%s dq=%s block %d index %d: %s", book, dq, b, i, back[i])
                                    .isTrue();
                        }
                    }
                }
                assertThat(zeroBlocks).as("the test has all-zero blocks").isPositive();
                byte[] p = packed(t);
                if ((x.length & 1) == 1) {
                    assertThat(p[p.length - 1] & 0xF).as("pad nibble").isEqualTo(book.encode(0f));
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {32, 64, 128, 256, 4096})
    void errorIsAtMostHalfTheLargestGapTimesAbsmax(int blockSize) {
        FloatMatrix w = Gaussian.matrix("w", 42, 33, 129, 1.0);
        for (Codebook book : Codebook.values()) {
            CodebookTensor t = new BlockwiseQuantizer(new CodebookScheme(book, blockSize)).quantize(w);
            float[] table = book.table();
            java.util.Arrays.sort(table);
            double gap = 0;
            for (int i = 1; i < table.length; i++) {
                gap = Math.max(gap, table[i] - table[i - 1]);
            }
            float[] x = w.toArray();
            float[] back = t.dequantize().toArray();
            float[] absmax = t.absmax();
            for (int i = 0; i < x.length; i++) {
                assertThat((double) Math.abs(x[i] - back[i]))
                        .isLessThanOrEqualTo(absmax[i / blockSize] * gap / 2 * (1 + 1e-6));
            }
        }
    }

    /** Whole blocks are checked chunk by chunk (about 64K values): a NaN far into a large tensor is still named. */
    @Test
    void aNanInALaterChunkIsNamed() {
        float[] data = new float[300 * 1024];
        java.util.Arrays.fill(data, 0.5f);
        data[250 * 1024 + 7] = Float.NaN;
        assertThatThrownBy(() -> new BlockwiseQuantizer(CodebookScheme.nf4(64))
                        .quantize(FloatMatrix.of("big", 300, 1024, data, 0)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tensor 'big' has NaN at [250, 7]");
    }

    @Test
    void badInputsNameTheProblem() {
        float[] data = new float[8];
        data[5] = Float.POSITIVE_INFINITY;
        assertThatThrownBy(() ->
                        new BlockwiseQuantizer(CodebookScheme.nf4(64)).quantize(FloatMatrix.of("w", 2, 4, data, 0)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tensor 'w' has Infinity at [1, 1]");
        for (int bad : new int[] {16, 48, 100, 8192, 0, -64}) {
            assertThatThrownBy(() -> CodebookScheme.nf4(bad))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("block size must be a power of two from 32 to 4096, got " + bad);
        }
        assertThatThrownBy(() -> new CodebookTensor("q", CodebookScheme.nf4(64), 1, 4, new byte[3], new float[] {1f}))
                .hasMessageContaining("packed codes have 3 bytes, 4 values need 2");
        assertThatThrownBy(() ->
                        new CodebookTensor("q", CodebookScheme.nf4(64), 1, 4, new byte[2], new float[] {Float.NaN}))
                .hasMessageContaining("absmax 0 is NaN");
    }
}
