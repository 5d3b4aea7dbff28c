package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.quant4j.cli.eval.EmbeddingEval;
import dev.quant4j.cli.eval.OrtEmbedder;
import dev.quant4j.model.WordPieceTokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's plain ONNX Runtime example: the method between the markers is the README's code block under "Use the
 * quantized model in ONNX Runtime / LangChain4j", line for line, and it runs on a model {@code quant quantize --format
 * onnx} wrote.
 */
class ReadmeOrtExampleTest {

    @TempDir
    Path dir;

    // README example begins
    static float[] embed(Path model, Path tokenizerJson, String text) throws IOException, OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.newInstance(tokenizerJson);
                OrtSession session = env.createSession(model.toString(), new OrtSession.SessionOptions())) {
            Encoding enc = tokenizer.encode(text); // [CLS] ... [SEP]
            try (OnnxTensor ids = OnnxTensor.createTensor(env, new long[][] {enc.getIds()});
                    OnnxTensor mask = OnnxTensor.createTensor(env, new long[][] {enc.getAttentionMask()});
                    OnnxTensor types = OnnxTensor.createTensor(env, new long[][] {enc.getTypeIds()});
                    OrtSession.Result r =
                            session.run(Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids", types))) {
                float[][] h = ((float[][][]) r.get(0).getValue())[0]; // last_hidden_state [tokens, 384]
                float[] e = new float[h[0].length]; // mean pooling and L2 norm, as sentence-transformers does
                double norm = 0;
                for (int c = 0; c < e.length; c++) {
                    for (float[] token : h) {
                        e[c] += token[c] / h.length;
                    }
                    norm += e[c] * e[c];
                }
                for (int c = 0; c < e.length; c++) {
                    e[c] /= (float) Math.sqrt(norm);
                }
                return e;
            }
        }
    }
    // README example ends

    /**
     * The example on the model the README's command writes (RTN int4 g128, word embeddings too): the same embedding
     * as quant4j's own ONNX Runtime harness on that file, and close to the FP32 model's.
     */
    @Test
    void readmeExampleRunsOnAnExportedModel() throws Exception {
        Path fp32 = dir.resolve("all-minilm-l6-v2.onnx");
        Files.write(fp32, EvalCommand.resource(EvalCommand.MODEL));
        Path tokenizer = dir.resolve("tokenizer.json");
        Files.write(tokenizer, EvalCommand.resource(EvalCommand.TOKENIZER));
        Path q = dir.resolve("minilm-int4.onnx");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--in",
                fp32.toString(),
                "--format",
                "onnx",
                "--method",
                "rtn",
                "--include",
                "MatMul|word_embeddings",
                "--out",
                q.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Files.size(q)).isLessThan(13_100_000);
        String text = "A quantized model that ONNX Runtime runs as it is.";
        float[] mine = embed(q, tokenizer, text);
        assertThat(mine).hasSize(384);
        int[] ids = WordPieceTokenizer.parse("tokenizer", Files.readString(tokenizer))
                .encode(text);
        try (OrtEmbedder ort = new OrtEmbedder(Files.readAllBytes(q), 1)) {
            assertThat(EmbeddingEval.cosine(mine, ort.embed(ids))).isGreaterThan(1 - 1e-9);
        }
        assertThat(EmbeddingEval.cosine(mine, embed(fp32, tokenizer, text))).isGreaterThan(0.95);
    }

    /** The README's java block under the ONNX Runtime heading is the imports and then exactly the method above. */
    @Test
    void theReadmeShowsThisCode() throws Exception {
        String readme = Files.readString(Path.of("..", "README.md"), StandardCharsets.UTF_8);
        Matcher block = Pattern.compile(
                        "## Use the quantized model in ONNX Runtime / LangChain4j\\n.*?```java\\n(.*?)```",
                        Pattern.DOTALL)
                .matcher(readme);
        assertThat(block.find())
                .as("README has a java block under its ONNX Runtime heading")
                .isTrue();
        String source = Files.readString(
                Path.of("src/test/java/dev/quant4j/cli/ReadmeOrtExampleTest.java"), StandardCharsets.UTF_8);
        String method = source.substring(
                source.indexOf("// README example begins\n") + "// README example begins\n".length(),
                source.indexOf("    // README example ends"));
        String expected = method.lines()
                .map(l -> l.startsWith("    ") ? l.substring(4) : l)
                .reduce("", (a, b) -> a + b + "\n");
        assertThat(block.group(1)).endsWith(expected);
        for (String imported : List.of(
                "ai.djl.huggingface.tokenizers.Encoding",
                "ai.djl.huggingface.tokenizers.HuggingFaceTokenizer",
                "ai.onnxruntime.OnnxTensor",
                "ai.onnxruntime.OrtEnvironment",
                "ai.onnxruntime.OrtException",
                "ai.onnxruntime.OrtSession",
                "java.io.IOException",
                "java.nio.file.Path",
                "java.util.Map")) {
            assertThat(block.group(1)).contains("import " + imported + ";");
        }
    }
}
