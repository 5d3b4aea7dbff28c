package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class QuantizedSafeTensorsTest {

    @TempDir
    Path dir;

    @Test
    void roundTripsEveryWidthWithPassThrough() throws Exception {
        for (int bits = 2; bits <= 8; bits++) {
            QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(bits, 8))
                    .quantize(Gaussian.matrix("layer." + bits, bits, 3, 24, 1.0));
            QuantizedTensor t =
                    new RtnQuantizer(LinearScheme.signed(bits, 0)).quantize(Gaussian.matrix("t", bits, 2, 5, 1.0));
            Path p = dir.resolve("q" + bits + ".safetensors");
            var bias = new QuantizedSafeTensors.PassThrough("bias", DType.F32, new long[] {1}, new byte[4]);
            QuantizedSafeTensors.write(p, List.of(q, t), "rtn", List.of(bias));
            QuantizedSafeTensors.Content c = QuantizedSafeTensors.read(p);
            assertThat(c.weights()).containsEntry(q.name(), q).containsEntry("t", t);
            assertThat(c.methods()).containsEntry("t", "rtn");
            assertThat(c.other())
                    .singleElement()
                    .satisfies(o -> assertThat(o.name()).isEqualTo("bias"));
        }
    }

    @Test
    void roundTripsCodebookTensorsBesideLinearOnes() throws Exception {
        QuantizedTensor lin = new RtnQuantizer(LinearScheme.asym(4, 8)).quantize(Gaussian.matrix("lin", 1, 3, 24, 1.0));
        CodebookTensor nf4 =
                new BlockwiseQuantizer(CodebookScheme.nf4(32)).quantize(Gaussian.matrix("nf4", 2, 5, 13, 1.0));
        CodebookTensor fp4 = new BlockwiseQuantizer(CodebookScheme.fp4(64).withDoubleQuant())
                .quantize(Gaussian.matrix("fp4", 3, 70, 900, 1.0));
        Path p = dir.resolve("mixed.safetensors");
        QuantizedSafeTensors.write(p, List.of(lin, nf4, fp4), "mixed", List.of());
        QuantizedSafeTensors.Content c = QuantizedSafeTensors.read(p);
        // one map of every kind of weight, in the order written
        assertThat(c.weights())
                .containsExactly(
                        java.util.Map.entry("lin", lin),
                        java.util.Map.entry("nf4", nf4),
                        java.util.Map.entry("fp4", fp4));
        assertThat(((CodebookTensor) c.weights().get("fp4")).doubleQuant()).isPresent();
        assertThat(c.other()).isEmpty();
        assertThat(c.dequantizeAll()).hasSize(3);
    }

    @Test
    void roundTripsAGroupIndexAndRejectsABadOne() throws Exception {
        byte[] codes = new byte[2 * 4]; // 2 rows x 8 columns at 4 bits
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (17 * i);
        }
        float[] scales = {0.5f, 0.25f, 1f, 2f};
        byte[] zeros = {8, 7, 6, 5};
        int[] gIdx = {1, 0, 0, 1, 1, 0, 1, 0};
        QuantizedTensor q = new QuantizedTensor(
                "g", LinearScheme.asym(4, 4), 2, 8, PackOrder.LSB_FIRST_ROW_ALIGNED, codes, scales, zeros, gIdx);
        assertThat(q.hasGIdx()).isTrue();
        // column 0 of row 1 uses group 1 of row 1: scale 2, zero 5; its code is the low nibble of byte 4 (68 = 0x44)
        assertThat(q.value(1, 0)).isEqualTo(2f * (4 - 5));
        assertThat(q.dequantize().get(1, 0)).isEqualTo(2f * (4 - 5));
        Path p = dir.resolve("gidx.safetensors");
        QuantizedSafeTensors.write(p, List.of(q), "gptq", List.of());
        QuantizedSafeTensors.Content c = QuantizedSafeTensors.read(p);
        assertThat(c.weights().get("g")).isEqualTo(q);
        assertThat(((QuantizedTensor) c.weights().get("g")).gIdx()).containsExactly(gIdx);
        assertThat(c.other()).isEmpty();

        // the natural order is not stored
        QuantizedTensor natural = new QuantizedTensor(
                "n", LinearScheme.asym(4, 4), 2, 8, PackOrder.LSB_FIRST_ROW_ALIGNED, codes, scales, zeros, new int[] {
                    0, 0, 0, 0, 1, 1, 1, 1
                });
        assertThat(natural.hasGIdx()).isFalse();
        assertThatThrownBy(() -> new QuantizedTensor(
                        "b",
                        LinearScheme.asym(4, 4),
                        2,
                        8,
                        PackOrder.LSB_FIRST_ROW_ALIGNED,
                        codes,
                        scales,
                        zeros,
                        new int[] {0, 0, 0, 0, 1, 1, 1, 2}))
                .hasMessageContaining("g_idx[7] is 2, outside [0, 2)");
        assertThatThrownBy(() -> new QuantizedTensor(
                        "b",
                        LinearScheme.asym(4, -1),
                        2,
                        8,
                        PackOrder.LSB_FIRST_ROW_ALIGNED,
                        codes,
                        new float[] {1, 1},
                        new byte[2],
                        gIdx))
                .hasMessageContaining("g_idx needs a positive group size");
    }

    @Test
    void rejectsABadGroupIndexOrBadInputScalesInAFile() throws Exception {
        String meta = "{\"scheme\":\"linear\",\"bits\":4,\"symmetry\":\"asym\",\"group_size\":4,\"rows\":1,"
                + "\"cols\":8,\"pack_order\":\"lsb_first_row_aligned\",\"method\":\"gptq\"}";
        java.nio.ByteBuffer gIdx = java.nio.ByteBuffer.allocate(32).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        gIdx.asIntBuffer().put(new int[] {0, 1, 0, 1, 0, 1, 0, 7});
        Path badGIdx = dir.resolve("gidx.safetensors");
        new SafeTensorsWriter()
                .metadata(QuantizedSafeTensors.FORMAT_KEY, "1")
                .metadata("quant4j.tensor.w", meta)
                .add("w.q4j_codes", DType.U8, new long[] {1, 4}, new byte[4])
                .addF32("w.q4j_scales", new long[] {1, 2}, new float[] {1, 1})
                .add("w.q4j_zeros", DType.U8, new long[] {1, 2}, new byte[2])
                .add("w.q4j_g_idx", DType.I32, new long[] {8}, gIdx.array())
                .write(badGIdx);
        assertThatThrownBy(() -> QuantizedSafeTensors.read(badGIdx))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("quantized tensor 'w'")
                .hasMessageContaining("g_idx[7] is 7, outside [0, 2)");
        Path badScales = dir.resolve("awq.safetensors");
        new SafeTensorsWriter()
                .metadata(QuantizedSafeTensors.FORMAT_KEY, "1")
                .metadata("quant4j.tensor.w", meta)
                .add("w.q4j_codes", DType.U8, new long[] {1, 4}, new byte[4])
                .addF32("w.q4j_scales", new long[] {1, 2}, new float[] {1, 1})
                .add("w.q4j_zeros", DType.U8, new long[] {1, 2}, new byte[2])
                .addF32("w.q4j_awq_scales", new long[] {8}, new float[] {1, 1, 1, 0, 1, 1, 1, 1})
                .write(badScales);
        assertThatThrownBy(() -> QuantizedSafeTensors.read(badScales))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("input scale 3 is 0.0, must be > 0 and finite");
    }

    @Test
    void rejectsPlainAndInconsistentFiles() throws Exception {
        Path plain = dir.resolve("plain.safetensors");
        new SafeTensorsWriter().addF32("w", new long[] {1}, new float[] {1}).write(plain);
        assertThatThrownBy(() -> QuantizedSafeTensors.read(plain))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("not a quant4j quantized file");

        Path bad = dir.resolve("bad.safetensors");
        new SafeTensorsWriter()
                .metadata(QuantizedSafeTensors.FORMAT_KEY, "1")
                .metadata(
                        "quant4j.tensor.w",
                        "{\"scheme\":\"linear\",\"bits\":4,\"symmetry\":\"asym\",\"group_size\":-1,\"rows\":2,"
                                + "\"cols\":4,\"pack_order\":\"lsb_first_row_aligned\",\"method\":\"rtn\"}")
                .add("w.q4j_codes", DType.U8, new long[] {1, 2}, new byte[2])
                .addF32("w.q4j_scales", new long[] {2, 1}, new float[] {1, 1})
                .add("w.q4j_zeros", DType.U8, new long[] {2, 1}, new byte[2])
                .write(bad);
        assertThatThrownBy(() -> QuantizedSafeTensors.read(bad))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("quantized tensor 'w'")
                .hasMessageContaining("packed codes have 2 bytes");
        assertThat(Files.exists(bad)).isTrue();
    }

    /**
     * A tensor whose source stored it transposed ([in, out], as ONNX MatMul weights) is marked in the metadata, and
     * dequantizeAll gives it back in that layout under its name; an unknown layout is refused.
     */
    @Test
    void sourceLayoutIsRecordedAndRestored(@TempDir Path dir) throws Exception {
        FloatMatrix w = Gaussian.matrix("w", 3, 8, 64, 0.2); // [out, in]
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, 32)).quantize(w);
        CodebookTensor c = new BlockwiseQuantizer(CodebookScheme.nf4(64)).quantize(w.named("c"));
        Path p = dir.resolve("t.safetensors");
        QuantizedSafeTensors.write(p, List.of(q, c), "rtn", List.of(), java.util.Set.of("w", "c"));
        try (SafeTensors st = SafeTensors.open(p)) {
            assertThat(st.metadata().get("quant4j.tensor.w")).contains("\"source_layout\":\"in_out\"");
        }
        QuantizedSafeTensors.Content content = QuantizedSafeTensors.read(p);
        assertThat(content.transposed()).containsExactlyInAnyOrder("w", "c");
        List<FloatMatrix> back = content.dequantizeAll();
        assertThat(back.get(0).name()).isEqualTo("w");
        assertThat(back.get(0).rows()).isEqualTo(64);
        assertThat(back.get(0).toArray())
                .containsExactly(q.dequantize().transpose().toArray());
        assertThat(back.get(1).toArray())
                .containsExactly(c.dequantize().transpose().toArray());
        assertThatThrownBy(() -> QuantizedSafeTensors.write(
                        dir.resolve("x.safetensors"), List.of(q), "rtn", List.of(), java.util.Set.of("v")))
                .hasMessage("'v' is marked transposed but is not a quantized tensor");
        assertThat(Files.exists(dir.resolve("x.safetensors"))).isFalse();
    }
}
