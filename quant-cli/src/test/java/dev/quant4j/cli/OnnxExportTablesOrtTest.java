package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.cli.eval.EmbeddingEval;
import dev.quant4j.cli.eval.OrtEmbedder;
import dev.quant4j.cli.eval.OrtModels;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.model.BertEncoder;
import dev.quant4j.model.Linear;
import dev.quant4j.model.WordPieceTokenizer;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * all-MiniLM-L6-v2 with its word and position embeddings as GatherBlockQuantized (the position table at 4 and at 8
 * bits) and its linears RTN int4 g128 as MatMulNBits: ONNX Runtime's sentence embeddings equal quant4j's own forward
 * pass with the same quantized tables and weights ({@link BertEncoder#withEmbeddings}).
 */
class OnnxExportTablesOrtTest {

    @ParameterizedTest
    @CsvSource({"64, 8, 128", "128, 4, 128", "128, 4, 32"})
    void miniLmWithQuantizedPositionEmbeddings(int wordGroup, int positionBits, int positionGroup) throws Exception {
        byte[] modelBytes = EvalCommand.resource(EvalCommand.MODEL);
        OnnxModel onnx = OnnxModel.parse("all-minilm-l6-v2.onnx", modelBytes);
        QuantizedTensor words = new RtnQuantizer(LinearScheme.asym(4, wordGroup))
                .quantize(onnx.initializer(OrtModels.WORD_EMBEDDINGS).matrix());
        QuantizedTensor positions = new RtnQuantizer(LinearScheme.asym(positionBits, positionGroup))
                .quantize(onnx.initializer(OrtModels.POSITION_EMBEDDINGS).matrix());
        WordPieceTokenizer tokenizer = WordPieceTokenizer.parse(
                "tokenizer", new String(EvalCommand.resource(EvalCommand.TOKENIZER), StandardCharsets.UTF_8));
        List<int[]> texts = new ArrayList<>();
        for (String line : EvalCommand.lines("/wordnet/pairs.tsv").subList(0, 20)) {
            for (String sentence : line.split("\t", 2)) {
                texts.add(tokenizer.encode(sentence));
            }
        }
        ForkJoinPool pool = new ForkJoinPool(2);
        try {
            BertEncoder fp32 = BertEncoder.fromOnnx(onnx, 12, pool);
            Map<String, QuantizedTensor> linears = new HashMap<>();
            Map<String, Linear> replaced = new HashMap<>();
            for (Linear l : fp32.linears()) {
                Linear.Dense d = (Linear.Dense) l;
                QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, 128)).quantize(d.weight());
                linears.put(l.name(), q);
                replaced.put(l.name(), Linear.quantized(l.name(), QuantizedLinear.of(q, d.bias(), pool)));
            }
            byte[] exported = OrtModels.export(
                    modelBytes,
                    onnx,
                    linears,
                    Map.of(OrtModels.WORD_EMBEDDINGS, words, OrtModels.POSITION_EMBEDDINGS, positions),
                    0);
            BertEncoder ours = fp32.withEmbeddings(words.dequantize(), positions.dequantize())
                    .withLinears(replaced);
            float[][] mine = EmbeddingEval.embed(ours, texts, i -> {}, pool);
            float[][] theirs;
            try (OrtEmbedder ort = new OrtEmbedder(exported, 1)) {
                theirs = ort.embed(texts, i -> {});
            }
            double[] cos = EmbeddingEval.cosineStats(mine, theirs);
            System.out.printf(
                    Locale.ROOT,
                    "all-MiniLM-L6-v2, words int4 g%d, positions int%d g%d, linears int4 g128: %d bytes, 1 - min"
                            + " cosine %.2e%n",
                    wordGroup,
                    positionBits,
                    positionGroup,
                    exported.length,
                    1 - cos[1]);
            assertThat(cos[1]).isGreaterThanOrEqualTo(0.99999);

            // the position table's node and initializers, as ONNX Runtime's CPU kernel takes them
            OnnxModel written = OnnxModel.parse("exported", exported);
            OnnxModel.Node gather = written.nodes().stream()
                    .filter(n -> n.name().equals("/embeddings/position_embeddings/Gather"))
                    .findFirst()
                    .orElseThrow();
            String p = OrtModels.POSITION_EMBEDDINGS;
            assertThat(gather.opType()).isEqualTo("GatherBlockQuantized");
            assertThat(gather.inputs())
                    .containsExactly(
                            p + "_Q" + positionBits, "/embeddings/Slice_output_0", p + "_scales", p + "_zero_points");
            assertThat(written.initializer(p + "_Q" + positionBits).dataType()).isEqualTo(2); // UINT8
            assertThat(written.initializer(p + "_Q" + positionBits).dims())
                    .containsExactly(512, 384 * positionBits / 8);
            assertThat(written.initializer(p + "_scales").dataType()).isEqualTo(OnnxModel.FLOAT);
            assertThat(written.initializer(p + "_scales").dims()).containsExactly(512, 384 / positionGroup);
            assertThat(written.initializer(p + "_zero_points").dims())
                    .containsExactly(512, (384 / positionGroup * positionBits + 7) / 8);
            assertThat(written.initializers()).doesNotContainKeys(p, OrtModels.WORD_EMBEDDINGS);
            // the Gather's own indices, int64 position ids, are passed on as they are
            assertThat(written.initializer("embeddings.position_ids").dataType())
                    .isEqualTo(OnnxModel.INT64);
        } finally {
            pool.shutdown();
        }
    }
}
