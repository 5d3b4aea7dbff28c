package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.cli.eval.DecoderEval;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.NextTokenMetrics;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.GgufDecoderFile;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import dev.quant4j.tensor.FloatMatrix;
import java.awt.image.BufferedImage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code quant eval --model} and {@code quant generate} on GGUF files of stories260K: an F32 file as the model gives
 * the figures of the llama2.c checkpoint it was written from; a quantized file given as {@code --quantized} is measured
 * (and run) on the tensors {@link GgufDecoderFile} reads from it; what cannot be run is named in one line.
 */
class DecoderGgufEvalTest {

    static final Path STORIES = DecoderEvalCommandTest.STORIES;

    static final ForkJoinPool POOL = new ForkJoinPool(2);

    @TempDir
    Path dir;

    @AfterAll
    static void shutDown() {
        POOL.shutdown();
    }

    /** stories260K written as a GGUF file of {@code type} (llama.cpp's fallbacks for the 172-wide rows). */
    private Path gguf(GgmlType type) throws Exception {
        Path file = dir.resolve("stories260K-" + type.ggmlName() + ".gguf");
        GgufDecoderFile.plan(QuantizedDecoderFile.readSource(STORIES), type, false)
                .write(file);
        return file;
    }

    private static String[] evalArgs(Path model, Path out, String... more) {
        List<String> args = new ArrayList<>(List.of(
                "eval",
                "--model",
                model.toString(),
                "--eval-sample",
                "2",
                "--seq-len",
                "48",
                "--threads",
                "2",
                "--out",
                out.toString()));
        args.addAll(List.of(more));
        return args.toArray(String[]::new);
    }

    @Test
    void anF32GgufIsEvaluatedAsTheCheckpointItCameFrom() throws Exception {
        Path f32 = gguf(GgmlType.F32);
        QuantCliTest.Result bin = QuantCliTest.run(
                evalArgs(STORIES, dir.resolve("bin"), "--settings", "RTN int8", "--calib-sample", "4"));
        assertThat(bin.code()).as(bin.err()).isZero();
        QuantCliTest.Result gguf =
                QuantCliTest.run(evalArgs(f32, dir.resolve("gguf"), "--settings", "RTN int8", "--calib-sample", "4"));
        assertThat(gguf.code()).as(gguf.err()).isZero();
        // the same float32 tensors and hyperparameters: the same sampled sequences, quantized weights and figures
        String json = Files.readString(dir.resolve("bin").resolve("eval.json"));
        assertThat(json).contains("\"setting\": \"RTN int8 per channel\"", "\"kl_mean\": 0.0");
        assertThat(Files.readString(dir.resolve("gguf").resolve("eval.json"))).isEqualTo(json);
        assertThat(gguf.out()).isEqualTo(bin.out());
        assertThat(gguf.err())
                .contains("stories260K-f32.gguf, 5 layers, dim 64")
                .doesNotContain("dequantized");
        for (String run : List.of("bin", "gguf")) {
            BufferedImage png =
                    ImageIO.read(dir.resolve(run).resolve("eval.png").toFile());
            assertThat(png).as(run).isNotNull();
            assertThat(png.getWidth()).isEqualTo(DecoderEval.CHART_WIDTH);
            assertThat(png.getHeight()).isEqualTo(DecoderEval.CHART_HEIGHT);
        }
    }

