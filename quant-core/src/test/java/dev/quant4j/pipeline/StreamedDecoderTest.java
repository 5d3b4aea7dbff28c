package dev.quant4j.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.io.DType;
import dev.quant4j.io.SafeTensorsWriter;
import dev.quant4j.model.HuggingFaceLlama;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.model.TokenSampler;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.testing.Pools;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A decoder quantized block by block from its files ({@link HuggingFaceLlama#open}, {@link
 * QuantizedDecoderFile#writeStreamed}) gives the file, byte for byte, that the whole decoder in memory gives ({@link
 * DecoderQuantizer#quantize(LlamaDecoder, List, java.util.function.IntConsumer)}, {@link QuantizedDecoderFile#write}):
 * stories260K as a sharded BF16 Hugging Face folder, every method that runs block by block.
 */
class StreamedDecoderTest {

    @TempDir
    static Path dir;

    static Path model;
    static List<int[]> calibration;

    @BeforeAll
    static void folder() throws Exception {
        model = shardedBf16(dir.resolve("hf"));
        LlamaDecoder fp32 = QuantizedDecoderFile.readSource(model).decoder(Pools.TWO);
        calibration = TokenSampler.sample(fp32, 4, 48, 1, 1.0, 1);
    }

    /** stories260K as a Hugging Face folder {@code hf}: BF16 in two shards with their index, and the config. */
    static Path shardedBf16(Path hf) throws Exception {
        Files.createDirectories(hf);
        List<Map.Entry<String, FloatMatrix>> all = HuggingFaceLlamaFixture.tensors();
        int half = all.size() / 2;
        writeBf16(hf.resolve("model-00001-of-00002.safetensors"), all.subList(0, half));
        writeBf16(hf.resolve("model-00002-of-00002.safetensors"), all.subList(half, all.size()));
        StringBuilder index = new StringBuilder("{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
        for (int i = 0; i < all.size(); i++) {
            index.append(i == 0 ? "" : ", ")
                    .append('"')
                    .append(all.get(i).getKey())
                    .append("\": \"model-0000")
                    .append(i < half ? 1 : 2)
                    .append("-of-00002.safetensors\"");
        }
        Files.writeString(
                hf.resolve("model.safetensors.index.json"), index.append("}}").toString());
        Files.writeString(hf.resolve("config.json"), HuggingFaceLlamaFixture.CONFIG);
        return hf;
    }

    static void writeBf16(Path file, List<Map.Entry<String, FloatMatrix>> tensors) throws Exception {
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (Map.Entry<String, FloatMatrix> e : tensors) {
            FloatMatrix m = e.getValue();
            long[] shape = m.rows() == 1 ? new long[] {m.cols()} : new long[] {m.rows(), m.cols()};
            float[] v = m.toArray();
            ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
            for (float f : v) {
                b.putShort((short) (Float.floatToRawIntBits(f) >>> 16));
            }
            w.add(e.getKey(), DType.BF16, shape, b.array());
        }
        w.write(file);
    }

    static Stream<Arguments> settings() {
        return Stream.of(
                Arguments.of(new Setting(Method.RTN, 4, 32, false, false)),
                Arguments.of(new Setting(Method.NF4, 4, 64, false, false)),
                Arguments.of(new Setting(Method.GPTQ, 4, 32, false, false)),
                Arguments.of(new Setting(Method.GPTQ, 3, 32, true, true)),
                Arguments.of(new Setting(Method.AWQ, 4, 32, false, false)));
    }

    @ParameterizedTest
    @MethodSource("settings")
    void streamedFromTheFilesEqualsTheWholeDecoderInMemory(Setting setting) throws Exception {
        String method = setting.method().id();
        Path whole = dir.resolve(setting.label().replace(' ', '_') + "-whole.safetensors");
        QuantizedDecoderFile.Source source = QuantizedDecoderFile.readSource(model);
        DecoderQuantizer.Result result =
                new DecoderQuantizer(setting, Pools.TWO).quantize(source.decoder(Pools.TWO), calibration, null);
        QuantizedDecoderFile.write(whole, source, result, method);

        Path streamed = dir.resolve(setting.label().replace(' ', '_') + "-streamed.safetensors");
        List<Integer> blocks = new ArrayList<>();
        List<DecoderQuantizer.LayerReport> reports;
        // one calibration sequence per round of tapped inputs: the rounds must not change a sum
        try (HuggingFaceLlama.Checkpoint files = HuggingFaceLlama.open(model, Pools.TWO)) {
            reports = QuantizedDecoderFile.writeStreamed(
                    streamed,
                    files,
                    new DecoderQuantizer(setting, Pools.TWO, 1),
                    calibration,
                    method,
                    (b, w, r) -> blocks.add(b + 1));
        }
        assertThat(Files.mismatch(whole, streamed)).isEqualTo(-1L);
        assertThat(blocks).containsExactly(1, 2, 3, 4, 5);
        assertThat(reports).isEqualTo(result.layers());
        assertThat(reports).hasSize(35);
        try (Stream<Path> left = Files.list(dir)) {
            assertThat(left.map(p -> p.getFileName().toString())).noneMatch(n -> n.endsWith(".spill"));
        }
    }

    @Test
    void blockLevelAwqNeedsTheWholeDecoder() throws Exception {
        Path out = dir.resolve("awq-block.safetensors");
        try (HuggingFaceLlama.Checkpoint files = HuggingFaceLlama.open(model, Pools.TWO)) {
            assertThatThrownBy(() -> QuantizedDecoderFile.writeStreamed(
                            out,
                            files,
                            new DecoderQuantizer(new Setting(Method.AWQ_BLOCK, 4, 32, false, false), Pools.TWO),
                            calibration,
                            "awq-block",
                            null))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("awq-block changes the norm weights");
        }
        assertThat(out).doesNotExist();
        try (Stream<Path> left = Files.list(dir)) {
            assertThat(left.map(p -> p.getFileName().toString())).noneMatch(n -> n.endsWith(".spill"));
        }
    }

    @Test
    void aBlockReadFromTheFilesHoldsThatBlockAlone() throws Exception {
        try (HuggingFaceLlama.Checkpoint files = HuggingFaceLlama.open(model, Pools.TWO)) {
            LlamaDecoder whole = QuantizedDecoderFile.readSource(model).decoder(Pools.TWO);
            LlamaDecoder block2 = files.block(2);
            assertThat(block2.whole()).isFalse();
            assertThat(block2.linears()).hasSize(7);
            assertThat(block2.linears().get(0).name()).isEqualTo("model.layers.2.self_attn.q_proj");
            int[] tokens = calibration.get(0);
            // the embeddings read row by row equal the whole table's, and block 2 computes what the whole model does
            FloatMatrix h = files.embed(tokens);
            assertThat(h.toArray()).containsExactly(whole.embed(tokens).toArray());
            assertThat(block2.block(2, h, null).toArray())
                    .containsExactly(whole.block(2, h, null).toArray());
            assertThatThrownBy(() -> block2.block(1, h, null))
                    .hasMessageContaining("block 1 is not held by this part of the decoder");
            assertThatThrownBy(() -> block2.logits(tokens)).hasMessageContaining("forward needs the whole decoder");
            assertThatThrownBy(() -> block2.embed(tokens)).hasMessageContaining("holds no token embeddings");
            assertThatThrownBy(() -> files.embed(new int[] {512}))
                    .hasMessageContaining("token 0 has id 512, the vocabulary has 512");
            assertThatThrownBy(() -> files.block(5)).hasMessageContaining("no block 5 (the model has 5)");
        }
    }
}
