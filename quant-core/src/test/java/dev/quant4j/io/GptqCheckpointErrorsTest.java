package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** What the GPTQ checkpoint writer refuses, what the reader rejects (naming tensor and field), and FP16 scales. */
class GptqCheckpointErrorsTest {

    @TempDir
    Path dir;

    private static QuantizedTensor rtn(String name, LinearScheme s, int rows, int cols, long seed) {
        return new RtnQuantizer(s).quantize(Gaussian.matrix(name, seed, rows, cols, 1.0));
    }

    /** The tensors of a valid 4-bit g16 checkpoint of one [32, 64] layer, as raw parts to corrupt. */
    private Map<String, SafeTensors.Entry> entries;

    private Map<String, byte[]> validParts() throws Exception {
        QuantizedTensor q = rtn("layer.weight", LinearScheme.sym(4, 16), 32, 64, 5);
        Path ok = dir.resolve("ok");
        GptqCheckpoint.write(ok, List.of(q), List.of(), GptqCheckpoint.Options.defaults(), null, true);
        Map<String, byte[]> parts = new LinkedHashMap<>();
        try (SafeTensors st = SafeTensors.open(ok.resolve(GptqCheckpoint.MODEL_FILE))) {
            entries = new LinkedHashMap<>(st.entries());
            for (String n : st.names()) {
                parts.put(n, st.readBytes(n));
            }
        }
        return parts;
    }

    /** Writes the parts (with {@code change} applied) and the 4-bit g16 config, then reads the folder. */
    private void readCorrupted(Consumer<Map<String, Object[]>> change, String config) throws Exception {
        Map<String, byte[]> parts = validParts();
        Map<String, Object[]> t = new LinkedHashMap<>();
        for (var e : parts.entrySet()) {
            SafeTensors.Entry en = entries.get(e.getKey());
            t.put(e.getKey(), new Object[] {en.dtype(), en.shape(), e.getValue()});
        }
        change.accept(t);
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (var e : t.entrySet()) {
            w.add(e.getKey(), (DType) e.getValue()[0], (long[]) e.getValue()[1], (byte[]) e.getValue()[2]);
        }
        Path bad = Files.createDirectories(dir.resolve("bad"));
        w.write(bad.resolve("model.safetensors"));
        Files.writeString(bad.resolve("quantize_config.json"), config);
        GptqCheckpoint.read(bad);
    }

    private static final String CONFIG =
            "{\"bits\":4,\"group_size\":16,\"sym\":true,\"desc_act\":false,\"checkpoint_format\":\"gptq\"}";

    private static byte[] ints(int... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(v);
        return b.array();
    }

    @Test
    void rejectsAQweightOfTheWrongShape() {
        assertThatThrownBy(() -> readCorrupted(
                        t -> t.put("layer.qweight", new Object[] {DType.I32, new long[] {4, 32}, new byte[4 * 4 * 32]}),
                        CONFIG))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("tensor 'layer.qzeros': shape [4, 4], expected [2, 4]");
    }

    @Test
    void rejectsAG_idxOutOfRange() {
        int[] g = new int[64];
        g[5] = 9;
        assertThatThrownBy(() -> readCorrupted(
                        t -> t.put("layer.g_idx", new Object[] {DType.I32, new long[] {64}, ints(g)}), CONFIG))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("tensor 'layer.g_idx': g_idx[5] is 9, outside [0, 4)");
    }

    @Test
    void rejectsMissingScales() {
        assertThatThrownBy(() -> readCorrupted(t -> t.remove("layer.scales"), CONFIG))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("missing tensor 'layer.scales' for 'layer.qweight'");
    }

    @Test
    void rejectsAZeroScale() {
        assertThatThrownBy(() -> readCorrupted(
                        t -> t.put("layer.scales", new Object[] {DType.F16, new long[] {4, 32}, new byte[2 * 4 * 32]}),
                        CONFIG))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("tensor 'layer.scales': scale [0, 0] is 0.0");
    }

    @Test
    void rejectsAV1ZeroPointThatUnderflowed() {
        int[] z = new int[4 * 4];
        Arrays.fill(z, -1); // what AutoGPTQ's pack leaves for an asymmetric zero-point of 0
        assertThatThrownBy(() -> readCorrupted(
                        t -> t.put("layer.qzeros", new Object[] {DType.I32, new long[] {4, 4}, ints(z)}), CONFIG))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("tensor 'layer.qzeros': zero-point of [0, 0] is 16 (stored 15 + 1), above 15");
    }

