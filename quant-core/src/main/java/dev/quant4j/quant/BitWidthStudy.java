package dev.quant4j.quant;

import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.List;

/**
 * The error of round-to-nearest quantization per bit width, as the research note studies it: for each scheme, all
 * tensors are quantized, dequantized and compared with the original, and the errors of all their elements are
 * combined. Shared by {@code quant report} and the benchmarks, so that the two never disagree.
 */
public final class BitWidthStudy {

    /** The note's bit widths. */
    public static final List<Integer> NOTE_BITS = List.of(2, 3, 4, 6, 8);

    /** One row of the study. */
    public record Row(LinearScheme scheme, double bitsPerWeight, ErrorMetrics metrics) {}

    private BitWidthStudy() {}

    /** The note's settings: asym, sym and signed; per channel and per group of 128; 2, 3, 4, 6, 8 bits. */
    public static List<LinearScheme> noteSchemes() {
        List<LinearScheme> schemes = new ArrayList<>();
        for (Symmetry s : Symmetry.values()) {
            for (int g : new int[] {LinearScheme.PER_CHANNEL, 128}) {
                for (int bits : NOTE_BITS) {
                    schemes.add(new LinearScheme(bits, s, g));
                }
            }
        }
        return schemes;
    }

    /** Quantizes every tensor with every scheme and returns one row per scheme. */
    public static List<Row> run(List<FloatMatrix> tensors, List<LinearScheme> schemes) {
        List<Row> rows = new ArrayList<>();
        for (LinearScheme scheme : schemes) {
            ErrorMetrics.Accumulator acc = new ErrorMetrics.Accumulator();
            long bits = 0;
            long count = 0;
            for (FloatMatrix w : tensors) {
                QuantizedTensor q = new RtnQuantizer(scheme).quantize(w);
                acc.add(w, q.dequantize());
                bits += q.storageBytes() * 8;
                count += w.size();
            }
            rows.add(new Row(scheme, (double) bits / count, acc.result()));
        }
        return rows;
    }
}
