package dev.quant4j.io;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Re-emits a serialized ONNX {@code ModelProto} with chosen changes, keeping the original bytes of every field it does
 * not change: the model's metadata, every node, initializer, graph input and output, value_info and any field unknown
 * here are copied byte for byte, in their order. With no change the output equals the input.
 *
 * <p>Changes: a node (by its index in the graph) replaced by zero or more nodes in its place; an initializer (by name)
 * replaced by zero or more initializers in its place; initializers added after the last one; graph inputs (by name)
 * dropped (an initializer listed as a graph input, as ONNX before IR 4 does, goes with its initializer); and operator
 * set imports added, after the last existing one, for domains the model does not import yet.
 *
 * <p>Followed: onnx/onnx {@code onnx/onnx.proto} (IR version 3 and later; checked against onnx 1.17): {@code
 * ModelProto.opset_import} = 8, {@code graph} = 7; {@code OperatorSetIdProto.domain} = 1, {@code version} = 2; {@code
 * GraphProto.node} = 1, {@code initializer} = 5, {@code input} = 11; {@code NodeProto.input} = 1, {@code output} = 2,
 * {@code name} = 3, {@code op_type} = 4, {@code attribute} = 5, {@code domain} = 7; {@code AttributeProto.name} = 1,
 * {@code i} = 3, {@code type} = 20 ({@code INT} = 2); {@code TensorProto.dims} = 1, {@code data_type} = 2, {@code
 * name} = 8, {@code raw_data} = 9; {@code ValueInfoProto.name} = 1.
 */
final class OnnxRewriter {

    /** A new initializer: already encoded, or {@link Lazy}. */
    sealed interface Added permits Encoded, Lazy {}

    /** An encoded TensorProto, written as it is. */
    record Encoded(byte[] tensor) implements Added {}

    /**
     * A tensor whose values ({@code length} bytes, little-endian, row-major) are made only when it is written, so that
     * a writer holds one tensor's values at a time. Inside the model it is {@link #tensor(String, int, long[], byte[])}
     * of those values; written with external data, it is {@link #header()} and its values go to the data file.
     */
    record Lazy(String name, int dataType, long[] dims, long length, Supplier<byte[]> values) implements Added {

        /** The values, checked to be {@code length} bytes. */
        byte[] bytes() {
            byte[] b = values.get();
            if (b.length != length) {
                throw new IllegalStateException(
                        "tensor '" + name + "': " + b.length + " bytes made, " + length + " announced");
            }
            return b;
        }

        /** The TensorProto without its values: dims, data_type, name, then {@code data_location = EXTERNAL}. */
        ProtoWriter header() {
            ProtoWriter t = new ProtoWriter();
            if (dims.length > 0) {
                t.writePackedInt64(1, dims);
            }
            t.writeInt64(2, dataType);
            t.writeString(8, name);
            t.writeInt64(14, 1);
            return t;
        }
    }

    /** The changes to make; an empty edit changes nothing. */
    static final class Edit {
        final Map<Integer, List<byte[]>> nodes = new LinkedHashMap<>();
        final Map<String, List<Added>> initializers = new LinkedHashMap<>();
        final List<Added> addedInitializers = new ArrayList<>();
        final Set<String> droppedInputs = new HashSet<>();
        final Map<String, Long> opsets = new LinkedHashMap<>();
        /** The quantized weight each new tensor is made from, by the tensor's name (filled by {@link OnnxExport}). */
        final Map<String, String> owners = new LinkedHashMap<>();

        /** Node {@code index} (in graph order) becomes {@code replacement} (encoded NodeProtos; none removes it). */
        Edit replaceNode(int index, List<byte[]> replacement) {
            nodes.put(index, List.copyOf(replacement));
            return this;
        }

        /** Initializer {@code name} becomes {@code replacement} (encoded TensorProtos; none removes it). */
        Edit replaceInitializer(String name, List<byte[]> replacement) {
            return replaceInitializerWith(
                    name, replacement.stream().<Added>map(Encoded::new).toList());
        }

