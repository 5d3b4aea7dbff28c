package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.internal.Json;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.HalfFloats;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The GPTQ checkpoint layout against fixtures made by AutoGPTQ's own {@code QuantLinear.pack} and dequantization
 * ({@code src/test/resources/gptq-checkpoint/README.md}): same integer codes, zero-points, FP16 scales and g_idx in,
 * the same bytes out; read back, the same values AutoGPTQ computes.
 */
class GptqCheckpointTest {

    @TempDir
    Path dir;

    static Stream<String> fixtures() {
        return Stream.of(2, 3, 4, 8)
                .flatMap(b -> Stream.of("sym", "asym")
                        .flatMap(s -> Stream.of(
                                "b" + b + "-" + s + "-noact.safetensors", "b" + b + "-" + s + "-act.safetensors")));
    }

    /** A fixture: AutoGPTQ's inputs ({@code codes, zeros, scales, g_idx}) and outputs ({@code layer.*}). */
    record Fixture(SafeTensors st, int bits, boolean sym, int groupSize) {
        static Fixture load(String name) throws IOException {
            byte[] bytes;
            try (InputStream in = GptqCheckpointTest.class.getResourceAsStream("/gptq-checkpoint/" + name)) {
                assertThat(in).as(name).isNotNull();
                bytes = in.readAllBytes();
            }
            SafeTensors st = SafeTensors.parse(bytes, name);
            Map<String, String> m = st.metadata();
            return new Fixture(
                    st,
                    Integer.parseInt(m.get("bits")),
                    Boolean.parseBoolean(m.get("sym")),
                    Integer.parseInt(m.get("group_size")));
        }

        int[] ints(String name) {
            int[] v = new int[(int) st.entry(name).elements()];
            ByteBuffer.wrap(st.readBytes(name))
                    .order(ByteOrder.LITTLE_ENDIAN)
                    .asIntBuffer()
                    .get(v);
            return v;
        }

