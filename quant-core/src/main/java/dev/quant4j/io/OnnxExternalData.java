package dev.quant4j.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Writes an ONNX model with its initializers' values in an external data file beside it, as ONNX's {@code
 * docs/ExternalData.md} describes (commit {@code 22b3d42c}): {@code model-q.onnx} holds the graph and, for each
 * initializer of at least {@value #SIZE_THRESHOLD} bytes (onnx's {@code convert_model_to_external_data} default {@code
 * size_threshold}), {@code data_location = EXTERNAL} with {@code external_data} entries {@code location} ({@code
 * model-q.onnx.data}), {@code offset} and {@code length}; {@code model-q.onnx.data} holds their bytes, each starting at
 * a multiple of {@value #ALIGNMENT} bytes (the page size the document recommends, so that a runtime may map them).
 * Smaller initializers stay inside the model. Initializers that the model being written still keeps in the input's
 * external data (copied unchanged from it) are copied from the input's data file in the kernel, never through the heap.
 * Initializers of subgraphs (attributes {@code g} and {@code graphs} of any node, at any depth: {@code If}, {@code
 * Loop}, {@code Scan}) are written the same way, an external one found by its own entries, since a subgraph may reuse
 * a name of the main graph.
 *
 * <p>Followed: onnx/onnx {@code onnx/onnx.proto}: {@code ModelProto.graph} = 7, {@code GraphProto.initializer} = 5,
 * {@code TensorProto.name} = 8, {@code raw_data} = 9, {@code external_data} = 13 ({@code StringStringEntryProto.key} =
 * 1, {@code value} = 2), {@code data_location} = 14 ({@code EXTERNAL} = 1); {@code GraphProto.node} = 1, {@code NodeProto.attribute} = 5,
 * {@code AttributeProto.g} = 6, {@code graphs} = 11. Every other field is copied byte for byte.
 */
public final class OnnxExternalData {

    /** Initializers of this many bytes or more go to the data file. */
    public static final int SIZE_THRESHOLD = 1024;

    /** Each tensor's offset in the data file is a multiple of this. */
    public static final int ALIGNMENT = 4096;

    private OnnxExternalData() {}

    /**
     * Where one tensor's bytes come from: a range of the model's bytes, a range of an input data file, or a tensor
     * made when written.
     */
    private record Move(
            byte[] model, int from, OnnxModel.External input, OnnxRewriter.Lazy made, long length, long offset) {}

    /**
     * Writes {@code model} (a serialized ModelProto) to {@code out} and its large initializers to {@code out} plus
     * {@code .data}: both files are written in full to temporaries first, then moved into place one after the other,
     * so that no partial file is ever left. {@code input} is the model the output was made from, whose external data
     * the output's unchanged initializers still refer to.
     *
     * @throws MalformedTensorFileException when an initializer refers to external data that {@code input} does not
     *     hold
     */
    public static void write(Path out, String source, byte[] model, OnnxModel input) throws IOException {
        write(out, source, model, input, Map.of());
    }

    /**
     * {@link #write(Path, String, byte[], OnnxModel)} for a model some of whose initializers are {@code made}: their
     * TensorProtos in {@code model} are {@link OnnxRewriter.Lazy#header()}s, and their values are made and written
     * to the data file one tensor at a time.
     */
    static void write(Path out, String source, byte[] model, OnnxModel input, Map<String, OnnxRewriter.Lazy> made)
            throws IOException {
        String dataName = out.getFileName().toString() + ".data";
        List<Move> moves = new ArrayList<>();
        byte[] rewritten = rewriteModel(source, model, input, made, dataName, moves);
        Path data = out.resolveSibling(dataName);
        AtomicFiles.writeFile(data, tmp -> {
            try (FileChannel ch = FileChannel.open(
                    tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                for (Move m : moves) {
                    if (m.input() == null) {
                        ByteBuffer bb = m.made() != null
                                ? ByteBuffer.wrap(m.made().bytes())
                                : ByteBuffer.wrap(m.model(), m.from(), (int) m.length());
                        long at = m.offset();
                        while (bb.hasRemaining()) {
                            at += ch.write(bb, at);
                        }
                    } else {
                        try (FileChannel in = FileChannel.open(m.input().file(), StandardOpenOption.READ)) {
                            in.position(m.input().offset());
                            for (long done = 0; done < m.length(); ) {
                                long n = ch.transferFrom(in, m.offset() + done, m.length() - done);
                                if (n <= 0) {
                                    throw new MalformedTensorFileException(
                                            source + ": '" + m.input().location() + "' ends before its " + m.length()
                                                    + " bytes from " + m.input().offset());
                                }
                                done += n;
                            }
                        }
                    }
                }
            }
            AtomicFiles.write(out, o -> o.write(rewritten));
        });
    }

    private static byte[] rewriteModel(
            String source,
            byte[] bytes,
            OnnxModel input,
            Map<String, OnnxRewriter.Lazy> made,
            String dataName,
            List<Move> moves) {
        ProtoReader model = new ProtoReader(source, "ModelProto", bytes, 0, bytes.length);
        ProtoWriter out = new ProtoWriter(Math.min(bytes.length, 1 << 24));
        long[] end = {0};
        while (model.hasMore()) {
            int start = model.position();
            long key = model.readKey();
            if (key == (7 << 3 | ProtoReader.LEN)) {
                ProtoReader graph = model.nested("GraphProto", model.readLength());
                out.writeMessage(7, graph(source, graph, false, input, made, dataName, moves, end));
            } else {
                model.skip((int) (key & 7));
                out.writeRaw(bytes, start, model.position() - start);
            }
        }
        return out.toByteArray();
    }

    /**
     * A graph with its initializers' values moved ({@link #tensor}), the graphs of its nodes' attributes ({@code If}'s
     * branches, {@code Loop}'s and {@code Scan}'s bodies) too; everything else as it is.
     */
    private static ProtoWriter graph(
            String source,
            ProtoReader graph,
            boolean subgraph,
            OnnxModel input,
            Map<String, OnnxRewriter.Lazy> made,
            String dataName,
            List<Move> moves,
            long[] end) {
        byte[] bytes = graph.bytes();
        ProtoWriter g = new ProtoWriter();
        while (graph.hasMore()) {
            int at = graph.position();
            long k = graph.readKey();
            if (k == (5 << 3 | ProtoReader.LEN)) {
                ProtoReader t = graph.nested("TensorProto", graph.readLength());
                g.writeMessage(5, tensor(source, t, subgraph, input, made, dataName, moves, end));
            } else if (k == (1 << 3 | ProtoReader.LEN)) {
                // NodeProto.attribute = 5; AttributeProto.g = 6, graphs = 11
                ProtoReader node = graph.nested("NodeProto", graph.readLength());
                ProtoWriter n = new ProtoWriter();
                while (node.hasMore()) {
                    int nAt = node.position();
                    long nk = node.readKey();
                    if (nk != (5 << 3 | ProtoReader.LEN)) {
                        node.skip((int) (nk & 7));
                        n.writeRaw(bytes, nAt, node.position() - nAt);
                        continue;
                    }
                    ProtoReader attr = node.nested("AttributeProto", node.readLength());
                    ProtoWriter a = new ProtoWriter();
                    while (attr.hasMore()) {
                        int aAt = attr.position();
                        long ak = attr.readKey();
                        if (ak == (6 << 3 | ProtoReader.LEN) || ak == (11 << 3 | ProtoReader.LEN)) {
                            ProtoReader sub = attr.nested("GraphProto", attr.readLength());
                            a.writeMessage(
                                    (int) (ak >>> 3), graph(source, sub, true, input, made, dataName, moves, end));
                        } else {
                            attr.skip((int) (ak & 7));
                            a.writeRaw(bytes, aAt, attr.position() - aAt);
                        }
                    }
                    n.writeMessage(5, a);
                }
                g.writeMessage(1, n);
            } else {
                graph.skip((int) (k & 7));
                g.writeRaw(bytes, at, graph.position() - at);
            }
        }
        return g;
    }

    /** One initializer, its values moved to the data file when large enough or already external. */
    private static ProtoWriter tensor(
            String source,
            ProtoReader t,
            boolean subgraph,
            OnnxModel input,
            Map<String, OnnxRewriter.Lazy> made,
            String dataName,
            List<Move> moves,
            long[] end) {
        byte[] bytes = t.bytes();
        int from = t.position();
        ProtoWriter kept = new ProtoWriter();
        String name = "";
        int rawFrom = -1;
        int rawLength = 0;
        boolean external = false;
        while (t.hasMore()) {
            int at = t.position();
            long key = t.readKey();
            int field = (int) (key >>> 3);
            int wire = (int) (key & 7);
            if (field == 9 && wire == ProtoReader.LEN) {
                rawLength = t.readLength();
                rawFrom = t.position();
                t.skipBytes(rawLength);
                continue;
            }
            if (field == 8 && wire == ProtoReader.LEN) {
                name = t.readString();
            } else if (field == 13 && wire == ProtoReader.LEN) {
                t.skip(wire);
                external = true;
                continue;
            } else if (field == 14 && wire == ProtoReader.VARINT) {
                external |= t.readVarint() == 1;
                continue;
            } else {
                t.skip(wire);
            }
            kept.writeRaw(bytes, at, t.position() - at);
        }
        Move move;
        long offset = (end[0] + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        if (external && subgraph) {
            // a subgraph's names may repeat the main graph's: its own entries say where its values are
            OnnxModel.Initializer in =
                    input.subgraphTensor(new ProtoReader(source, "TensorProto", bytes, from, t.position()));
            if (in.external().file() == null) {
                throw new MalformedTensorFileException(source + ": subgraph initializer '" + name + "' refers to"
                        + " external data, and the model's folder is not known");
            }
            move = new Move(null, 0, in.external(), null, in.external().length(), offset);
        } else if (external && made.containsKey(name)) {
            move = new Move(null, 0, null, made.get(name), made.get(name).length(), offset);
        } else if (external) {
            OnnxModel.Initializer in = input.initializers().get(name);
            if (in == null || in.external() == null || in.external().file() == null) {
                throw new MalformedTensorFileException(source + ": initializer '" + name + "' refers to external data"
                        + " that the input model does not hold");
            }
            move = new Move(null, 0, in.external(), null, in.external().length(), offset);
        } else if (rawFrom >= 0 && rawLength >= SIZE_THRESHOLD) {
            move = new Move(bytes, rawFrom, null, null, rawLength, offset);
        } else {
            if (rawFrom >= 0) {
                ProtoWriter raw = new ProtoWriter();
                raw.writeKey(9, ProtoReader.LEN);
                raw.writeVarint(rawLength);
                raw.writeRaw(bytes, rawFrom, rawLength);
                kept.writeRaw(raw.toByteArray());
            }
            return kept;
        }
        moves.add(move);
        end[0] = offset + move.length();
        entry(kept, "location", dataName);
        entry(kept, "offset", Long.toString(offset));
        entry(kept, "length", Long.toString(move.length()));
        kept.writeKey(14, ProtoReader.VARINT);
        kept.writeVarint(1);
        return kept;
    }

    private static void entry(ProtoWriter tensor, String key, String value) {
        ProtoWriter e = new ProtoWriter();
        e.writeString(1, key);
        e.writeString(2, value);
        tensor.writeMessage(13, e);
    }
}
