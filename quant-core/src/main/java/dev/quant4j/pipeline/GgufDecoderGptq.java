package dev.quant4j.pipeline;

import dev.quant4j.ggml.GgmlGptq;
import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.model.DecoderBlocks;
import dev.quant4j.model.Linear;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.pipeline.DecoderGptq.Quantized;
import dev.quant4j.pipeline.DecoderQuantizer.LayerReport;
import dev.quant4j.pipeline.GgufDecoderFile.Blocks;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;

/**
 * GPTQ of a whole decoder into ggml's {@code q4_0}, {@code q4_1} or {@code q8_0} blocks, for a llama.cpp model ({@link
 * GgufDecoderFile}): {@link DecoderGptq}'s block loop (block by block, true-sequential groups q/k/v; o; gate/up;
 * down, each Hessian from the blocks before already quantized), each linear quantized by {@link GgmlGptq}, so the
 * stored blocks are exactly what GPTQ's error feedback optimised (each block's FP16 scale fixed before its columns are
 * quantized).
 *
 * <p>Never worse than ggml's reference quantizer: for each layer, when GPTQ's output error on the calibration
 * activations, {@code ||W X^T - Q X^T||^2}, exceeds that of {@link GgmlQuants#quantize} into the same type, the
 * reference blocks are kept and the {@link LayerReport} says so. A layer whose rows are not whole 32-blocks takes
 * {@link GgufDecoderFile#storedType}'s fallback (F16) without GPTQ, as the RTN file does; the rest of the calibration
 * runs with its F16 values. The embeddings and the output head are not here: {@link GgufDecoderFile#plan} quantizes
 * them with ggml's reference quantizer, as in the RTN file.
 *
 * <p>With {@link GgmlGptq.Order#ACT_ORDER} each linear's columns are quantized by descending Hessian diagonal, every
 * block's FP16 parameters fixed from the weights before any feedback (static groups), so the stored blocks stay 32
 * consecutive original columns and the file is read as any other.
 */
public final class GgufDecoderGptq {

    /**
     * What was quantized.
     *
     * @param linears every block linear's stored blocks by tensor name ({@code model.layers.0.self_attn.q_proj.weight},
     *     rows in the source's order), for {@link GgufDecoderFile#plan}
     * @param layers one report per linear, in forward order: {@code scheme} is the stored type, the output errors of
     *     GPTQ and of ggml's reference quantizer (NaN for a fallback), and whether the reference blocks were kept
     */
    public record Result(Map<String, Blocks> linears, List<LayerReport> layers) {
        public Result {
            linears = Collections.unmodifiableMap(new LinkedHashMap<>(linears));
            layers = List.copyOf(layers);
        }

        /** How many layers kept ggml's reference blocks because GPTQ's output error was higher. */
        public int keptRtn() {
            return (int) layers.stream().filter(LayerReport::keptRtn).count();
        }
    }

    private final GgmlType type;
    private final double damp;
    private final GgmlGptq.Order order;
    private final ForkJoinPool pool;

    /** Columns in order, each block's parameters at its first column ({@link GgmlGptq.Order#COLUMNS}). */
    public GgufDecoderGptq(GgmlType type, double damp, ForkJoinPool pool) {
        this(type, damp, GgmlGptq.Order.COLUMNS, pool);
    }

    /**
     * @param type q4_0, q4_1 or q8_0
     * @param damp GPTQ's damping, a fraction of the mean Hessian diagonal (0.01 in the reference)
     * @param order the column order of every linear ({@link GgmlGptq.Order#ACT_ORDER} for act-order)
     * @throws IllegalArgumentException for another type or a damping that is not a positive finite number
     */
    public GgufDecoderGptq(GgmlType type, double damp, GgmlGptq.Order order, ForkJoinPool pool) {
        this.type = Objects.requireNonNull(type, "type");
        this.order = Objects.requireNonNull(order, "order");
        if (type != GgmlType.Q4_0 && type != GgmlType.Q4_1 && type != GgmlType.Q8_0) {
            throw new IllegalArgumentException("GPTQ writes ggml's q4_0, q4_1 or q8_0, not " + type);
        }
        if (!(damp > 0 && Double.isFinite(damp))) {
            throw new IllegalArgumentException("damping " + damp + " must be a positive fraction of the mean Hessian"
                    + " diagonal (for example 0.01)");
        }
        this.damp = damp;
        this.pool = Objects.requireNonNull(pool, "pool");
    }

