package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code quant eval --model} and {@code quant generate} on the real stories260K with a few short sequences. */
class DecoderEvalCommandTest {

    static final Path STORIES =
            Path.of("..", "quant-core", "src", "test", "resources", "stories260K", "stories260K.bin");

    @TempDir
    Path dir;

    @Test
    void evalOfADecoderWritesItsTableAndJson() throws Exception {
        Path out = dir.resolve("eval");
        QuantCliTest.Result r = QuantCliTest.run(
                "eval",
                "--model",
                STORIES.toString(),
                "--calib-sample",
                "4",
                "--eval-sample",
                "2",
                "--seq-len",
                "48",
                "--settings",
                "RTN int8|GPTQ int4 g32$",
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        String table = Files.readString(out.resolve("eval.md"));
        assertThat(table).isEqualTo(r.out());
        List<String> rows = table.lines()
                .filter(l -> l.startsWith("| ") && !l.startsWith("| setting"))
                .toList();
        assertThat(rows).hasSize(3);
        assertThat(rows.get(0)).startsWith("| FP32 | 32 | 0 | 0 | 1 |");
        assertThat(rows.get(1)).startsWith("| RTN int8 per channel | 8.");
        assertThat(rows.get(2)).startsWith("| GPTQ int4 g32 | 5.0");
        double kl8 = Double.parseDouble(rows.get(1).split("\\|")[3].trim());
        double kl4 = Double.parseDouble(rows.get(2).split("\\|")[3].trim());
        assertThat(kl8).isGreaterThan(0).isLessThan(0.1);
        assertThat(kl4).isGreaterThan(10 * kl8);
        String json = Files.readString(out.resolve("eval.json"));
        assertThat(json)
                .startsWith("[\n  {\"setting\": \"RTN int8 per channel\", \"method\": \"rtn\", \"bits\": 8,"
                        + " \"group_size\": -1, \"bits_per_weight\": ")
                .contains("{\"setting\": \"GPTQ int4 g32\", \"method\": \"gptq\", \"bits\": 4, \"group_size\": 32,")
                .contains("\"kl_mean\": ", "\"kl_p99\": ", "\"top1\": ", "\"ppl\": ");
        assertThat(r.err()).contains("stories260K.bin, 5 layers, dim 64");
    }

    @Test
    void badModelOptionsAreNamed() throws Exception {
        QuantCliTest.Result r =
                QuantCliTest.run("eval", "--model", dir.resolve("m.onnx").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err())
                .contains("expected a llama2.c checkpoint (.bin), a GGUF llama model (.gguf) or a Hugging Face model"
                        + " folder");
        r = QuantCliTest.run("eval", "--model", dir.resolve("m.gguf").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).isEqualTo("quant: no such file: " + dir.resolve("m.gguf") + "\n");
        r = QuantCliTest.run("eval", "--model", STORIES.toString(), "--seq-len", "600", "--out", dir.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--seq-len 600: stories260K.bin takes at most 512 tokens");
    }

    @Test
    void generateShowsBothContinuations() throws Exception {
        QuantCliTest.Result r = QuantCliTest.run(
                "generate",
                "--model",
                STORIES.toString(),
                "--tokens",
                "1 306",
                "--max-tokens",
                "12",
                "--method",
                "rtn",
                "--bits",
                "8",
                "--group-size",
                "-1");
        assertThat(r.code()).as(r.err()).isZero();
        List<String> lines = r.out().lines().toList();
        assertThat(lines).hasSize(3);
        assertThat(lines.get(0)).startsWith("FP32:  ");
        assertThat(lines.get(0).substring(7).split(" ")).hasSize(12);
        assertThat(lines.get(1)).startsWith("RTN int8 per channel: ");
        // greedy decoding from 8-bit weights follows FP32 for a while at least
        assertThat(lines.get(2)).matches("the first ([1-9]|1[0-2]) of 12 generated tokens agree");
        r = QuantCliTest.run("generate", "--model", STORIES.toString(), "--tokens", "1 x");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--tokens: 'x' is not a token id");
        r = QuantCliTest.run("generate", "--model", STORIES.toString(), "--tokens", "1 600");
        assertThat(r.err()).contains("--tokens: id 600 is outside the vocabulary of 512");
    }

    @Test
    void greedyIsTemperatureZero() throws Exception {
        List<String> common = List.of(
                "generate", "--model", STORIES.toString(), "--tokens", "1 306", "--method", "rtn", "--bits", "8");
        List<String> a = new java.util.ArrayList<>(common);
        a.addAll(List.of("--max-tokens", "6"));
        // --temperature 0 is the default: --greedy says it
        List<String> b = new java.util.ArrayList<>(common);
        b.addAll(List.of("--max-tokens", "6", "--greedy"));
        QuantCliTest.Result ra = QuantCliTest.run(a.toArray(String[]::new));
        QuantCliTest.Result rb = QuantCliTest.run(b.toArray(String[]::new));
        assertThat(rb.code()).as(rb.err()).isZero();
        assertThat(rb.out()).isEqualTo(ra.out());
        assertThat(rb.out().lines().findFirst().orElseThrow().substring(7).split(" "))
                .hasSize(6);
        b.addAll(List.of("--temperature", "0.8"));
        QuantCliTest.Result rc = QuantCliTest.run(b.toArray(String[]::new));
        assertThat(rc.code()).isEqualTo(2);
        assertThat(rc.err()).contains("--greedy and --temperature 0.8 disagree");
        rc = QuantCliTest.run("generate", "--model", STORIES.toString(), "--max-tokens", "0");
        assertThat(rc.err()).contains("--max-tokens must be at least 1, got 0");
    }
}
