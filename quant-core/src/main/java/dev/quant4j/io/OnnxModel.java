package dev.quant4j.io;

import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The weights and the graph wiring of an ONNX model: what loading a model's weights needs, nothing more. Reads the
 * protobuf wire format directly (no protobuf library): the graph's nodes (name, operator, input and output names),
 * its inputs and outputs, and its initializers (name, dims, element type, and the float values of FLOAT tensors).
 *
 * <p>Followed: onnx/onnx {@code onnx.proto} (IR version 3 and later): {@code ModelProto.graph} = 7; {@code
 * GraphProto.node} = 1, {@code initializer} = 5, {@code input} = 11, {@code output} = 12; {@code NodeProto.input} = 1,
 * {@code output} = 2, {@code name} = 3, {@code op_type} = 4; {@code TensorProto.dims} = 1, {@code data_type} = 2,
 * {@code segment} = 3, {@code float_data} = 4, {@code name} = 8, {@code raw_data} = 9 (little-endian), {@code
 * external_data} = 13, {@code data_location} = 14; {@code ValueInfoProto.name} = 1. Unknown fields are skipped, as
 * protobuf requires.
 *
 * <p>Clear errors ({@link MalformedTensorFileException}, naming the file, the message or tensor, and the byte offset)
 * for: truncated or malformed protobuf, a negative or overflowing dimension, a FLOAT tensor whose data does not hold
 * exactly its element count, duplicate initializer names, tensors stored in segments, and reading the floats of a
 * tensor of another type.
 *
 * <p>Tensors stored outside the file ({@code data_location} = EXTERNAL, {@code external_data} entries {@code location},
 * {@code offset}, {@code length}: {@link External}) are read from the model's folder when their values are asked for,
 * each with a positional read of its own range; their locations and ranges are checked when the model is parsed.
 *
 * <p>Every initializer of a type safetensors can hold keeps its values as little-endian bytes ({@link
 * Initializer#bytes()}, {@link Initializer#dtype()}), from {@code raw_data} or from the typed fields {@code int32_data}
 * = 5 (INT32, INT16, INT8, UINT16, UINT8, BOOL, and the bits of FLOAT16 and BFLOAT16), {@code int64_data} = 7,
 * {@code double_data} = 10 and {@code uint64_data} = 11 (UINT32, UINT64), so a model's other tensors (an INT64 {@code
 * position_ids}, FLOAT16 weights) can be carried through unchanged. Other types (STRING, complex, 8- and 4-bit floats
 * and integers) are read but hold no bytes.
 */
public final class OnnxModel {

    /** ONNX {@code TensorProto.DataType} values named in messages. */
    public static final int FLOAT = 1;

    public static final int INT64 = 7;

    /**
     * The safetensors dtype of each ONNX {@code TensorProto.DataType} that has one (index = ONNX type), else null:
     * FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, (STRING), BOOL, FLOAT16, DOUBLE, UINT32, UINT64, (COMPLEX64,
     * COMPLEX128), BFLOAT16.
     */
    private static final DType[] DTYPES = {
        null,
        DType.F32,
        DType.U8,
        DType.I8,
        DType.U16,
        DType.I16,
        DType.I32,
        DType.I64,
        null,
        DType.BOOL,
        DType.F16,
        DType.F64,
        DType.U32,
        DType.U64,
        null,
        null,
        DType.BF16
    };

    /** ONNX's name of a {@code TensorProto.DataType}, for messages. */
    public static String typeName(int dataType) {
        String[] names = {
            "UNDEFINED",
            "FLOAT",
            "UINT8",
            "INT8",
            "UINT16",
            "INT16",
            "INT32",
            "INT64",
            "STRING",
            "BOOL",
            "FLOAT16",
            "DOUBLE",
            "UINT32",
            "UINT64",
            "COMPLEX64",
            "COMPLEX128",
            "BFLOAT16"
        };
        return dataType >= 0 && dataType < names.length ? names[dataType] : "type " + dataType;
    }

