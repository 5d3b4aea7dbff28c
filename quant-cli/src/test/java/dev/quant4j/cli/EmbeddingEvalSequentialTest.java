package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.cli.eval.EmbeddingEval;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.model.BertEncoder;
import dev.quant4j.model.Linear;
import dev.quant4j.model.WordPieceTokenizer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

/**
 * GPTQ in true-sequential order ({@link EmbeddingEval#quantize(BertEncoder, java.util.function.Function, boolean,
 * EmbeddingEval.Calibration, ForkJoinPool)}) on all-MiniLM-L6-v2: each layer's linears are in the stages query, key,
 * value; attention output; feed-forward input; feed-forward output. Layer 0's first stage sees the same inputs either
 * way, so its tensors are the same; its later stages are calibrated on the outputs of the quantized ones, so theirs
 * differ.
 */
class EmbeddingEvalSequentialTest {

    @Test
    void stagesAndWhatTheyChange() throws Exception {
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
            List<Integer> stages = new ArrayList<>();
            for (Linear l : fp32.linears().subList(0, 6)) {
                stages.add(EmbeddingEval.stage(l.name()));
            }
            assertThat(stages).containsExactly(0, 0, 0, 1, 2, 3);
            EmbeddingEval.Calibration calib = EmbeddingEval.Calibration.collect(fp32, calibration, false, pool);
            EmbeddingEval.Setting s = EmbeddingEval.Setting.gptq(4, 128, false);
            EmbeddingEval.Quantized together = EmbeddingEval.quantize(fp32, l -> s, false, calib, pool);
            EmbeddingEval.Quantized sequential = EmbeddingEval.quantize(fp32, l -> s, true, calib, pool);
            assertThat(together.weights())
                    .isEqualTo(EmbeddingEval.quantize(fp32, s, calib, pool).weights());
            for (Linear l : fp32.linears().subList(0, 6)) {
                boolean same = together.weights()
                        .get(l.name())
                        .equals(sequential.weights().get(l.name()));
                assertThat(same).as(l.name()).isEqualTo(EmbeddingEval.stage(l.name()) == 0);
            }
        } finally {
            pool.shutdown();
        }
    }
}
