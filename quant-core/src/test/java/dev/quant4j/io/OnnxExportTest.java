package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.io.OnnxModelTest.Proto;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * MatMulNBits' layouts against the contrib operator's formulas (microsoft/onnxruntime docs/ContribOperators.md,
 * com.microsoft.MatMulNBits), computed here element by element from the codes, not through quant4j's packing.
 */
class OnnxExportTest {

    /** Code of element (n, k) of the small cases: every value of 0..15 appears. */
    static int code(int n, int k, int bits) {
        return (n * 7 + k * 3 + (k >> 4)) & ((1 << bits) - 1);
    }

    /** A tensor [n, k] holding {@link #code} (packed LSB first, rows byte-aligned, as quant4j packs). */
    static QuantizedTensor tensor(LinearScheme s, int n, int k, float[] scales, byte[] zeros, int[] gIdx) {
        int rowBytes = (k * s.bits() + 7) / 8;
        byte[] packed = new byte[n * rowBytes];
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < k; c++) {
                int bit = c * s.bits();
                packed[r * rowBytes + bit / 8] |= (byte) (code(r, c, s.bits()) << (bit % 8));
            }
        }
        return new QuantizedTensor("W", s, n, k, PackOrder.LSB_FIRST_ROW_ALIGNED, packed, scales, zeros, gIdx);
    }

    /** A model MatMul(x, W) -> y with W [k, n] float, and an INT64 initializer that must pass through. */
    static byte[] model(int k, int n) {
        float[] ramp = new float[k * n];
        for (int i = 0; i < k * n; i++) {
            ramp[i] = i * 0.01f;
        }
        return model(k, n, ramp);
    }

    /** As {@link #model(int, int)} with W's stored values {@code [k, n]} given. */
    static byte[] model(int k, int n, float[] values) {
        ByteBuffer w = ByteBuffer.allocate(4 * k * n).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            w.putFloat(v);
        }
        Proto graph = new Proto()
                .message(
                        1,
                        new Proto()
                                .string(1, "x")
                                .string(1, "W")
                                .string(2, "y")
                                .string(3, "fc")
                                .string(4, "MatMul"))
                .message(
                        5,
                        new Proto()
                                .intField(1, k)
                                .intField(1, n)
                                .intField(2, 1)
                                .string(8, "W")
                                .bytesField(9, w.array()))
                .message(
                        5,
                        new Proto()
                                .intField(1, 2)
                                .intField(2, 7)
                                .string(8, "ids")
                                .bytesField(9, new byte[16]))
                .message(11, new Proto().string(1, "x"))
                .message(12, new Proto().string(1, "y"));
        return new Proto()
                .intField(1, 8)
                .message(8, new Proto().string(1, "").intField(2, 17))
                .message(7, graph)
                .bytes();
    }

    /** 4 bits, block 16, K = 48 (3 blocks: the zero-points of a row take two bytes, the second half empty). */
    @Test
    void asymmetricFourBitLayout() {
        int n = 2;
        int k = 48;
        float[] scales = {0.5f, 0.25f, 2f, 1f, 3f, 0.125f};
        byte[] zeros = {3, 12, 7, 0, 15, 9};
        QuantizedTensor q = tensor(LinearScheme.asym(4, 16), n, k, scales, zeros, null);
        OnnxModel out = OnnxModel.parse("out", OnnxExport.quantizedModel("m", model(k, n), Map.of("W", q)));
        assertThat(out.nodes())
                .containsExactly(new OnnxModel.Node(
                        "fc", "MatMulNBits", List.of("x", "W_Q4", "W_scales", "W_zero_points"), List.of("y")));
        assertThat(List.copyOf(out.initializers().keySet()))
                .containsExactly("W_Q4", "W_scales", "W_zero_points", "ids");
        OnnxModel.Initializer b = out.initializer("W_Q4");
        assertThat(b.dataType()).isEqualTo(OnnxExport.UINT8);
        assertThat(b.dims()).containsExactly(2, 3, 8); // [N, k_blocks, blob_size = 16 * 4 / 8]
        byte[] expected = new byte[2 * 3 * 8];
        for (int r = 0; r < n; r++) {
            for (int blk = 0; blk < 3; blk++) {
                for (int j = 0; j < 8; j++) {
                    int k0 = blk * 16 + 2 * j; // the first of two codes: low nibble
                    expected[(r * 3 + blk) * 8 + j] = (byte) (code(r, k0, 4) | code(r, k0 + 1, 4) << 4);
                }
            }
        }
        assertThat(b.bytes()).isEqualTo(expected);
        assertThat(out.initializer("W_scales").dims()).containsExactly(2, 3);
        assertThat(out.initializer("W_scales").floats()).containsExactly(scales);
        OnnxModel.Initializer z = out.initializer("W_zero_points");
        assertThat(z.dims()).containsExactly(2, 2); // [N, ceil(3 * 4 / 8)]
        assertThat(z.bytes()).containsExactly(3 | 12 << 4, 7, 0 | 15 << 4, 9);
        assertThat(out.initializer("ids").bytes()).isEqualTo(new byte[16]);
        assertThat(out.inputs()).containsExactly("x");
        assertThat(out.outputs()).containsExactly("y");
    }

    /** accuracy_level: written when not 0 (the default), after block_size; 5 and -1 are refused. */
    @Test
    void accuracyLevelAttribute() {
        QuantizedTensor q = tensor(LinearScheme.sym(4, 16), 1, 32, new float[] {1f, 2f}, new byte[] {8, 8}, null);
        byte[] plain = OnnxExport.quantizedModel("m", model(32, 1), Map.of("W", q));
        assertThat(OnnxExport.quantizedModel("m", model(32, 1), Map.of("W", q), 0))
                .isEqualTo(plain);
        for (int level : new int[] {0, 4}) {
            byte[] bytes = OnnxExport.quantizedModel("m", model(32, 1), Map.of("W", q), level);
            assertThat(OnnxRewriter.intAttribute("m", bytes, 0, "accuracy_level", -1))
                    .isEqualTo(level == 0 ? -1 : level);
            assertThat(OnnxRewriter.intAttribute("m", bytes, 0, "block_size", -1))
                    .isEqualTo(16);
        }
        for (int bad : new int[] {-1, 5}) {
            assertThatThrownBy(() -> OnnxExport.quantizedModel("m", model(32, 1), Map.of("W", q), bad))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("accuracy_level " + bad + ": MatMulNBits takes 0 to 4");
        }
    }

    /** Symmetric at 4 bits: every zero-point 8, ONNX Runtime's default, so zero_points is left out. */
    @Test
    void symmetricLeavesOutZeroPoints() {
        QuantizedTensor q = tensor(LinearScheme.sym(4, 16), 1, 32, new float[] {1f, 2f}, new byte[] {8, 8}, null);
        OnnxModel out = OnnxModel.parse("out", OnnxExport.quantizedModel("m", model(32, 1), Map.of("W", q)));
        assertThat(out.nodes().get(0).inputs()).containsExactly("x", "W_Q4", "W_scales");
        assertThat(out.initializers()).containsOnlyKeys("W_Q4", "W_scales", "ids");
    }

    /** Per channel: one block of the next power of two (K = 20: block 32), the codes past K zero. */
    @Test
    void perChannelIsOnePaddedBlock() {
        int k = 20;
        QuantizedTensor q = tensor(LinearScheme.asym(4, -1), 1, k, new float[] {1f}, new byte[] {5}, null);
        OnnxModel out = OnnxModel.parse("out", OnnxExport.quantizedModel("m", model(k, 1), Map.of("W", q)));
        OnnxModel.Initializer b = out.initializer("W_Q4");
        assertThat(b.dims()).containsExactly(1, 1, 16);
        byte[] expected = new byte[16];
        for (int j = 0; j < 10; j++) {
            expected[j] = (byte) (code(0, 2 * j, 4) | code(0, 2 * j + 1, 4) << 4);
        }
        assertThat(b.bytes()).isEqualTo(expected);
        assertThat(out.initializer("W_zero_points").bytes()).containsExactly(5);
    }

    /**
     * Blocks are at most 256 (ONNX Runtime 1.23.2 computes wrong results above): per channel over K = 600 is three
     * blocks of 256 (the last padded), a group of 96 three blocks of 32; each repeats its group's scale and zero.
     */
    @Test
    void largeAndNonPowerOfTwoGroupsRepeatTheirParameters() {
        QuantizedTensor pc =
                tensor(LinearScheme.asym(4, -1), 2, 600, new float[] {1.5f, 2.5f}, new byte[] {3, 4}, null);
        OnnxModel out = OnnxModel.parse("out", OnnxExport.quantizedModel("m", model(600, 2), Map.of("W", pc)));
        assertThat(out.nodes().get(0).inputs()).hasSize(4);
        assertThat(out.initializer("W_Q4").dims()).containsExactly(2, 3, 128);
        assertThat(out.initializer("W_scales").floats()).containsExactly(1.5f, 1.5f, 1.5f, 2.5f, 2.5f, 2.5f);
        assertThat(out.initializer("W_zero_points").bytes()).containsExactly(3 | 3 << 4, 3, 4 | 4 << 4, 4);
        byte[] b = out.initializer("W_Q4").bytes();
        assertThat(b[2 * 128 + 43]).isEqualTo((byte) (code(0, 598, 4) | code(0, 599, 4) << 4));
        for (int j = 2 * 128 + 44; j < 3 * 128; j++) {
            assertThat(b[j]).as("padding byte %d", j).isZero();
        }
        QuantizedTensor g96 = tensor(LinearScheme.asym(4, 96), 1, 192, new float[] {1f, 2f}, new byte[] {5, 6}, null);
        out = OnnxModel.parse("out", OnnxExport.quantizedModel("m", model(192, 1), Map.of("W", g96)));
        assertThat(out.initializer("W_Q4").dims()).containsExactly(1, 6, 16);
        assertThat(out.initializer("W_scales").floats()).containsExactly(1f, 1f, 1f, 2f, 2f, 2f);
    }

    /** 8 bits: a code and a zero-point a byte. */
    @Test
    void eightBits() {
        QuantizedTensor q8 =
                tensor(LinearScheme.asym(8, 16), 1, 32, new float[] {1, 2}, new byte[] {(byte) 200, 3}, null);
        OnnxModel out = OnnxModel.parse("out", OnnxExport.quantizedModel("m", model(32, 1), Map.of("W", q8)));
        assertThat(out.initializer("W_Q8").dims()).containsExactly(1, 2, 16);
        byte[] expected = new byte[32];
        for (int c = 0; c < 32; c++) {
            expected[c] = (byte) code(0, c, 8);
        }
        assertThat(out.initializer("W_Q8").bytes()).isEqualTo(expected);
        assertThat(out.initializer("W_zero_points").dims()).containsExactly(1, 2);
        assertThat(out.initializer("W_zero_points").bytes()).containsExactly((byte) 200, 3);
    }

    /**
     * Act-order: a Gather of the activation by the features in group order, and B's codes in that order, so that each
     * group is one block (MatMulNBits' own g_idx is computed wrongly by ONNX Runtime 1.23.2's CPU kernel).
     */
    @Test
    void actOrderGathersTheFeaturesInGroupOrder() {
        int[] gIdx = new int[32];
        for (int c = 0; c < 32; c++) {
            gIdx[c] = (c * 5 / 3) % 2; // 16 features in each group
        }
        QuantizedTensor q = tensor(LinearScheme.asym(4, 16), 1, 32, new float[] {1, 2}, new byte[] {1, 2}, gIdx);
        OnnxModel out = OnnxModel.parse("out", OnnxExport.quantizedModel("m", model(32, 1), Map.of("W", q)));
        assertThat(out.nodes())
                .containsExactly(
                        new OnnxModel.Node("fc_perm_gather", "Gather", List.of("x", "W_perm"), List.of("x_perm_W")),
                        new OnnxModel.Node(
                                "fc",
                                "MatMulNBits",
                                List.of("x_perm_W", "W_Q4", "W_scales", "W_zero_points"),
                                List.of("y")));
        int[] perm = new int[32];
        int at = 0;
        for (int g = 0; g < 2; g++) {
            for (int c = 0; c < 32; c++) {
                if (gIdx[c] == g) {
                    perm[at++] = c;
                }
            }
        }
        ByteBuffer expected = ByteBuffer.allocate(128).order(ByteOrder.LITTLE_ENDIAN);
        for (int c : perm) {
            expected.putInt(c);
        }
        assertThat(out.initializer("W_perm").dataType()).isEqualTo(6); // INT32
        assertThat(out.initializer("W_perm").dims()).containsExactly(32);
        assertThat(out.initializer("W_perm").bytes()).isEqualTo(expected.array());
        byte[] b = out.initializer("W_Q4").bytes();
        for (int j = 0; j < 16; j++) {
            assertThat(b[j] & 0xFF).isEqualTo(code(0, perm[2 * j], 4) | code(0, perm[2 * j + 1], 4) << 4);
        }
        int[] uneven = gIdx.clone();
        uneven[0] = 1 - uneven[0];
        QuantizedTensor bad = tensor(LinearScheme.asym(4, 16), 1, 32, new float[] {1, 2}, new byte[] {1, 2}, uneven);
        assertThatThrownBy(() -> OnnxExport.quantizedModel("m", model(32, 1), Map.of("W", bad)))
                .hasMessageContaining("not all of 16 input features")
                .hasMessageContaining("--static-groups");
    }

    /**
     * NF4 as MatMulBnb4: B the flattened [N, K] codes two a byte, the first in the high nibble; absmax one per block,
     * a block of 512 written as two of 256 (N * K = 600: blocks of 256, 256 and 88).
     */
    @Test
    void nf4AsMatMulBnb4() {
        int n = 2;
        int k = 300;
        byte[] packed = new byte[300];
        for (int i = 0; i < 600; i += 2) {
            packed[i / 2] = (byte) (code(0, i, 4) << 4 | code(0, i + 1, 4));
        }
        CodebookTensor t = new CodebookTensor("W", CodebookScheme.nf4(512), n, k, packed, new float[] {0.5f, 0.25f});
        OnnxModel out = OnnxModel.parse("out", OnnxExport.quantizedModel("m", model(k, n), Map.of("W", t)));
        assertThat(out.nodes())
                .containsExactly(
                        new OnnxModel.Node("fc", "MatMulBnb4", List.of("x", "W_Bnb4", "W_absmax"), List.of("y")));
        assertThat(out.initializer("W_Bnb4").dims()).containsExactly(300);
        assertThat(out.initializer("W_Bnb4").bytes()).isEqualTo(packed);
        assertThat(out.initializer("W_absmax").floats()).containsExactly(0.5f, 0.5f, 0.25f);
    }

    @Test
    void schemesMatMulNBitsCannotHoldAreClearErrors() {
        assertThat(OnnxExport.unsupported(LinearScheme.asym(3, 128), 384)).contains("4 and 8 bits");
        assertThat(OnnxExport.unsupported(LinearScheme.asym(2, 128), 384)).contains("refuses 2 bits");
        assertThat(OnnxExport.unsupported(LinearScheme.asym(4, 24), 384)).contains("a multiple of 16");
        assertThat(OnnxExport.unsupported(LinearScheme.asym(4, 8), 384)).contains("a multiple of 16");
        assertThat(OnnxExport.unsupported(LinearScheme.asym(4, 96), 384)).isNull();
        assertThat(OnnxExport.unsupported(LinearScheme.asym(4, 128), 384)).isNull();
        QuantizedTensor q3 = tensor(LinearScheme.asym(3, 16), 1, 16, new float[] {1}, new byte[] {1}, null);
        assertThatThrownBy(() -> OnnxExport.quantizedModel("m.onnx", model(16, 1), Map.of("W", q3)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'W' cannot be written as MatMulNBits: 3-bit codes");
    }

    /** A model Gather(T, ids) -> y with T [v, h] float and int32 ids. */
    static byte[] gatherModel(int v, int h) {
        Proto graph = new Proto()
                .message(
                        1,
                        new Proto()
                                .string(1, "T")
                                .string(1, "ids")
                                .string(2, "y")
                                .string(3, "emb")
                                .string(4, "Gather"))
                .message(
                        5,
                        new Proto()
                                .intField(1, v)
                                .intField(1, h)
                                .intField(2, 1)
                                .string(8, "T")
                                .bytesField(9, new byte[4 * v * h]))
                .message(11, new Proto().string(1, "ids"))
                .message(12, new Proto().string(1, "y"));
        return new Proto()
                .intField(1, 8)
                .message(8, new Proto().string(1, "").intField(2, 17))
                .message(7, graph)
                .bytes();
    }

    /**
     * An 8-bit table [2, 32] in blocks of 16 as GatherBlockQuantized: data one code a byte, scales [2, 2], zero-points
     * one a byte [2, 2]; attributes bits 8, block_size 16, gather_axis 0, quantize_axis 1; the Gather's indices as
     * they are.
     */
    @Test
    void eightBitTableAsGatherBlockQuantized() {
        int v = 2;
        int h = 32;
        QuantizedTensor q = tensor(
                        LinearScheme.asym(8, 16),
                        v,
                        h,
                        new float[] {0.5f, 0.25f, 2f, 4f},
                        new byte[] {(byte) 128, 3, (byte) 200, 7},
                        null)
                .named("T");
        byte[] bytes = OnnxExport.quantizedModel("m", gatherModel(v, h), Map.of("T", q));
        OnnxModel out = OnnxModel.parse("out", bytes);
        assertThat(out.nodes())
                .containsExactly(new OnnxModel.Node(
                        "emb",
                        "GatherBlockQuantized",
                        List.of("T_Q8", "ids", "T_scales", "T_zero_points"),
                        List.of("y")));
        assertThat(OnnxRewriter.intAttribute("out", bytes, 0, "bits", -1)).isEqualTo(8L);
        assertThat(OnnxRewriter.intAttribute("out", bytes, 0, "block_size", -1)).isEqualTo(16L);
        assertThat(OnnxRewriter.intAttribute("out", bytes, 0, "gather_axis", -1))
                .isEqualTo(0L);
        assertThat(OnnxRewriter.intAttribute("out", bytes, 0, "quantize_axis", -1))
                .isEqualTo(1L);
        OnnxModel.Initializer data = out.initializer("T_Q8");
        assertThat(data.dataType()).isEqualTo(OnnxExport.UINT8);
        assertThat(data.dims()).containsExactly(v, h);
        byte[] d = data.bytes();
        for (int r = 0; r < v; r++) {
            for (int c = 0; c < h; c++) {
                assertThat(d[r * h + c] & 0xFF).isEqualTo(code(r, c, 8));
            }
        }
        assertThat(out.initializer("T_scales").dims()).containsExactly(v, 2);
        assertThat(out.initializer("T_scales").floats()).containsExactly(0.5f, 0.25f, 2f, 4f);
        assertThat(out.initializer("T_zero_points").dims()).containsExactly(v, 2);
        assertThat(out.initializer("T_zero_points").bytes()).containsExactly((byte) 128, 3, (byte) 200, 7);
        assertThat(out.initializers()).doesNotContainKey("T");
    }

    /** Tables GatherBlockQuantized cannot hold: the message names the table and what would fit. */
    @Test
    void tablesGatherBlockQuantizedCannotHoldAreClearErrors() {
        QuantizedTensor g96 = tensor(LinearScheme.asym(4, 96), 1, 192, new float[] {1, 1}, new byte[] {1, 1}, null)
                .named("T");
        assertThatThrownBy(() -> OnnxExport.quantizedModel("m.onnx", gatherModel(1, 192), Map.of("T", g96)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("table 'T' cannot be written as GatherBlockQuantized: group size 96")
                .hasMessageContaining("each row of 192 values must be whole blocks (--group-size 16 to 64 fit)");
        QuantizedTensor perChannel = tensor(LinearScheme.asym(4, -1), 1, 40, new float[] {1}, new byte[] {1}, null)
                .named("T");
        assertThatThrownBy(() -> OnnxExport.quantizedModel("m.onnx", gatherModel(1, 40), Map.of("T", perChannel)))
                .hasMessageContaining("per channel")
                .hasMessageContaining("no such block divides 40");
        QuantizedTensor b3 = tensor(LinearScheme.asym(3, 16), 1, 16, new float[] {1}, new byte[] {1}, null)
                .named("T");
        assertThatThrownBy(() -> OnnxExport.quantizedModel("m.onnx", gatherModel(1, 16), Map.of("T", b3)))
                .hasMessageContaining("3-bit codes: GatherBlockQuantized is written at 4 or 8 bits");
        QuantizedTensor wrongShape = tensor(
                        LinearScheme.asym(4, 16), 2, 16, new float[] {1, 1}, new byte[] {1, 1}, null)
                .named("T");
        assertThatThrownBy(() -> OnnxExport.quantizedModel("m.onnx", gatherModel(1, 32), Map.of("T", wrongShape)))
                .hasMessageContaining("its quantization [2, 16] is not of its shape [1, 32]");
    }
}