    @Test
    void readsV2ZeroPointsAsStored() throws Exception {
        int[] z = new int[4 * 4];
        Arrays.fill(z, 0x88888888); // 8 everywhere: GPTQModel's v2 symmetric 4-bit
        readCorrupted(
                t -> t.put("layer.qzeros", new Object[] {DType.I32, new long[] {4, 4}, ints(z)}),
                CONFIG.replace("\"gptq\"", "\"gptq_v2\""));
        QuantizedTensor q = (QuantizedTensor)
                GptqCheckpoint.read(dir.resolve("bad")).content().weights().get("layer.weight");
        assertThat(q.zero(0)).isEqualTo(8);
        assertThat(q.scheme()).isEqualTo(LinearScheme.sym(4, 16));
    }

    @Test
    void rejectsOrphanParts() {
        assertThatThrownBy(() -> readCorrupted(t -> t.remove("layer.qweight"), CONFIG))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("tensor 'layer.qzeros' has no 'layer.qweight'");
    }

    @Test
    void rejectsBadConfigs() {
        assertThatThrownBy(() -> readCorrupted(t -> {}, CONFIG.replace("\"bits\":4", "\"bits\":5")))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("bits 5 (a GPTQ checkpoint has 2, 3, 4 or 8)");
        assertThatThrownBy(() -> readCorrupted(t -> {}, CONFIG.replace("\"bits\":4,", "")))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("field 'bits' is missing or not an integer");
        assertThatThrownBy(() -> readCorrupted(t -> {}, CONFIG.replace("\"gptq\"", "\"marlin\"")))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("checkpoint_format 'marlin'");
        assertThatThrownBy(() -> readCorrupted(t -> {}, "{\"bits\":4,"))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("quantize_config.json: invalid JSON");
        assertThatThrownBy(() -> GptqCheckpoint.read(Files.createDirectories(dir.resolve("empty"))))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("no quantize_config.json or config.json with quantization_config");
    }

