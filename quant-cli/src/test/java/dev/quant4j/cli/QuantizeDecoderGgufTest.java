package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.Gguf;
import dev.quant4j.pipeline.GgufDecoderFile;
import dev.quant4j.pipeline.QuantizedDecoderFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code quant quantize --model model.bin --format gguf}: stories260K as a llama.cpp model, the same bytes the API
 * writes, each fallback and the placeholder vocabulary said; options that do not apply are refused.
 */
class QuantizeDecoderGgufTest {

    static final Path STORIES = DecoderEvalCommandTest.STORIES;

    @TempDir
    Path dir;

    @Test
    void writesTheApisFileAndSaysWhatFellBack() throws Exception {
        Path out = dir.resolve("stories-q8_0.gguf");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                STORIES.toString(),
                "--method",
                "rtn",
                "--format",
                "gguf",
                "--gguf-type",
                "q8_0",
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .contains("blk.0.attn_q.weight (model.layers.0.self_attn.q_proj.weight) [64 x 64] q8_0: 8.500"
                        + " bits/weight")
                .contains("blk.4.ffn_down.weight (model.layers.4.mlp.down_proj.weight) [64 x 172] f16")
                .contains("wrote " + out + " (llama, 47 tensors, matrices q8_0, 5 of them in a fallback type;");
        assertThat(r.err())
                .contains("quant: 'blk.0.ffn_down.weight' written as f16, not q8_0: its rows of 172 values are not"
                        + " whole q8_0 blocks of 32 (as llama.cpp's quantize falls back)")
                .contains("quant: 'freqs_cos' not written")
                .contains("the vocabulary is a placeholder of 512 tokens");
        byte[] api = GgufDecoderFile.plan(QuantizedDecoderFile.readSource(STORIES), GgmlType.Q8_0, false)
                .writer()
                .toBytes();
        assertThat(Files.readAllBytes(out)).isEqualTo(api);
        try (Gguf g = Gguf.open(out)) {
            assertThat(g.metadata().get("general.file_type").asLong()).isEqualTo(7);
        }
    }

    /**
     * A Hugging Face folder is streamed on --threads threads (the heap holds a few row blocks): the bytes and the report
     * of the model read whole.
     */
    @Test
    void aFolderIsStreamedIntoTheFileOfTheModelReadWhole() throws Exception {
        Path hf = TextCalibrationTest.folder(dir, "hf", 512, null);
        Path out = dir.resolve("hf-q4_k.gguf");
        QuantCliTest.Result r = QuantCliTest.run(
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "rtn",
                "--format",
                "gguf",
                "--gguf-type",
                "q4_k",
                "--threads",
                "2",
                "--out",
                out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        GgufDecoderFile.Plan plan = GgufDecoderFile.plan(QuantizedDecoderFile.readSource(hf), GgmlType.Q4_K, false);
        assertThat(Files.readAllBytes(out)).isEqualTo(plan.writer().toBytes());
        for (GgufDecoderFile.Stored s : plan.written().tensors()) {
            assertThat(r.out()).contains(s.name() + " (" + s.source() + ") ");
        }
        assertThat(r.out())
                .contains("blk.0.attn_q.weight (model.layers.0.self_attn.q_proj.weight) [64 x 64] q5_0")
                .contains("wrote " + out + " (llama, 47 tensors, matrices q4_K, 36 of them in a fallback type;");
        assertThat(r.err())
                .contains("quant: 'blk.0.ffn_down.weight' written as f16, not q4_K")
                .contains(hf + " has no tokenizer.json");
        // without --threads (one per core): the same file
        Path again = dir.resolve("again.gguf");
        QuantCliTest.Result r2 = QuantCliTest.run(
                "quantize",
                "--model",
                hf.toString(),
                "--method",
                "rtn",
                "--format",
                "gguf",
                "--gguf-type",
                "q4_k",
                "--out",
                again.toString());
        assertThat(r2.code()).as(r2.err()).isZero();
        assertThat(Files.readAllBytes(again)).isEqualTo(Files.readAllBytes(out));
    }

    @Test
    void refusesWhatDoesNotApply() {
        Path out = dir.resolve("x.gguf");
        String[] base = {
            "quantize",
            "--model",
            STORIES.toString(),
            "--format",
            "gguf",
            "--gguf-type",
            "q4_0",
            "--out",
            out.toString()
        };
        QuantCliTest.Result awq = QuantCliTest.run(concat(base, "--method", "awq"));
        assertThat(awq.code()).isEqualTo(2);
        assertThat(awq.err())
                .contains("--method awq is not available")
                .contains("--method rtn")
                .contains("--method gptq");
        // gptq's default --group-size 128 has no ggml type
        QuantCliTest.Result gptq = QuantCliTest.run(concat(base, "--method", "gptq"));
        assertThat(gptq.code()).isEqualTo(2);
        assertThat(gptq.err())
                .contains("--group-size 128 --asym has no ggml type")
                .contains("q4_0 (--bits 4");
        QuantCliTest.Result calib = QuantCliTest.run(concat(base, "--method", "rtn", "--calib-sample", "4"));
        assertThat(calib.code()).isEqualTo(2);
        assertThat(calib.err()).contains("--calib-sample does not apply to --format gguf --model --method rtn");
        QuantCliTest.Result group = QuantCliTest.run(concat(base, "--method", "rtn", "--group-size", "64"));
        assertThat(group.code()).isEqualTo(2);
        assertThat(group.err()).contains("--group-size does not apply to --format gguf --model");
        QuantCliTest.Result strict = QuantCliTest.run(concat(base, "--method", "rtn", "--strict"));
        assertThat(strict.code()).isEqualTo(2);
        assertThat(strict.err()).contains("model.layers.0.mlp.down_proj.weight").contains("strict");
        QuantCliTest.Result threads = QuantCliTest.run(concat(base, "--method", "rtn", "--threads", "2"));
        assertThat(threads.code()).isEqualTo(2);
        assertThat(threads.err()).contains("--threads does not apply to a llama2.c checkpoint");
        QuantCliTest.Result noType = QuantCliTest.run(
                "quantize",
                "--model",
                STORIES.toString(),
                "--method",
                "rtn",
                "--format",
                "gguf",
                "--out",
                out.toString());
        assertThat(noType.code()).isEqualTo(2);
        assertThat(noType.err()).contains("--gguf-type");
        assertThat(out).doesNotExist();
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
