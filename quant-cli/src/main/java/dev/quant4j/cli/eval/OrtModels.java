package dev.quant4j.cli.eval;

import ai.onnxruntime.OrtException;
import dev.quant4j.io.OnnxExport;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.model.BertEncoder;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ForkJoinPool;

/**
 * The quantized all-MiniLM-L6-v2 as ONNX Runtime runs it: the weights {@link EmbeddingEval#quantize} found, written by
 * {@link OnnxExport} into the original model (MatMulNBits, MatMulBnb4, the word embeddings as GatherBlockQuantized),
 * and the time ONNX Runtime takes a sentence.
 */
public final class OrtModels {

    /** The word-embedding table of the BERT export. */
    public static final String WORD_EMBEDDINGS = "embeddings.word_embeddings.weight";

    /** The position-embedding table of the BERT export. */
    public static final String POSITION_EMBEDDINGS = "embeddings.position_embeddings.weight";

    private OrtModels() {}

    /**
     * The MatMul weight initializer of each linear, keyed by the linear's name in {@link dev.quant4j.model.BertEncoder}
     * ({@code encoder.layer.0.attention.self.query}: its node is {@code /encoder/layer.0/attention/self/query/MatMul}).
     */
    public static Map<String, String> weightOfLinear(OnnxModel onnx) {
        Map<String, String> out = new LinkedHashMap<>();
        onnx.matMulWeights().forEach((node, w) -> {
            if (node.startsWith("/encoder/layer.") && node.endsWith("/MatMul")) {
                String path = node.substring(1, node.length() - "/MatMul".length());
                out.put(path.replace('/', '.'), w);
            }
        });
        return out;
    }

    /** The word-embedding table RTN-quantized with {@code scheme} along the hidden size, as it is stored. */
    public static QuantizedTensor wordEmbeddings(OnnxModel onnx, LinearScheme scheme) {
        return new RtnQuantizer(scheme)
                .quantize(onnx.initializer(WORD_EMBEDDINGS).matrix());
    }

    /**
     * The model {@code model} with the linears in {@code linears} (by linear name) and, unless null, the word
     * embeddings {@code words} replaced by ONNX Runtime's quantized operators.
     */
    public static byte[] export(
            byte[] model,
            OnnxModel onnx,
            Map<String, ? extends QuantizedWeight> linears,
            QuantizedTensor words,
            int accuracyLevel) {
        return export(model, onnx, linears, words == null ? Map.of() : Map.of(WORD_EMBEDDINGS, words), accuracyLevel);
    }

    /**
     * The model {@code model} with the linears in {@code linears} (by linear name) and the embedding tables in {@code
     * tables} (by initializer name: {@link #WORD_EMBEDDINGS}, {@link #POSITION_EMBEDDINGS}) replaced by ONNX Runtime's
     * quantized operators.
     */
    public static byte[] export(
            byte[] model,
            OnnxModel onnx,
            Map<String, ? extends QuantizedWeight> linears,
            Map<String, QuantizedTensor> tables,
            int accuracyLevel) {
        return export(model, onnx, linears, tables, accuracyLevel, Set.of());
    }

    /** {@link #export(byte[], OnnxModel, Map, Map, int)}, the tables {@code float16Tables} with float16 scales. */
    public static byte[] export(
            byte[] model,
            OnnxModel onnx,
            Map<String, ? extends QuantizedWeight> linears,
            Map<String, QuantizedTensor> tables,
            int accuracyLevel,
            Set<String> float16Tables) {
        Map<String, String> names = weightOfLinear(onnx);
        Map<String, QuantizedWeight> weights = new HashMap<>();
        linears.forEach((linear, q) -> {
            String w = names.get(linear);
            if (w == null) {
                throw new IllegalArgumentException("no MatMul weight for the linear '" + linear + "'");
            }
            weights.put(w, q);
        });
        weights.putAll(tables);
        return OnnxExport.quantizedModel("all-minilm-l6-v2.onnx", model, weights, accuracyLevel, float16Tables);
    }

    /**
     * The 4-bit model of at most 13 MB (docs/onnx-export.md): the word embeddings RTN int4 in groups of {@link
     * #COMPACT_WORDS} with float16 scales, the position embeddings RTN int8 in groups of 128 (both
     * GatherBlockQuantized), and every linear GPTQ int4 {@link #COMPACT_LINEARS} with act-order and the range search,
     * a layer's linears quantized in true-sequential order ({@link EmbeddingEval#quantize(BertEncoder,
     * java.util.function.Function, boolean, EmbeddingEval.Calibration, ForkJoinPool)}), calibrated on activations that
     * pass through those quantized embeddings (so that the first layer's GPTQ sees the inputs the exported model gives
     * it).
     *
     * @param linears the quantized linears and the quant4j encoder with the quantized embeddings
     * @param tables the two tables by initializer name
     */
    public record Compact(EmbeddingEval.Quantized linears, Map<String, QuantizedTensor> tables) {