    @Test
    void readsOnlyUtf8ConfigsAndFilesInsideTheFolder() throws Exception {
        validParts();
        Path ok = dir.resolve("ok");
        Files.write(ok.resolve("quantize_config.json"), new byte[] {'{', (byte) 0xC3, '}'});
        assertThatThrownBy(() -> GptqCheckpoint.read(ok))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageEndingWith("quantize_config.json: not valid UTF-8 text");
        // model_file_base_name naming a file outside the folder: that file is not in the folder
        Files.move(ok.resolve("model.safetensors"), dir.resolve("outside.safetensors"));
        Files.writeString(
                ok.resolve("quantize_config.json"), CONFIG.replace("}", ",\"model_file_base_name\":\"../outside\"}"));
        assertThatThrownBy(() -> GptqCheckpoint.read(ok))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageEndingWith("no weight file (looked for ../outside.safetensors, model.safetensors,"
                        + " gptq_model-4bit-16g.safetensors)");
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 8, 100, 500})
    void rejectsATruncatedFile(int cut) throws Exception {
        validParts();
        Path f = dir.resolve("ok").resolve(GptqCheckpoint.MODEL_FILE);
        byte[] all = Files.readAllBytes(f);
        Files.write(f, Arrays.copyOf(all, all.length - cut));
        assertThatThrownBy(() -> GptqCheckpoint.read(dir.resolve("ok")))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("model.safetensors");
    }

    /**
     * Seeded corruption of a valid 3-bit act-order checkpoint (bytes of the header or the data overwritten, the file
     * cut short): reading either succeeds or fails with an {@link IllegalArgumentException} (a {@link
     * MalformedTensorFileException} for the file), never with another exception.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.MethodSource("seeds")
    void corruptedFilesFailCleanly(int seed) throws Exception {
        Path ok = dir.resolve("ok");
        QuantizedTensor q = rtn("l.weight", LinearScheme.sym(3, 16), 32, 64, 9);
        int[] g = new int[64];
        for (int c = 0; c < 64; c++) {
            g[c] = (c * 7) % 4;
        }
        QuantizedTensor act =
                new QuantizedTensor(q.name(), q.scheme(), 32, 64, q.packOrder(), bytes(q), q.scales(), q.zeros(), g);
        GptqCheckpoint.write(ok, List.of(act), List.of(), GptqCheckpoint.Options.defaults(), null, true);
        Path file = ok.resolve(GptqCheckpoint.MODEL_FILE);
        byte[] all = Files.readAllBytes(file);
        java.util.Random rnd = new java.util.Random(seed);
        int headerEnd =
                8 + (int) ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        int changes = 1 + rnd.nextInt(4);
        for (int i = 0; i < changes; i++) {
            int at = rnd.nextBoolean() ? rnd.nextInt(headerEnd) : headerEnd + rnd.nextInt(all.length - headerEnd);
            all[at] = (byte) (rnd.nextBoolean() ? rnd.nextInt(256) : "0123456789[],\"".charAt(rnd.nextInt(14)));
        }
        if (rnd.nextInt(8) == 0) {
            all = Arrays.copyOf(all, rnd.nextInt(all.length));
        }
        Files.write(file, all);
        try {
            GptqCheckpoint.read(ok).content().weights().values().forEach(w -> w.dequantize());
        } catch (IllegalArgumentException expected) {
            assertThat(expected.getMessage()).isNotBlank();
        }
    }

    static java.util.stream.IntStream seeds() {
        return java.util.stream.IntStream.range(0, 120);
    }

    private static byte[] bytes(QuantizedTensor q) {
        byte[] b = new byte[q.packedCodes().remaining()];
        q.packedCodes().get(b);
        return b;
    }

    @Test
    void refusesWhatTheLayoutCannotHold() {
        var nf4 = new BlockwiseQuantizer(CodebookScheme.nf4(64)).quantize(Gaussian.matrix("a.weight", 1, 32, 64, 1));
        assertThat(GptqCheckpoint.unsupported(nf4))
                .startsWith("nf4 block 64 codes are a codebook's, not linear; a GPTQ checkpoint holds linear rtn/gptq");
        assertThat(GptqCheckpoint.unsupported(rtn("a.weight", LinearScheme.asym(4, 0), 32, 64, 1)))
                .startsWith("one scale per tensor;");
        assertThat(GptqCheckpoint.unsupported(rtn("a.weight", LinearScheme.asym(5, 16), 32, 64, 1)))
                .startsWith("5-bit codes;");
        assertThat(GptqCheckpoint.unsupported(rtn("a.weight", LinearScheme.sym(4, 16), 20, 64, 1)))
                .isEqualTo("20 output channels at 4 bits do not fill whole int32 words of qzeros (needs a multiple"
                        + " of 8)");
        assertThat(GptqCheckpoint.unsupported(rtn("a.weight", LinearScheme.sym(3, 16), 32, 48, 1)))
                .isEqualTo("48 input features at 3 bits do not fill whole int32 words of qweight (needs a multiple"
                        + " of 32)");
        assertThat(GptqCheckpoint.unsupported(rtn("a", LinearScheme.sym(4, 16), 32, 64, 1)))
                .contains("does not end in '.weight'");
        QuantizedTensor awq =
                rtn("a.weight", LinearScheme.asym(4, 16), 32, 64, 1).withInputScales(ones(64));
        assertThat(GptqCheckpoint.unsupported(awq)).startsWith("AWQ input scales");
        // a group with no negative value: asymmetric zero-point 0
        float[] v = Gaussian.matrix("a.weight", 2, 32, 64, 1).toArray();
        for (int c = 16; c < 32; c++) {
            v[3 * 64 + c] = Math.abs(v[3 * 64 + c]);
        }
        QuantizedTensor zero0 =
                new RtnQuantizer(LinearScheme.asym(4, 16)).quantize(FloatMatrix.of("a.weight", 32, 64, v, 0));
        assertThat(GptqCheckpoint.unsupported(zero0))
                .isEqualTo("output channel 3, group 1 has zero-point 0, which checkpoint_format gptq cannot store"
                        + " (qzeros hold zero - 1); the symmetric form (--sym) always fits");
        assertThatThrownBy(() -> GptqCheckpoint.write(
                        dir.resolve("x"), List.of(zero0), List.of(), GptqCheckpoint.Options.defaults(), null, false))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("tensor 'a.weight': output channel 3, group 1 has zero-point 0");
        assertThat(dir.resolve("x")).doesNotExist();
        assertThatThrownBy(() -> GptqCheckpoint.write(
                        dir.resolve("x"),
                        List.of(
                                rtn("a.weight", LinearScheme.sym(4, 16), 32, 64, 1),
                                rtn("b.weight", LinearScheme.sym(8, 16), 32, 64, 1)),
                        List.of(),
                        GptqCheckpoint.Options.defaults(),
                        null,
                        false))
                .hasMessage("tensor 'b.weight' has 8 bits, group size 16, the others 4 bits, group size 16; a GPTQ"
                        + " checkpoint has one quantize_config for every layer");
    }

    private static float[] ones(int n) {
        float[] v = new float[n];
        Arrays.fill(v, 1f);
        return v;
    }

    @Test
    void writesAFolderAtomicallyAndRefusesAnExistingOne() throws Exception {
        QuantizedTensor q = rtn("a.weight", LinearScheme.sym(4, -1), 32, 64, 3);
        Path out = dir.resolve("out");
        GptqCheckpoint.write(out, List.of(q), List.of(), GptqCheckpoint.Options.defaults(), null, false);
        assertThat(out.resolve("model.safetensors")).exists();
        assertThat(Files.readString(out.resolve("quantize_config.json"))).contains("\"group_size\": -1");
        assertThatThrownBy(() -> GptqCheckpoint.write(
                        out, List.of(q), List.of(), GptqCheckpoint.Options.defaults(), null, false))
                .hasMessageContaining("exists");
        // nothing but the finished folder is left in the parent
        try (var s = Files.list(dir)) {
            assertThat(s.map(p -> p.getFileName().toString())).containsExactly("out");
        }
        // the same codes and zero-points; the scales rounded to FP16
        QuantizedTensor back =
                (QuantizedTensor) GptqCheckpoint.read(out).content().weights().get("a.weight");
        assertThat(back.packedCodes()).isEqualTo(q.packedCodes());
        assertThat(back.zeros()).isEqualTo(q.zeros());
        float[] rounded = q.scales();
        for (int i = 0; i < rounded.length; i++) {
            rounded[i] = Float.float16ToFloat(Float.floatToFloat16(rounded[i]));
        }
        assertThat(back.scales()).isEqualTo(rounded);
        assertThat(back.scheme()).isEqualTo(q.scheme());
    }

    /**
     * The file stores scales as FP16, so a tensor read back dequantizes with its scales rounded to FP16 (relative
     * error up to 2^-11 a scale). Measured here: the SQNR of the weights before and after the FP16 rounding, RTN and
     * GPTQ at 4 and 3 bits; the difference stays far below the quantization noise.
     */
    @ParameterizedTest
    @ValueSource(ints = {3, 4})
    void fp16ScalesCostNextToNothing(int bits) throws Exception {
        FloatMatrix w = Gaussian.matrix("l.weight", 11, 256, 512, 0.02);
        FloatMatrix x = Gaussian.matrix("x", 12, 1024, 512, 1.0);
        HessianAccumulator h = new HessianAccumulator("l", 512);
        h.add(x);
        List<QuantizedTensor> tensors = List.of(
                new RtnQuantizer(LinearScheme.sym(bits, 128)).quantize(w),
                new Gptq(GptqConfig.defaults(bits).withGroupSize(128).withSym(true))
                        .quantize(w, h)
                        .tensor());
        for (QuantizedTensor q : tensors) {
            Path out = dir.resolve("fp16-" + bits + "-" + tensors.indexOf(q));
            GptqCheckpoint.write(out, List.of(q), List.of(), GptqCheckpoint.Options.defaults(), null, false);
            QuantizedTensor back = (QuantizedTensor)
                    GptqCheckpoint.read(out).content().weights().get("l.weight");
            double before = ErrorMetrics.compare(w, q.dequantize()).sqnrDb();
            double after = ErrorMetrics.compare(w, back.dequantize()).sqnrDb();
            System.out.printf(
                    Locale.ROOT,
                    "%d-bit %s: SQNR %.4f dB with float32 scales, %.4f dB with FP16%n",
                    bits,
                    tensors.indexOf(q) == 0 ? "rtn" : "gptq",
                    before,
                    after);
            assertThat(Math.abs(after - before)).isLessThan(0.01);
            assertThat(back.packOrder()).isEqualTo(PackOrder.LSB_FIRST_ROW_ALIGNED);
        }
    }
}
