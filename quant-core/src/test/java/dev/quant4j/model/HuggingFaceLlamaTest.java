package dev.quant4j.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.internal.Json;
import dev.quant4j.io.DType;
import dev.quant4j.io.Llama2cCheckpoint;
import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.io.ModelFolder;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hugging Face folders made from stories260K as transformers' conversion makes them (q/k rows permuted for the
 * half-split rotary layout), single-file and sharded, F32 and BF16: the decoder read from them gives the llama2.c
 * model's logits.
 */
class HuggingFaceLlamaTest {

    static Llama2cCheckpoint checkpoint;
    static LlamaDecoder reference;
    static final int[] TOKENS = {1, 306, 463, 462, 458, 465, 466, 465, 78, 509, 283, 341};

    @TempDir
    Path dir;

    @BeforeAll
    static void load() throws Exception {
        checkpoint = Llama2cCheckpoint.read(Path.of(HuggingFaceLlamaTest.class
                .getResource("/stories260K/stories260K.bin")
                .toURI()));
        reference = LlamaDecoder.fromLlama2c(checkpoint, Pools.TWO);
    }

    static final String CONFIG = """
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 172,
             "num_hidden_layers": 5, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512,
             "max_position_embeddings": 512, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "hidden_act": "silu",
             "rope_scaling": null, "tie_word_embeddings": true, "torch_dtype": "float32"}
            """;

    /** The checkpoint's tensors as Hugging Face stores them: q/k permuted, norms 1-D. */
    static List<Map.Entry<String, FloatMatrix>> hfTensors() {
        LlamaConfig c = reference.config();
        List<Map.Entry<String, FloatMatrix>> out = new ArrayList<>();
        for (Map.Entry<String, FloatMatrix> e : checkpoint.tensors().entrySet()) {
            FloatMatrix m = e.getValue();
            if (e.getKey().endsWith("q_proj.weight")) {
                m = LlamaDecoderTest.permuteForHalfSplit(m, c.heads(), c.headDim());
            } else if (e.getKey().endsWith("k_proj.weight")) {
                m = LlamaDecoderTest.permuteForHalfSplit(m, c.kvHeads(), c.headDim());
            }
            out.add(Map.entry(e.getKey(), m));
        }
        return out;
    }