    @Test
    void quantizedGgufFilesAreMeasuredAgainstTheModel() throws Exception {
        Path q8 = gguf(GgmlType.Q8_0);
        Path q4 = gguf(GgmlType.Q4_0);
        Path out = dir.resolve("eval");
        QuantCliTest.Result r =
                QuantCliTest.run(evalArgs(STORIES, out, "--quantized", q8.toString(), "--quantized", q4.toString()));
        assertThat(r.code()).as(r.err()).isZero();
        // no setting runs with --quantized alone, so nothing is calibrated
        assertThat(r.err())
                .contains("sampling 2 evaluation sequences of 48 tokens")
                .doesNotContain("calibration");

        // the same figures computed here: the evaluation sequences (seed 2) through the FP32 checkpoint and through
        // the decoder GgufDecoderFile reads from each file
        LlamaDecoder fp32 = LlamaDecoder.read(STORIES, POOL);
        List<int[]> evaluation = TokenSampler.sample(fp32, 2, 48, 1, 1.0, DecoderEvalRun.EVALUATION_SEED);
        // per block: q, o [64 x 64], k, v [32 x 64] (4 key/value heads of 8) and gate, up [172 x 64] in the type,
        // down [64 x 172] in F16 (172 is no whole number of 32-blocks); q8_0 stores a 32-block in 34 bytes, q4_0 in 18
        long typed = 5 * (2 * 64 * 64 + 2 * 32 * 64 + 2 * 172 * 64);
        long f16 = 5 * (64 * 172);
        List<DecoderEval.Row> expected = new ArrayList<>();
        for (Object[] file : new Object[][] {{q8, 8, 34}, {q4, 4, 18}}) {
            Path p = (Path) file[0];
            LlamaDecoder q = GgufDecoderFile.read(p).decoder(POOL);
            NextTokenMetrics m = new NextTokenMetrics();
            for (int[] seq : evaluation) {
                m.add(seq, fp32.logits(seq), q.logits(seq));
            }
            long bytes = typed / 32 * (int) file[2] + 2 * f16;
            expected.add(new DecoderEval.Row(
                    p.getFileName().toString(),
                    "gguf",
                    (int) file[1],
                    32,
                    8.0 * bytes / (typed + f16),
                    bytes,
                    (int) file[1] == 8 ? "q8_0" : "q4_0",
                    m.summary()));
        }
        assertThat(Files.readString(out.resolve("eval.json"))).isEqualTo(DecoderEval.json(expected));
        assertThat(r.out()).isEqualTo(DecoderEval.markdown(expected));
        // q8_0 at 10.32 bits per weight (per block 8.5 bits in 34304 weights, 16 in 11008), q4_0 at 7.29
        assertThat(expected.get(0).bitsPerWeight())
                .isCloseTo((34304 * 8.5 + 11008 * 16) / 45312, org.assertj.core.data.Offset.offset(1e-12));
        double kl8 = expected.get(0).metrics().klMean();
        double kl4 = expected.get(1).metrics().klMean();
        assertThat(kl8).isGreaterThan(0).isLessThan(0.1);
        assertThat(kl4).isGreaterThan(10 * kl8);
        assertThat(Files.readString(out.resolve("eval.json")))
                .contains("{\"setting\": \"stories260K-q8_0.gguf\", \"method\": \"gguf\", \"bits\": 8, \"group_size\":"
                        + " 32, \"gguf_type\": \"q8_0\", \"bits_per_weight\": 10.3220,");
        assertThat(ImageIO.read(out.resolve("eval.png").toFile()).getWidth()).isEqualTo(DecoderEval.CHART_WIDTH);

        // with --settings, the settings run too, calibrated, their rows first
        r = QuantCliTest.run(evalArgs(
                STORIES,
                dir.resolve("both"),
                "--quantized",
                q8.toString(),
                "--settings",
                "RTN int8",
                "--calib-sample",
                "4"));
        assertThat(r.code()).as(r.err()).isZero();
        List<String> rows = r.out().lines().filter(l -> l.startsWith("| ")).toList();
        assertThat(rows).hasSize(4);
        assertThat(rows.get(2)).startsWith("| RTN int8 per channel | 8.");
        assertThat(rows.get(3))
                .isEqualTo(DecoderEval.markdown(expected).lines().toList().get(3));
    }