    /**
     * The ggml type GPTQ's {@code bits}, {@code groupSize} and symmetry write: q4_0 (4 bits, 32, symmetric), q4_1 (4
     * bits, 32, asymmetric) or q8_0 (8 bits, 32, symmetric).
     *
     * @throws IllegalArgumentException for any other combination, naming the three
     */
    public static GgmlType type(int bits, int groupSize, boolean sym) {
        if (groupSize == 32 && bits == 4) {
            return sym ? GgmlType.Q4_0 : GgmlType.Q4_1;
        }
        if (groupSize == 32 && bits == 8 && sym) {
            return GgmlType.Q8_0;
        }
        throw new IllegalArgumentException("GPTQ into GGUF: --bits " + bits + " --group-size " + groupSize
                + (sym ? " --sym" : " --asym") + " has no ggml type; GPTQ writes q4_0 (--bits 4 --group-size 32"
                + " --sym), q4_1 (--bits 4 --group-size 32 --asym) or q8_0 (--bits 8 --group-size 32 --sym)");
    }

    /**
     * Quantizes every block linear of {@code fp32} on {@code calibration} (token sequences, each from position 0);
     * {@code blocksDone} (may be null) is told after each block. The result depends neither on the thread count nor
     * on the calibration's rounds.
     */
    public Result quantize(LlamaDecoder fp32, List<int[]> calibration, IntConsumer blocksDone) {
        Map<String, Blocks> linears = new LinkedHashMap<>();
        List<LayerReport> layers = new ArrayList<>();
        try {
            quantize(DecoderBlocks.of(fp32), calibration, (b, stored, reports) -> {
                linears.putAll(stored);
                layers.addAll(reports);
                if (blocksDone != null) {
                    blocksDone.accept(b + 1);
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a decoder in memory reads no file
        }
        return new Result(linears, layers);
    }

    /**
     * As {@link #quantize(LlamaDecoder, List, IntConsumer)} on {@code blocks} read as they are needed (a folder opened
     * with {@link dev.quant4j.model.HuggingFaceLlama#open}), each block's stored blocks and reports handed to {@code
     * sink} as soon as they are made: the same blocks.
     */
    public void quantize(DecoderBlocks blocks, List<int[]> calibration, DecoderGptq.Sink<Blocks> sink)
            throws IOException {
        new DecoderGptq(pool).run(blocks, calibration, this::layer, sink);
    }

    /** One layer: GgmlGptq's blocks, or the reference quantizer's when their output error is lower. */
    Quantized<Blocks> layer(Linear.Dense d, HessianAccumulator h) {
        FloatMatrix w = d.weight().named(d.name() + ".weight");
        int rows = w.rows();
        int cols = w.cols();
        GgmlType as = GgufDecoderFile.storedType(type, cols);
        if (as != type) {
            byte[] data = GgmlQuants.quantize(as, w.toArray(), rows, cols);
            return new Quantized<>(
                    new Blocks(as, rows, cols, data),
                    FloatMatrix.of(w.name(), rows, cols, GgmlQuants.dequantize(as, data, rows, cols), 0),
                    new LayerReport(d.name(), as.toString(), Double.NaN, Double.NaN, false));
        }
        GgmlGptq.Result g = GgmlGptq.quantize(type, w, h, damp, order, pool);
        FloatMatrix gBack = FloatMatrix.of(w.name(), rows, cols, g.dequantized(), 0);
        byte[] rtn = GgmlQuants.quantize(type, w.toArray(), rows, cols);
        FloatMatrix rBack = FloatMatrix.of(w.name(), rows, cols, GgmlQuants.dequantize(type, rtn, rows, cols), 0);
        double gErr = h.outputError(w, gBack);
        double rErr = h.outputError(w, rBack);
        boolean keepRtn = rErr < gErr;
        return new Quantized<>(
                new Blocks(type, rows, cols, keepRtn ? rtn : g.data()),
                keepRtn ? rBack : gBack,
                new LayerReport(d.name(), type.toString(), gErr, rErr, keepRtn));
    }
}