        /** Initializer {@code name} becomes {@code replacement} (none removes it). */
        Edit replaceInitializerWith(String name, List<? extends Added> replacement) {
            initializers.put(name, List.copyOf(replacement));
            return this;
        }

        Edit addInitializer(byte[] tensor) {
            return addInitializer(new Encoded(tensor));
        }

        Edit addInitializer(Added tensor) {
            addedInitializers.add(tensor);
            return this;
        }

        Edit dropInput(String name) {
            droppedInputs.add(name);
            return this;
        }

        /** Imports {@code domain} at {@code version} unless the model already imports that domain. */
        Edit requireOpset(String domain, long version) {
            opsets.put(domain, version);
            return this;
        }

        /** The {@link Lazy} tensors of this edit by name. */
        Map<String, Lazy> lazyTensors() {
            Map<String, Lazy> out = new LinkedHashMap<>();
            List<Added> all = new ArrayList<>(addedInitializers);
            initializers.values().forEach(all::addAll);
            for (Added a : all) {
                if (a instanceof Lazy l) {
                    out.put(l.name(), l);
                }
            }
            return out;
        }
    }

    private OnnxRewriter() {}

    /** The model {@code bytes} with {@code edit} made; {@code source} names it in messages. */
    static byte[] rewrite(String source, byte[] bytes, Edit edit) {
        return rewrite(source, bytes, edit, false);
    }

    /**
     * {@link #rewrite(String, byte[], Edit)}; with {@code external}, each {@link Lazy} tensor of at least {@link
     * OnnxExternalData#SIZE_THRESHOLD} bytes is written as its {@link Lazy#header()} only (its values are not made),
     * for {@link OnnxExternalData} to place in the data file.
     */
    static byte[] rewrite(String source, byte[] bytes, Edit edit, boolean external) {
        ProtoReader model = new ProtoReader(source, "ModelProto", bytes, 0, bytes.length);
        ProtoWriter out = new ProtoWriter(bytes.length + 1024);
        Set<String> imported = new HashSet<>();
        int lastOpsetEnd = -1;
        // first pass: which domains are imported, and where the last import ends
        while (model.hasMore()) {
            long key = model.readKey();
            if (key == (8 << 3 | ProtoReader.LEN)) {
                ProtoReader opset = model.nested("OperatorSetIdProto", model.readLength());
                String domain = "";
                while (opset.hasMore()) {
                    long k = opset.readKey();
                    if (k == (1 << 3 | ProtoReader.LEN)) {
                        domain = opset.readString();
                    } else {
                        opset.skip((int) (k & 7));
                    }
                }
                imported.add(domain);
                lastOpsetEnd = model.position();
            } else {
                model.skip((int) (key & 7));
            }
        }
        ProtoWriter opsets = new ProtoWriter();
        for (Map.Entry<String, Long> e : edit.opsets.entrySet()) {
            if (!imported.contains(e.getKey())) {
                ProtoWriter id = new ProtoWriter();
                id.writeString(1, e.getKey());
                id.writeInt64(2, e.getValue());
                opsets.writeMessage(8, id);
            }
        }
        boolean graphSeen = false;
        model = new ProtoReader(source, "ModelProto", bytes, 0, bytes.length);
        while (model.hasMore()) {
            int start = model.position();
            long key = model.readKey();
            if (key == (7 << 3 | ProtoReader.LEN)) {
                if (graphSeen) {
                    throw model.error("two graphs");
                }
                graphSeen = true;
                int length = model.readLength();
                int body = model.position();
                ProtoWriter graph = rewriteGraph(source, model.nested("GraphProto", length), edit, external);
                if (graph.contentEquals(bytes, body, body + length)) {
                    // unchanged: the field as it was, its key and length too (a writer may encode them in more bytes)
                    out.writeRaw(bytes, start, model.position() - start);
                } else {
                    out.writeMessage(7, graph);
                }
            } else {
                model.skip((int) (key & 7));
                out.writeRaw(bytes, start, model.position() - start);
            }
            if (model.position() == lastOpsetEnd) {
                out.writeRaw(opsets.toByteArray());
            }
        }
        if (!graphSeen) {
            throw new MalformedTensorFileException(source + ": no graph (not an ONNX model?)");
        }
        if (lastOpsetEnd < 0) {
            out.writeRaw(opsets.toByteArray());
        }
        return out.toByteArray();
    }

