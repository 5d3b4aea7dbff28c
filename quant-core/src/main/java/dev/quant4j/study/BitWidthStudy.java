package dev.quant4j.study;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.QuantScheme;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.util.ArrayList;
import java.util.List;

/**
 * The error of quantization per bit width, as the research note studies it (round to nearest, plus NF4 and FP4): for
 * each scheme, all
 * tensors are quantized, dequantized and compared with the original, and the errors of all their elements are
 * combined. Shared by {@code quant report} and the benchmarks, so that the two never disagree.
 */
public final class BitWidthStudy {

    /** The note's bit widths. */
    public static final List<Integer> NOTE_BITS = List.of(2, 3, 4, 6, 8);

    /** One row of the study. */
    public record Row(QuantScheme scheme, double bitsPerWeight, ErrorMetrics metrics) {

        /** {@code asym}, {@code sym}, {@code signed}, {@code nf4} or {@code fp4}. */
        public String form() {
            return switch (scheme) {
                case LinearScheme l -> l.symmetry().id();
                case CodebookScheme c -> c.codebook().name().toLowerCase(java.util.Locale.ROOT);
            };
        }

        /** {@code per-channel}, {@code g128}, {@code block 64} ... */
        public String granularity() {
            return switch (scheme) {
                case LinearScheme l -> l.granularity();
                case CodebookScheme c -> "block " + c.blockSize();
            };
        }
    }

    private BitWidthStudy() {}

    /** The note's weights: 1024 x 1024 samples of N(0, 0.15^2), SplitMix64 seed 42 and Box-Muller. */
    public static final int NOTE_ROWS = 1024;

    public static final int NOTE_COLS = 1024;
    public static final double NOTE_SIGMA = 0.15;
    public static final long NOTE_SEED = 42;

    /**
     * The weights the study runs on when it is given none ({@code quant report}'s built-in data, the benchmark's
     * error study (a)), named {@code builtin}.
     */
    public static FloatMatrix noteWeights() {
        return Gaussian.matrix("builtin", NOTE_SEED, NOTE_ROWS, NOTE_COLS, NOTE_SIGMA);
    }

    /** The note's settings: asym, sym and signed; per channel and per group of 128; 2, 3, 4, 6, 8 bits. */
    public static List<LinearScheme> noteSchemes() {
        List<LinearScheme> schemes = new ArrayList<>();
        for (Symmetry s : List.of(Symmetry.ASYM, Symmetry.SYM, Symmetry.SIGNED)) {
            for (int g : new int[] {LinearScheme.PER_CHANNEL, 128}) {
                for (int bits : NOTE_BITS) {
                    schemes.add(new LinearScheme(bits, s, g));
                }
            }
        }
        return schemes;
    }

    /** NF4 and FP4 at bitsandbytes' default block size of 64. */
    public static List<CodebookScheme> codebookSchemes() {
        return List.of(CodebookScheme.nf4(64), CodebookScheme.fp4(64));
    }

    /** Quantizes every tensor with every scheme and returns one row per scheme. */
    public static List<Row> run(List<FloatMatrix> tensors, List<? extends QuantScheme> schemes) {
        List<Row> rows = new ArrayList<>();
        for (QuantScheme scheme : schemes) {
            ErrorMetrics.Accumulator acc = new ErrorMetrics.Accumulator();
            long bits = 0;
            long count = 0;
            for (FloatMatrix w : tensors) {
                switch (scheme) {
                    case LinearScheme l -> {
                        QuantizedTensor q = new RtnQuantizer(l).quantize(w);
                        acc.add(w, q.dequantize());
                        bits += q.storageBytes() * 8;
                    }
                    case CodebookScheme c -> {
                        CodebookTensor q = new BlockwiseQuantizer(c).quantize(w);
                        acc.add(w, q.dequantize());
                        bits += q.storageBytes() * 8;
                    }
                }
                count += w.size();
            }
            rows.add(new Row(scheme, (double) bits / count, acc.result()));
        }
        return rows;
    }
}
