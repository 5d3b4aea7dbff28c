package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.io.Llama2cCheckpoint;
import dev.quant4j.io.MalformedTensorFileException;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Result;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.pipeline.QuantizedDecoderFile.Loaded;
import dev.quant4j.pipeline.QuantizedDecoderFile.Source;
import dev.quant4j.pipeline.QuantizedDecoderFile.SourceFormat;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A quantized stories260K in one file: read back, it is the model that was quantized (the same logits, bit for bit),
 * and its llama2.c checkpoint holds the dequantized weights beside the original's other tensors.
 */
class QuantizedDecoderFileTest {

    static final Path STORIES = resource();

    @TempDir
    Path dir;

    static Path resource() {
        try {
            return Path.of(QuantizedDecoderFileTest.class
                    .getResource("/stories260K/stories260K.bin")
                    .toURI());
        } catch (java.net.URISyntaxException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void theFileIsTheQuantizedModelAndWritesBackAsALlama2cCheckpoint() throws Exception {
        Source source = QuantizedDecoderFile.readSource(STORIES);
        assertThat(source.format()).isEqualTo(SourceFormat.LLAMA2C);
        LlamaDecoder fp32 = source.decoder(Pools.TWO);
        Result q = new DecoderQuantizer(new Setting(Method.NF4, 4, 32, false, false), Pools.TWO)
                .quantize(fp32, null, null);
        Path file = dir.resolve("q.safetensors");
        QuantizedDecoderFile.write(file, source, q, "nf4");

        Loaded loaded = QuantizedDecoderFile.read(file);
        assertThat(loaded.config()).isEqualTo(fp32.config());
        assertThat(loaded.format()).isEqualTo(SourceFormat.LLAMA2C);
        assertThat(loaded.content().weights().keySet()).isEqualTo(q.weights().keySet());
        int[] seq = TokenSampler.sample(fp32, 1, 40, 1, 1.0, 3).get(0);
        assertThat(loaded.model(Pools.TWO).logits(seq).toArray())
                .containsExactly(q.model().logits(seq).toArray());

        Llama2cCheckpoint original = Llama2cCheckpoint.read(STORIES);
        Llama2cCheckpoint back = loaded.toLlama2c("back.bin");
        assertThat(back.header()).isEqualTo(original.header());
        assertThat(back.tensors().keySet())
                .containsExactlyInAnyOrderElementsOf(original.tensors().keySet());
        assertThat(back.toBytes()).hasSameSizeAs(Files.readAllBytes(STORIES));
        for (Map.Entry<String, FloatMatrix> e : back.tensors().entrySet()) {
            QuantizedWeight w = q.weights().get(e.getKey());
            float[] expected = w == null
                    ? original.tensors().get(e.getKey()).toArray()
                    : w.dequantize().toArray();
            assertThat(e.getValue().toArray()).as(e.getKey()).containsExactly(expected);
        }
        assertThat(back.freqsCos().toArray())
                .containsExactly(original.freqsCos().toArray());
        assertThat(back.freqsSin().toArray())
                .containsExactly(original.freqsSin().toArray());
    }

    @Test
    void aFileWithoutTheConfigurationIsNamed() throws Exception {
        Path plain = dir.resolve("plain.safetensors");
        new SafeTensorsWriter().addF32("w", new long[] {1}, new float[] {1}).write(plain);
        assertThatThrownBy(() -> QuantizedDecoderFile.read(plain))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("plain.safetensors: no quant4j.decoder metadata");
        Path bad = dir.resolve("bad.safetensors");
        new SafeTensorsWriter()
                .metadata(QuantizedDecoderFile.CONFIG_KEY, "{\"source_format\":\"gguf\"}")
                .addF32("w", new long[] {1}, new float[] {1})
                .write(bad);
        assertThatThrownBy(() -> QuantizedDecoderFile.read(bad))
                .hasMessageContaining("source_format \"gguf\", expected \"llama2c\" or \"huggingface\"");
        assertThatThrownBy(() -> QuantizedDecoderFile.readSource(Files.createFile(dir.resolve("m.gguf"))))
                .hasMessageContaining("expected a llama2.c checkpoint (.bin) or a Hugging Face model folder");
    }
}
