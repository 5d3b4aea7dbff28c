package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.io.GptqCheckpoint;
import dev.quant4j.io.Llama2cCheckpoint;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.NextTokenMetrics;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.DecoderQuantizer;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code quant quantize --model} on the real stories260K: the file it writes is the model {@link DecoderQuantizer}
 * makes from the API with the same calibration sequences (the same next-token KL divergence to FP32, exactly);
 * {@code quant dequantize --out model.bin} gives a llama2.c checkpoint of the dequantized weights; a Hugging Face
 * folder becomes a GPTQ checkpoint; bad input is named.
 */
class QuantizeDecoderTest {

    static final Path STORIES = DecoderEvalCommandTest.STORIES;
    static final ForkJoinPool POOL = new ForkJoinPool(2);

    static LlamaDecoder fp32;
    static List<int[]> evaluation;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() throws Exception {
        fp32 = LlamaDecoder.read(STORIES, POOL);
        evaluation = TokenSampler.sample(fp32, 4, 48, 1, 1.0, 2);
    }

    @AfterAll
    static void stop() {
        POOL.shutdown();
    }

    static double kl(LlamaDecoder quantized) {
        NextTokenMetrics m = new NextTokenMetrics();
        for (int[] seq : evaluation) {
            m.add(seq, fp32.logits(seq), quantized.logits(seq));
        }
        return m.summary().klMean();
    }

    /** Every linear of the file quantized with the scheme, per channel where 32 does not divide the input (172). */
    static void everyLinearIs(QuantizedDecoderFile.Loaded loaded, String method, int bits) {
        Map<String, QuantizedWeight> weights = loaded.content().weights();
        assertThat(weights).hasSize(35);
        for (QuantizedWeight q : weights.values()) {
            assertThat(loaded.content().methods().get(q.name())).isEqualTo(method);
            QuantizedTensor t = (QuantizedTensor) q;
            assertThat(t.scheme().bits()).isEqualTo(bits);
            assertThat(t.scheme().groupSize()).as(q.name()).isEqualTo(q.cols() == 172 ? -1 : 32);
        }
    }

    @Test
    void rtnFromTheCommandIsTheApisModel() throws Exception {
        Path out = dir.resolve("rtn.safetensors");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                STORIES.toString(),
                "--method",
                "rtn",
                "--group-size",
                "32",
                "--out",
                out.toString(),
                "--threads",
                "2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out().lines().filter(l -> l.startsWith("model.layers."))).hasSize(35);
        assertThat(r.out())
                .contains("model.layers.0.self_attn.q_proj [64 x 64] linear 4-bit asym g32: 5.250 bits/weight, SQNR ")
                .contains("model.layers.4.mlp.down_proj [64 x 172] linear 4-bit asym per-channel: 4.233 bits/weight")
                .contains("(35 linear layers quantized, 5 per channel (the group size does not divide their input),"
                        + " 5.003 bits/weight; 14 tensors F32; " + Files.size(out) + " bytes, FP32 1056512 bytes)");
        QuantizedDecoderFile.Loaded loaded = QuantizedDecoderFile.read(out);
        everyLinearIs(loaded, "rtn", 4);
        assertThat(loaded.config()).isEqualTo(fp32.config());
        DecoderQuantizer.Result api =
                new DecoderQuantizer(new Setting(Method.RTN, 4, 32, false, false), POOL).quantize(fp32, null, null);
        assertThat(kl(loaded.model(POOL))).isEqualTo(kl(api.model())).isGreaterThan(0);
    }

    @Test
    void gptqFromTheCommandIsTheApisModelAndDequantizesToALlama2cCheckpoint() throws Exception {
        Path out = dir.resolve("gptq.safetensors");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                STORIES.toString(),
                "--method",
                "gptq",
                "--group-size",
                "32",
                "--calib-sample",
                "8",
                "--seq-len",
                "32",
                "--out",
                out.toString(),
                "--threads",
                "2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: stories260K.bin, 5 layers, dim 64: GPTQ int4 g32; calibrating on 8 sequences of 32"
                        + " tokens sampled with seed 1")
                .contains("quant: block 1/5 done", "quant: block 5/5 done");
        assertThat(r.out())
                .contains("model.layers.0.self_attn.q_proj [64 x 64] gptq linear 4-bit asym g32: 5.250 bits/weight")
                .contains(", output error ||W X - Q X||^2 GPTQ ");
        QuantizedDecoderFile.Loaded loaded = QuantizedDecoderFile.read(out);
        everyLinearIs(loaded, "gptq", 4);