    /** One operator of the graph. */
    public record Node(String name, String opType, List<String> inputs, List<String> outputs) {

        public Node {
            inputs = List.copyOf(inputs);
            outputs = List.copyOf(outputs);
        }
    }

    /** One initializer (a constant tensor: a weight, a bias, a table). Float values are decoded on request. */
    public static final class Initializer {
        private final String source;
        private final String name;
        private final long[] dims;
        private final long elements;
        private final int dataType;
        private final float[] floats;
        /** Little-endian values of a non-FLOAT tensor with a safetensors dtype, else null. */
        private final byte[] bytes;
        /** Where the values are when they are stored outside the model file, else null. */
        private final External external;

        Initializer(
                String source,
                String name,
                long[] dims,
                long elements,
                int dataType,
                float[] floats,
                byte[] bytes,
                External external) {
            this.source = source;
            this.name = name;
            this.dims = dims;
            this.elements = elements;
            this.dataType = dataType;
            this.floats = floats;
            this.bytes = bytes;
            this.external = external;
        }

        /** Where the values are stored outside the model file ({@code data_location = EXTERNAL}), or null. */
        public External external() {
            return external;
        }

        public String name() {
            return name;
        }

        public long[] dims() {
            return dims.clone();
        }

        /** The number of elements, the product of the dims (checked below 2^31 when the file was read). */
        public long elements() {
            return elements;
        }

        /** ONNX element type ({@code TensorProto.DataType}: 1 FLOAT, 7 INT64, 10 FLOAT16 ...). */
        public int dataType() {
            return dataType;
        }

        /** The safetensors dtype of this tensor's values, or null for a type safetensors cannot hold (STRING ...). */
        public DType dtype() {
            return dataType >= 0 && dataType < DTYPES.length ? DTYPES[dataType] : null;
        }

        /**
         * The values as little-endian bytes of {@link #dtype()}, row-major (a copy).
         *
         * @throws MalformedTensorFileException for a type safetensors cannot hold, naming the tensor and the type
         */
        public byte[] bytes() {
            if (external != null && dtype() != null) {
                return external.read(source, name);
            }
            if (dataType == FLOAT) {
                ByteBuffer b = ByteBuffer.allocate(4 * floats.length).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(floats);
                return b.array();
            }
            if (bytes == null) {
                throw new MalformedTensorFileException(source + ": initializer '" + name + "' is of ONNX type "
                        + typeName(dataType) + ", which a .safetensors file cannot hold");
            }
            return bytes.clone();
        }

        /** A copy of the values of a FLOAT tensor, row-major. */
        public float[] floats() {
            return external != null ? requireFloat() : requireFloat().clone();
        }

        /** A 2-D FLOAT tensor as a matrix {@code [dims[0], dims[1]]} (ONNX MatMul weights are {@code [in, out]}). */
        public FloatMatrix matrix() {
            float[] f = requireFloat();
            if (dims.length != 2) {
                throw new MalformedTensorFileException(
                        source + ": initializer '" + name + "' has shape " + Arrays.toString(dims) + ", not 2-D");
            }
            return FloatMatrix.of(name, (int) dims[0], (int) dims[1], external != null ? f : f.clone(), 0);
        }

        private float[] requireFloat() {
            if (dataType != FLOAT) {
                throw new MalformedTensorFileException(source + ": initializer '" + name + "' has ONNX data type "
                        + typeName(dataType) + ", not FLOAT");
            }
            if (external != null) {
                float[] f = new float[(int) elements];
                ByteBuffer.wrap(external.read(source, name))
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .asFloatBuffer()
                        .get(f);
                return f;
            }
            return floats;
        }

        @Override
        public String toString() {
            return "Initializer[" + name + ", " + Arrays.toString(dims) + ", type " + dataType + "]";
        }
    }

