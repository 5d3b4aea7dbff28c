package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.ggml.GgmlGptq;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.Gguf;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.DecoderQuantizer;
import dev.quant4j.pipeline.GgufDecoderFile;
import dev.quant4j.pipeline.GgufDecoderGptq;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code quant quantize --model model.bin --format gguf --method gptq}: stories260K's block linears by GPTQ into q4_0,
 * q4_1 or q8_0, the bytes the API writes from the same sequences; the options GPTQ's blocks cannot take refused. And
 * {@code --method awq-block}: AWQ's scales and clipping searched for the type, the API's bytes.
 */
class QuantizeDecoderGgufGptqTest {

    static final Path STORIES = DecoderEvalCommandTest.STORIES;

    @TempDir
    Path dir;

    @Test
    void writesTheApisFileFromTheSampledSequences() throws Exception {
        Path out = dir.resolve("stories-gptq-q4_1.gguf");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                STORIES.toString(),
                "--format",
                "gguf",
                "--method",
                "gptq",
                "--bits",
                "4",
                "--group-size",
                "32",
                "--asym",
                "--gguf-type",
                "q4_1",
                "--calib-sample",
                "2",
                "--seq-len",
                "32",
                "--seed",
                "3",
                "--damp",
                "0.02",
                "--threads",
                "2",
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: stories260K.bin, 5 layers, dim 64: GPTQ into q4_1 (damping 0.02); calibrating on 2"
                        + " sequences of 32 tokens sampled with seed 3")
                .contains("quant: block 5/5 done")
                .contains("quant: 'blk.0.ffn_down.weight' written as f16, not q4_1");
        assertThat(r.out())
                .containsPattern("blk\\.0\\.attn_q\\.weight \\(model\\.layers\\.0\\.self_attn\\.q_proj\\.weight\\)"
                        + " \\[64 x 64\\] q4_1: 5\\.000 bits/weight, MSE \\S+, SQNR \\S+ dB, gptq, output error"
                        + " \\|\\|W X - Q X\\|\\|\\^2 GPTQ \\S+, RTN \\S+")
                .contains("token_embd.weight (model.embed_tokens.weight) [512 x 64] q4_1: 5.000 bits/weight")
                .containsPattern(
                        "wrote " + java.util.regex.Pattern.quote(out.toString()) + " \\(llama, 47 tensors, matrices"
                                + " q4_1, 5 of them in a fallback type; block linears by GPTQ, \\d+ kept ggml's reference"
                                + " blocks; \\d+ bytes\\)");
        QuantizedDecoderFile.Source source = QuantizedDecoderFile.readSource(STORIES);
        ForkJoinPool pool = new ForkJoinPool(2);
        try {
            LlamaDecoder fp32 = source.decoder(pool);
            List<int[]> sequences = TokenSampler.sample(fp32, 2, 32, 1, 1.0, 3);
            GgufDecoderGptq.Result api = new GgufDecoderGptq(GgmlType.Q4_1, 0.02, pool).quantize(fp32, sequences, null);
            byte[] expected = GgufDecoderFile.plan(source, GgmlType.Q4_1, false, null, api.linears())
                    .writer()
                    .toBytes();
            assertThat(Files.readAllBytes(out)).isEqualTo(expected);
        } finally {
            pool.shutdown();
        }
        try (Gguf g = Gguf.open(out)) {
            assertThat(g.metadata().get("general.file_type").asLong()).isEqualTo(3); // MOSTLY_Q4_1
        }
    }

    /**
     * {@code --act-order}: every linear's columns by descending Hessian diagonal, each block's parameters fixed up front
     * (static groups); the API's bytes, and a file quant4j's GGUF reader runs like any other.
     */
    @Test
    void actOrderWritesTheApisFileWhichQuant4jRuns() throws Exception {
        Path out = dir.resolve("stories-gptq-act-q4_0.gguf");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                STORIES.toString(),
                "--format",
                "gguf",
                "--method",
                "gptq",
                "--bits",
                "4",
                "--group-size",
                "32",
                "--sym",
                "--act-order",
                "--calib-sample",
                "2",
                "--seq-len",
                "32",
                "--seed",
                "3",
                "--threads",
                "2",
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: stories260K.bin, 5 layers, dim 64: GPTQ act-order (static groups) into q4_0"
                        + " (damping 0.01); calibrating on 2 sequences of 32 tokens sampled with seed 3");
        assertThat(r.out()).contains("matrices q4_0, 5 of them in a fallback type; block linears by GPTQ");
        QuantizedDecoderFile.Source source = QuantizedDecoderFile.readSource(STORIES);
        ForkJoinPool pool = new ForkJoinPool(2);
        try {
            LlamaDecoder fp32 = source.decoder(pool);
            List<int[]> sequences = TokenSampler.sample(fp32, 2, 32, 1, 1.0, 3);
            GgufDecoderGptq.Result api = new GgufDecoderGptq(GgmlType.Q4_0, 0.01, GgmlGptq.Order.ACT_ORDER, pool)
                    .quantize(fp32, sequences, null);
            byte[] expected = GgufDecoderFile.plan(source, GgmlType.Q4_0, false, null, api.linears())
                    .writer()
                    .toBytes();
            assertThat(Files.readAllBytes(out)).isEqualTo(expected);
            // quant4j's reader runs the file: the dequantized act-order blocks, next to the FP32 model's logits
            LlamaDecoder read = GgufDecoderFile.read(out).decoder(pool);
            int[] tokens = sequences.get(0);
            float[] logits = read.logits(tokens).toArray();
            assertThat(logits).hasSize(tokens.length * fp32.config().vocabSize());
            for (float v : logits) {
                assertThat(v).isFinite();
            }
            assertThat(logits).isNotEqualTo(fp32.logits(tokens).toArray());
        } finally {
            pool.shutdown();
        }
        try (Gguf g = Gguf.open(out)) {
            assertThat(g.metadata().get("general.file_type").asLong()).isEqualTo(2); // MOSTLY_Q4_0
            assertThat(g.tensors().stream()
                            .filter(t -> t.type() == GgmlType.Q4_0)
                            .count())
                    .isEqualTo(31);
        }
    }

    @Test
    void refusesWhatGptqsBlocksCannotTake() {
        Path out = dir.resolve("x.gguf");
        String[] base = {
            "quantize", "--model", STORIES.toString(), "--format", "gguf", "--method", "gptq", "--out", out.toString()
        };
        assertRefused(
                concat(base, "--bits", "4", "--group-size", "64", "--sym"),
                "--bits 4 --group-size 64 --sym has no ggml type; GPTQ writes q4_0 (--bits 4 --group-size 32 --sym),"
                        + " q4_1 (--bits 4 --group-size 32 --asym) or q8_0 (--bits 8 --group-size 32 --sym)");
        assertRefused(concat(base, "--bits", "8", "--group-size", "32"), "--bits 8 --group-size 32 --asym has no ggml");
        assertRefused(
                concat(base, "--bits", "4", "--group-size", "32", "--sym", "--gguf-type", "q4_1"),
                "--gguf-type q4_1 does not match GPTQ's --bits 4 --group-size 32 --sym, which write q4_0");
        assertRefused(
                concat(base, "--group-size", "32", "--mse"),
                "--mse does not apply to --format gguf --model --method gptq: ggml's blocks are 32 columns, each with"
                        + " its own FP16 scale");
        assertRefused(concat(base, "--group-size", "32", "--signed"), "--signed does not apply");
        assertRefused(concat(base, "--group-size", "32", "--damp", "0"), "--damp 0.0 must be a positive fraction");
        assertRefused(
                concat(base, "--group-size", "32", "--calib", STORIES.toString()),
                "holds the activations of one matrix");
        assertRefused(
                concat(
                        base,
                        "--group-size",
                        "32",
                        "--calib-tokens",
                        dir.resolve("none.txt").toString(),
                        "--seed",
                        "2"),
                "none.txt");
        assertRefused(
                concat(base, "--group-size", "32", "--strict"),
                "tensor 'model.layers.0.mlp.down_proj.weight' [64, 172]: its rows of 172 values are not whole q4_1"
                        + " blocks of 32 (strict: no fallback to f16)");
        assertThat(out).doesNotExist();
    }

    /** {@code --method awq-block}: llm-awq's scales and clipping searched for the type, then ggml's quantizer. */
    @Test
    void awqBlockWritesTheApisFoldedModel() throws Exception {
        Path out = dir.resolve("stories-awq-q4_1.gguf");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                STORIES.toString(),
                "--format",
                "gguf",
                "--method",
                "awq-block",
                "--gguf-type",
                "q4_1",
                "--calib-sample",
                "2",
                "--seq-len",
                "32",
                "--threads",
                "2",
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err())
                .contains("quant: stories260K.bin, 5 layers, dim 64: AWQ's block scales and clipping searched for"
                        + " q4_1; calibrating on 2 sequences of 32 tokens sampled with seed 1")
                .contains("quant: block 5/5 done");
        assertThat(r.out())
                .contains("wrote " + out + " (llama, 47 tensors, matrices q4_1, 5 of them in a fallback type; block"
                        + " linears and norms after AWQ's scales and clipping, searched for q4_1;");
        QuantizedDecoderFile.Source source = QuantizedDecoderFile.readSource(STORIES);
        ForkJoinPool pool = new ForkJoinPool(2);
        try {
            LlamaDecoder fp32 = source.decoder(pool);
            List<int[]> sequences = TokenSampler.sample(fp32, 2, 32, 1, 1.0, 1);
            Map<String, FloatMatrix> folded = new DecoderQuantizer(
                            new DecoderQuantizer.Setting(DecoderQuantizer.Method.AWQ_BLOCK, 4, 32, false, false), pool)
                    .awqFolded(fp32, sequences, GgmlType.Q4_1, null);
            byte[] expected = GgufDecoderFile.plan(source.with(folded), GgmlType.Q4_1, false)
                    .writer()
                    .toBytes();
            assertThat(Files.readAllBytes(out)).isEqualTo(expected);
        } finally {
            pool.shutdown();
        }
        Path x = dir.resolve("x.gguf");
        String[] base = {
            "quantize",
            "--model",
            STORIES.toString(),
            "--format",
            "gguf",
            "--method",
            "awq-block",
            "--out",
            x.toString()
        };
        assertRefused(base, "--method awq-block --format gguf needs --gguf-type q4_0, q4_1, q5_0, q5_1 or q8_0");
        assertRefused(
                concat(base, "--gguf-type", "q4_k"),
                "--gguf-type q4_k: AWQ's searches run for ggml's 32-value blocks, q4_0, q4_1, q5_0, q5_1 or q8_0");
        assertRefused(
                concat(base, "--gguf-type", "q4_0", "--bits", "3"),
                "--bits does not apply to --format gguf --model --method awq-block: the --gguf-type fixes the bits");
        assertThat(x).doesNotExist();
    }

    private static void assertRefused(String[] args, String message) {
        QuantCliTest.Result r = QuantCliTest.run(args);
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err()).contains(message);
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
