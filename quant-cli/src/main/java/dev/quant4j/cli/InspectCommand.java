package dev.quant4j.cli;

import dev.quant4j.io.DType;
import dev.quant4j.io.Npy;
import dev.quant4j.io.OnnxModel;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.io.SafeTensors;
import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code quant inspect FILE}: what a weight file holds, one row per tensor, read-only. */
@Command(
        name = "inspect",
        mixinStandardHelpOptions = true,
        description = {
            "List the tensors of a .npy, .safetensors, .onnx or .gguf file, or of every shard of a Hugging Face folder,"
                    + " one row per tensor, then a total line"
                    + " (tensors, parameters = elements of every tensor, bytes of data). Reads only; writes nothing.",
            "",
            "name, dtype (F32, F16, BF16, I64, U8 ...), shape as stored, bytes.",
            "Quantized tensors (a .safetensors file written by quant quantize): one row per tensor, not per"
                    + " NAME.q4j_* part; dtype int2..int8 or nf4/fp4, shape [rows, cols], bytes of all its parts,"
                    + " bits/weight = those bytes x 8 / (rows x cols) (codes, scales, zero-points, absmax, g_idx,"
                    + " AWQ scales), and the scheme with the method that made it.",
            "ONNX: the initializers in file order with 'used by', the nodes that read them; MatMul weights are"
                    + " stored [in, out] (quantize transposes them) and are named onnx::MatMul_N, which is what"
                    + " quantize --include matches.",
            "GGUF: the ggml type (q4_0, q6_K, f16 ...) and the shape row-major (ne[] reversed); block types with"
                    + " their bits/weight and scheme 'ggml TYPE'.",
            "",
            "Bad input: exit code 2 and one line naming the file and the problem."
        },
        footer = {
            "",
            "Example: the MatMul weights of layer 0 of an ONNX model, for quantize --include:",
            "  quant inspect model.onnx | grep '/layer.0/.*MatMul'"
        })
final class InspectCommand implements Callable<Integer> {

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Parameters(
            index = "0",
            paramLabel = "FILE",
            description = "a .npy, .safetensors, .onnx or .gguf file, or a folder of safetensors shards")
    Path file;

    /** One row of the table. Empty strings for columns a row has nothing in. */
    record Row(
            String name,
            String dtype,
            String shape,
            long elements,
            long bytes,
            String bitsPerWeight,
            String scheme,
            String usedBy) {}

