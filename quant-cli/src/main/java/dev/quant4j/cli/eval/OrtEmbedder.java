package dev.quant4j.cli.eval;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.quant4j.model.BertEncoder;
import dev.quant4j.tensor.FloatMatrix;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * Sentence embeddings from an ONNX BERT model run by ONNX Runtime (the peer: the int8 twin that ships beside the FP32
 * model): each sentence alone, {@code last_hidden_state} mean-pooled and L2-normalised as {@link
 * dev.quant4j.model.BertEncoder#embed} does.
 */
public final class OrtEmbedder implements AutoCloseable {

    private final OrtEnvironment env;
    private final OrtSession session;

    public OrtEmbedder(byte[] model, int threads) throws OrtException {
        env = OrtEnvironment.getEnvironment();
        OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        options.setIntraOpNumThreads(threads);
        session = env.createSession(model, options);
    }

    public float[] embed(int[] ids) throws OrtException {
        long[][] input = new long[1][ids.length];
        long[][] mask = new long[1][ids.length];
        long[][] types = new long[1][ids.length];
        for (int i = 0; i < ids.length; i++) {
            input[0][i] = ids[i];
            mask[0][i] = 1;
        }
        Map<String, OnnxTensor> feed = new HashMap<>();
        try {
            feed.put("input_ids", OnnxTensor.createTensor(env, input));
            feed.put("attention_mask", OnnxTensor.createTensor(env, mask));
            feed.put("token_type_ids", OnnxTensor.createTensor(env, types));
            try (OrtSession.Result r = session.run(feed)) {
                float[][] h = ((float[][][]) r.get(0).getValue())[0];
                float[] flat = new float[h.length * h[0].length];
                for (int t = 0; t < h.length; t++) {
                    System.arraycopy(h[t], 0, flat, t * h[0].length, h[0].length);
                }
                return BertEncoder.meanPoolNormalize(
                        FloatMatrix.of("last_hidden_state", h.length, h[0].length, flat, 0));
            }
        } finally {
            feed.values().forEach(OnnxTensor::close);
        }
    }

    public float[][] embed(List<int[]> texts, IntConsumer progress) throws OrtException {
        float[][] e = new float[texts.size()][];
        for (int i = 0; i < e.length; i++) {
            e[i] = embed(texts.get(i));
            progress.accept(i + 1);
        }
        return e;
    }

    @Override
    public void close() throws OrtException {
        session.close();
    }
}
