package dev.quant4j.gptq;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.io.Npy;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Agreement with the reference implementation itself: fixtures made by IST-DASLab/gptq's {@code fasterquant}
 * (commit 2d65066, PyTorch 2.13 CPU) on a [32, 256] layer with correlated, outlier-heavy calibration inputs, and the
 * reference's own {@code H}; see {@code gptq-reference/make_fixtures.py}.
 *
 * <p>Both sides compute in float32 but round differently (our blocked Cholesky and lazy update against LAPACK's and
 * PyTorch's), by about 1e-6 of a weight. A row that meets a near tie may take the other code there, and its error
 * feedback then differs for the rest of the row. So: the dequantized weights agree to the code (within 1% of a step)
 * everywhere except in at most two rows of 32, and the reported error (the sum of {@code Losses}) agrees within 1%.
 */
class GptqReferenceTest {

    @TempDir
    static Path dir;

    static Path resource(String name) {
        Path p = dir.resolve(name);
        if (!Files.exists(p)) {
            try (InputStream in = GptqReferenceTest.class.getResourceAsStream("/gptq-reference/" + name)) {
                Files.copy(in, p);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return p;
    }

    static Stream<String[]> configurations() throws IOException {
        String tsv = Files.readString(resource("reference.tsv"), StandardCharsets.UTF_8);
        return tsv.lines().skip(1).map(line -> line.split("\t"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("configurations")
    void agreesWithTheReferenceImplementation(
            String name, String bits, String group, String sym, String act, String stat, String error)
            throws IOException {
        FloatMatrix w = Npy.readMatrix(resource("W.npy")).named("layer");
        float[] h = Npy.readMatrix(resource("H.npy")).toArray();
        FloatMatrix reference = Npy.readMatrix(resource("Q_" + name + ".npy"));
        GptqConfig config = GptqConfig.defaults(Integer.parseInt(bits))
                .withGroupSize(Integer.parseInt(group))
                .withSym(sym.equals("1"))
                .withActOrder(act.equals("1"))
                .withStaticGroups(stat.equals("1"));
        GptqResult result = new Gptq(config).quantize(w, h);
        QuantizedTensor t = result.tensor();
        FloatMatrix q = t.dequantize();
        int rowsThatDiffer = 0;
        int codesThatDiffer = 0;
        for (int r = 0; r < w.rows(); r++) {
            int inRow = 0;
            for (int c = 0; c < w.cols(); c++) {
                float step = t.scale(t.groupIndex(r, c));
                inRow += Math.abs(q.get(r, c) - reference.get(r, c)) < 0.01f * step ? 0 : 1;
            }
            rowsThatDiffer += inRow > 0 ? 1 : 0;
            codesThatDiffer += inRow;
        }
        System.out.printf(
                "%s: %d codes in %d rows differ; error ours %.6g, reference %s%n",
                name, codesThatDiffer, rowsThatDiffer, result.loss(), error);
        assertThat(rowsThatDiffer).as("rows that differ from the reference").isLessThanOrEqualTo(2);
        double expected = Double.parseDouble(error);
        assertThat(result.loss()).isCloseTo(expected, within(0.01 * expected));
        assertThat(Arrays.stream(t.gIdx()).distinct().count())
                .isEqualTo(t.scheme().groupsPerRow(w.cols()));
    }
}
