package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.quant4j.cli.OnnxExportOrtTest.Proto;
import dev.quant4j.cli.eval.OrtModels;
import dev.quant4j.io.OnnxExport;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A GatherBlockQuantized table with float16 scales ({@link OnnxExport#quantizedModel(String, byte[], Map, int, Set)}):
 * the scales are FLOAT16 {@code [V, H / block]}, GatherBlockQuantized writes {@code <y>_float16} and a Cast to float32
 * writes the Gather's own output; ONNX Runtime 1.29.0's rows are quant4j's dequantized rows (scales rounded to float16
 * beforehand) rounded to float16.
 */
class OnnxFloat16TableScalesOrtTest {

    @Test
    void float16ScalesGiveTheDequantizedRowsInFloat16() throws Exception {
        for (LinearScheme scheme : List.of(LinearScheme.asym(4, 16), LinearScheme.sym(8, 16))) {
            int v = 3;
            int h = 48;
            QuantizedTensor q = OrtModels.float16Scales(OnnxExportOrtTest.random(
                    new Random(7), scheme, v, h, scheme.symmetry() == dev.quant4j.scheme.Symmetry.SYM, null));
            for (float s : q.scales()) {
                assertThat(Float.float16ToFloat(Float.floatToFloat16(s))).isEqualTo(s);
            }
            byte[] exported = OnnxExport.quantizedModel("table", tableModel(v, h), Map.of("T", q), 0, Set.of("T"));
            OnnxModel written = OnnxModel.parse("table", exported);
            assertThat(written.nodes())
                    .extracting(OnnxModel.Node::opType)
                    .containsExactly("GatherBlockQuantized", "Cast");
            assertThat(written.nodes().get(0).outputs()).containsExactly("y_float16");
            assertThat(written.nodes().get(1).inputs()).containsExactly("y_float16");
            assertThat(written.nodes().get(1).outputs()).containsExactly("y");
            OnnxModel.Initializer scales = written.initializer("T_scales");
            assertThat(scales.dataType()).isEqualTo(10); // FLOAT16
            assertThat(scales.dims()).containsExactly(v, h / 16);
            byte[] raw = scales.bytes();
            assertThat(raw).hasSize(2 * v * h / 16);
            float[] expected = q.scales();
            for (int i = 0; i < expected.length; i++) {
                short bits = (short) ((raw[2 * i] & 0xFF) | raw[2 * i + 1] << 8);
                assertThat(Float.float16ToFloat(bits)).isEqualTo(expected[i]);
            }

            OrtEnvironment env = OrtEnvironment.getEnvironment();
            long[] rows = {2, 0, 1, 2};
            try (OrtSession s = env.createSession(exported, new OrtSession.SessionOptions());
                    OnnxTensor in = OnnxTensor.createTensor(env, rows);
                    OrtSession.Result r = s.run(Map.of("i", in))) {
                float[][] y = (float[][]) r.get(0).getValue();
                FloatMatrix deq = q.dequantize();
                for (int j = 0; j < rows.length; j++) {
                    for (int c = 0; c < h; c++) {
                        float want = Float.float16ToFloat(Float.floatToFloat16(deq.get((int) rows[j], c)));
                        assertThat(y[j][c])
                                .as("%s row %d col %d", scheme, rows[j], c)
                                .isEqualTo(want);
                    }
                }
            }
        }
    }

    @Test
    void float16ScalesForWhatIsNotATableAreRefused() {
        QuantizedTensor q = OnnxExportOrtTest.random(new Random(7), LinearScheme.asym(4, 16), 3, 48, false, null);
        assertThatThrownBy(() -> OnnxExport.quantizedModel("table", tableModel(3, 48), Map.of("T", q), 0, Set.of("U")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'U'")
                .hasMessageContaining("GatherBlockQuantized");
        // a MatMul weight is no table: its scales stay float32, so asking for float16 is an error too
        QuantizedTensor w = OnnxExportOrtTest.random(new Random(7), LinearScheme.asym(4, 16), 2, 32, false, null);
        byte[] matMul = OnnxExportOrtTest.matMulModel(new float[32 * 2], 1, 32, 2);
        assertThatThrownBy(() -> OnnxExport.quantizedModel("mm", matMul, Map.of("W", w), 0, Set.of("W")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'W'");
    }

    /** {@code y = Gather(T, i)}, T float [v, h], i int64 [4]. */
    private static byte[] tableModel(int v, int h) {
        Proto indices = new Proto()
                .string(1, "i")
                .message(
                        2,
                        new Proto()
                                .message(
                                        1,
                                        new Proto()
                                                .intField(1, 7)
                                                .message(2, new Proto().message(1, new Proto().intField(1, 4)))));
        Proto graph = new Proto()
                .message(
                        1,
                        new Proto()
                                .string(1, "T")
                                .string(1, "i")
                                .string(2, "y")
                                .string(3, "g")
                                .string(4, "Gather"))
                .string(2, "g")
                .message(
                        5,
                        new Proto()
                                .intField(1, v)
                                .intField(1, h)
                                .intField(2, 1)
                                .string(8, "T")
                                .bytesField(9, new byte[4 * v * h]))
                .message(11, indices)
                .message(12, OnnxExportOrtTest.floatValue("y", 4, h));
        return new Proto()
                .intField(1, 8)
                .message(8, new Proto().string(1, "").intField(2, 17))
                .message(7, graph)
                .out
                .toByteArray();
    }
}
