package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.Gguf;
import dev.quant4j.io.GgufValue;
import dev.quant4j.io.GgufWriter;
import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.LlamaDecoderTest;
import dev.quant4j.model.RopeLayout;
import dev.quant4j.pipeline.GgufDecoderFile.Plan;
import dev.quant4j.pipeline.GgufDecoderFile.Stored;
import dev.quant4j.pipeline.QuantizedDecoderFile.Source;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * stories260K as a GGUF {@code llama} model: the keys and tensor names llama.cpp's converters write, the types and
 * fallbacks of llama.cpp's quantize, a Hugging Face folder's q/k rows permuted back, and the file read back by quant4j
 * is the same model.
 */
class GgufDecoderFileTest {

    static final int[] TOKENS = {1, 306, 463, 462, 458, 465, 466, 465, 465, 465, 465, 456, 372, 473, 456, 283};

    @TempDir
    Path dir;

    @Test
    void aLlama2cCheckpointBecomesALlamaModelWithLlamaCppsNames() throws Exception {
        Source source = QuantizedDecoderFile.readSource(QuantizedDecoderFileTest.STORIES);
        Plan plan = GgufDecoderFile.plan(source, GgmlType.F32, false);
        Path file = dir.resolve("stories260K-f32.gguf");
        plan.write(file);
        assertThat(plan.written().skipped()).containsExactly("freqs_cos", "freqs_sin");

        try (Gguf g = Gguf.open(file)) {
            Map<String, GgufValue> m = g.metadata();
            Map<String, Object> expected = new LinkedHashMap<>();
            expected.put("general.architecture", "llama");
            expected.put("general.name", "stories260K.bin");
            expected.put("llama.vocab_size", 512L);
            expected.put("llama.context_length", 512L);
            expected.put("llama.embedding_length", 64L);
            expected.put("llama.feed_forward_length", 172L);
            expected.put("llama.block_count", 5L);
            expected.put("llama.attention.head_count", 8L);
            expected.put("llama.attention.head_count_kv", 4L);
            expected.put("llama.attention.layer_norm_rms_epsilon", 1e-5f);
            expected.put("llama.rope.dimension_count", 8L);
            expected.put("llama.rope.freq_base", 10000f);
            expected.put("general.file_type", 0L);
            expected.put("general.quantization_version", 2L);
            expected.put("tokenizer.ggml.model", "llama");
            for (Map.Entry<String, Object> e : expected.entrySet()) {
                assertThat(m.get(e.getKey()).value()).as(e.getKey()).isEqualTo(e.getValue());
            }
            List<Object> tokens = m.get("tokenizer.ggml.tokens").asArray().values();
            assertThat(tokens).hasSize(512);
            assertThat(tokens.subList(0, 5)).containsExactly("<unk>", "<s>", "</s>", "<0x00>", "<0x01>");
            assertThat(tokens.get(258)).isEqualTo("<0xFF>");
            assertThat(tokens.get(259)).isEqualTo("<tok_259>");
            assertThat(m.get("tokenizer.ggml.scores").asArray().values()).hasSize(512);
            List<Object> types = m.get("tokenizer.ggml.token_type").asArray().values();
            assertThat(types.subList(0, 4)).containsExactly(2L, 3L, 3L, 6L);
            assertThat(types.get(511)).isEqualTo(1L);
            assertThat(m.get("tokenizer.ggml.bos_token_id").asLong()).isEqualTo(1);

            List<String> names = g.tensors().stream().map(Gguf.TensorInfo::name).toList();
            assertThat(names).hasSize(2 + 5 * 9).doesNotContain("output.weight");
            assertThat(names.subList(0, 11))
                    .containsExactly(
                            "token_embd.weight",
                            "blk.0.attn_norm.weight",
                            "blk.0.attn_q.weight",
                            "blk.0.attn_k.weight",
                            "blk.0.attn_v.weight",
                            "blk.0.attn_output.weight",
                            "blk.0.ffn_norm.weight",
                            "blk.0.ffn_gate.weight",
                            "blk.0.ffn_up.weight",
                            "blk.0.ffn_down.weight",
                            "blk.1.attn_norm.weight");
            assertThat(names.get(names.size() - 1)).isEqualTo("output_norm.weight");
            assertThat(g.tensor("token_embd.weight").ne()).containsExactly(64, 512);
            assertThat(g.tensor("blk.0.attn_k.weight").ne()).containsExactly(64, 32);
            assertThat(g.tensor("blk.0.ffn_down.weight").ne()).containsExactly(172, 64);
            assertThat(g.tensor("blk.0.attn_norm.weight").ne()).containsExactly(64);
            assertThat(g.tensors()).allMatch(t -> t.type() == GgmlType.F32);
        }

        // read back, it is the same model: the same floats in the same layout, so the same logits bit for bit
        GgufDecoderFile.Loaded loaded = GgufDecoderFile.read(file);
        LlamaDecoder fp32 = source.decoder(Pools.TWO);
        assertThat(loaded.config()).isEqualTo(fp32.config());
        assertThat(loaded.decoder(Pools.TWO).logits(TOKENS).toArray())
                .isEqualTo(fp32.logits(TOKENS).toArray());
    }