    private static ProtoWriter rewriteGraph(String source, ProtoReader graph, Edit edit, boolean external) {
        byte[] bytes = graph.bytes();
        ProtoWriter out = new ProtoWriter(graph.hasMore() ? bytes.length / 2 : 16);
        Set<String> droppedInputs = new HashSet<>(edit.droppedInputs);
        for (Map.Entry<String, List<Added>> e : edit.initializers.entrySet()) {
            if (e.getValue().isEmpty()) {
                droppedInputs.add(e.getKey());
            }
        }
        Set<Integer> nodesLeft = new HashSet<>(edit.nodes.keySet());
        Set<String> initializersLeft = new HashSet<>(edit.initializers.keySet());
        int nodeIndex = 0;
        int lastInitializerEnd = -1;
        // first pass: where the last initializer ends (the added ones follow it)
        int from = graph.position();
        while (graph.hasMore()) {
            long key = graph.readKey();
            graph.skip((int) (key & 7));
            if (key == (5 << 3 | ProtoReader.LEN)) {
                lastInitializerEnd = graph.position();
            }
        }
        int limit = graph.position();
        ProtoReader g = new ProtoReader(source, "GraphProto", bytes, from, limit);
        while (g.hasMore()) {
            int start = g.position();
            long key = g.readKey();
            int field = (int) (key >>> 3);
            int wire = (int) (key & 7);
            g.skip(wire);
            int end = g.position();
            boolean copy = true;
            if (wire == ProtoReader.LEN && field == 1) {
                List<byte[]> replacement = edit.nodes.get(nodeIndex);
                if (replacement != null) {
                    for (byte[] n : replacement) {
                        out.writeBytes(1, n);
                    }
                    nodesLeft.remove(nodeIndex);
                    copy = false;
                }
                nodeIndex++;
            } else if (wire == ProtoReader.LEN && (field == 5 || field == 11)) {
                String name = field == 5 ? tensorName(source, bytes, start, end) : valueName(source, bytes, start, end);
                if (field == 5) {
                    List<Added> replacement = edit.initializers.get(name);
                    if (replacement != null) {
                        for (Added t : replacement) {
                            writeTensor(out, t, external);
                        }
                        initializersLeft.remove(name);
                        copy = false;
                    }
                } else if (droppedInputs.contains(name)) {
                    copy = false;
                }
            }
            if (copy) {
                out.writeRaw(bytes, start, end - start);
            }
            if (end == lastInitializerEnd || (lastInitializerEnd < 0 && !g.hasMore())) {
                for (Added t : edit.addedInitializers) {
                    writeTensor(out, t, external);
                }
            }
        }
        if (lastInitializerEnd < 0 && from == limit) {
            for (Added t : edit.addedInitializers) {
                writeTensor(out, t, external);
            }
        }
        if (!nodesLeft.isEmpty()) {
            throw new IllegalArgumentException(
                    source + ": no node at index " + nodesLeft + " (the graph has " + nodeIndex + " nodes)");
        }
        if (!initializersLeft.isEmpty()) {
            throw new IllegalArgumentException(source + ": no initializer named " + initializersLeft);
        }
        return out;
    }

    /** {@code t} as a graph's initializer (field 5): its header alone when external and large enough. */
    private static void writeTensor(ProtoWriter graph, Added t, boolean external) {
        switch (t) {
            case Encoded e -> graph.writeBytes(5, e.tensor());
            case Lazy l -> {
                if (external && l.length() >= OnnxExternalData.SIZE_THRESHOLD) {
                    graph.writeMessage(5, l.header());
                } else {
                    graph.writeBytes(5, tensor(l.name(), l.dataType(), l.dims(), l.bytes()));
                }
            }
        }
    }

    /** The name (field 8) of the TensorProto field spanning {@code [start, end)}, key included. */
    private static String tensorName(String source, byte[] bytes, int start, int end) {
        return stringField(source, "TensorProto", bytes, start, end, 8);
    }