        List<int[]> calibration = TokenSampler.sample(fp32, 8, 32, 1, 1.0, 1);
        DecoderQuantizer.Result api = new DecoderQuantizer(new Setting(Method.GPTQ, 4, 32, false, false), POOL)
                .quantize(fp32, calibration, null);
        long kept = api.layers().stream()
                .filter(DecoderQuantizer.LayerReport::keptRtn)
                .count();
        assertThat(r.out().lines().filter(l -> l.endsWith(", kept RTN"))).hasSize((int) kept);
        double klFile = kl(loaded.model(POOL));
        assertThat(klFile).isEqualTo(kl(api.model()));
        DecoderQuantizer.Result rtn =
                new DecoderQuantizer(new Setting(Method.RTN, 4, 32, false, false), POOL).quantize(fp32, null, null);
        assertThat(klFile).isLessThan(kl(rtn.model()));

        Path bin = dir.resolve("gptq.bin");
        r = QuantCliTest.run("dequantize", "--in", out.toString(), "--out", bin.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .isEqualTo("wrote " + bin + " (llama2.c checkpoint: 35 weights dequantized to float32, 12 unchanged;"
                        + " 1056540 bytes)\n");
        Llama2cCheckpoint original = Llama2cCheckpoint.read(STORIES);
        Llama2cCheckpoint back = Llama2cCheckpoint.read(bin);
        assertThat(back.header()).isEqualTo(original.header());
        for (Map.Entry<String, FloatMatrix> e : back.tensors().entrySet()) {
            QuantizedWeight q = loaded.content().weights().get(e.getKey());
            FloatMatrix expected = q == null ? original.tensors().get(e.getKey()) : q.dequantize();
            assertThat(e.getValue().toArray()).as(e.getKey()).containsExactly(expected.toArray());
        }
        assertThat(back.freqsCos().toArray())
                .containsExactly(original.freqsCos().toArray());
        assertThat(back.freqsSin().toArray())
                .containsExactly(original.freqsSin().toArray());
        // the checkpoint's FP32 model is the quantized one, up to the products' float rounding
        assertThat(kl(LlamaDecoder.read(bin, POOL))).isCloseTo(klFile, within(1e-3 * klFile));
    }

    @Test
    void awqBlockWritesTheFoldedNormsItWasEvaluatedWith() throws Exception {
        Path out = dir.resolve("awq-block.safetensors");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                STORIES.toString(),
                "--method",
                "awq-block",
                "--group-size",
                "32",
                "--calib-sample",
                "8",
                "--seq-len",
                "32",
                "--out",
                out.toString(),
                "--threads",
                "2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("quant: stories260K.bin, 5 layers, dim 64: AWQ block int4 g32; calibrating on 8");
        assertThat(r.out())
                .contains("model.layers.0.self_attn.q_proj [64 x 64] awq-block linear 4-bit minmax g32, ratio ")
                .contains("model.layers.0.self_attn.o_proj [64 x 64] awq-block linear 4-bit minmax g32, no scale");
        QuantizedDecoderFile.Loaded loaded = QuantizedDecoderFile.read(out);
        everyLinearIs(loaded, "awq-block", 4);
        for (QuantizedWeight q : loaded.content().weights().values()) {
            assertThat(((QuantizedTensor) q).hasInputScales()).as(q.name()).isFalse();
        }

        List<int[]> calibration = TokenSampler.sample(fp32, 8, 32, 1, 1.0, 1);
        DecoderQuantizer.Result api = new DecoderQuantizer(new Setting(Method.AWQ_BLOCK, 4, 32, false, false), POOL)
                .quantize(fp32, calibration, null);
        // the file holds the folded norm weights, not the source's
        Map<String, FloatMatrix> tensors = loaded.tensors();
        Map<String, FloatMatrix> original = Llama2cCheckpoint.read(STORIES).tensors();
        assertThat(api.tensors()).hasSize(10);
        for (FloatMatrix norm : api.tensors().values()) {
            assertThat(tensors.get(norm.name()).toArray()).as(norm.name()).containsExactly(norm.toArray());
            assertThat(norm.toArray()).isNotEqualTo(original.get(norm.name()).toArray());
        }
        int[] seq = evaluation.get(0);
        assertThat(loaded.model(POOL).logits(seq).toArray())
                .containsExactly(api.model().logits(seq).toArray());
        assertThat(kl(loaded.model(POOL))).isEqualTo(kl(api.model()));
    }

