package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.model.HuggingFaceLlama;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.NextTokenMetrics;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's decoder example: the method between the markers is the README's second API block, line for line, and
 * runs on stories260K stored as a Hugging Face folder.
 */
class ReadmeDecoderExampleTest {

    @TempDir
    Path dir;

    // README example begins
    static double quantizeDecoder(Path folder) throws IOException {
        ForkJoinPool pool = ForkJoinPool.commonPool();
        LlamaDecoder fp32 = HuggingFaceLlama.read(folder, pool); // Llama, Mistral, Qwen2 (or LlamaDecoder.fromLlama2c)
        List<int[]> calibration = TokenSampler.sample(fp32, 32, 128, 1, 1.0, 1); // or token ids of your own text
        DecoderQuantizer.Result q = new DecoderQuantizer(new Setting(Method.GPTQ, 4, 128, false, true), pool)
                .quantize(fp32, calibration, null); // block by block, as AutoGPTQ's true_sequential
        // q.weights(): the quantized tensors by name, for QuantizedSafeTensors or GptqCheckpoint.write
        NextTokenMetrics kl = new NextTokenMetrics();
        for (int[] seq : TokenSampler.sample(fp32, 4, 128, 1, 1.0, 2)) { // held-out sequences
            kl.add(seq, fp32.logits(seq), q.model().logits(seq));
        }
        return kl.summary().klMean(); // nats per token, as llama.cpp's perplexity --kl-divergence
    }
    // README example ends

    @Test
    void readmeExampleRuns() throws Exception {
        Files.writeString(dir.resolve("config.json"), HuggingFaceLlamaFixture.CONFIG);
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (Map.Entry<String, FloatMatrix> e : HuggingFaceLlamaFixture.tensors()) {
            FloatMatrix m = e.getValue();
            w.addF32(e.getKey(), m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()}, m.toArray());
        }
        w.write(dir.resolve("model.safetensors"));
        double kl = quantizeDecoder(dir);
        // per channel here (128 does not divide stories260K's widths): between 8-bit's 0.02 and 3-bit's 4
        assertThat(kl).isBetween(0.05, 4.0);
    }

    /** The README's second {@code java} block under "## API" holds the imports and then exactly the method above. */
    @Test
    void theReadmeShowsThisCode() throws Exception {
        String readme = Files.readString(Path.of("..", "README.md"), StandardCharsets.UTF_8);
        Matcher block = Pattern.compile("### A whole decoder\\n.*?```java\\n(.*?)```", Pattern.DOTALL)
                .matcher(readme);
        assertThat(block.find())
                .as("README has a java block under ### A whole decoder")
                .isTrue();
        String source = Files.readString(
                Path.of("src/test/java/dev/quant4j/pipeline/ReadmeDecoderExampleTest.java"), StandardCharsets.UTF_8);
        String method = source.substring(
                source.indexOf("// README example begins\n") + "// README example begins\n".length(),
                source.indexOf("    // README example ends"));
        String expected = method.lines()
                .map(l -> l.startsWith("    ") ? l.substring(4) : l)
                .reduce("", (a, b) -> a + b + "\n");
        String readmeCode = block.group(1);
        assertThat(readmeCode).endsWith(expected);
        for (String imported : List.of(
                "dev.quant4j.model.HuggingFaceLlama",
                "dev.quant4j.model.LlamaDecoder",
                "dev.quant4j.model.NextTokenMetrics",
                "dev.quant4j.model.TokenSampler",
                "dev.quant4j.pipeline.DecoderQuantizer",
                "dev.quant4j.pipeline.DecoderQuantizer.Method",
                "dev.quant4j.pipeline.DecoderQuantizer.Setting",
                "java.io.IOException",
                "java.nio.file.Path",
                "java.util.List",
                "java.util.concurrent.ForkJoinPool")) {
            assertThat(readmeCode).contains("import " + imported + ";");
        }
    }
}
