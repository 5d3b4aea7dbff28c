package dev.quant4j.awq;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.io.Npy;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Agreement with llm-awq's own functions (commit d6e797a, PyTorch 2.13 CPU): fixtures made by {@code
 * awq-reference/make_fixtures.py}, which imports {@code pseudo_quantize_tensor} and {@code auto_clip_layer}
 * unmodified.
 */
class AwqReferenceTest {

    @TempDir
    static Path dir;

    static FloatMatrix load(String name) {
        Path p = dir.resolve(name);
        try {
            if (!Files.exists(p)) {
                try (InputStream in = AwqReferenceTest.class.getResourceAsStream("/awq-reference/" + name)) {
                    Files.copy(in, p);
                }
            }
            return Npy.readMatrix(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The MINMAX form is {@code pseudo_quantize_tensor(w, n_bit=3, zero_point=True, q_group_size=32)} bit for bit. */
    @Test
    void minMaxQuantizerIsPseudoQuantizeTensorBitForBit() {
        FloatMatrix w = load("W.npy");
        float[] ours = new RtnQuantizer(new LinearScheme(3, Symmetry.MINMAX, 32))
                .quantize(w)
                .dequantize()
                .toArray();
        assertThat(ours).containsExactly(load("Q_b3_g32.npy").toArray());
    }

    /**
     * The scale search picks the ratio llm-awq's {@code auto_scale_block} picks for the {@code fc1} of an OPT layer
     * (where it inspects the linear layer itself) and the same scales: 4 bits, group 32, a [64, 128] weight, 600
     * tokens with outlier channels. The loss is computed from {@code X^T X} here and from the outputs there; the scales
     * come from the same float32 formula ({@code Math.pow} against {@code torch.pow}: within a rounding).
     */
    @Test
    void scaleSearchChoosesAutoScaleBlocksScales() {
        FloatMatrix w = load("W.npy");
        FloatMatrix x = load("X.npy");
        AwqStatistics stats = new AwqStatistics("fc1", x.cols(), x.rows());
        stats.add(x);
        AwqResult r = new Awq(new AwqConfig(4, 32, 20, 0.5, false)).quantize(w, stats);
        float[] expected = load("scales_fc1_b4_g32.npy").toArray();
        float[] ours = r.scales();
        for (int c = 0; c < ours.length; c++) {
            assertThat(ours[c])
                    .as("s[%d], alpha %s", c, r.alpha())
                    .isCloseTo(expected[c], org.assertj.core.api.Assertions.within(2e-6f * Math.abs(expected[c])));
        }
        assertThat(r.alpha()).isPositive(); // the outlier channels make a non-trivial choice
    }

    /**
     * The clip search gives {@code auto_clip_layer}'s best max value per row and group (4 bits, group 64, 600 tokens,
     * so every token is sampled). Its error is the reference's mean over tokens, reassociated through the group's Gram
     * matrix: equal up to float rounding, so a near tie between two shrink steps may go the other way; none does here.
     */
    @Test
    void clipSearchGivesAutoClipLayersChoice() {
        FloatMatrix w = load("W.npy");
        FloatMatrix x = load("X.npy");
        float[] ones = new float[w.cols()];
        Arrays.fill(ones, 1f);
        float[] clipMax = new float[w.rows() * 2];
        FloatMatrix ws = FloatMatrix.of("w", w.rows(), w.cols(), w.toArray(), 0);
        new Awq(new AwqConfig(4, 64, 20, 0.5, true)).clip(ws, x, ones, 64, clipMax);
        float[] expected = load("clip_b4_g64.npy").toArray();
        int differ = 0;
        for (int i = 0; i < expected.length; i++) {
            differ += clipMax[i] == expected[i] ? 0 : 1;
        }
        assertThat(differ)
                .as("row-groups whose clip differs from the reference's")
                .isZero();
        // and some groups were clipped at all (m below the group's max |w|): the search did something
        int clipped = 0;
        for (int i = 0; i < expected.length; i++) {
            float orgMax = 0;
            for (int j = 0; j < 64; j++) {
                orgMax = Math.max(orgMax, Math.abs(w.array()[(i / 2) * w.cols() + (i % 2) * 64 + j]));
            }
            clipped += expected[i] < orgMax ? 1 : 0;
        }
        assertThat(clipped).isPositive();
    }
}
