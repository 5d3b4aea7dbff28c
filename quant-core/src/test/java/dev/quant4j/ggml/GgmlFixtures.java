package dev.quant4j.ggml;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** The files ggml wrote for the oracle tests ({@code src/test/resources/ggml/README.md} says how). */
public final class GgmlFixtures {

    /** Shape of {@code input.f32} and of every {@code TYPE.bin}. */
    public static final int ROWS = 16;

    public static final int COLS = 256;

    private GgmlFixtures() {}

    public static byte[] bytes(String name) {
        try (InputStream in = GgmlFixtures.class.getResourceAsStream("/ggml/" + name)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource /ggml/" + name);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static float[] floats(String name) {
        ByteBuffer bb = ByteBuffer.wrap(bytes(name)).order(ByteOrder.LITTLE_ENDIAN);
        float[] f = new float[bb.remaining() / 4];
        bb.asFloatBuffer().get(f);
        return f;
    }
}