    @Test
    void matricesTakeTheTypeOrLlamaCppsFallbackAndNormsStayF32() {
        Source source = source();
        for (Stored s :
                GgufDecoderFile.plan(source, GgmlType.Q8_0, false).written().tensors()) {
            GgmlType expected = s.ne().length == 1 ? GgmlType.F32 : s.ne()[0] == 172 ? GgmlType.F16 : GgmlType.Q8_0;
            assertThat(s.type()).as(s.name()).isEqualTo(expected);
            assertThat(s.fallback() != null).as(s.name()).isEqualTo(s.ne()[0] == 172);
        }
        // q4_K's 256-blocks fit none of stories260K's rows: 64 wide falls back to q5_0, 172 wide to F16
        for (Stored s :
                GgufDecoderFile.plan(source, GgmlType.Q4_K, false).written().tensors()) {
            if (s.ne().length == 2) {
                assertThat(s.type()).as(s.name()).isEqualTo(s.ne()[0] == 64 ? GgmlType.Q5_0 : GgmlType.F16);
            }
        }
        assertThat(GgufDecoderFile.storedType(GgmlType.Q6_K, 96)).isEqualTo(GgmlType.Q8_0);
        assertThat(GgufDecoderFile.storedType(GgmlType.Q5_K, 96)).isEqualTo(GgmlType.Q5_1);
        assertThat(GgufDecoderFile.storedType(GgmlType.Q4_K, 512)).isEqualTo(GgmlType.Q4_K);
        assertThatThrownBy(() -> GgufDecoderFile.plan(source, GgmlType.Q4_0, true))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("model.layers.0.mlp.down_proj.weight")
                .hasMessageContaining("172");
    }