        /** The exported model: {@link #export(byte[], OnnxModel, Map, Map, int)}, the word table's scales float16. */
        public byte[] export(byte[] model, OnnxModel onnx, int accuracyLevel) {
            return OrtModels.export(model, onnx, linears.weights(), tables, accuracyLevel, Set.of(WORD_EMBEDDINGS));
        }
    }

    /** The word embeddings' scheme of the compact model (its scales rounded to float16). */
    public static final LinearScheme COMPACT_WORDS = LinearScheme.asym(4, 64);

    /** The position embeddings' scheme of the compact model. */
    public static final LinearScheme COMPACT_POSITIONS = LinearScheme.asym(8, 128);

    /** The GPTQ setting of the compact model's linears. */
    public static final EmbeddingEval.Setting COMPACT_LINEARS =
            EmbeddingEval.Setting.gptq(4, 64, true).withMse();

    /**
     * {@code q} with each scale rounded to the nearest float16 (the codes and zero-points as they are), so that
     * float16 scales in the exported model hold it exactly.
     */
    public static QuantizedTensor float16Scales(QuantizedTensor q) {
        float[] scales = q.scales();
        for (int i = 0; i < scales.length; i++) {
            scales[i] = Float.float16ToFloat(Float.floatToFloat16(scales[i]));
        }
        byte[] packed = new byte[q.packedCodes().remaining()];
        q.packedCodes().get(packed);
        return new QuantizedTensor(q.name(), q.scheme(), q.rows(), q.cols(), q.packOrder(), packed, scales, q.zeros());
    }

    /** {@code m} with every value rounded to the nearest float16: the rows a float16 GatherBlockQuantized gives. */
    static FloatMatrix float16(FloatMatrix m) {
        float[] v = m.toArray();
        for (int i = 0; i < v.length; i++) {
            v[i] = Float.float16ToFloat(Float.floatToFloat16(v[i]));
        }
        return FloatMatrix.of(m.name(), m.rows(), m.cols(), v, 0);
    }

    /** {@link Compact}: quantizes the tables of {@code onnx}, then GPTQ on {@code calibration} through them. */
    public static Compact compact(OnnxModel onnx, BertEncoder fp32, List<int[]> calibration, ForkJoinPool pool) {
        QuantizedTensor words = float16Scales(new RtnQuantizer(COMPACT_WORDS)
                .quantize(onnx.initializer(WORD_EMBEDDINGS).matrix()));
        QuantizedTensor positions = new RtnQuantizer(COMPACT_POSITIONS)
                .quantize(onnx.initializer(POSITION_EMBEDDINGS).matrix());
        BertEncoder tablesQuantized = fp32.withEmbeddings(float16(words.dequantize()), positions.dequantize());
        EmbeddingEval.Calibration calib = EmbeddingEval.Calibration.collect(tablesQuantized, calibration, false, pool);
        EmbeddingEval.Quantized q =
                EmbeddingEval.quantize(tablesQuantized, linear -> COMPACT_LINEARS, true, calib, pool);
        Map<String, QuantizedTensor> tables = new LinkedHashMap<>();
        tables.put(WORD_EMBEDDINGS, words);
        tables.put(POSITION_EMBEDDINGS, positions);
        return new Compact(q, tables);
    }

    /**
     * Milliseconds a sentence for each model: one session per model with one thread, created beforehand; each model
     * embeds {@code warmup} sentences, then the models take turns over all {@code sentences}, {@code rounds} times
     * (so that a burst of load from elsewhere hits every model alike); the fastest round counts.
     */
    public static double[] msPerSentence(List<byte[]> models, List<int[]> sentences, int warmup, int rounds)
            throws OrtException {
        List<OrtEmbedder> sessions = new ArrayList<>();
        try {
            for (byte[] m : models) {
                OrtEmbedder e = new OrtEmbedder(m, 1);
                sessions.add(e);
                for (int i = 0; i < warmup; i++) {
                    e.embed(sentences.get(i % sentences.size()));
                }
            }
            double[] best = new double[models.size()];
            java.util.Arrays.fill(best, Double.POSITIVE_INFINITY);
            for (int r = 0; r < rounds; r++) {
                for (int i = 0; i < sessions.size(); i++) {
                    long t0 = System.nanoTime();
                    for (int[] s : sentences) {
                        sessions.get(i).embed(s);
                    }
                    best[i] = Math.min(best[i], (System.nanoTime() - t0) / 1e6 / sentences.size());
                }
            }
            return best;
        } finally {
            for (OrtEmbedder e : sessions) {
                e.close();
            }
        }
    }
}
