package dev.quant4j.cli.eval;

import ai.onnxruntime.OrtException;
import dev.quant4j.io.OnnxExport;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.LinearScheme;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The quantized all-MiniLM-L6-v2 as ONNX Runtime runs it: the weights {@link EmbeddingEval#quantize} found, written by
 * {@link OnnxExport} into the original model (MatMulNBits, MatMulBnb4, the word embeddings as GatherBlockQuantized),
 * and the time ONNX Runtime takes a sentence.
 */
public final class OrtModels {

    /** The word-embedding table of the BERT export. */
    public static final String WORD_EMBEDDINGS = "embeddings.word_embeddings.weight";

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
        Map<String, String> names = weightOfLinear(onnx);
        Map<String, QuantizedWeight> weights = new HashMap<>();
        linears.forEach((linear, q) -> {
            String w = names.get(linear);
            if (w == null) {
                throw new IllegalArgumentException("no MatMul weight for the linear '" + linear + "'");
            }
            weights.put(w, q);
        });
        if (words != null) {
            weights.put(WORD_EMBEDDINGS, words);
        }
        return OnnxExport.quantizedModel("all-minilm-l6-v2.onnx", model, weights, accuracyLevel);
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
