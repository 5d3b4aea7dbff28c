package dev.quant4j.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import org.junit.jupiter.api.Test;

class DoubleQuantTest {

    @Test
    void dynamicMapHasBitsandbytesShape() {
        float[] map = DynamicMap.signed();
        assertThat(map).hasSize(256);
        for (int i = 1; i < 256; i++) {
            assertThat(map[i]).isGreaterThan(map[i - 1]);
        }
        // 127 negative values, then 0 at index 127, 127 positive ones, and 1.0 last
        assertThat(map[127]).isZero();
        assertThat(map[255]).isEqualTo(1.0f);
        // the most negative: -(mean of the top two of linspace(0.1, 1, 65)) = -(0.9859375 + 1) / 2
        assertThat(map[0]).isCloseTo(-0.99296875f, within(1e-7f));
        assertThat(map[254]).isCloseTo(0.99296875f, within(1e-7f));
        // the smallest magnitude: 1e-6 * (0.1 + 1) / 2
        assertThat(map[128]).isCloseTo(5.5e-7f, within(1e-12f));
        assertThat(map[126]).isEqualTo(-map[128]);
        // symmetric but for 1.0
        for (int i = 0; i < 127; i++) {
            assertThat(map[i]).isEqualTo(-map[254 - i]);
        }
    }

    @Test
    void goldenThreeBlocks() {
        // offset = mean(1, 2, 3) = 2; absmax - offset = [-1, 0, 1]; absmax2 = 1;
        // nearest map values: index 0 (-0.99296875), 127 (0), 255 (1.0)
        DoubleQuant dq = DoubleQuant.of(new float[] {1f, 2f, 3f});
        assertThat(dq.offset()).isEqualTo(2f);
        assertThat(dq.absmax2()).containsExactly(1f);
        assertThat(dq.codes()).containsExactly(0, 127, (byte) 255);
        float[] restored = dq.restore();
        assertThat(restored[0]).isCloseTo(2f - 0.99296875f, within(1e-6f));
        assertThat(restored[1]).isEqualTo(2f);
        assertThat(restored[2]).isEqualTo(3f);
    }

    @Test
    void restoredAbsmaxIsWithinHalfTheLargestGap() {
        float[] absmax = new float[1000];
        float[] g = Gaussian.samples(7, 1000, 1.0);
        for (int i = 0; i < absmax.length; i++) {
            absmax[i] = 2 + Math.abs(g[i]);
        }
        DoubleQuant dq = DoubleQuant.of(absmax);
        float[] back = dq.restore();
        float[] a2 = dq.absmax2();
        for (int i = 0; i < absmax.length; i++) {
            // the widest gap of the map is between its top means, 0.9 / 64 apart
            assertThat(Math.abs(back[i] - absmax[i])).isLessThanOrEqualTo(a2[i / 256] * (0.9f / 64 / 2 + 1e-6f));
        }
        // all-equal absmax values: absmax - offset is 0 everywhere and restores exactly
        DoubleQuant flat = DoubleQuant.of(new float[] {0.5f, 0.5f, 0.5f});
        assertThat(flat.restore()).containsExactly(0.5f, 0.5f, 0.5f);
    }

    @Test
    void nf4WithDoubleQuantReachesAbout4127BitsPerWeight() {
        FloatMatrix w = Gaussian.matrix("w", 42, 1024, 1024, 1.0);
        CodebookTensor plain = new BlockwiseQuantizer(CodebookScheme.nf4(64)).quantize(w);
        CodebookTensor dq = new BlockwiseQuantizer(CodebookScheme.nf4(64).withDoubleQuant()).quantize(w);
        assertThat(plain.bitsPerWeight()).isEqualTo(4.5);
        // 4 + (8 + 32 / 256) / 64 + one offset
        assertThat(dq.bitsPerWeight()).isCloseTo(4.127, within(0.0005));
        // the codes are those of the exact absmax; only the stored absmax differs
        assertThat(dq.packedCodes()).isEqualTo(plain.packedCodes());
        double e1 = 0;
        double e2 = 0;
        float[] x = w.toArray();
        float[] b1 = plain.dequantize().toArray();
        float[] b2 = dq.dequantize().toArray();
        for (int i = 0; i < x.length; i++) {
            e1 += (x[i] - b1[i]) * (x[i] - b1[i]);
            e2 += (x[i] - b2[i]) * (x[i] - b2[i]);
        }
        // double quantization costs a little accuracy, not much
        assertThat(e2).isGreaterThan(e1).isLessThan(e1 * 1.05);
    }

    @Test
    void inconsistentPartsAreRejected() {
        assertThatThrownBy(() -> DoubleQuant.of(new float[0])).hasMessageContaining("no absmax values");
        assertThatThrownBy(() -> DoubleQuant.of(new float[] {1f, Float.NaN}))
                .hasMessageContaining("absmax 1 is NaN, must be finite and >= 0");
        assertThatThrownBy(() -> DoubleQuant.of(new float[] {-1f})).hasMessageContaining("absmax 0 is -1.0");
        assertThatThrownBy(() -> new DoubleQuant(new byte[300], new float[1], 0f))
                .hasMessageContaining("1 second-level absmax for 300 codes, expected 2");
        assertThatThrownBy(() -> new CodebookTensor(
                        "q", CodebookScheme.nf4(64), 1, 4, new byte[2], DoubleQuant.of(new float[] {1f})))
                .hasMessageContaining("does not take double-quantized absmax values");
        assertThatThrownBy(() -> new CodebookTensor(
                        "q", CodebookScheme.nf4(64).withDoubleQuant(), 1, 4, new byte[2], new float[] {1f}))
                .hasMessageContaining("needs double-quantized absmax values");
    }
}