    /**
     * A tensor's values outside the model file, as ONNX's {@code docs/ExternalData.md} describes them (commit {@code
     * 22b3d42c}): {@code external_data} entries {@code location} (a path relative to the model's folder, required),
     * {@code offset} (default 0) and {@code length} (default: to the end of the file). {@code file} is the location
     * resolved in the model's folder and checked (inside the folder, the range inside the file, the length the tensor's),
     * or null when the model was parsed from bytes without its folder.
     */
    public record External(String location, long offset, long length, Path file) {

        /** The tensor's bytes, read at their offset (a positional read of that range alone). */
        byte[] read(String source, String name) {
            if (file == null) {
                throw new MalformedTensorFileException(source + ": initializer '" + name + "' keeps its data in"
                        + " external file '" + location + "'; read the model from its file so that its folder is"
                        + " known");
            }
            if (length > Integer.MAX_VALUE - 8) {
                throw new MalformedTensorFileException(source + ": initializer '" + name + "' has " + length
                        + " bytes in '" + location + "', more than a Java array holds");
            }
            ByteBuffer bb = ByteBuffer.allocate((int) length);
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                PositionalReads.readFully(
                        ch::read,
                        bb,
                        offset,
                        at -> new MalformedTensorFileException(source + ": initializer '" + name + "': '" + location
                                + "' ends at byte " + at + ", before its " + length + " bytes from " + offset));
            } catch (IOException e) {
                throw new UncheckedIOException(
                        source + ": reading initializer '" + name + "' from '" + location + "'", e);
            }
            return bb.array();
        }
    }

    private final String source;
    private final Path folder;
    private final List<Node> nodes;
    private final Map<String, Initializer> initializers;
    private final List<String> inputs;
    private final List<String> outputs;

    private OnnxModel(
            String source,
            Path folder,
            List<Node> nodes,
            Map<String, Initializer> initializers,
            List<String> inputs,
            List<String> outputs) {
        this.source = source;
        this.folder = folder;
        this.nodes = List.copyOf(nodes);
        this.initializers = Collections.unmodifiableMap(initializers);
        this.inputs = List.copyOf(inputs);
        this.outputs = List.copyOf(outputs);
    }

    /**
     * Reads a {@code .onnx} file (the whole protobuf; ONNX keeps it under 2 GB and larger weights outside): tensors
     * stored as external data are found in the file's folder and read when their values are asked for.
     */
    public static OnnxModel read(Path file) throws IOException {
        return parse(file.toString(), readBytes(file), file.toAbsolutePath().getParent());
    }

    /** Whether some initializer keeps its values outside the model file. */
    public boolean hasExternalData() {
        for (Initializer t : initializers.values()) {
            if (t.external() != null) {
                return true;
            }
        }
        return false;
    }

    /** The bytes of a {@code .onnx} file, refused when larger than a protobuf can be (2 GB). */
    public static byte[] readBytes(Path file) throws IOException {
        long size = Files.size(file);
        if (size > Integer.MAX_VALUE - 8) {
            throw new MalformedTensorFileException(file + ": " + size + " bytes, larger than a protobuf can be (2 GB)");
        }
        return Files.readAllBytes(file);
    }

    /**
     * Parses a serialized {@code ModelProto}; {@code source} names it in messages. Tensors stored as external data are
     * listed, with their shapes, but their values cannot be read (use {@link #parse(String, byte[], Path)}).
     */
    public static OnnxModel parse(String source, byte[] bytes) {
        return parse(source, bytes, null);
    }

    /**
     * Parses a serialized {@code ModelProto} whose external data files are in {@code folder} (the model file's folder).
     * Each external tensor's location and range are checked here; its values are read when asked for.
     *
     * @throws MalformedTensorFileException for a location that is absolute, names a parent folder or leads outside
     *     {@code folder} (a link included), a file that is missing, an offset or length that is not a non-negative
     *     integer or reaches past the file, or a length that is not the tensor's size; each naming the initializer
     */
    public static OnnxModel parse(String source, byte[] bytes, Path folder) {
        ProtoReader model = new ProtoReader(source, "ModelProto", bytes, 0, bytes.length);
        ProtoReader graph = null;
        while (model.hasMore()) {
            long key = model.readKey();
            if (key == (7 << 3 | ProtoReader.LEN)) {
                if (graph != null) {
                    throw model.error("two graphs");
                }
                graph = model.nested("GraphProto", model.readLength());
            } else {
                model.skip((int) (key & 7));
            }
        }
        if (graph == null) {
            throw new MalformedTensorFileException(source + ": no graph (not an ONNX model?)");
        }
        List<Node> nodes = new ArrayList<>();
        Map<String, Initializer> inits = new LinkedHashMap<>();
        List<String> inputs = new ArrayList<>();
        List<String> outputs = new ArrayList<>();
        while (graph.hasMore()) {
            long key = graph.readKey();
            int field = (int) (key >>> 3);
            int wire = (int) (key & 7);
            if (wire != ProtoReader.LEN || (field != 1 && field != 5 && field != 11 && field != 12)) {
                graph.skip(wire);
                continue;
            }
            int at = graph.position();
            ProtoReader m = graph.nested(
                    field == 1 ? "NodeProto" : field == 5 ? "TensorProto" : "ValueInfoProto", graph.readLength());
            switch (field) {
                case 1 -> nodes.add(node(m));
                case 5 -> {
                    Initializer t = tensor(source, m, folder);
                    if (inits.put(t.name(), t) != null) {
                        throw new MalformedTensorFileException(
                                source + ": two initializers named '" + t.name() + "' (second at byte " + at + ")");
                    }
                }
                case 11 -> inputs.add(valueName(m));
                default -> outputs.add(valueName(m));
            }
        }
        return new OnnxModel(source, folder, nodes, inits, inputs, outputs);
    }

    /**
     * The TensorProto {@code m} (an initializer of a subgraph: an {@code If}, {@code Loop} or {@code Scan} attribute),
     * its external data checked against this model's folder as a top-level initializer's is.
     */
    Initializer subgraphTensor(ProtoReader m) {
        return tensor(source, m, folder);
    }

    private static Node node(ProtoReader m) {
        List<String> in = new ArrayList<>();
        List<String> out = new ArrayList<>();
        String name = "";
        String op = "";
        while (m.hasMore()) {
            long key = m.readKey();
            int field = (int) (key >>> 3);
            int wire = (int) (key & 7);
            if (wire == ProtoReader.LEN && field >= 1 && field <= 4) {
                String s = m.readString();
                switch (field) {
                    case 1 -> in.add(s);
                    case 2 -> out.add(s);
                    case 3 -> name = s;
                    default -> op = s;
                }
            } else {
                m.skip(wire);
            }
        }
        return new Node(name, op, in, out);
    }

    private static String valueName(ProtoReader m) {
        String name = "";
        while (m.hasMore()) {
            long key = m.readKey();
            if (key == (1 << 3 | ProtoReader.LEN)) {
                name = m.readString();
            } else {
                m.skip((int) (key & 7));
            }
        }
        return name;
    }

    private static Initializer tensor(String source, ProtoReader m, Path folder) {
        List<Long> dims = new ArrayList<>();
        int dataType = 0;
        String name = null;
        int rawFrom = -1;
        int rawLength = 0;
        float[] floatData = null;
        int floatCount = 0;
        // int32_data, int64_data and uint64_data as varints; double_data as 64-bit patterns
        long[] intData = null;
        int intCount = 0;
        boolean external = false;
        Map<String, String> externalData = new LinkedHashMap<>();
        while (m.hasMore()) {
            long key = m.readKey();
            int field = (int) (key >>> 3);
            int wire = (int) (key & 7);
            switch (field) {
                case 1 -> {
                    if (wire == ProtoReader.LEN) { // packed
                        ProtoReader p = m.nested("TensorProto.dims", m.readLength());
                        while (p.hasMore()) {
                            dims.add(p.readVarint());
                        }
                    } else if (wire == ProtoReader.VARINT) {
                        dims.add(m.readVarint());
                    } else {
                        throw m.error("dims with wire type " + wire);
                    }
                }
                case 2 ->
                    dataType = (int) requireWire(m, wire, ProtoReader.VARINT, "data_type")
                            .readVarint();
                case 3 ->
                    throw m.error(
                            "tensor " + (name == null ? "" : "'" + name + "' ") + "stored in segments: not supported");
                case 4 -> {
                    if (wire == ProtoReader.LEN) { // packed floats
                        int n = m.readLength();
                        if (n % 4 != 0) {
                            throw m.error("float_data of " + n + " bytes, not a multiple of 4");
                        }
                        ProtoReader p = m.nested("TensorProto.float_data", n);
                        floatData = grow(floatData, floatCount + n / 4);
                        while (p.hasMore()) {
                            floatData[floatCount++] = Float.intBitsToFloat(p.readFixed32());
                        }
                    } else if (wire == ProtoReader.FIXED32) {
                        floatData = grow(floatData, floatCount + 1);
                        floatData[floatCount++] = Float.intBitsToFloat(m.readFixed32());
                    } else {
                        throw m.error("float_data with wire type " + wire);
                    }
                }
                case 5, 7, 11 -> {
                    if (wire == ProtoReader.LEN) { // packed varints
                        ProtoReader p = m.nested("TensorProto.int_data", m.readLength());
                        while (p.hasMore()) {
                            intData = grow(intData, intCount + 1);
                            intData[intCount++] = p.readVarint();
                        }
                    } else if (wire == ProtoReader.VARINT) {
                        intData = grow(intData, intCount + 1);
                        intData[intCount++] = m.readVarint();
                    } else {
                        throw m.error("integer data with wire type " + wire);
                    }
                }
                case 10 -> {
                    if (wire == ProtoReader.LEN) { // packed doubles
                        int n = m.readLength();
                        if (n % 8 != 0) {
                            throw m.error("double_data of " + n + " bytes, not a multiple of 8");
                        }
                        ProtoReader p = m.nested("TensorProto.double_data", n);
                        intData = grow(intData, intCount + n / 8);
                        while (p.hasMore()) {
                            intData[intCount++] = p.readFixed64();
                        }
                    } else if (wire == ProtoReader.FIXED64) {
                        intData = grow(intData, intCount + 1);
                        intData[intCount++] = m.readFixed64();
                    } else {
                        throw m.error("double_data with wire type " + wire);
                    }
                }
                case 8 -> name = requireWire(m, wire, ProtoReader.LEN, "name").readString();
                case 9 -> {
                    rawLength =
                            requireWire(m, wire, ProtoReader.LEN, "raw_data").readLength();
                    rawFrom = m.position();
                    m.skipBytes(rawLength);
                }
                case 13 -> {
                    ProtoReader e = requireWire(m, wire, ProtoReader.LEN, "external_data")
                            .nested("StringStringEntryProto", m.readLength());
                    String k = "";
                    String v = "";
                    while (e.hasMore()) {
                        long ek = e.readKey();
                        if (ek == (1 << 3 | ProtoReader.LEN)) {
                            k = e.readString();
                        } else if (ek == (2 << 3 | ProtoReader.LEN)) {
                            v = e.readString();
                        } else {
                            e.skip((int) (ek & 7));
                        }
                    }
                    externalData.put(k, v);
                }
                case 14 ->
                    external |= requireWire(m, wire, ProtoReader.VARINT, "data_location")
                                    .readVarint()
                            == 1;
                default -> m.skip(wire);
            }
        }
        String label = "initializer '" + (name == null ? "?" : name) + "'";
        if (name == null || name.isEmpty()) {
            throw new MalformedTensorFileException(
                    source + ": an initializer without a name, ending at byte " + m.position());
        }
        long[] d = new long[dims.size()];
        long elements = 1;
        for (int i = 0; i < d.length; i++) {
            d[i] = dims.get(i);
            if (d[i] < 0) {
                throw new MalformedTensorFileException(source + ": " + label + " has dimension " + i + " = " + d[i]);
            }
            elements = multiplyChecked(source, label, elements, d[i]);
        }
        if (external) {
            DType dtype = dataType >= 0 && dataType < DTYPES.length ? DTYPES[dataType] : null;
            long need = dtype == null ? -1 : elements * dtype.bytes();
            External ext = external(source, label, externalData, need, folder);
            return new Initializer(source, name, d, elements, dataType, null, null, ext);
        }
        float[] floats = null;
        if (dataType == FLOAT) {
            if (rawFrom >= 0) {
                if (rawLength != 4 * elements) {
                    throw new MalformedTensorFileException(source + ": " + label + " of shape " + Arrays.toString(d)
                            + " needs " + 4 * elements + " bytes of raw_data, has " + rawLength);
                }
                floats = new float[(int) elements];
                ByteBuffer.wrap(m.bytes(), rawFrom, rawLength)
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .asFloatBuffer()
                        .get(floats);
            } else {
                if (floatCount != elements) {
                    throw new MalformedTensorFileException(source + ": " + label + " of shape " + Arrays.toString(d)
                            + " has " + floatCount + " float_data values, needs " + elements);
                }
                floats = floatData == null ? new float[0] : Arrays.copyOf(floatData, floatCount);
            }
        }
        byte[] bytes = null;
        DType dtype = dataType >= 0 && dataType < DTYPES.length ? DTYPES[dataType] : null;
        if (dataType != FLOAT && dtype != null) {
            long need = elements * dtype.bytes();
            if (rawFrom >= 0) {
                if (rawLength != need) {
                    throw new MalformedTensorFileException(source + ": " + label + " of shape " + Arrays.toString(d)
                            + " and type " + typeName(dataType) + " needs " + need + " bytes of raw_data, has "
                            + rawLength);
                }
                bytes = Arrays.copyOfRange(m.bytes(), rawFrom, rawFrom + rawLength);
            } else {
                if (intCount != elements) {
                    throw new MalformedTensorFileException(source + ": " + label + " of shape " + Arrays.toString(d)
                            + " and type " + typeName(dataType) + " has " + intCount + " values, needs " + elements);
                }
                ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(need)).order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < intCount; i++) {
                    long v = intData[i];
                    switch (dtype.bytes()) {
                        case 1 -> b.put((byte) v);
                        case 2 -> b.putShort((short) v);
                        case 4 -> b.putInt((int) v);
                        default -> b.putLong(v);
                    }
                }
                bytes = b.array();
            }
        }
        return new Initializer(source, name, d, elements, dataType, floats, bytes, null);
    }

    /**
     * The external data of a tensor ({@code need} bytes, or -1 when its type has no fixed width), checked against
     * {@code folder} when it is known.
     */
    private static External external(String source, String label, Map<String, String> entries, long need, Path folder) {
        String location = entries.get("location");
        if (location == null || location.isEmpty()) {
            throw new MalformedTensorFileException(
                    source + ": " + label + " is stored as external data without a" + " location");
        }
        long offset = externalNumber(source, label, entries, "offset", 0);
        long length = externalNumber(source, label, entries, "length", -1);
        Path rel;
        try {
            rel = Path.of(location);
        } catch (java.nio.file.InvalidPathException e) {
            throw new MalformedTensorFileException(
                    source + ": " + label + ": external data location '" + location + "' is not a path");
        }
        boolean up = false;
        for (Path part : rel) {
            up |= part.toString().equals("..");
        }
        if (rel.isAbsolute() || up || location.startsWith("/") || location.contains("\\")) {
            throw new MalformedTensorFileException(source + ": " + label + ": external data location '" + location
                    + "' is not a path inside the model's folder (ONNX forbids absolute paths and '..')");
        }
        if (folder == null) {
            return new External(location, offset, length, null);
        }
        Path file = folder.resolve(rel).normalize();
        long size;
        try {
            Path real = file.toRealPath();
            if (!real.startsWith(folder.toRealPath())) {
                throw new MalformedTensorFileException(source + ": " + label + ": external data location '" + location
                        + "' leads outside the model's folder (to " + real + ")");
            }
            if (!Files.isRegularFile(real)) {
                throw new MalformedTensorFileException(
                        source + ": " + label + ": external data '" + location + "' is not a file");
            }
            size = Files.size(real);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new MalformedTensorFileException(
                    source + ": " + label + ": external data file '" + location + "' does not exist in " + folder);
        } catch (IOException e) {
            throw new MalformedTensorFileException(
                    source + ": " + label + ": external data file '" + location + "': " + e.getMessage());
        }
        if (offset > size) {
            throw new MalformedTensorFileException(source + ": " + label + ": offset " + offset + " is past the end"
                    + " of '" + location + "' (" + size + " bytes)");
        }
        if (length < 0) {
            length = size - offset;
        }
        if (length > size - offset) {
            throw new MalformedTensorFileException(source + ": " + label + ": bytes [" + offset + ", "
                    + (offset + length) + ") reach past the end of '" + location + "' (" + size + " bytes)");
        }
        if (need >= 0 && length != need) {
            throw new MalformedTensorFileException(source + ": " + label + " needs " + need + " bytes, its external"
                    + " data in '" + location + "' has " + length);
        }
        return new External(location, offset, length, file);
    }

    private static long externalNumber(
            String source, String label, Map<String, String> entries, String key, long dflt) {
        String v = entries.get(key);
        if (v == null) {
            return dflt;
        }
        try {
            long n = Long.parseLong(v);
            if (n < 0) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new MalformedTensorFileException(
                    source + ": " + label + ": external data " + key + " '" + v + "' is not a non-negative integer");
        }
    }

    private static ProtoReader requireWire(ProtoReader m, int wire, int expected, String field) {
        if (wire != expected) {
            throw m.error(field + " with wire type " + wire + ", expected " + expected);
        }
        return m;
    }

    private static long multiplyChecked(String source, String label, long a, long b) {
        if (b != 0 && a > (Integer.MAX_VALUE - 8) / b) {
            throw new MalformedTensorFileException(source + ": " + label + " has more than 2^31 elements");
        }
        return a * b;
    }

    private static long[] grow(long[] a, int need) {
        if (a == null) {
            return new long[Math.max(16, need)];
        }
        return a.length >= need ? a : Arrays.copyOf(a, Math.max(need, 2 * a.length));
    }

    private static float[] grow(float[] a, int need) {
        if (a == null) {
            return new float[Math.max(16, need)];
        }
        return a.length >= need ? a : Arrays.copyOf(a, Math.max(need, 2 * a.length));
    }

    /** Where the model came from, as given to {@link #parse}. */
    public String source() {
        return source;
    }

    /** The graph's operators, in file order (ONNX requires topological order). */
    public List<Node> nodes() {
        return nodes;
    }

    /** Initializers by name, in file order. */
    public Map<String, Initializer> initializers() {
        return initializers;
    }

    /** The initializer {@code name}, or a clear error naming it. */
    public Initializer initializer(String name) {
        Initializer t = initializers.get(name);
        if (t == null) {
            throw new MalformedTensorFileException(source + ": no initializer named '" + name + "'");
        }
        return t;
    }

    /**
     * The weights of the graph's MatMul nodes: node name to the name of its second input, where that input is an
     * initializer (a weight stored {@code [in, out]}, as {@code MatMul(x, W)} computes {@code x W}), in node order.
     */
    public Map<String, String> matMulWeights() {
        Map<String, String> w = new LinkedHashMap<>();
        for (Node n : nodes) {
            if (n.opType().equals("MatMul")
                    && n.inputs().size() == 2
                    && initializers.containsKey(n.inputs().get(1))) {
                w.put(n.name(), n.inputs().get(1));
            }
        }
        return w;
    }

    /** Names of the graph's inputs (ONNX before IR 4 also lists initializers here). */
    public List<String> inputs() {
        return inputs;
    }

    /** Names of the graph's outputs. */
    public List<String> outputs() {
        return outputs;
    }
}