    @Override
    public Integer call() throws Exception {
        if (!Files.exists(file)) {
            throw new java.nio.file.NoSuchFileException(file.toString());
        }
        if (Files.isDirectory(file)) {
            // a Hugging Face folder (or one quant quantize wrote): every shard's tensors, in the order of the shards
            List<Row> rows = new ArrayList<>();
            try (SafeTensorsCheckpoint c = SafeTensorsCheckpoint.open(file)) {
                for (SafeTensorsCheckpoint.Shard shard : c.shards()) {
                    rows.addAll(safetensors(shard.path()));
                }
            }
            PrintWriter out = spec.commandLine().getOut();
            out.print(table(rows, false));
            out.flush();
            return Quant.OK;
        }
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new IllegalArgumentException("cannot inspect " + file + ": not a readable regular file");
        }
        String n = file.getFileName().toString().toLowerCase(Locale.ROOT);
        String ext = n.lastIndexOf('.') < 0 ? "" : n.substring(n.lastIndexOf('.') + 1);
        List<Row> rows = switch (ext) {
            case "npy" -> npy(file);
            case "safetensors" -> safetensors(file);
            case "onnx" -> onnx(file);
            case "gguf" -> GgufInput.inspect(file);
            default ->
                throw new IllegalArgumentException("cannot inspect " + file + ": unsupported file type"
                        + (ext.isEmpty() ? "" : " ." + ext) + " (expected .npy, .safetensors, .onnx or .gguf)");
        };
        PrintWriter out = spec.commandLine().getOut();
        out.print(table(rows, ext.equals("onnx")));
        out.flush();
        return Quant.OK;
    }

    /** The table and its total line. */
    static String table(List<Row> rows, boolean onnx) {
        boolean quantized = rows.stream().anyMatch(r -> !r.scheme().isEmpty());
        List<String> header = new ArrayList<>(List.of("name", "dtype", "shape", "bytes"));
        if (quantized) {
            header.addAll(List.of("bits/weight", "scheme"));
        }
        if (onnx) {
            header.add("used by");
        }
        List<List<String>> cells = new ArrayList<>();
        cells.add(header);
        for (Row r : rows) {
            List<String> c = new ArrayList<>(List.of(r.name(), r.dtype(), r.shape(), Long.toString(r.bytes())));
            if (quantized) {
                c.add(r.bitsPerWeight().isEmpty() ? "-" : r.bitsPerWeight());
                c.add(r.scheme().isEmpty() ? "-" : r.scheme());
            }
            if (onnx) {
                c.add(r.usedBy().isEmpty() ? "-" : r.usedBy());
            }
            cells.add(c);
        }
        int[] width = new int[header.size()];
        for (List<String> c : cells) {
            for (int i = 0; i < c.size(); i++) {
                width[i] = Math.max(width[i], c.get(i).length());
            }
        }
        StringBuilder b = new StringBuilder();
        for (List<String> c : cells) {
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < c.size(); i++) {
                if (i > 0) {
                    line.append("  ");
                }
                boolean number = i == 3 || (quantized && i == 4); // bytes and bits/weight: right-aligned
                String pad = " ".repeat(width[i] - c.get(i).length());
                line.append(number ? pad + c.get(i) : c.get(i) + pad);
            }
            b.append(line.toString().stripTrailing()).append('\n');
        }
        long params = rows.stream().mapToLong(Row::elements).sum();
        long bytes = rows.stream().mapToLong(Row::bytes).sum();
        long q = rows.stream().filter(r -> !r.scheme().isEmpty()).count();
        b.append(String.format(
                Locale.ROOT,
                "total: %d tensor%s%s, %d parameters, %d bytes (%s)%n",
                rows.size(),
                rows.size() == 1 ? "" : "s",
                q == 0 ? "" : " (" + q + " quantized)",
                params,
                bytes,
                human(bytes)));
        return b.toString();
    }

    static String shape(long[] shape) {
        return Arrays.toString(shape);
    }

    static String human(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");

    /** A {@code .npy} file: one tensor named after the file. {@link Npy#read} checks the whole file. */
    static List<Row> npy(Path in) throws IOException {
        Npy.Array a = Npy.read(in);
        String dtype;
        try (InputStream s = Files.newInputStream(in)) {
            // the header's descr: Npy.read accepted only <f4, >f4 and <f2, so it is there
            Matcher m = DESCR.matcher(new String(s.readNBytes(1 << 16), StandardCharsets.ISO_8859_1));
            dtype = m.find() && m.group(1).endsWith("f2") ? "F16" : "F32";
        }
        String name = in.getFileName().toString().replaceFirst("(?i)\\.npy$", "");
        long bytes = (long) a.data().length * (dtype.equals("F16") ? 2 : 4);
        return List.of(new Row(name, dtype, shape(a.shape()), a.data().length, bytes, "", "", ""));
    }

    /**
     * A {@code .safetensors} file, in header order. A quant4j quantized file ({@code __metadata__["quant4j.format"]}
     * present) is read and checked whole by {@link QuantizedSafeTensors#read}; each quantized tensor takes the place
     * of its first part.
     */
    static List<Row> safetensors(Path in) throws IOException {
        Map<String, Row> quantized = new LinkedHashMap<>();
        Map<String, String> partOf = new HashMap<>();
        List<Row> rows = new ArrayList<>();
        try (SafeTensors st = SafeTensors.open(in)) {
            if (st.metadata().containsKey(QuantizedSafeTensors.FORMAT_KEY)) {
                // one weight at a time (each is validated as it is read), so a shard of any size fits
                Map<String, Map<?, ?>> index = QuantizedSafeTensors.index(st, in.toString());
                for (Map.Entry<String, Map<?, ?>> entry : index.entrySet()) {
                    QuantizedWeight w =
                            QuantizedSafeTensors.readWeight(st, entry.getKey(), entry.getValue(), in.toString());
                    String method = String.valueOf(entry.getValue().get("method"));
                    String layout =
                            QuantizedSafeTensors.IN_OUT.equals(entry.getValue().get(QuantizedSafeTensors.SOURCE_LAYOUT))
                                    ? ", stored [in, out]"
                                    : "";
                    switch (w) {
                        case QuantizedTensor q -> {
                            String scheme = q.scheme() + " (" + method
                                    + (q.hasGIdx() ? ", g_idx" : "")
                                    + (q.hasInputScales() ? ", AWQ scales" : "") + layout + ")";
                            quantized.put(
                                    q.name(),
                                    quantizedRow(
                                            st,
                                            partOf,
                                            q.name(),
                                            "int" + q.scheme().bits(),
                                            q.rows(),
                                            q.cols(),
                                            scheme));
                        }
                        case CodebookTensor q -> {
                            String book = q.scheme().codebook().name().toLowerCase(Locale.ROOT);
                            String scheme = q.scheme()
                                    + (book.equals(method) && layout.isEmpty() ? "" : " (" + method + layout + ")");
                            quantized.put(
                                    q.name(), quantizedRow(st, partOf, q.name(), book, q.rows(), q.cols(), scheme));
                        }
                    }
                }
            }
            for (SafeTensors.Entry e : st.entries().values()) {
                String owner = partOf.get(e.name());
                if (owner == null) {
                    rows.add(new Row(
                            e.name(),
                            e.dtype().name(),
                            shape(e.shape()),
                            e.elements(),
                            e.end() - e.begin(),
                            "",
                            "",
                            ""));
                } else if (quantized.containsKey(owner)) {
                    rows.add(quantized.remove(owner));
                }
            }
        }
        return rows;
    }

    private static final List<String> PARTS = List.of(
            QuantizedSafeTensors.CODES,
            QuantizedSafeTensors.SCALES,
            QuantizedSafeTensors.ZEROS,
            QuantizedSafeTensors.G_IDX,
            QuantizedSafeTensors.AWQ_SCALES,
            QuantizedSafeTensors.ABSMAX,
            QuantizedSafeTensors.ABSMAX_CODES,
            QuantizedSafeTensors.ABSMAX2,
            QuantizedSafeTensors.ABSMAX_OFFSET);

    private static Row quantizedRow(
            SafeTensors st, Map<String, String> partOf, String name, String dtype, int rows, int cols, String scheme) {
        long bytes = 0;
        for (String suffix : PARTS) {
            SafeTensors.Entry e = st.entries().get(name + suffix);
            if (e != null) {
                bytes += e.end() - e.begin();
                partOf.put(e.name(), name);
            }
        }
        long elements = (long) rows * cols;
        String bpw = String.format(Locale.ROOT, "%.3f", bytes * 8.0 / elements);
        return new Row(name, dtype, "[" + rows + ", " + cols + "]", elements, bytes, bpw, scheme, "");
    }

    /** An ONNX model: its initializers in file order, each with the nodes that use it. */
    static List<Row> onnx(Path in) throws IOException {
        OnnxModel model = OnnxModel.read(in);
        Map<String, List<String>> users = new HashMap<>();
        List<OnnxModel.Node> nodes = model.nodes();
        for (int i = 0; i < nodes.size(); i++) {
            OnnxModel.Node n = nodes.get(i);
            String label = n.name().isEmpty() ? "(" + n.opType() + " node " + i + ")" : n.name();
            for (String input : n.inputs()) {
                if (model.initializers().containsKey(input)) {
                    List<String> u = users.computeIfAbsent(input, k -> new ArrayList<>());
                    if (!u.contains(label)) {
                        u.add(label);
                    }
                }
            }
        }
        List<Row> rows = new ArrayList<>();
        for (OnnxModel.Initializer t : model.initializers().values()) {
            List<String> u = users.getOrDefault(t.name(), List.of());
            String usedBy = u.size() <= 3
                    ? String.join(", ", u)
                    : String.join(", ", u.subList(0, 3)) + " and " + (u.size() - 3) + " more";
            int size = onnxElementBytes(t.dataType());
            long bytes = size > 0 ? size * t.elements() : size == 0 ? (t.elements() + 1) / 2 : 0;
            rows.add(new Row(
                    t.name(), onnxTypeName(t.dataType()), shape(t.dims()), t.elements(), bytes, "", "", usedBy));
        }
        return rows;
    }

    /** ONNX {@code TensorProto.DataType} as a safetensors-style name; unknown types as {@code onnx:N}. */
    static String onnxTypeName(int type) {
        return switch (type) {
            case 1 -> DType.F32.name();
            case 2 -> DType.U8.name();
            case 3 -> DType.I8.name();
            case 4 -> "U16";
            case 5 -> DType.I16.name();
            case 6 -> DType.I32.name();
            case 7 -> DType.I64.name();
            case 8 -> "STRING";
            case 9 -> DType.BOOL.name();
            case 10 -> DType.F16.name();
            case 11 -> DType.F64.name();
            case 12 -> "U32";
            case 13 -> "U64";
            case 16 -> DType.BF16.name();
            case 21 -> "U4";
            case 22 -> "I4";
            default -> "onnx:" + type;
        };
    }

    /** Bytes per element of an ONNX type; 0 for the 4-bit types (two a byte); -1 when unknown (strings ...): 0 bytes shown. */
    static int onnxElementBytes(int type) {
        return switch (type) {
            case 2, 3, 9 -> 1;
            case 4, 5, 10, 16 -> 2;
            case 1, 6, 12 -> 4;
            case 7, 11, 13 -> 8;
            case 21, 22 -> 0;
            default -> -1;
        };
    }
}