    /** The name (field 1) of the ValueInfoProto field spanning {@code [start, end)}, key included. */
    private static String valueName(String source, byte[] bytes, int start, int end) {
        return stringField(source, "ValueInfoProto", bytes, start, end, 1);
    }

    private static String stringField(String source, String message, byte[] bytes, int start, int end, int field) {
        ProtoReader outer = new ProtoReader(source, message, bytes, start, end);
        outer.readKey();
        ProtoReader m = outer.nested(message, outer.readLength());
        String s = "";
        while (m.hasMore()) {
            long key = m.readKey();
            if (key == ((long) field << 3 | ProtoReader.LEN)) {
                s = m.readString();
            } else {
                m.skip((int) (key & 7));
            }
        }
        return s;
    }

    /** The integer attribute {@code name} of node {@code index} (graph order) of the model {@code bytes}, or {@code dflt}. */
    static long intAttribute(String source, byte[] bytes, int index, String name, long dflt) {
        ProtoReader model = new ProtoReader(source, "ModelProto", bytes, 0, bytes.length);
        while (model.hasMore()) {
            long key = model.readKey();
            if (key != (7 << 3 | ProtoReader.LEN)) {
                model.skip((int) (key & 7));
                continue;
            }
            ProtoReader graph = model.nested("GraphProto", model.readLength());
            int at = 0;
            while (graph.hasMore()) {
                long k = graph.readKey();
                if (k != (1 << 3 | ProtoReader.LEN)) {
                    graph.skip((int) (k & 7));
                    continue;
                }
                ProtoReader node = graph.nested("NodeProto", graph.readLength());
                if (at++ != index) {
                    continue;
                }
                while (node.hasMore()) {
                    long nk = node.readKey();
                    if (nk != (5 << 3 | ProtoReader.LEN)) {
                        node.skip((int) (nk & 7));
                        continue;
                    }
                    ProtoReader attr = node.nested("AttributeProto", node.readLength());
                    String attrName = "";
                    Long value = null;
                    while (attr.hasMore()) {
                        long ak = attr.readKey();
                        if (ak == (1 << 3 | ProtoReader.LEN)) {
                            attrName = attr.readString();
                        } else if (ak == (3 << 3 | ProtoReader.VARINT)) {
                            value = attr.readVarint();
                        } else {
                            attr.skip((int) (ak & 7));
                        }
                    }
                    if (attrName.equals(name) && value != null) {
                        return value;
                    }
                }
                return dflt;
            }
        }
        return dflt;
    }

    /** An encoded NodeProto with integer attributes only, in the order given. */
    static byte[] node(
            String name,
            String opType,
            String domain,
            List<String> inputs,
            List<String> outputs,
            Map<String, Long> intAttributes) {
        ProtoWriter n = new ProtoWriter();
        for (String in : inputs) {
            n.writeString(1, in);
        }
        for (String o : outputs) {
            n.writeString(2, o);
        }
        if (!name.isEmpty()) {
            n.writeString(3, name);
        }
        n.writeString(4, opType);
        for (Map.Entry<String, Long> a : intAttributes.entrySet()) {
            ProtoWriter attr = new ProtoWriter();
            attr.writeString(1, a.getKey());
            attr.writeInt64(3, a.getValue());
            attr.writeInt64(20, 2); // AttributeProto.AttributeType.INT
            n.writeMessage(5, attr);
        }
        if (!domain.isEmpty()) {
            n.writeString(7, domain);
        }
        return n.toByteArray();
    }

    /** An encoded TensorProto: {@code raw} holds its values little-endian, row-major. */
    static byte[] tensor(String name, int dataType, long[] dims, byte[] raw) {
        ProtoWriter t = new ProtoWriter(raw.length + 64);
        if (dims.length > 0) {
            t.writePackedInt64(1, dims);
        }
        t.writeInt64(2, dataType);
        t.writeString(8, name);
        t.writeBytes(9, raw);
        return t.toByteArray();
    }
}