    /** stories260K as a Hugging Face folder (q/k rows as llama2.c stores them: the same shapes, another model). */
    Path huggingFaceFolder() throws Exception {
        Path hf = Files.createDirectories(dir.resolve("stories-hf"));
        Files.writeString(hf.resolve("config.json"), """
                {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 172,
                 "num_hidden_layers": 5, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512,
                 "max_position_embeddings": 512, "rms_norm_eps": 1e-05, "hidden_act": "silu",
                 "tie_word_embeddings": true}
                """);
        Files.writeString(hf.resolve("tokenizer.json"), "{}");
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (Map.Entry<String, FloatMatrix> e :
                Llama2cCheckpoint.read(STORIES).tensors().entrySet()) {
            FloatMatrix m = e.getValue();
            w.addF32(e.getKey(), m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()}, m.toArray());
        }
        w.write(hf.resolve("model.safetensors"));
        return hf;
    }

    @Test
    void aHuggingFaceFolderBecomesAGptqCheckpoint() throws Exception {
        Path hf = huggingFaceFolder();
        Path out = dir.resolve("stories-gptq");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "gptq",
                "--bits",
                "4",
                "--group-size",
                "32",
                "--sym",
                "--act-order",
                "--mse",
                "--calib-sample",
                "8",
                "--seq-len",
                "32",
                "--format",
                "gptq",
                "--out",
                out.toString(),
                "--threads",
                "2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: kept 'model.layers.0.mlp.up_proj.weight' F32: 172 output channels at 4 bits do not"
                        + " fill whole int32 words of qzeros")
                .contains("quant: kept 'model.layers.0.mlp.down_proj.weight' F32: 172 input features at 4 bits do"
                        + " not fill whole int32 words of qweight");
        assertThat(r.out()).contains("(GPTQ checkpoint: 20 of 35 linear layers quantized");
        assertThat(Files.readString(out.resolve("config.json"))).contains("\"quantization_config\"");
        assertThat(out.resolve("tokenizer.json")).exists();
        GptqCheckpoint.Checkpoint back = GptqCheckpoint.read(out);
        assertThat(back.quantizeConfig())
                .containsEntry("bits", 4L)
                .containsEntry("group_size", 32L)
                .containsEntry("sym", true)
                .containsEntry("desc_act", true)
                .containsEntry("true_sequential", true);

        LlamaDecoder hfModel = LlamaDecoder.read(hf, POOL);
        List<int[]> calibration = TokenSampler.sample(hfModel, 8, 32, 1, 1.0, 1);
        DecoderQuantizer.Result api = new DecoderQuantizer(new Setting(Method.GPTQ, 4, 32, true, true, true), POOL)
                .quantize(hfModel, calibration, null);
        Map<String, QuantizedWeight> weights = back.content().weights();
        assertThat(weights).hasSize(20);
        for (QuantizedWeight q : weights.values()) {
            assertThat(q.name()).containsAnyOf("q_proj", "k_proj", "v_proj", "o_proj");
            float[] expected = api.weights().get(q.name()).dequantize().toArray();
            float[] actual = q.dequantize().toArray();
            for (int i = 0; i < actual.length; i++) {
                // the same codes; the scales rounded to FP16 in the checkpoint
                assertThat(actual[i]).as(q.name()).isCloseTo(expected[i], within(1e-3f));
            }
        }
        assertThat(back.content().other().stream().map(p -> p.name()))
                .contains("model.layers.0.mlp.up_proj.weight", "model.embed_tokens.weight", "model.norm.weight");
    }

    /**
     * {@code --damp} and {@code --static-groups} reach every layer's GPTQ: the file is the API's model with the same
     * setting, code for code, and not the default setting's; a GPTQ checkpoint records both in its quantize_config.
     */
    @Test
    void dampingAndStaticGroupsAreTheApisSetting() throws Exception {
        Path out = dir.resolve("damped.safetensors");
        String[] common = {
            "quantize",
            "--method",
            "gptq",
            "--group-size",
            "32",
            "--act-order",
            "--static-groups",
            "--damp",
            "0.05",
            "--calib-sample",
            "8",
            "--seq-len",
            "32",
            "--threads",
            "2"
        };
        QuantCliTest.Result r =
                QuantCliTest.run(concat(common, "--model", STORIES.toString(), "--out", out.toString()));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: stories260K.bin, 5 layers, dim 64: GPTQ int4 g32 act-order static damp 0.05;");
        Setting setting =
                new Setting(Method.GPTQ, 4, 32, false, true).withDamp(0.05).withStaticGroups(true);
        List<int[]> calibration = TokenSampler.sample(fp32, 8, 32, 1, 1.0, 1);
        DecoderQuantizer.Result api = new DecoderQuantizer(setting, POOL).quantize(fp32, calibration, null);
        DecoderQuantizer.Result plain = new DecoderQuantizer(new Setting(Method.GPTQ, 4, 32, false, true), POOL)
                .quantize(fp32, calibration, null);
        Map<String, QuantizedWeight> file =
                QuantizedDecoderFile.read(out).content().weights();
        assertThat(file).hasSize(api.weights().size());
        int differ = 0;
        for (Map.Entry<String, QuantizedWeight> e : api.weights().entrySet()) {
            float[] expected = e.getValue().dequantize().toArray();
            assertThat(file.get(e.getKey()).dequantize().toArray())
                    .as(e.getKey())
                    .containsExactly(expected);
            differ += java.util.Arrays.equals(
                            expected,
                            plain.weights().get(e.getKey()).dequantize().toArray())
                    ? 0
                    : 1;
        }
        assertThat(differ)
                .as("layers the setting changed")
                .isGreaterThan(api.weights().size() / 2);

        Path folder = dir.resolve("damped-gptq");
        r = QuantCliTest.run(concat(
                common, "--model", huggingFaceFolder().toString(), "--format", "gptq", "--out", folder.toString()));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(GptqCheckpoint.read(folder).quantizeConfig())
                .containsEntry("damp_percent", 0.05)
                .containsEntry("static_groups", true);
    }

    @Test
    void badInputIsNamed() throws Exception {
        Path out = dir.resolve("q.safetensors");
        String bin = STORIES.toString();
        expectError(
                "--damp applies to gptq only, not to rtn",
                "quantize",
                "--model",
                bin,
                "--method",
                "rtn",
                "--damp",
                "0.1",
                "--out",
                out.toString());
        expectError(
                "--static-groups applies to gptq only, not to awq",
                "quantize",
                "--model",
                bin,
                "--method",
                "awq",
                "--static-groups",
                "--calib-sample",
                "2",
                "--out",
                out.toString());
        expectError(
                "gptq: --static-groups needs a positive --group-size",
                "quantize",
                "--model",
                bin,
                "--method",
                "gptq",
                "--group-size",
                "-1",
                "--static-groups",
                "--calib-sample",
                "2",
                "--out",
                out.toString());
        expectError(
                "--damp 0.0 must be a positive fraction of the mean Hessian diagonal",
                "quantize",
                "--model",
                bin,
                "--method",
                "gptq",
                "--damp",
                "0",
                "--calib-sample",
                "2",
                "--out",
                out.toString());
        expectError(
                "--mse applies to gptq only, not to awq",
                "quantize",
                "--model",
                bin,
                "--method",
                "awq",
                "--mse",
                "--out",
                out.toString());
        expectError(
                "--calib x.npy holds the activations of one matrix; a whole decoder (--model " + bin
                        + ") calibrates on token sequences: --calib-text FILE, --calib-tokens FILE, or sampled from the model",
                "quantize",
                "--model",
                bin,
                "--method",
                "gptq",
                "--calib",
                "x.npy",
                "--out",
                out.toString());
        expectError(
                "--format gptq: --method awq-block folds its scales into the RMSNorm weights, and a GPTQ checkpoint"
                        + " would carry the input's",
                "quantize",
                "--model",
                huggingFaceFolder().toString(),
                "--method",
                "awq-block",
                "--format",
                "gptq",
                "--out",
                dir.resolve("g-awq").toString());
        expectError(
                "--method awq-block quantizes a whole decoder's blocks",
                "quantize",
                "--in",
                "w.npy",
                "--method",
                "awq-block",
                "--out",
                out.toString());
        expectError(
                "--method fp4: a whole decoder is quantized with rtn, nf4, gptq, awq or awq-block",
                "quantize",
                "--model",
                bin,
                "--method",
                "fp4",
                "--out",
                out.toString());
        expectError(
                "--format gptq writes a Hugging Face checkpoint, and " + bin + " is a llama2.c checkpoint",
                "quantize",
                "--model",
                bin,
                "--method",
                "gptq",
                "--format",
                "gptq",
                "--out",
                dir.resolve("g").toString());
        expectError(
                "--seq-len 600: stories260K.bin takes at most 512 tokens",
                "quantize",
                "--model",
                bin,
                "--method",
                "awq",
                "--seq-len",
                "600",
                "--out",
                out.toString());
        expectError(
                "--calib-sample, --calib-text, --calib-tokens, --tokenizer, --seq-len and --seed apply to gptq, awq and"
                        + " awq-block only, not to rtn",
                "quantize",
                "--model",
                bin,
                "--method",
                "rtn",
                "--seed",
                "3",
                "--out",
                out.toString());
        expectError(
                "--include does not apply to a whole decoder",
                "quantize",
                "--model",
                bin,
                "--method",
                "rtn",
                "--include",
                "q_proj",
                "--out",
                out.toString());
        expectError(
                "layer 'model.layers.0.mlp.down_proj' [64, 172]: group size 32 does not divide its 172 input features"
                        + " (--strict",
                "quantize",
                "--model",
                bin,
                "--method",
                "rtn",
                "--group-size",
                "32",
                "--strict",
                "--out",
                out.toString());
        expectError(
                "--seq-len applies to a whole decoder only",
                "quantize",
                "--in",
                dir.resolve("w.npy").toString(),
                "--method",
                "rtn",
                "--seq-len",
                "8",
                "--out",
                out.toString());
        Path gpt2 = Files.createDirectories(dir.resolve("gpt2"));
        Files.writeString(gpt2.resolve("config.json"), "{\"architectures\": [\"GPT2LMHeadModel\"]}");
        expectError(
                "gpt2/config.json: architectures [\"GPT2LMHeadModel\"] is not supported",
                "quantize",
                "--model",
                gpt2.toString(),
                "--method",
                "gptq",
                "--out",
                out.toString());
        assertThat(out).doesNotExist();

        // dequantize to .bin: only a whole decoder quantized from a llama2.c checkpoint
        Path plain = dir.resolve("plain.safetensors");
        new SafeTensorsWriter().addF32("w", new long[] {1}, new float[] {1}).write(plain);
        expectError(
                "plain.safetensors: no quant4j.decoder metadata",
                "dequantize",
                "--in",
                plain.toString(),
                "--out",
                dir.resolve("m.bin").toString());
        Path fromHf = dir.resolve("hf.safetensors");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                huggingFaceFolder().toString(),
                "--method",
                "awq",
                "--group-size",
                "32",
                "--calib-sample",
                "2",
                "--seq-len",
                "8",
                "--out",
                fromHf.toString());
        assertThat(r.code()).as(r.err()).isZero();
        expectError(
                "hf.safetensors was quantized from a huggingface model; a llama2.c checkpoint is written only for a"
                        + " model quantized from one (.bin)",
                "dequantize",
                "--in",
                fromHf.toString(),
                "--out",
                dir.resolve("m.bin").toString());
        expectError(
                "--dtype bf16: a llama2.c checkpoint is float32",
                "dequantize",
                "--in",
                fromHf.toString(),
                "--out",
                dir.resolve("m.bin").toString(),
                "--dtype",
                "bf16");
        assertThat(dir.resolve("m.bin")).doesNotExist();
    }

    static String[] concat(String[] first, String... more) {
        String[] all = java.util.Arrays.copyOf(first, first.length + more.length);
        System.arraycopy(more, 0, all, first.length, more.length);
        return all;
    }

    static void expectError(String message, String... args) {
        QuantCliTest.Result r = QuantCliTest.run(args);
        assertThat(r.code()).as(r.out() + r.err()).isEqualTo(2);
        assertThat(r.err()).contains(message);
    }
}