    /** A Hugging Face folder of the same model: its q/k rows permuted back, the GGUF tensors are the same bytes. */
    @Test
    void aHuggingFaceFolderGivesTheSameTensorsAsTheLlama2cCheckpoint() throws Exception {
        Path hf = dir.resolve("stories-hf");
        Files.createDirectories(hf);
        Files.writeString(hf.resolve("config.json"), HuggingFaceLlamaFixture.CONFIG);
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (Map.Entry<String, FloatMatrix> e : HuggingFaceLlamaFixture.tensors()) {
            FloatMatrix m = e.getValue();
            w.addF32(e.getKey(), m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()}, m.toArray());
        }
        w.write(hf.resolve("model.safetensors"));
        Source fromHf = QuantizedDecoderFile.readSource(hf);
        assertThat(fromHf.config().rope()).isEqualTo(RopeLayout.HALF_SPLIT);
        for (GgmlType type : List.of(GgmlType.F32, GgmlType.Q4_0)) {
            Path a = dir.resolve("bin-" + type + ".gguf");
            Path b = dir.resolve("hf-" + type + ".gguf");
            GgufDecoderFile.plan(source(), type, false).write(a);
            GgufDecoderFile.plan(fromHf, type, false).write(b);
            try (Gguf ga = Gguf.open(a);
                    Gguf gb = Gguf.open(b)) {
                assertThat(gb.tensors()).isEqualTo(ga.tensors());
                for (Gguf.TensorInfo t : ga.tensors()) {
                    assertThat(gb.readBytes(t.name())).as(t.name()).isEqualTo(ga.readBytes(t.name()));
                }
            }
        }
    }

    @Test
    void toInterleavedUndoesHuggingFacesPermutation() {
        Random r = new Random(7);
        int heads = 3;
        int d = 8;
        float[] v = new float[heads * d * 5];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        FloatMatrix w = FloatMatrix.of("w", heads * d, 5, v, 0);
        FloatMatrix back = GgufDecoderFile.toInterleaved(LlamaDecoderTest.permuteForHalfSplit(w, heads, d), heads, d);
        assertThat(back.toArray()).isEqualTo(v);
        // a bias [1, n] is permuted as a column
        FloatMatrix bias = FloatMatrix.of("b", 1, heads * d, Arrays.copyOf(v, heads * d), 0);
        FloatMatrix biasColumn = FloatMatrix.of("b", heads * d, 1, bias.toArray(), 0);
        FloatMatrix permuted = LlamaDecoderTest.permuteForHalfSplit(biasColumn, heads, d);
        assertThat(GgufDecoderFile.toInterleaved(FloatMatrix.of("b", 1, heads * d, permuted.toArray(), 0), heads, d)
                        .toArray())
                .isEqualTo(bias.toArray());
    }

    @Test
    void readingRefusesAFileOfAnotherArchitecture() throws Exception {
        Path ggml = Path.of(getClass().getResource("/ggml/ggml-written.gguf").toURI());
        assertThatThrownBy(() -> GgufDecoderFile.read(ggml))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("general.architecture");
    }

    @Test
    void readingFromBytesIsReadingTheFileAndABlockCountTheTensorsCannotFillIsNamed() throws Exception {
        Plan plan = GgufDecoderFile.plan(source(), GgmlType.Q8_0, false);
        Path file = dir.resolve("m.gguf");
        plan.write(file);
        byte[] bytes = Files.readAllBytes(file);
        GgufDecoderFile.Loaded fromFile = GgufDecoderFile.read(file);
        GgufDecoderFile.Loaded fromBytes = GgufDecoderFile.read(bytes, "m.gguf");
        assertThat(fromBytes.config()).isEqualTo(fromFile.config());
        assertThat(fromBytes.decoder(Pools.ONE).logits(TOKENS).toArray())
                .isEqualTo(fromFile.decoder(Pools.ONE).logits(TOKENS).toArray());

        // a block_count of 2^30 once listed 14 names per block before looking for the first (out of memory)
        Gguf g = Gguf.parse(bytes, "m.gguf");
        GgufWriter w = new GgufWriter().putAll(g.metadata()).put("llama.block_count", GgufValue.uint32(1 << 30));
        for (Gguf.TensorInfo t : g.tensors()) {
            w.addTensor(t.name(), t.ne(), t.type(), g.readBytes(t.name()));
        }
        assertThatThrownBy(() -> GgufDecoderFile.read(w.toBytes(), "big.gguf"))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessage("big.gguf: llama.block_count is 1073741824, but the file holds 47 tensors (a block has 9,"
                        + " the model 2 more)");
    }

    static Source source() {
        try {
            return QuantizedDecoderFile.readSource(QuantizedDecoderFileTest.STORIES);
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
    }
}
