package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.quant4j.tensor.FloatMatrix;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NpyTest {

    @TempDir
    Path dir;

    /** A .npy file written by hand, as numpy.save does for np.arange(6, dtype='<f4').reshape(2, 3). */
    static byte[] numpyBytes(String descr, String shape, boolean fortran, byte[] body) {
        String dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': "
                + shape + ", }";
        int pad = (64 - (10 + dict.length() + 1) % 64) % 64;
        String header = dict + " ".repeat(pad) + "\n";
        ByteBuffer bb = ByteBuffer.allocate(10 + header.length() + body.length).order(ByteOrder.LITTLE_ENDIAN);
        bb.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0});
        bb.putShort((short) header.length());
        bb.put(header.getBytes(StandardCharsets.ISO_8859_1)).put(body);
        return bb.array();
    }

    static byte[] f32(float... v) {
        ByteBuffer bb = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        bb.asFloatBuffer().put(v);
        return bb.array();
    }

    @Test
    void writesExactlyWhatNumpyWrites() {
        byte[] ours = Npy.toBytes(new long[] {2, 3}, new float[] {0, 1, 2, 3, 4, 5});
        assertThat(ours).containsExactly(numpyBytes("<f4", "(2, 3)", false, f32(0, 1, 2, 3, 4, 5)));
        assertThat(ours.length - 24).isEqualTo(128); // header padded to a multiple of 64 bytes, then 24 data bytes
    }

    @Test
    void roundTripsAMatrix() throws Exception {
        Path p = dir.resolve("w.npy");
        FloatMatrix m = FloatMatrix.of(2, 3, new float[] {1, -2, 3.5f, 0, 1e-8f, -7});
        Npy.write(p, m);
        FloatMatrix back = Npy.readMatrix(p);
        assertThat(back.name()).isEqualTo("w");
        assertThat(back.rows()).isEqualTo(2);
        assertThat(back.toArray()).containsExactly(m.toArray());
        try (var files = Files.list(dir)) {
            assertThat(files).containsExactly(p); // no temporary file left
        }
    }

    @Test
    void readsFortranOrderAndHalfPrecision() {
        // column-major [[0, 1, 2], [3, 4, 5]] is stored 0 3 1 4 2 5
        Npy.Array a = Npy.parse(numpyBytes("<f4", "(2, 3)", true, f32(0, 3, 1, 4, 2, 5)), "t");
        assertThat(a.data()).containsExactly(0, 1, 2, 3, 4, 5);
        ByteBuffer h = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        h.putShort(Float.floatToFloat16(1.5f)).putShort(Float.floatToFloat16(-2f));
        assertThat(Npy.parse(numpyBytes("<f2", "(1, 2)", false, h.array()), "t").data())
                .containsExactly(1.5f, -2f);
    }

    @Test
    void rejectsCorruptFilesWithClearMessages() {
        assertThatThrownBy(() -> Npy.parse(new byte[] {1, 2, 3}, "a.npy"))
                .isInstanceOf(MalformedTensorFileException.class)
                .hasMessageContaining("a.npy")
                .hasMessageContaining("too short");
        byte[] good = numpyBytes("<f4", "(2, 3)", false, f32(0, 1, 2, 3, 4, 5));
        byte[] notNpy = good.clone();
        notNpy[1] = 'X';
        assertThatThrownBy(() -> Npy.parse(notNpy, "a.npy")).hasMessageContaining("magic");
        assertThatThrownBy(() -> Npy.parse(Arrays.copyOf(good, good.length - 4), "a.npy"))
                .hasMessageContaining("needs 24 data bytes, file has 20");
        assertThatThrownBy(() -> Npy.parse(Arrays.copyOf(good, 40), "a.npy"))
                .hasMessageContaining("header length 118 runs past the end");
        assertThatThrownBy(() -> Npy.parse(numpyBytes("<i8", "(1,)", false, new byte[8]), "a.npy"))
                .hasMessageContaining("unsupported dtype '<i8'");
        assertThatThrownBy(() -> Npy.parse(numpyBytes("<f4", "(3,)", false, f32(1, 2, 3)), "a.npy")
                        .asMatrix("a"))
                .hasMessageContaining("tensor 'a' has 1 dimensions [3], expected 2");
        assertThatThrownBy(() -> Npy.parse(numpyBytes("<f4", "(0, 3)", false, new byte[0]), "a.npy")
                        .asMatrix("a"))
                .hasMessageContaining("tensor 'a' is empty");
    }
}
