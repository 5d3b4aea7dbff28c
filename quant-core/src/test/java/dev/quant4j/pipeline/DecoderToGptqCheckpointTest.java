package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.io.DType;
import dev.quant4j.io.GptqCheckpoint;
import dev.quant4j.io.QuantizedSafeTensors.PassThrough;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.model.HuggingFaceLlama;
import dev.quant4j.model.Linear;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.LlamaDecoderTest;
import dev.quant4j.model.NextTokenMetrics;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Result;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole path a user takes with a Hugging Face Llama: folder in, GPTQ block by block, AutoGPTQ checkpoint folder
 * out; read back, the checkpoint is the model that was quantized (up to its FP16 scales).
 */
class DecoderToGptqCheckpointTest {

    @TempDir
    Path dir;

    @Test
    void aHuggingFaceFolderBecomesAGptqCheckpointThatHoldsTheQuantizedModel() throws Exception {
        Path hf = dir.resolve("stories-hf");
        Files.createDirectories(hf);
        Files.writeString(hf.resolve("config.json"), HuggingFaceLlamaFixture.CONFIG);
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (Map.Entry<String, FloatMatrix> e : HuggingFaceLlamaFixture.tensors()) {
            FloatMatrix m = e.getValue();
            w.addF32(e.getKey(), m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()}, m.toArray());
        }
        w.write(hf.resolve("model.safetensors"));
        LlamaDecoder fp32 = HuggingFaceLlama.read(hf, Pools.TWO);

        List<int[]> calibration = TokenSampler.sample(fp32, 8, 64, 1, 1.0, 1);
        Result q = new DecoderQuantizer(new Setting(Method.GPTQ, 4, 32, true, true), Pools.TWO)
                .quantize(fp32, calibration, null);
        // what the layout can hold: stories260K's MLP is 172 wide, not a whole number of int32 words at 4 bits, so
        // those layers stay FP32 in the checkpoint (as quant quantize --format gptq keeps them, with a notice)
        Map<String, QuantizedWeight> fits = new LinkedHashMap<>();
        Map<String, Linear> fitting = new LinkedHashMap<>();
        for (QuantizedWeight qw : q.weights().values()) {
            if (GptqCheckpoint.unsupported(qw) == null) {
                fits.put(qw.name(), qw);
                String module = qw.name().substring(0, qw.name().length() - ".weight".length());
                fitting.put(module, Linear.quantized(module, QuantizedLinear.of(qw, null, Pools.TWO)));
            }
        }
        assertThat(fits).hasSize(4 * 5); // q, k, v, o of every block
        assertThat(GptqCheckpoint.unsupported(q.weights().get("model.layers.0.mlp.up_proj.weight")))
                .contains("172");
        LlamaDecoder quantized = fp32.withLinears(fitting);
        List<PassThrough> other = new ArrayList<>();
        for (Map.Entry<String, FloatMatrix> e : HuggingFaceLlamaFixture.tensors()) {
            if (!fits.containsKey(e.getKey())) {
                FloatMatrix m = e.getValue();
                ByteBuffer b = ByteBuffer.allocate(4 * m.cols() * m.rows()).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(m.toArray());
                long[] shape = m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()};
                other.add(new PassThrough(e.getKey(), DType.F32, shape, b.array()));
            }
        }
        Path out = dir.resolve("stories-gptq");
        GptqCheckpoint.write(out, List.copyOf(fits.values()), other, GptqCheckpoint.Options.defaults(), hf, false);
        assertThat(out.resolve("quantize_config.json")).exists();
        assertThat(Files.readString(out.resolve("config.json"))).contains("\"quantization_config\"");

        GptqCheckpoint.Checkpoint back = GptqCheckpoint.read(out);
        Map<String, QuantizedWeight> weights = back.content().weights();
        assertThat(weights.keySet()).isEqualTo(fits.keySet());
        Map<String, Linear> linears = new LinkedHashMap<>();
        for (QuantizedWeight qw : weights.values()) {
            String module = qw.name().substring(0, qw.name().length() - ".weight".length());
            linears.put(module, Linear.quantized(module, QuantizedLinear.of(qw, null, Pools.TWO)));
        }
        LlamaDecoder loaded = fp32.withLinears(linears);
        int[] seq = TokenSampler.sample(fp32, 1, 64, 1, 1.0, 7).get(0);
        FloatMatrix inMemory = quantized.logits(seq);
        FloatMatrix fromFile = loaded.logits(seq);
        NextTokenMetrics m = new NextTokenMetrics();
        m.add(seq, inMemory, fromFile);
        NextTokenMetrics.Summary s = m.summary();
        System.out.printf(
                "GPTQ checkpoint vs the model in memory: max |logit difference| %.2e, KL %.2e%n",
                LlamaDecoderTest.maxAbsDiff(inMemory, fromFile), s.klMean());
        // FP16 scales in the file: a rounding of 2^-11 relative, nothing more
        assertThat(s.klMean()).isLessThan(1e-3);
        assertThat(s.top1()).isGreaterThan(0.95);
    }
}