    static void write(Path file, List<Map.Entry<String, FloatMatrix>> tensors, DType dtype) throws Exception {
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (Map.Entry<String, FloatMatrix> e : tensors) {
            FloatMatrix m = e.getValue();
            long[] shape = m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()};
            float[] v = m.toArray();
            if (dtype == DType.F32) {
                w.addF32(e.getKey(), shape, v);
            } else {
                ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : v) {
                    b.putShort((short) (Float.floatToRawIntBits(f) >>> 16)); // BF16 by truncation
                }
                w.add(e.getKey(), DType.BF16, shape, b.array());
            }
        }
        w.add("model.position_ids", DType.I64, new long[] {1}, new byte[8]);
        w.write(file);
    }

    @Test
    void aSingleFileFolderGivesTheLlama2cModelsLogits() throws Exception {
        Files.writeString(dir.resolve("config.json"), CONFIG);
        write(dir.resolve("model.safetensors"), hfTensors(), DType.F32);
        LlamaDecoder hf = HuggingFaceLlama.read(dir, Pools.TWO);
        assertThat(hf.config().rope()).isEqualTo(RopeLayout.HALF_SPLIT);
        assertThat(hf.config().normEps()).isEqualTo(1e-5);
        // Hugging Face's permuted q/k rows reorder the terms of every attention score, a float sum: the logits
        // differ by float rounding, as run.c's do (about 2.5e-5 measured)
        assertThat(LlamaDecoderTest.maxAbsDiff(hf.logits(TOKENS), reference.logits(TOKENS)))
                .isLessThan(LlamaDecoderTest.RUNC_TOLERANCE);
        // the same files held in memory: the same model
        Map<String, byte[]> files = Map.of(
                "config.json", Files.readAllBytes(dir.resolve("config.json")),
                "model.safetensors", Files.readAllBytes(dir.resolve("model.safetensors")));
        LlamaDecoder inMemory = HuggingFaceLlama.read(ModelFolder.of(files, "mem"), Pools.TWO);
        assertThat(inMemory.source()).isEqualTo("mem");
        assertThat(inMemory.config()).isEqualTo(hf.config());
        assertThat(inMemory.logits(TOKENS).toArray())
                .isEqualTo(hf.logits(TOKENS).toArray());
    }

    @Test
    void aShardedBf16FolderReadsEveryShard() throws Exception {
        Files.writeString(dir.resolve("config.json"), CONFIG);
        List<Map.Entry<String, FloatMatrix>> all = hfTensors();
        int half = all.size() / 2;
        write(dir.resolve("model-00001-of-00002.safetensors"), all.subList(0, half), DType.BF16);
        write(dir.resolve("model-00002-of-00002.safetensors"), all.subList(half, all.size()), DType.BF16);
        StringBuilder index = new StringBuilder("{\"metadata\": {}, \"weight_map\": {");
        for (int i = 0; i < all.size(); i++) {
            index.append(i == 0 ? "" : ", ")
                    .append('"')
                    .append(all.get(i).getKey())
                    .append("\": \"model-0000")
                    .append(i < half ? 1 : 2)
                    .append("-of-00002.safetensors\"");
        }
        // position ids are in both shards: name them in neither (the index lists what it lists)
        Files.writeString(
                dir.resolve("model.safetensors.index.json"), index.append("}}").toString());
        assertThatThrownBy(() -> HuggingFaceLlama.read(dir, Pools.TWO))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("tensor 'model.position_ids' is in 'model-00001-of-00002.safetensors', the"
                        + " index says null");
        write(dir.resolve("model-00001-of-00002.safetensors"), all.subList(0, half), DType.BF16);
        // rewrite the first shard without position ids by hand: write() always adds them, so drop them from the second
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (Map.Entry<String, FloatMatrix> e : all.subList(0, half)) {
            FloatMatrix m = e.getValue();
            w.addF32(e.getKey(), m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()}, m.toArray());
        }
        w.write(dir.resolve("model-00001-of-00002.safetensors"));
        String withIds = Files.readString(dir.resolve("model.safetensors.index.json"))
                .replace("}}", ", \"model.position_ids\": \"model-00002-of-00002.safetensors\"}}");
        Files.writeString(dir.resolve("model.safetensors.index.json"), withIds);
        LlamaDecoder hf = HuggingFaceLlama.read(dir, Pools.TWO);
        // the expected model: the second shard's tensors rounded to BF16 the way write() stored them
        Map<String, FloatMatrix> expected = new java.util.LinkedHashMap<>();
        for (int i = 0; i < all.size(); i++) {
            FloatMatrix m = all.get(i).getValue();
            if (i >= half) {
                float[] v = m.toArray();
                for (int j = 0; j < v.length; j++) {
                    v[j] = Float.intBitsToFloat(Float.floatToRawIntBits(v[j]) & 0xFFFF0000);
                }
                m = FloatMatrix.of(m.name(), m.rows(), m.cols(), v, 0);
            }
            expected.put(all.get(i).getKey(), m);
        }
        LlamaDecoder bf16 = LlamaDecoder.of("expected", hf.config(), expected, Pools.TWO);
        assertThat(LlamaDecoderTest.maxAbsDiff(hf.logits(TOKENS), bf16.logits(TOKENS)))
                .isLessThan(1e-5);
        // and BF16 did change the model
        assertThat(LlamaDecoderTest.maxAbsDiff(hf.logits(TOKENS), reference.logits(TOKENS)))
                .isGreaterThan(1e-3);
    }

    @Test
    void missingShardsAndUnsupportedConfigsAreNamed() throws Exception {
        Files.writeString(dir.resolve("config.json"), CONFIG);
        assertThatThrownBy(() -> HuggingFaceLlama.read(dir, Pools.ONE))
                .hasMessageContaining("neither model.safetensors nor model.safetensors.index.json");
        Files.writeString(
                dir.resolve("model.safetensors.index.json"),
                "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00001.safetensors\"}}");
        assertThatThrownBy(() -> HuggingFaceLlama.read(dir, Pools.ONE))
                .hasMessageContaining("shard 'model-00001-of-00001.safetensors' named by the index is missing");
        assertThatThrownBy(() -> HuggingFaceLlama.config("c", CONFIG.replace("LlamaForCausalLM", "GPT2LMHeadModel")))
                .hasMessageContaining("architectures [\"GPT2LMHeadModel\"] is not supported");
        assertThatThrownBy(() -> HuggingFaceLlama.config("c", CONFIG.replace("[\"LlamaForCausalLM\"]", "[null]")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("architectures [null] is not supported");
        for (String shard : new String[] {"..", ".", "", "../model.safetensors", "a\u0000b"}) {
            Files.writeString(
                    dir.resolve("model.safetensors.index.json"),
                    "{\"weight_map\": {\"model.norm.weight\": " + Json.quote(shard) + "}}");
            assertThatThrownBy(() -> HuggingFaceLlama.read(dir, Pools.ONE))
                    .isInstanceOf(MalformedTensorFileException.class)
                    .hasMessageContaining("tensor 'model.norm.weight' maps to " + Json.quote(shard)
                            + ", expected a file name in the folder");
        }
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": {}}");
        assertThatThrownBy(() -> HuggingFaceLlama.read(dir, Pools.ONE))
                .hasMessageContaining("model.safetensors.index.json: \"weight_map\" is empty");
        assertThatThrownBy(() -> HuggingFaceLlama.config(
                        "c", CONFIG.replace("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"llama3\"}")))
                .hasMessageContaining("rope_scaling {\"type\":\"llama3\"} is not supported");
        assertThatThrownBy(() -> HuggingFaceLlama.config("c", CONFIG.replace("\"vocab_size\": 512,", "")))
                .hasMessage("c: no key 'vocab_size'");
        assertThatThrownBy(() -> HuggingFaceLlama.config(
                        "c", CONFIG.replace("\"num_key_value_heads\": 4", "\"num_key_value_heads\": 3")))
                .hasMessageContaining("c: heads 8 is not a multiple of kv_heads 3");
        LlamaConfig defaults = HuggingFaceLlama.config(
                "c", CONFIG.replace("\"num_key_value_heads\": 4,", "").replace("\"rms_norm_eps\": 1e-05,", ""));
        assertThat(defaults.kvHeads()).isEqualTo(8);
        assertThat(defaults.normEps()).isEqualTo(1e-6);
    }
}