    @Test
    void aQuant4jFileIsTheRowOfTheSettingThatMadeIt() throws Exception {
        // RTN needs no calibration: the file quantize writes is the model eval quantizes for the same setting
        Path rtn8 = dir.resolve("rtn8.safetensors");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                STORIES.toString(),
                "--method",
                "rtn",
                "--bits",
                "8",
                "--group-size",
                "-1",
                "--out",
                rtn8.toString());
        assertThat(r.code()).as(r.err()).isZero();
        r = QuantCliTest.run(evalArgs(
                STORIES,
                dir.resolve("e"),
                "--quantized",
                rtn8.toString(),
                "--settings",
                "RTN int8",
                "--calib-sample",
                "4"));
        assertThat(r.code()).as(r.err()).isZero();
        List<String> json =
                Files.readString(dir.resolve("e").resolve("eval.json")).lines().toList();
        assertThat(json).hasSize(4);
        String setting = "{\"setting\": \"RTN int8 per channel\", ";
        String file = "{\"setting\": \"rtn8.safetensors\", ";
        assertThat(json.get(1)).startsWith("  " + setting + "\"method\": \"rtn\", \"bits\": 8, \"group_size\": -1,");
        assertThat(json.get(2).replace(file, setting)).isEqualTo(json.get(1).replace("},", "}"));
    }

    @Test
    void aGgufVocabularyIsNotRunItsTokenizerJsonIs() throws Exception {
        Path fixture = LlamaCppTokenizerTest.FIXTURE;
        Path hf = TextCalibrationTest.folder(
                dir, "stories-bpe", 512, Files.readString(fixture.resolve("tokenizer.json")));
        Files.copy(fixture.resolve("tokenizer_config.json"), hf.resolve("tokenizer_config.json"));
        Path gguf = dir.resolve("stories-bpe-f32.gguf");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "rtn",
                "--format",
                "gguf",
                "--gguf-type",
                "f32",
                "--out",
                gguf.toString());
        assertThat(r.code()).as(r.err()).isZero();
        r = QuantCliTest.run(
                "generate", "--model", gguf.toString(), "--prompt", "Once upon a time", "--max-tokens", "8");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err())
                .isEqualTo("quant: --prompt needs the model's tokenizer: pass --tokenizer tokenizer.json (" + gguf
                        + " carries its vocabulary as tokenizer.ggml.* keys (gpt2, 512 tokens), which quant4j does not"
                        + " run: it runs the tokenizer.json they came from), or give the prompt as token ids with"
                        + " --tokens\n");
        // with the tokenizer.json, the GGUF model continues the prompt as the folder it was written from
        QuantCliTest.Result folder = QuantCliTest.run(
                "generate",
                "--model",
                hf.toString(),
                "--prompt",
                "Once upon a time",
                "--max-tokens",
                "8",
                "--method",
                "rtn",
                "--bits",
                "8");
        assertThat(folder.code()).as(folder.err()).isZero();
        r = QuantCliTest.run(
                "generate",
                "--model",
                gguf.toString(),
                "--tokenizer",
                hf.resolve("tokenizer.json").toString(),
                "--prompt",
                "Once upon a time",
                "--max-tokens",
                "8",
                "--method",
                "rtn",
                "--bits",
                "8");
        assertThat(r.code()).as(r.err()).isZero();
        List<String> lines = r.out().lines().toList();
        List<String> expected = folder.out().lines().toList();
        assertThat(lines.get(0)).startsWith("prompt: ").isEqualTo(expected.get(0));
        assertThat(lines.get(1)).startsWith("FP32:  ").isEqualTo(expected.get(1));
        assertThat(lines.get(3)).startsWith("FP32 text:  \"").isEqualTo(expected.get(3));
    }

    /** Greedy continuation through the KV cache, as {@code quant generate} runs a model. */
    private static int[] greedy(LlamaDecoder model, int[] prompt, int steps) {
        LlamaDecoder.KvCache cache = model.newCache(prompt.length + steps);
        FloatMatrix logits = model.forward(prompt, cache, null);
        float[] last = Arrays.copyOfRange(
                logits.array(), logits.rowOffset(prompt.length - 1), logits.rowOffset(prompt.length - 1) + 512);
        int[] out = new int[steps];
        for (int s = 0; s < steps; s++) {
            int best = 0;
            for (int i = 1; i < last.length; i++) {
                best = last[i] > last[best] ? i : best;
            }
            out[s] = best;
            last = model.forward(new int[] {best}, cache, null).toArray();
        }
        return out;
    }

    private static String ids(int[] a) {
        return String.join(" ", Arrays.stream(a).mapToObj(Integer::toString).toList());
    }

    @Test
    void generateRunsAQuantizedGgufBesideTheModel() throws Exception {
        Path q8 = gguf(GgmlType.Q8_0);
        int[] prompt = {1, 306};
        QuantCliTest.Result r = QuantCliTest.run(
                "generate",
                "--model",
                STORIES.toString(),
                "--quantized",
                q8.toString(),
                "--tokens",
                "1 306",
                "--max-tokens",
                "24");
        assertThat(r.code()).as(r.err()).isZero();
        List<String> lines = r.out().lines().toList();
        assertThat(lines).hasSize(3);
        int[] fp32 = greedy(LlamaDecoder.read(STORIES, POOL), prompt, 24);
        int[] q = greedy(GgufDecoderFile.read(q8).decoder(POOL), prompt, 24);
        assertThat(lines.get(0)).isEqualTo("FP32:  " + ids(fp32));
        assertThat(lines.get(1)).isEqualTo("stories260K-q8_0.gguf: " + ids(q));
        int shared = 0;
        while (shared < 24 && fp32[shared] == q[shared]) {
            shared++;
        }
        assertThat(lines.get(2)).isEqualTo("the first " + shared + " of 24 generated tokens agree");

        // an F32 GGUF as the model continues as the checkpoint does
        r = QuantCliTest.run(
                "generate",
                "--model",
                gguf(GgmlType.F32).toString(),
                "--quantized",
                q8.toString(),
                "--tokens",
                "1 306",
                "--max-tokens",
                "24");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out().lines().toList()).isEqualTo(lines);
    }

    @Test
    void whatCannotBeRunIsNamed() throws Exception {
        Path q8 = gguf(GgmlType.Q8_0);
        // a model with another vocabulary: stories260K's first 256 embedding rows
        QuantizedDecoderFile.Source source = QuantizedDecoderFile.readSource(STORIES);
        LlamaConfig c = source.config();
        Map<String, FloatMatrix> tensors = new LinkedHashMap<>(source.tensors());
        FloatMatrix embed = tensors.get(LlamaDecoder.EMBED_TOKENS);
        tensors.put(
                LlamaDecoder.EMBED_TOKENS,
                FloatMatrix.of(LlamaDecoder.EMBED_TOKENS, 256, 64, Arrays.copyOf(embed.toArray(), 256 * 64), 0));
        LlamaConfig small = new LlamaConfig(
                c.dim(),
                c.hiddenDim(),
                c.layers(),
                c.heads(),
                c.kvHeads(),
                c.headDim(),
                256,
                c.maxSeqLen(),
                c.ropeTheta(),
                c.normEps(),
                c.rope(),
                c.tiedEmbeddings());
        Path other = dir.resolve("small.gguf");
        GgufDecoderFile.plan(
                        new QuantizedDecoderFile.Source("small", source.format(), small, tensors), GgmlType.Q8_0, false)
                .write(other);
        QuantCliTest.Result r = QuantCliTest.run(evalArgs(STORIES, dir.resolve("e"), "--quantized", other.toString()));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err())
                .isEqualTo("quant: small.gguf is not a quantization of stories260K.bin: its vocabulary size"
                        + " (token_embd.weight rows, vocab_size) is 256, stories260K.bin's 512\n");
        r = QuantCliTest.run("generate", "--model", STORIES.toString(), "--quantized", other.toString());
        assertThat(r.err()).contains("small.gguf is not a quantization of stories260K.bin");

        // not a llama model: the architecture's value patched to another five-letter one
        byte[] bytes = Files.readAllBytes(q8);
        int at = indexOf(bytes, "llama".getBytes(StandardCharsets.US_ASCII));
        System.arraycopy("qwen2".getBytes(StandardCharsets.US_ASCII), 0, bytes, at, 5);
        Path qwen = dir.resolve("qwen.gguf");
        Files.write(qwen, bytes);
        r = QuantCliTest.run(evalArgs(qwen, dir.resolve("e")));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).isEqualTo("quant: qwen.gguf: general.architecture is string 'qwen2', expected \"llama\"\n");

        // a type quant4j does not dequantize: an F32 matrix's type id set to I32 (4 bytes a value as well)
        bytes = Files.readAllBytes(gguf(GgmlType.F32));
        byte[] name = "blk.0.attn_q.weight".getBytes(StandardCharsets.US_ASCII);
        int type = indexOf(bytes, name) + name.length + 4 + 2 * 8; // after n_dims and two extents
        assertThat(bytes[type]).isEqualTo((byte) GgmlType.F32.id());
        bytes[type] = (byte) GgmlType.I32.id();
        Path i32 = dir.resolve("i32.gguf");
        Files.write(i32, bytes);
        r = QuantCliTest.run(evalArgs(STORIES, dir.resolve("e"), "--quantized", i32.toString()));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err())
                .startsWith(
                        "quant: " + i32 + ": tensor 'blk.0.attn_q.weight' is i32, which quant4j does not dequantize")
                .hasLineCount(1);

        // text needs a tokenizer.json: a GGUF vocabulary is not run
        Path text = dir.resolve("calib.txt");
        Files.writeString(text, "Once upon a time\n");
        r = QuantCliTest.run(evalArgs(q8, dir.resolve("e"), "--calib-text", text.toString()));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err())
                .contains("--calib-text needs the model's tokenizer: pass --tokenizer tokenizer.json (" + q8
                        + " carries quant4j's placeholder vocabulary, not a tokenizer: it runs on token ids)")
                .hasLineCount(1);
        r = QuantCliTest.run("generate", "--model", q8.toString(), "--prompt", "Once upon a time");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--prompt needs the model's tokenizer", "placeholder vocabulary");

        // options of quantizing here do not apply to a quantized file, nor calibration when nothing is calibrated
        r = QuantCliTest.run(
                "generate", "--model", STORIES.toString(), "--quantized", q8.toString(), "--method", "rtn");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--method applies when the model is quantized here, not with --quantized");
        r = QuantCliTest.run(evalArgs(STORIES, dir.resolve("e"), "--quantized", q8.toString()));
        assertThat(r.code()).as(r.err()).isZero();
        r = QuantCliTest.run(
                "eval", "--model", STORIES.toString(), "--quantized", q8.toString(), "--calib-sample", "4");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--calib-sample: no setting runs, so nothing is calibrated");
        r = QuantCliTest.run(
                "eval",
                "--model",
                STORIES.toString(),
                "--quantized",
                dir.resolve("q.npy").toString());
        assertThat(r.err()).contains("--quantized " + dir.resolve("q.npy") + ": expected a GGUF llama model (.gguf)");
        r = QuantCliTest.run("eval", "--quantized", q8.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).isEqualTo("quant: --quantized applies with --model (a decoder) only\n");
    }

    @Test
    void theChartHasASeriesPerMethodOnALogScale() {
        List<DecoderEval.Row> rows = List.of(
                row("RTN int8 per channel", "rtn", 8.53, 0.02),
                row("RTN int4 g32", "rtn", 5.0, 2.2),
                row("GPTQ int4 g32", "gptq", 5.0, 1.7),
                row("GPTQ int4 g32 act-order", "gptq", 5.27, 1.6),
                row("GPTQ int3 g32 act-order", "gptq", 4.28, 3.6),
                row("GPTQ int4 g32 act-order mse", "gptq", 5.27, 1.5),
                row("m-q4_0.gguf", "gguf", 4.5, 1.9),
                row("m-f32.gguf", "gguf", 32, 0));
        var chart = DecoderEval.chart(rows, "m.bin");
        assertThat(chart.getSeriesCollection().stream().map(org.knowm.xchart.XYSeries::getName))
                .containsExactly("RTN", "GPTQ", "GPTQ act-order", "GPTQ act-order mse", "m-q4_0.gguf");
        var rtn = chart.getSeries("RTN");
        assertThat(rtn.getXData()).containsExactly(5.0, 8.53); // in order of bits
        assertThat(rtn.getYData()).containsExactly(2.2, 0.02);
        assertThat(chart.getSeries("GPTQ act-order").getXData()).containsExactly(4.28, 5.27);
        assertThat(chart.getStyler().isYAxisLogarithmic()).isTrue();
        assertThat(chart.getTitle()).endsWith("(1 with KL 0 not drawn)");
    }

    private static DecoderEval.Row row(String label, String method, double bits, double kl) {
        return new DecoderEval.Row(
                label, method, 4, 32, bits, 0, null, new NextTokenMetrics.Summary(10, kl, kl, kl, 1, 2, 3));
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }
}
