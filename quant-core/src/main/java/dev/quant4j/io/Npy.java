package dev.quant4j.io;

import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy {@code .npy} files (format versions 1.0, 2.0 and 3.0, as NumPy's {@code format.py} documents them) holding
 * float32 ({@code <f4}, {@code >f4}) or float16 ({@code <f2}) arrays; Fortran order is transposed on reading. Writing
 * produces version 1.0, little-endian float32, C order, atomically.
 */
public final class Npy {

    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {}

    /** An array read from a file: its shape and its values as float32, C order. */
    public record Array(long[] shape, float[] data) {

        /** This array as a {@code [rows, cols]} matrix named {@code name}; it must be 2-D and non-empty. */
        public FloatMatrix asMatrix(String name) {
            if (shape.length != 2) {
                throw new IllegalArgumentException("tensor '" + name + "' has " + shape.length + " dimensions "
                        + java.util.Arrays.toString(shape) + ", expected 2 ([out, in])");
            }
            if (shape[0] == 0 || shape[1] == 0) {
                throw new IllegalArgumentException(
                        "tensor '" + name + "' is empty: shape " + java.util.Arrays.toString(shape));
            }
            return FloatMatrix.of(name, (int) shape[0], (int) shape[1], data, 0);
        }
    }

    /** Reads a whole {@code .npy} file. */
    public static Array read(Path path) throws IOException {
        byte[] bytes = Files.readAllBytes(path);
        return parse(bytes, path.toString());
    }

    /** Reads a 2-D float array as a matrix named after the file. */
    public static FloatMatrix readMatrix(Path path) throws IOException {
        String name = path.getFileName().toString().replaceFirst("\\.npy$", "");
        return read(path).asMatrix(name);
    }

    /** Parses {@code .npy} bytes; {@code source} names them in errors. */
    public static Array parse(byte[] bytes, String source) {
        if (bytes.length < 10) {
            throw bad(source, "file is " + bytes.length + " bytes, too short for a .npy header");
        }
        for (int i = 0; i < MAGIC.length; i++) {
            if (bytes[i] != MAGIC[i]) {
                throw bad(source, "not a .npy file (magic string missing)");
            }
        }
        int major = bytes[6] & 0xFF;
        ByteBuffer bb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long headerLen;
        int headerStart;
        if (major == 1) {
            headerLen = bb.getShort(8) & 0xFFFF;
            headerStart = 10;
        } else if (major == 2 || major == 3) {
            if (bytes.length < 12) {
                throw bad(source, "truncated header");
            }
            headerLen = bb.getInt(8) & 0xFFFFFFFFL;
            headerStart = 12;
        } else {
            throw bad(source, "unsupported .npy format version " + major);
        }
        if (headerStart + headerLen > bytes.length) {
            throw bad(
                    source,
                    "header length " + headerLen + " runs past the end of the file (" + bytes.length + " bytes)");
        }
        String header = new String(
                bytes, headerStart, (int) headerLen, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        String descr = find(DESCR, header, "descr", source);
        boolean fortran = "True".equals(find(FORTRAN, header, "fortran_order", source));
        long[] shape = parseShape(find(SHAPE, header, "shape", source), source);
        int itemSize;
        ByteOrder order;
        switch (descr) {
            case "<f4" -> {
                itemSize = 4;
                order = ByteOrder.LITTLE_ENDIAN;
            }
            case ">f4" -> {
                itemSize = 4;
                order = ByteOrder.BIG_ENDIAN;
            }
            case "<f2" -> {
                itemSize = 2;
                order = ByteOrder.LITTLE_ENDIAN;
            }
            default -> throw bad(source, "unsupported dtype '" + descr + "' (expected float32 '<f4' or float16 '<f2')");
        }
        long count = 1;
        try {
            for (long d : shape) {
                count = Math.multiplyExact(count, d);
            }
        } catch (ArithmeticException e) {
            throw bad(source, "shape " + java.util.Arrays.toString(shape) + " overflows");
        }
        long dataStart = headerStart + headerLen;
        long available = bytes.length - dataStart;
        if (count > Integer.MAX_VALUE - 8 || count * itemSize != available) {
            throw bad(
                    source,
                    "shape " + java.util.Arrays.toString(shape) + " of " + descr + " needs " + (count * itemSize)
                            + " data bytes, file has " + available);
        }
        float[] data = new float[(int) count];
        ByteBuffer body =
                ByteBuffer.wrap(bytes, (int) dataStart, (int) available).slice().order(order);
        if (itemSize == 4) {
            body.asFloatBuffer().get(data);
        } else {
            for (int i = 0; i < data.length; i++) {
                data[i] = Float.float16ToFloat(body.getShort(2 * i));
            }
        }
        if (fortran && shape.length == 2) {
            data = transpose(data, (int) shape[1], (int) shape[0]);
        } else if (fortran && shape.length > 2) {
            throw bad(source, "Fortran-order arrays with more than 2 dimensions are not supported");
        }
        return new Array(shape, data);
    }

    private static float[] transpose(float[] src, int rows, int cols) {
        float[] out = new float[src.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                out[c * rows + r] = src[r * cols + c];
            }
        }
        return out;
    }

    private static String find(Pattern p, String header, String key, String source) {
        Matcher m = p.matcher(header);
        if (!m.find()) {
            throw bad(source, "header has no valid '" + key + "' entry");
        }
        return m.group(1);
    }

    private static long[] parseShape(String text, String source) {
        List<Long> dims = new ArrayList<>();
        for (String part : text.split(",")) {
            String t = part.trim().replace("L", "");
            if (t.isEmpty()) {
                continue;
            }
            try {
                long d = Long.parseLong(t);
                if (d < 0) {
                    throw bad(source, "negative dimension " + d + " in shape");
                }
                dims.add(d);
            } catch (NumberFormatException e) {
                throw bad(source, "bad shape entry '" + t + "'");
            }
        }
        return dims.stream().mapToLong(Long::longValue).toArray();
    }

    private static MalformedTensorFileException bad(String source, String what) {
        return new MalformedTensorFileException(source + ": " + what);
    }

    /** Writes a float32 matrix as a 2-D {@code <f4} array, atomically. */
    public static void write(Path path, FloatMatrix m) throws IOException {
        write(path, new long[] {m.rows(), m.cols()}, m.toArray());
    }

    /** Writes float32 values with the given shape, atomically. */
    public static void write(Path path, long[] shape, float[] data) throws IOException {
        byte[] bytes = toBytes(shape, data);
        AtomicFiles.write(path, out -> out.write(bytes));
    }

    /** The bytes of a version 1.0 {@code .npy} file holding {@code data} as little-endian float32, C order. */
    public static byte[] toBytes(long[] shape, float[] data) {
        StringBuilder sh = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            sh.append(shape[i]);
            if (shape.length == 1 || i < shape.length - 1) {
                sh.append(shape.length == 1 ? "," : ", ");
            }
        }
        sh.append(')');
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + sh + ", }";
        int total = 10 + dict.length() + 1;
        int pad = (64 - total % 64) % 64;
        String header = dict + " ".repeat(pad) + "\n";
        ByteBuffer bb =
                ByteBuffer.allocate(10 + header.length() + 4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        bb.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
        bb.put(header.getBytes(StandardCharsets.ISO_8859_1));
        bb.asFloatBuffer().put(data);
        return bb.array();
    }
}
