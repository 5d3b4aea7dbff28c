package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.awq.AwqConfig;
import dev.quant4j.cli.eval.EmbeddingEval;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.model.BertEncoder;
import dev.quant4j.model.Linear;
import dev.quant4j.model.WordPieceTokenizer;
import dev.quant4j.pipeline.AwqGptq;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

/**
 * The eval's "AWQ+GPTQ" setting on all-MiniLM-L6-v2: layer 0's query is {@link AwqGptq} run on the mean {@code |x|}
 * and the Hessian of that linear's own inputs (the FP32 layer 0 on the calibration sentences), with duo scaling and
 * act-order, recomputed here independently of the eval's wiring.
 */
class EmbeddingEvalAwqGptqTest {

    @Test
    void layerZeroQueryIsAwqGptqOnItsOwnInputs() throws Exception {
        byte[] modelBytes = EvalCommand.resource(EvalCommand.MODEL);
        OnnxModel onnx = OnnxModel.parse("all-minilm-l6-v2.onnx", modelBytes);
        WordPieceTokenizer tokenizer = WordPieceTokenizer.parse(
                "tokenizer", new String(EvalCommand.resource(EvalCommand.TOKENIZER), StandardCharsets.UTF_8));
        List<int[]> calibration = new ArrayList<>();
        for (String s : EvalCommand.lines("/wordnet/calibration.txt").subList(0, 24)) {
            calibration.add(tokenizer.encode(s));
        }
        ForkJoinPool pool = new ForkJoinPool(2);
        try {
            BertEncoder fp32 = BertEncoder.fromOnnx(onnx, 12, pool);
            EmbeddingEval.Setting s = EmbeddingEval.Setting.awqGptq(4, 128, true);
            assertThat(s.label()).isEqualTo("AWQ+GPTQ int4 g128 act-order");
            assertThat(EmbeddingEval.extraSettings()).contains(s, EmbeddingEval.Setting.awqDuo(4, 128));
            EmbeddingEval.Calibration calib = EmbeddingEval.Calibration.collect(fp32, calibration, false, pool);
            EmbeddingEval.Quantized q = EmbeddingEval.quantize(fp32, s, calib, pool);

            Linear query = fp32.linears().get(0);
            HessianAccumulator h = new HessianAccumulator(query.name(), query.inFeatures(), pool);
            double[] sumAbs = new double[query.inFeatures()];
            for (int[] ids : calibration) {
                FloatMatrix x = fp32.hiddenStates(ids, null, 0);
                fp32.layer(0, x, (name, in) -> {
                    if (name.equals(query.name())) {
                        h.add(in);
                        for (int t = 0; t < in.rows(); t++) {
                            for (int c = 0; c < in.cols(); c++) {
                                sumAbs[c] += Math.abs(in.get(t, c));
                            }
                        }
                    }
                });
            }
            float[] xMean = new float[sumAbs.length];
            for (int c = 0; c < xMean.length; c++) {
                xMean[c] = (float) (sumAbs[c] / h.tokens());
            }
            AwqGptq.Result expected = new AwqGptq(
                            AwqConfig.defaults(4).withDuoScaling(true),
                            GptqConfig.defaults(4).withGroupSize(128).withActOrder(true),
                            pool)
                    .quantize(((Linear.Dense) query).weight(), xMean, h.hessian());
            QuantizedTensor got = (QuantizedTensor) q.weights().get(query.name());
            assertThat(got).isEqualTo(expected.tensor());
            assertThat(got.hasInputScales()).isTrue();
            assertThat(q.weights()).hasSize(36);
        } finally {
            pool.shutdown();
        }
    }
}
