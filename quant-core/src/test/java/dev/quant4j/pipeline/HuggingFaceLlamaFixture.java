package dev.quant4j.pipeline;

import dev.quant4j.io.Llama2cCheckpoint;
import dev.quant4j.model.LlamaDecoderTest;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** stories260K's tensors as a Hugging Face folder holds them (q/k rows permuted for the half-split layout). */
final class HuggingFaceLlamaFixture {

    static final String CONFIG = """
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 172,
             "num_hidden_layers": 5, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512,
             "max_position_embeddings": 512, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "hidden_act": "silu",
             "tie_word_embeddings": true, "torch_dtype": "float32"}
            """;

    private HuggingFaceLlamaFixture() {}

    static List<Map.Entry<String, FloatMatrix>> tensors() throws Exception {
        Llama2cCheckpoint c = Llama2cCheckpoint.read(Path.of(HuggingFaceLlamaFixture.class
                .getResource("/stories260K/stories260K.bin")
                .toURI()));
        List<Map.Entry<String, FloatMatrix>> out = new ArrayList<>();
        for (Map.Entry<String, FloatMatrix> e : c.tensors().entrySet()) {
            FloatMatrix m = e.getValue();
            if (e.getKey().endsWith("q_proj.weight")) {
                m = LlamaDecoderTest.permuteForHalfSplit(m, 8, 8);
            } else if (e.getKey().endsWith("k_proj.weight")) {
                m = LlamaDecoderTest.permuteForHalfSplit(m, 4, 8);
            }
            out.add(Map.entry(e.getKey(), m));
        }
        return out;
    }
}