        /** The tensor AutoGPTQ was given, as quant4j holds it. */
        QuantizedTensor tensor(String name) {
            long[] shape = st.entry("codes").shape();
            int out = (int) shape[0];
            int in = (int) shape[1];
            byte[] codes = st.readBytes("codes");
            int[] zerosGo = ints("zeros"); // [groups, out]
            byte[] scalesBits = st.readBytes("scales"); // F16 [groups, out]
            int groups = in / groupSize;
            float[] scales = new float[out * groups];
            byte[] zeros = new byte[out * groups];
            ByteBuffer sb = ByteBuffer.wrap(scalesBits).order(ByteOrder.LITTLE_ENDIAN);
            for (int g = 0; g < groups; g++) {
                for (int o = 0; o < out; o++) {
                    scales[o * groups + g] = HalfFloats.fp16ToFloat(sb.getShort((g * out + o) * 2));
                    zeros[o * groups + g] = (byte) zerosGo[g * out + o];
                }
            }
            int rowBytes = (in * bits + 7) / 8;
            byte[] packed = new byte[out * rowBytes];
            for (int o = 0; o < out; o++) {
                Kernels.get().pack(codes, o * in, in, bits, packed, o * rowBytes);
            }
            LinearScheme scheme = new LinearScheme(bits, sym ? Symmetry.SYM : Symmetry.ASYM, groupSize);
            return new QuantizedTensor(
                    name, scheme, out, in, PackOrder.LSB_FIRST_ROW_ALIGNED, packed, scales, zeros, ints("g_idx"));
        }
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void packsTheBytesAutoGptqPacks(String name) throws Exception {
        Fixture f = Fixture.load(name);
        QuantizedTensor q = f.tensor("layer.weight");
        GptqCheckpoint.Packed p = GptqCheckpoint.pack(q);
        assertThat(p.qweight()).as("qweight").isEqualTo(f.ints("layer.qweight"));
        assertThat(p.qzeros()).as("qzeros").isEqualTo(f.ints("layer.qzeros"));
        assertThat(p.gIdx()).as("g_idx").isEqualTo(f.ints("layer.g_idx"));
        short[] scales = new short[p.scales().length];
        ByteBuffer.wrap(f.st().readBytes("layer.scales"))
                .order(ByteOrder.LITTLE_ENDIAN)
                .asShortBuffer()
                .get(scales);
        assertThat(p.scales()).as("scales").isEqualTo(scales);

        // the file the writer makes holds those bytes under the layer's names, the bias unchanged
        Path out = dir.resolve("ckpt");
        byte[] biasBytes = new byte[2 * q.rows()];
        biasBytes[3] = 0x3c;
        var bias = new QuantizedSafeTensors.PassThrough("layer.bias", DType.F16, new long[] {q.rows()}, biasBytes);
        GptqCheckpoint.write(out, List.of(q), List.of(bias), GptqCheckpoint.Options.defaults(), null, false);
        try (SafeTensors st = SafeTensors.open(out.resolve(GptqCheckpoint.MODEL_FILE))) {
            for (String part : List.of("qweight", "qzeros", "scales", "g_idx")) {
                assertThat(st.readBytes("layer." + part)).as(part).isEqualTo(f.st().readBytes("layer." + part));
                assertThat(st.entry("layer." + part).shape())
                        .as(part)
                        .isEqualTo(f.st().entry("layer." + part).shape());
                assertThat(st.entry("layer." + part).dtype())
                        .as(part)
                        .isEqualTo(f.st().entry("layer." + part).dtype());
            }
            assertThat(st.readBytes("layer.bias")).isEqualTo(biasBytes);
            assertThat(st.metadata()).containsEntry("format", "pt");
        }
        Map<?, ?> config = (Map<?, ?>) Json.parse(Files.readString(out.resolve(GptqCheckpoint.QUANTIZE_CONFIG)));
        assertThat(config.get("bits")).isEqualTo((long) f.bits());
        assertThat(config.get("group_size")).isEqualTo((long) f.groupSize());
        assertThat(config.get("sym")).isEqualTo(f.sym());
        assertThat(config.get("desc_act")).isEqualTo(name.contains("-act"));
        assertThat(config.get("checkpoint_format")).isEqualTo("gptq");
        assertThat(config.get("quant_method")).isEqualTo("gptq");

        // read back: the same tensor, and the values AutoGPTQ's dequantization computes
        GptqCheckpoint.Checkpoint c = GptqCheckpoint.read(out);
        assertThat(c.content().weights()).containsExactly(Map.entry("layer.weight", q));
        assertThat(c.content().other())
                .singleElement()
                .satisfies(o -> assertThat(o.name()).isEqualTo("layer.bias"));
        FloatMatrix expected = f.st().readMatrix("dequantized");
        assertThat(c.content().weights().get("layer.weight").dequantize().toArray())
                .isEqualTo(expected.toArray());

        // the same files in memory: toFiles makes them byte for byte, and they read as the folder does
        Map<String, byte[]> files =
                GptqCheckpoint.toFiles(List.of(q), List.of(bias), GptqCheckpoint.Options.defaults());
        assertThat(files).containsOnlyKeys(GptqCheckpoint.MODEL_FILE, GptqCheckpoint.QUANTIZE_CONFIG);
        for (Map.Entry<String, byte[]> file : files.entrySet()) {
            assertThat(file.getValue()).as(file.getKey()).isEqualTo(Files.readAllBytes(out.resolve(file.getKey())));
        }
        GptqCheckpoint.Checkpoint inMemory = GptqCheckpoint.read(ModelFolder.of(files, "mem"));
        assertThat(inMemory.content().weights()).isEqualTo(c.content().weights());
        assertThat(inMemory.quantizeConfig()).isEqualTo(c.quantizeConfig());
        assertThat(inMemory.content().other().getFirst().bytes()).isEqualTo(biasBytes);
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void readsAutoGptqsTensorsAsAutoGptqDequantizesThem(String name) throws Exception {
        Fixture f = Fixture.load(name);
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (String part : List.of("qweight", "qzeros", "scales", "g_idx")) {
            SafeTensors.Entry e = f.st().entry("layer." + part);
            w.add("model.layers.0.mlp.up_proj." + part, e.dtype(), e.shape(), f.st().readBytes(e.name()));
        }
        Path ckpt = Files.createDirectories(dir.resolve("hub"));
        // AutoGPTQ's default file name, found without model_file_base_name
        w.write(ckpt.resolve("gptq_model-" + f.bits() + "bit-" + f.groupSize() + "g.safetensors"));
        Files.writeString(
                ckpt.resolve("config.json"),
                "{\"model_type\":\"llama\",\"quantization_config\":{\"bits\":" + f.bits() + ",\"group_size\":"
                        + f.groupSize() + ",\"desc_act\":true,\"sym\":" + f.sym() + ",\"quant_method\":\"gptq\"}}");
        GptqCheckpoint.Checkpoint c = GptqCheckpoint.read(ckpt);
        QuantizedWeight q = c.content().weights().get("model.layers.0.mlp.up_proj.weight");
        assertThat(q.dequantize().toArray())
                .isEqualTo(f.st().readMatrix("dequantized").toArray());
        assertThat(((QuantizedTensor) q).scheme().symmetry()).isEqualTo(f.sym() ? Symmetry.SYM : Symmetry.ASYM);
        assertThat(((QuantizedTensor) q).hasGIdx()).isEqualTo(name.contains("-act"));
    }
}
