package dev.quant4j.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link ErrorMetrics#compare(FloatMatrix, QuantizedWeight)} dequantizes row by row, without a copy of the whole
 * weight: its metrics equal those of the whole dequantized matrix exactly, for every kind of stored weight (linear
 * codes, act-order codes with their group index, AWQ input scales, codebook blocks that straddle rows), on a view
 * into a larger array.
 */
class ErrorMetricsRowsTest {

    @ParameterizedTest
    @CsvSource({"rtn, 7, 96", "rtn, 5, 33", "gptq-act-order, 9, 64", "awq-scales, 6, 64", "nf4, 7, 100", "nf4, 3, 64"})
    void rowByRowEqualsTheWholeDequantizedMatrix(String kind, int rows, int cols) {
        FloatMatrix w = Gaussian.matrix("w", 17L * rows + cols, rows, cols, 0.1);
        ForkJoinPool one = new ForkJoinPool(1);
        try {
            QuantizedWeight q = switch (kind) {
                case "rtn" -> new RtnQuantizer(LinearScheme.asym(4, cols % 32 == 0 ? 32 : -1), one).quantize(w);
                case "gptq-act-order" -> {
                    HessianAccumulator h = new HessianAccumulator("w", cols, one);
                    h.add(Gaussian.matrix("x", 5, 4 * cols, cols, 1.0));
                    yield new Gptq(GptqConfig.defaults(4).withGroupSize(32).withActOrder(true), one)
                            .quantize(w, h)
                            .tensor();
                }
                case "awq-scales" -> {
                    float[] s = new float[cols];
                    for (int c = 0; c < cols; c++) {
                        s[c] = 0.5f + (c % 7) * 0.3f;
                    }
                    yield ((QuantizedTensor) new RtnQuantizer(LinearScheme.asym(4, 32), one).quantize(w))
                            .withInputScales(s);
                }
                default -> new BlockwiseQuantizer(CodebookScheme.nf4(64)).quantize(w);
            };
            // the reference as a view past the start of a larger array
            float[] padded = new float[3 + rows * cols];
            System.arraycopy(w.array(), w.rowOffset(0), padded, 3, rows * cols);
            FloatMatrix view = FloatMatrix.of("w", rows, cols, padded, 3);
            assertThat(ErrorMetrics.compare(view, q)).isEqualTo(ErrorMetrics.compare(w, q.dequantize()));
        } finally {
            one.shutdown();
        }
    }

    /**
     * Flat runs are summed as rows of {@link ErrorMetrics.Accumulator#RUN} values: from any offset, with a last run
     * shorter, the sums equal those of the same values added as one-row matrices of those lengths.
     */
    @ParameterizedTest
    @CsvSource({"0, 12288", "5, 10000", "3, 7", "0, 4096"})
    void flatRunsAreSummedAsRowsOfRunValues(int offset, int length) {
        float[] a = Gaussian.matrix("a", 11, 1, offset + length, 1.0).toArray();
        float[] b = Gaussian.matrix("b", 12, 1, offset + length, 1.0).toArray();
        ErrorMetrics.Accumulator rows = new ErrorMetrics.Accumulator();
        int run = ErrorMetrics.Accumulator.RUN;
        for (int at = offset; at < offset + length; at += run) {
            int len = Math.min(run, offset + length - at);
            rows.add(FloatMatrix.of("a", 1, len, a, at), FloatMatrix.of("b", 1, len, b, at));
        }
        assertThat(new ErrorMetrics.Accumulator().add(a, b, offset, length).result())
                .isEqualTo(rows.result());
        assertThatThrownBy(() -> new ErrorMetrics.Accumulator().add(a, b, offset + 1, length))
                .isInstanceOf(IndexOutOfBoundsException.class);
    }

    /**
     * {@link QuantizedTensor#dequantizeInto} decodes rows packed without padding in one run of groups: the values are
     * those of {@link QuantizedTensor#dequantize()} (row by row) exactly, at every bit width, and the rows that do
     * need their own calls (padding bits, per channel, act-order) give the same too.
     */
    @ParameterizedTest
    @CsvSource({"4, 32, 96", "8, 16, 48", "3, 32, 64", "2, 16, 80", "4, 32, 33", "4, -1, 40", "3, 16, 48"})
    void dequantizeIntoIsRowByRowDequantization(int bits, int group, int cols) {
        int rows = 7;
        FloatMatrix w = Gaussian.matrix("w", 31L * bits + cols, rows, cols, 0.1);
        ForkJoinPool one = new ForkJoinPool(1);
        try {
            LinearScheme scheme = LinearScheme.asym(bits, group > 0 && cols % group != 0 ? -1 : group);
            QuantizedTensor q = new RtnQuantizer(scheme, one).quantize(w);
            float[] into = new float[2 + rows * cols];
            q.dequantizeInto(into, 2);
            assertThat(java.util.Arrays.copyOfRange(into, 2, into.length))
                    .isEqualTo(q.dequantize().toArray());
        } finally {
            one.shutdown();
        }
    }

    @ParameterizedTest
    @CsvSource({"4, 64", "8, 32"})
    void aQuantizedWeightOfAnotherShapeIsNamed(int rows, int cols) {
        FloatMatrix w = Gaussian.matrix("w", 1, 8, 64, 0.1);
        QuantizedWeight q =
                new BlockwiseQuantizer(CodebookScheme.nf4(64)).quantize(Gaussian.matrix("q", 2, rows, cols, 0.1));
        assertThatThrownBy(() -> ErrorMetrics.compare(w, q))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("shapes differ: 'w' [8, 64] vs 'q' [" + rows + ", " + cols + "]");
    }
}
