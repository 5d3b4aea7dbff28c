package dev.quant4j.io;

import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.QuantizedWeight;
import dev.quant4j.scheme.Codebook;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes an ONNX model whose quantized MatMul weights run in ONNX Runtime: each {@code MatMul(A, W)} whose weight
 * {@code W} (an initializer {@code [K, N]}) was quantized becomes ONNX Runtime's contrib operator {@code
 * com.microsoft.MatMulNBits}; everything else in the model is kept byte for byte ({@link OnnxRewriter}).
 *
 * <p>Layout, as ONNX Runtime's contrib operator documentation and CPU kernel define it (microsoft/onnxruntime {@code
 * docs/ContribOperators.md}, {@code com.microsoft.MatMulNBits}; {@code
 * onnxruntime/contrib_ops/cpu/quantization/matmul_nbits.cc} at commit 001d12d2 and {@code matmul_nbits_impl.cc} at
 * 138e53be), every case checked by running ONNX Runtime Java 1.23.2 (docs/onnx-export.md):
 *
 * <ul>
 *   <li>attributes {@code K}, {@code N}, {@code bits}, {@code block_size} (a power of two, at least 16; ONNX Runtime
 *       1.23.2's CPU kernel loads a larger block but computes wrong results with it, so blocks here are 16 to 256);
 *   <li>{@code B}: uint8 {@code [N, k_blocks, blob_size]}, {@code k_blocks = ceil(K / block_size)}, {@code blob_size =
 *       block_size * bits / 8}; within a block the codes of consecutive {@code k} are packed least significant bits
 *       first (at 4 bits: the first code in the low nibble), a last partial block padded with zero codes;
 *   <li>{@code scales}: float {@code [N, k_blocks]};
 *   <li>{@code zero_points}: uint8 {@code [N, ceil(k_blocks * bits / 8)]}, packed as {@code B} is, each row of
 *       {@code N} starting on a byte; left out when every zero-point is the default {@code 2^(bits - 1)} (8 at 4 bits:
 *       quant4j's {@code --sym});
 *   <li>{@code bits}: 4 or 8. ONNX Runtime 1.23.2's CPU kernel refuses 2 bits when the session is created ("Only 4b
 *       and 8b quantization is supported for MatMulNBits op"), though the schema allows 2 to 8.
 * </ul>
 *
 * <p>GPTQ's act-order ({@code g_idx}): ONNX Runtime 1.23.2 accepts MatMulNBits' {@code g_idx} input but its CPU
 * kernel reads it wrongly (in {@code matmul_nbits_impl.cc} the group of the element at offset {@code i} of each run
 * of 8 codes is taken from {@code g_idx[block * block_size + i]}, whatever the run's place in the block), so its
 * results differ from the weights'. The export instead reorders the input features: a {@code Gather} (axis -1) of the
 * activation by {@code perm} (int32 indices), the features sorted by group, and {@code B} with its codes in that order, so that every
 * group is whole blocks. This is exact when every group has the group size's number of features, as GPTQ's act-order
 * groups (without static groups) do; any other {@code g_idx} is refused.
 *
 * <p>The dequantized weight is {@code (code - zero_point) * scale}, quant4j's {@code scale * (code - zero)}: the codes,
 * scales and zero-points are written as quant4j holds them. quant4j's row {@code n} of a tensor {@code [N, K]} (the
 * transposed ONNX weight) packs the same way, so a row of {@code B} is that row's bytes and zero padding. A weight
 * quantized in groups of {@code g} (a multiple of 16) is written in blocks of the largest power of two that divides
 * {@code g}, at most 256, each block repeating its group's scale and zero-point; per channel or per tensor, in blocks
 * of the smallest power of two {@code >= K} (16 to 256), the last one padded, the row's scale and zero-point
 * repeated.
 * AWQ's per-input-channel scales {@code s} (a tensor with input scales) become a {@code Mul} of the activation by
 * {@code 1 / s} before the MatMulNBits.
 *
 * <p>A linear layer's bias: when the MatMul's output is read only by an {@code Add} of a float initializer {@code [N]},
 * and is no graph output, that initializer becomes MatMulNBits' {@code bias} input (the sixth, after an empty {@code
 * g_idx}), MatMulNBits writes the Add's output and the Add is removed.
 *
 * <p>NF4 and FP4 ({@link CodebookTensor}) become {@code com.microsoft.MatMulBnb4} (ONNX Runtime's {@code
 * matmul_bnb4.cc}, {@code blockwise_quant_block_bnb4.h}, {@code dequantize_blockwise_bnb4.h}): attributes {@code K},
 * {@code N}, {@code block_size} (16 to 256), {@code quant_type} (0 FP4, 1 NF4); {@code B} uint8 {@code [(N * K + 1) /
 * 2]}, the weight {@code [N, K]} flattened row-major, two codes a byte, the first in the high nibble (bitsandbytes'
 * order, quant4j's own); {@code absmax} float {@code [ceil(N * K / block_size)]}, one per block of the flattened
 * weight. ONNX Runtime's code tables are bitsandbytes' NF4 and FP4, quant4j's. A quant4j block over 256 is written
 * as blocks of 256 repeating its absmax.
 */
public final class OnnxExport {

    /** The contrib domain of ONNX Runtime's operators, imported at version 1. */
    public static final String MS_DOMAIN = "com.microsoft";

    static final int UINT8 = 2;

    /** ONNX {@code TensorProto.DataType} INT32: the act-order permutation's indices. */
    static final int INT32 = 6;

    private OnnxExport() {}

    /**
     * Why MatMulNBits (on ONNX Runtime's CPU) cannot hold a tensor of {@code scheme} with {@code cols} input features,
     * or null.
     */
    public static String unsupported(LinearScheme scheme, int cols) {
        int b = scheme.bits();
        if (b != 4 && b != 8) {
            return b + "-bit codes: ONNX Runtime's CPU MatMulNBits runs 4 and 8 bits (1.23.2 refuses 2 bits)";
        }
        int g = scheme.groupSize();
        if (g > 0 && g % 16 != 0) {
            return "group size " + g + ": MatMulNBits' blocks are powers of two from 16 to 256, so a group must be a"
                    + " multiple of 16 (for example 32, 64, 128), or -1 (per channel)";
        }
        return null;
    }

    /**
     * Writes {@code out} atomically: the model {@code model} (the bytes of an {@code .onnx} file) with the MatMul
     * weights in {@code weights} (initializer name to its quantization, {@code [N, K]} = the transposed initializer)
     * replaced by MatMulNBits.
     */
    public static void write(Path out, String source, byte[] model, Map<String, ? extends QuantizedWeight> weights)
            throws IOException {
        write(out, source, model, weights, 0);
    }

    /** {@link #write(Path, String, byte[], Map)} with MatMulNBits' {@code accuracy_level} (see below). */
    public static void write(
            Path out, String source, byte[] model, Map<String, ? extends QuantizedWeight> weights, int accuracyLevel)
            throws IOException {
        write(out, OnnxModel.parse(source, model), model, weights, accuracyLevel);
    }

    /**
     * The largest single-file model written: protobuf refuses a message over {@code 2^31 - 1} bytes (ONNX's checker
     * says "exceeds 2GB"), and a Java array holds a few bytes fewer.
     */
    static final long SINGLE_FILE_LIMIT = Integer.MAX_VALUE - 8;

    /**
     * Writes the quantized model {@code out} (see {@link #quantizedModel(String, byte[], Map, int)}) from the model
     * {@code model} (the bytes of the {@code .onnx} file), parsed as {@code input} (with its folder when it has
     * external data: {@link OnnxModel#read}). The output is one file when the input has no external data and the
     * single file would be at most {@value #SINGLE_FILE_LIMIT} bytes (protobuf's 2 GB); otherwise it is {@code out}
     * and {@code out.data} ({@link OnnxExternalData}), the new tensors' values made and written one tensor at a time,
     * the input's external tensors copied file to file, so that the heap holds the graph and one tensor's values
     * at most, whatever the size of the model.
     */
    public static void write(
            Path out, OnnxModel input, byte[] model, Map<String, ? extends QuantizedWeight> weights, int accuracyLevel)
            throws IOException {
        write(out, input, model, weights, accuracyLevel, SINGLE_FILE_LIMIT);
    }

    /** {@link #write(Path, OnnxModel, byte[], Map, int)} with the single-file limit {@code limit} (for tests). */
    static void write(
            Path out,
            OnnxModel input,
            byte[] model,
            Map<String, ? extends QuantizedWeight> weights,
            int accuracyLevel,
            long limit)
            throws IOException {
        String source = input.source();
        OnnxRewriter.Edit edit = edit(source, model, input, weights, accuracyLevel, Set.of());
        byte[] graph = OnnxRewriter.rewrite(source, model, edit, true);
        Map<String, OnnxRewriter.Lazy> lazy = edit.lazyTensors();
        if (!input.hasExternalData() && singleFileBound(graph.length, lazy.values()) <= limit) {
            byte[] bytes = OnnxRewriter.rewrite(source, model, edit);
            AtomicFiles.write(out, o -> o.write(bytes));
        } else {
            OnnxExternalData.write(out, source, graph, input, lazy);
        }
    }

    /**
     * At least the size of the single-file form of a model whose external-data form, with the values of {@code lazy}
     * left out, is {@code headers} bytes: each tensor inline adds its values, a key and a length (at most 6 bytes
     * under 2^35), and drops its 2-byte {@code data_location}; its own length and the graph's may take 5 bytes more.
     */
    static long singleFileBound(long headers, Iterable<OnnxRewriter.Lazy> lazy) {
        long size = headers + 5;
        for (OnnxRewriter.Lazy l : lazy) {
            if (l.length() >= OnnxExternalData.SIZE_THRESHOLD) {
                size += l.length() + 6 + 5;
            }
        }
        return size;
    }

    /** The model with the weights replaced; see {@link #write}. */
    public static byte[] quantizedModel(String source, byte[] model, Map<String, ? extends QuantizedWeight> weights) {
        return quantizedModel(source, model, weights, 0);
    }

    /**
     * {@link #quantizedModel(String, byte[], Map)} with MatMulNBits' {@code accuracy_level} attribute: 0 (the default,
     * then not written) lets ONNX Runtime's CPU kernel compute in float32; 4 lets it quantize the activations to int8
     * (faster, no longer equal to a float32 product); 1 to 3 are float32, float16 and bfloat16 compute, which ONNX
     * Runtime's CPU kernel runs as float32. MatMulBnb4 has no such attribute.
     */
    public static byte[] quantizedModel(
            String source, byte[] model, Map<String, ? extends QuantizedWeight> weights, int accuracyLevel) {
        return quantizedModel(source, model, weights, accuracyLevel, Set.of());
    }

    /**
     * {@link #quantizedModel(String, byte[], Map, int)} with the scales of the tables {@code float16Tables} (names of
     * tables in {@code weights} that become GatherBlockQuantized) written as float16, each scale rounded to the
     * nearest float16: GatherBlockQuantized then gives float16 rows, which a {@code Cast} to float32 follows (the
     * node {@code <gather>_cast}; the GatherBlockQuantized output is {@code <output>_float16}). Half the bytes of the
     * table's scales; a table whose scales are float16 values already (rounded beforehand) reads the same values.
     */
    public static byte[] quantizedModel(
            String source,
            byte[] model,
            Map<String, ? extends QuantizedWeight> weights,
            int accuracyLevel,
            Set<String> float16Tables) {
        return OnnxRewriter.rewrite(
                source,
                model,
                edit(source, model, OnnxModel.parse(source, model), weights, accuracyLevel, float16Tables));
    }

    /** The changes that replace {@code weights} in {@code model} (parsed as {@code m}); see {@link #write}. */
    static OnnxRewriter.Edit edit(
            String source,
            byte[] model,
            OnnxModel m,
            Map<String, ? extends QuantizedWeight> weights,
            int accuracyLevel,
            Set<String> float16Tables) {
        Map<String, OnnxWeightPlan> planned = new LinkedHashMap<>();
        weights.forEach((w, q) -> planned.put(w, OnnxWeightPlan.of(q)));
        return plannedEdit(source, model, m, planned, accuracyLevel, float16Tables);
    }

    /**
     * The changes that replace the weights {@code weights} (planned) in {@code model} (parsed as {@code m}); the edit's
     * {@code owners} name the weight each new tensor is made from.
     */
    static OnnxRewriter.Edit plannedEdit(
            String source,
            byte[] model,
            OnnxModel m,
            Map<String, OnnxWeightPlan> weights,
            int accuracyLevel,
            Set<String> float16Tables) {
        if (accuracyLevel < 0 || accuracyLevel > 4) {
            throw new IllegalArgumentException("accuracy_level " + accuracyLevel + ": MatMulNBits takes 0 to 4");
        }
        Set<String> used = new HashSet<>(m.initializers().keySet());
        Map<String, Integer> readers = new LinkedHashMap<>();
        for (OnnxModel.Node n : m.nodes()) {
            used.addAll(n.inputs());
            used.addAll(n.outputs());
            used.add(n.name());
            for (String in : n.inputs()) {
                readers.merge(in, 1, Integer::sum);
            }
        }
        used.addAll(m.inputs());
        used.addAll(m.outputs());
        OnnxRewriter.Edit edit = new OnnxRewriter.Edit();
        Map<String, List<String>> written = new LinkedHashMap<>(); // weight -> names of B, scales, zero_points, perm
        Map<String, List<OnnxRewriter.Added>> tensors = new LinkedHashMap<>();
        Map<String, Integer> replacedReads = new LinkedHashMap<>();
        Set<String> tables = new HashSet<>(); // written as GatherBlockQuantized
        List<OnnxModel.Node> nodes = m.nodes();
        Map<String, List<Integer>> consumers = new LinkedHashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            for (String in : nodes.get(i).inputs()) {
                consumers.computeIfAbsent(in, x -> new ArrayList<>()).add(i);
            }
        }
        for (int i = 0; i < nodes.size(); i++) {
            OnnxModel.Node n = nodes.get(i);
            if (n.opType().equals("Gather")
                    && n.inputs().size() == 2
                    && weights.get(n.inputs().get(0)) instanceof OnnxWeightPlan gq
                    && gq.scheme() instanceof LinearScheme) {
                String w = n.inputs().get(0);
                gatherBlockQuantized(source, model, m, i, n, w, gq, used, edit, written, tensors, float16Tables);
                tables.add(w);
                replacedReads.merge(w, 1, Integer::sum);
                continue;
            }
            if (!n.opType().equals("MatMul")
                    || n.inputs().size() != 2
                    || !weights.containsKey(n.inputs().get(1))) {
                continue;
            }
            String w = n.inputs().get(1);
            OnnxWeightPlan qw = weights.get(w);
            OnnxModel.Initializer init = m.initializer(w);
            long[] dims = init.dims();
            if (dims.length != 2 || dims[0] != qw.cols() || dims[1] != qw.rows()) {
                throw new IllegalArgumentException(source + ": initializer '" + w + "' has shape "
                        + java.util.Arrays.toString(dims) + "; its quantization [" + qw.rows() + ", " + qw.cols()
                        + "] is not its transpose");
            }
            if (qw.scheme() instanceof CodebookScheme cs) {
                List<String> names = written.get(w);
                if (names == null) {
                    names = new ArrayList<>();
                    List<OnnxRewriter.Added> encoded = new ArrayList<>();
                    encodeBnb4(qw, cs, w, used, names, encoded);
                    written.put(w, names);
                    tensors.put(w, encoded);
                }
                Map<String, Long> attrs = new LinkedHashMap<>();
                attrs.put("K", (long) qw.cols());
                attrs.put("N", (long) qw.rows());
                attrs.put("block_size", (long) Math.min(MAX_BLOCK, cs.blockSize()));
                attrs.put("quant_type", cs.codebook() == Codebook.NF4 ? 1L : 0L);
                edit.replaceNode(
                        i,
                        List.of(OnnxRewriter.node(
                                n.name(),
                                "MatMulBnb4",
                                MS_DOMAIN,
                                List.of(n.inputs().get(0), names.get(0), names.get(1)),
                                n.outputs(),
                                attrs)));
                replacedReads.merge(w, 1, Integer::sum);
                continue;
            }
            LinearScheme scheme = (LinearScheme) qw.scheme();
            QuantizedTensor q = qw.knownLinear(); // null when the weight is made as it is written
            String reason = unsupported(scheme, qw.cols());
            if (reason == null && q != null && q.hasGIdx() && MatMulNBitsPacking.permutation(q) == null) {
                reason = "its g_idx has groups that are not all of " + scheme.groupSize() + " input features, so"
                        + " reordering the features cannot make each group one block (use --static-groups)";
            }
            if (reason != null) {
                throw new IllegalArgumentException(
                        source + ": '" + w + "' cannot be written as MatMulNBits: " + reason);
            }
            List<String> names = written.get(w);
            if (names == null) {
                names = new ArrayList<>();
                List<OnnxRewriter.Added> encoded = new ArrayList<>();
                encode(qw, w, used, names, encoded);
                written.put(w, names);
                tensors.put(w, encoded);
            }
            int bits = scheme.bits();
            int blockSize = blockSize(scheme, qw.cols());
            List<byte[]> replacement = new ArrayList<>();
            String a = n.inputs().get(0);
            if (qw.inputScales()) {
                String scaleName = fresh(used, w + "_awq_inv_scale");
                String scaled = fresh(used, a + "_awq_" + w);
                int k = qw.cols();
                // made with the weight's other tensors: the Mul's 1 / s, one per input feature
                tensors.get(w).add(new OnnxRewriter.Lazy(scaleName, OnnxModel.FLOAT, new long[] {k}, 4L * k, () -> {
                    QuantizedTensor made = qw.linear(4L * k);
                    if (!made.hasInputScales()) {
                        throw new IllegalStateException(
                                "'" + w + "': laid out with AWQ input scales, quantized without them");
                    }
                    ByteBuffer inv = ByteBuffer.allocate(4 * k).order(ByteOrder.LITTLE_ENDIAN);
                    for (float v : made.inputScales()) {
                        inv.putFloat(1f / v);
                    }
                    return inv.array();
                }));
                edit.owners.put(scaleName, w);
                replacement.add(OnnxRewriter.node(
                        fresh(used, n.name() + "_awq_mul"),
                        "Mul",
                        "",
                        List.of(a, scaleName),
                        List.of(scaled),
                        Map.of()));
                a = scaled;
            }
            if (!names.get(3).isEmpty()) { // act-order: the features in group order
                String gathered = fresh(used, a + "_perm_" + w);
                replacement.add(OnnxRewriter.node(
                        fresh(used, n.name() + "_perm_gather"),
                        "Gather",
                        "",
                        List.of(a, names.get(3)),
                        List.of(gathered),
                        Map.of("axis", -1L)));
                a = gathered;
            }
            List<String> inputs = new ArrayList<>();
            inputs.add(a);
            inputs.add(names.get(0));
            inputs.add(names.get(1));
            inputs.add(names.get(2));
            inputs.add(""); // g_idx: never written (see above)
            List<String> outputs = n.outputs();
            int add = biasAdd(m, consumers, n, qw.rows());
            if (add >= 0) { // the bias folded in: MatMulNBits writes the Add's output, the Add goes
                OnnxModel.Node addNode = nodes.get(add);
                String mm = n.outputs().get(0);
                inputs.add(
                        addNode.inputs().get(0).equals(mm)
                                ? addNode.inputs().get(1)
                                : addNode.inputs().get(0));
                outputs = addNode.outputs();
                edit.replaceNode(add, List.of());
            }
            while (inputs.get(inputs.size() - 1).isEmpty()) {
                inputs.remove(inputs.size() - 1);
            }
            Map<String, Long> attrs = new LinkedHashMap<>();
            attrs.put("K", (long) qw.cols());
            attrs.put("N", (long) qw.rows());
            attrs.put("bits", (long) bits);
            attrs.put("block_size", (long) blockSize);
            if (accuracyLevel != 0) {
                attrs.put("accuracy_level", (long) accuracyLevel);
            }
            replacement.add(OnnxRewriter.node(n.name(), "MatMulNBits", MS_DOMAIN, inputs, outputs, attrs));
            edit.replaceNode(i, replacement);
            replacedReads.merge(w, 1, Integer::sum);
        }
        for (Map.Entry<String, List<OnnxRewriter.Added>> e : tensors.entrySet()) {
            String w = e.getKey();
            boolean stillRead = readers.getOrDefault(w, 0) > replacedReads.getOrDefault(w, 0)
                    || m.outputs().contains(w);
            if (stillRead) {
                e.getValue().forEach(edit::addInitializer);
            } else {
                edit.replaceInitializerWith(w, e.getValue());
                edit.dropInput(w); // listed as a graph input before IR 4
            }
        }
        for (String t : float16Tables) {
            if (!tables.contains(t)) {
                throw new IllegalArgumentException(source + ": float16 scales for '" + t + "', which is not a quantized"
                        + " table written as GatherBlockQuantized");
            }
        }
        for (String w : weights.keySet()) {
            if (!written.containsKey(w)) {
                throw new IllegalArgumentException(
                        source + ": '" + w + "' is not the weight of a MatMul node or the table of a Gather");
            }
        }
        written.forEach((w, names) -> names.forEach(t -> {
            if (!t.isEmpty()) {
                edit.owners.put(t, w);
            }
        }));
        edit.requireOpset(MS_DOMAIN, 1);
        return edit;
    }

    /**
     * A {@code Gather(table, indices)} on axis 0 whose table {@code [V, H]} was quantized (as stored: groups along H)
     * becomes {@code com.microsoft.GatherBlockQuantized(data, indices, scales, zero_points)}: data uint8 {@code [V, H *
     * bits / 8]} (at 4 bits two codes a byte, the first in the low nibble: quant4j's rows as they are), scales float
     * {@code [V, H / block]}, zero_points uint8 {@code [V, ceil(H / block * bits / 8)]}, packed as the data, each row
     * starting on a byte (left out when every zero-point is {@code 2^(bits - 1)}, the operator's default for uint8
     * data); attributes gather_axis 0, quantize_axis 1 (the last axis: the kernel requires both for uint8 data),
     * block_size (a power of two >= 16), bits 4 or 8 (ONNX Runtime's {@code
     * onnxruntime/contrib_ops/cpu/quantization/gather_block_quantized.cc} at commit 09e18a5a, whose CPU kernel is
     * registered for int32 and int64 indices alike: the Gather's own indices are passed on as they are). ONNX Runtime 1.23.2 numbers the zero-points over the whole array instead of row
     * by row, which gives other values when a row has an odd number of blocks; 1.29.0 reads them row by row. A table
     * with an even number of blocks a row, or without zero-points, reads the same in both.
     */
    private static void gatherBlockQuantized(
            String source,
            byte[] model,
            OnnxModel m,
            int index,
            OnnxModel.Node n,
            String w,
            OnnxWeightPlan p,
            Set<String> used,
            OnnxRewriter.Edit edit,
            Map<String, List<String>> written,
            Map<String, List<OnnxRewriter.Added>> tensors,
            Set<String> float16Tables) {
        long[] dims = m.initializer(w).dims();
        LinearScheme scheme = (LinearScheme) p.scheme();
        int g = scheme.groupSize();
        String reason = null;
        if (dims.length != 2 || dims[0] != p.rows() || dims[1] != p.cols()) {
            reason = "its quantization [" + p.rows() + ", " + p.cols() + "] is not of its shape "
                    + java.util.Arrays.toString(dims);
        } else if (scheme.bits() != 4 && scheme.bits() != 8) {
            reason = scheme.bits() + "-bit codes: GatherBlockQuantized is written at 4 or 8 bits";
        } else if (g < 16 || Integer.bitCount(g) != 1) {
            int fits = Integer.lowestOneBit(p.cols());
            reason = (g > 0 ? "group size " + g : g == LinearScheme.PER_CHANNEL ? "per channel" : "per tensor")
                    + ": GatherBlockQuantized's block_size is a power of two >= 16, and each row of " + p.cols()
                    + " values must be whole blocks"
                    + (fits >= 16 ? " (--group-size 16 to " + fits + " fit)" : "; no such block divides " + p.cols());
        } else if (p.permuted() || p.inputScales()) {
            reason = "a g_idx or AWQ input scales";
        } else if (OnnxRewriter.intAttribute(source, model, index, "axis", 0) != 0) {
            reason = "the Gather is not on axis 0";
        }
        if (reason != null) {
            throw new IllegalArgumentException(
                    source + ": table '" + w + "' cannot be written as GatherBlockQuantized: " + reason);
        }
        int v = p.rows();
        int h = p.cols();
        int bits = scheme.bits();
        int blocks = h / g;
        boolean half = float16Tables.contains(w);
        List<String> names = written.get(w);
        if (names == null) {
            names = new ArrayList<>();
            List<OnnxRewriter.Added> out = new ArrayList<>();
            int rowBytes = h * bits / 8;
            String dName = fresh(used, w + "_Q" + bits);
            long dLength = (long) v * rowBytes;
            out.add(new OnnxRewriter.Lazy(dName, UINT8, new long[] {v, rowBytes}, dLength, () -> {
                byte[] data = new byte[Math.toIntExact(dLength)];
                p.linear(dLength).packedCodes().get(data);
                return data;
            }));
            names.add(dName);
            String sName = fresh(used, w + "_scales");
            int scaleBytes = half ? 2 : 4;
            out.add(new OnnxRewriter.Lazy(
                    sName,
                    half ? FLOAT16 : OnnxModel.FLOAT,
                    new long[] {v, blocks},
                    (long) scaleBytes * v * blocks,
                    () -> {
                        QuantizedTensor q = p.linear((long) scaleBytes * v * blocks);
                        ByteBuffer sb =
                                ByteBuffer.allocate(scaleBytes * v * blocks).order(ByteOrder.LITTLE_ENDIAN);
                        for (int i = 0; i < v * blocks; i++) {
                            if (half) {
                                sb.putShort(Float.floatToFloat16(q.scale(i)));
                            } else {
                                sb.putFloat(q.scale(i));
                            }
                        }
                        return sb.array();
                    }));
            names.add(sName);
            if (p.defaultZeros()) {
                names.add("");
            } else {
                // row by row, as the shape [V, ceil(blocks * bits / 8)] says (ONNX Runtime 1.29.0; see above for
                // 1.23.2): MatMulNBits' packing of zero-points
                String zName = fresh(used, w + "_zero_points");
                int zRow = (blocks * bits + 7) / 8;
                out.add(new OnnxRewriter.Lazy(zName, UINT8, new long[] {v, zRow}, (long) v * zRow, () -> {
                    QuantizedTensor q = p.linear((long) v * zRow);
                    int[] zeros = new int[v * blocks];
                    for (int i = 0; i < zeros.length; i++) {
                        zeros[i] = q.zero(i);
                    }
                    return MatMulNBitsPacking.packZeros(zeros, v, blocks, bits);
                }));
                names.add(zName);
            }
            written.put(w, names);
            tensors.put(w, out);
        }
        Map<String, Long> attrs = new LinkedHashMap<>();
        attrs.put("gather_axis", 0L);
        attrs.put("quantize_axis", 1L);
        attrs.put("block_size", (long) g);
        attrs.put("bits", (long) bits);
        List<String> outputs = n.outputs();
        List<byte[]> replacement = new ArrayList<>();
        if (half) { // float16 rows, cast to the float32 the Gather gave
            outputs = List.of(fresh(used, n.outputs().get(0) + "_float16"));
            replacement.add(null);
            replacement.add(OnnxRewriter.node(
                    fresh(used, n.name() + "_cast"), "Cast", "", outputs, n.outputs(), Map.of("to", (long)
                            OnnxModel.FLOAT)));
        } else {
            replacement.add(null);
        }
        replacement.set(
                0,
                OnnxRewriter.node(
                        n.name(),
                        "GatherBlockQuantized",
                        MS_DOMAIN,
                        names.get(2).isEmpty()
                                ? List.of(names.get(0), n.inputs().get(1), names.get(1))
                                : List.of(names.get(0), n.inputs().get(1), names.get(1), names.get(2)),
                        outputs,
                        attrs));
        edit.replaceNode(index, replacement);
    }

    /** ONNX {@code TensorProto.DataType} FLOAT16: a table's scales when they are all float16 values. */
    static final int FLOAT16 = 10;

    /**
     * The index of the node {@code Add(y, b)} or {@code Add(b, y)} that alone reads the MatMul {@code n}'s output
     * {@code y} (not a graph output), {@code b} a float initializer {@code [N]}: its bias, for MatMulNBits' {@code
     * bias} input. -1 if there is none.
     */
    private static int biasAdd(OnnxModel m, Map<String, List<Integer>> consumers, OnnxModel.Node n, int outFeatures) {
        if (n.outputs().size() != 1) {
            return -1;
        }
        String y = n.outputs().get(0);
        List<Integer> readers = consumers.getOrDefault(y, List.of());
        if (readers.size() != 1 || m.outputs().contains(y)) {
            return -1;
        }
        OnnxModel.Node add = m.nodes().get(readers.get(0));
        if (!add.opType().equals("Add")
                || add.inputs().size() != 2
                || add.outputs().size() != 1) {
            return -1;
        }
        String b = add.inputs().get(0).equals(y)
                ? add.inputs().get(1)
                : add.inputs().get(0);
        if (b.equals(y)) {
            return -1;
        }
        OnnxModel.Initializer t = m.initializers().get(b);
        if (t == null || t.dataType() != OnnxModel.FLOAT || t.dims().length != 1 || t.dims()[0] != outFeatures) {
            return -1;
        }
        return readers.get(0);
    }

    /** The largest block ONNX Runtime 1.23.2's CPU kernel computes right with. */
    static final int MAX_BLOCK = 256;

    /**
     * MatMulNBits' block_size for {@code q}: the largest power of two dividing its group size, at most 256; per
     * channel or per tensor, the smallest power of two {@code >= K}, from 16 to 256.
     */
    static int blockSize(LinearScheme scheme, int cols) {
        int g = scheme.groupSize();
        if (g > 0) {
            return Math.min(MAX_BLOCK, Integer.lowestOneBit(g));
        }
        return Math.min(MAX_BLOCK, Math.max(16, Integer.highestOneBit(cols - 1) << 1));
    }

    /**
     * MatMulBnb4's B (quant4j's packed codes as they are: the same order) and absmax, one per block of at most 256,
     * repeating a larger block's.
     */
    private static void encodeBnb4(
            OnnxWeightPlan t,
            CodebookScheme scheme,
            String w,
            Set<String> used,
            List<String> names,
            List<OnnxRewriter.Added> out) {
        long numel = (long) t.rows() * t.cols();
        long bLength = (numel + 1) / 2;
        int block = scheme.blockSize();
        int ortBlock = Math.min(MAX_BLOCK, block);
        int count = Math.toIntExact((numel + ortBlock - 1) / ortBlock);
        String bName = fresh(used, w + "_Bnb4");
        out.add(new OnnxRewriter.Lazy(bName, UINT8, new long[] {bLength}, bLength, () -> {
            byte[] b = new byte[Math.toIntExact(bLength)];
            t.codebook(bLength).packedCodes().get(b);
            return b;
        }));
        names.add(bName);
        String aName = fresh(used, w + "_absmax");
        out.add(new OnnxRewriter.Lazy(aName, OnnxModel.FLOAT, new long[] {count}, 4L * count, () -> {
            float[] absmax = t.codebook(4L * count).absmax();
            ByteBuffer ab = ByteBuffer.allocate(4 * count).order(ByteOrder.LITTLE_ENDIAN);
            for (int j = 0; j < count; j++) {
                ab.putFloat(absmax[(int) ((long) j * ortBlock / block)]);
            }
            return ab.array();
        }));
        names.add(aName);
    }

    /**
     * B, scales, zero_points (or "") and perm (or "") of {@code q}: their names into {@code names}, the tensors (made
     * when written) into {@code out}.
     */
    private static void encode(
            OnnxWeightPlan p, String w, Set<String> used, List<String> names, List<OnnxRewriter.Added> out) {
        LinearScheme scheme = (LinearScheme) p.scheme();
        int n = p.rows();
        int k = p.cols();
        int bits = scheme.bits();
        int blockSize = blockSize(scheme, k);
        int kBlocks = (k + blockSize - 1) / blockSize;
        int blob = blockSize * bits / 8;
        boolean perTensor = scheme.groupSize() == LinearScheme.PER_TENSOR;
        int groupCols = scheme.groupSize() > 0 ? scheme.groupSize() : k;
        int groupsPerRow = scheme.groupsPerRow(k);
        // the group of row r's block g
        java.util.function.IntBinaryOperator group =
                (r, g) -> perTensor ? 0 : r * groupsPerRow + g * blockSize / groupCols;
        long rowOut = (long) kBlocks * blob;
        String bName = fresh(used, w + "_Q" + bits);
        long bLength = n * rowOut;
        out.add(new OnnxRewriter.Lazy(bName, UINT8, new long[] {n, kBlocks, blob}, bLength, () -> {
            QuantizedTensor q = p.linear(bLength);
            return MatMulNBitsPacking.packB(q, blockSize, p.permuted() ? permutation(w, q) : null);
        }));
        names.add(bName);
        String sName = fresh(used, w + "_scales");
        out.add(new OnnxRewriter.Lazy(sName, OnnxModel.FLOAT, new long[] {n, kBlocks}, 4L * n * kBlocks, () -> {
            QuantizedTensor q = p.linear(4L * n * kBlocks);
            ByteBuffer sb = ByteBuffer.allocate(4 * n * kBlocks).order(ByteOrder.LITTLE_ENDIAN);
            for (int r = 0; r < n; r++) {
                for (int g = 0; g < kBlocks; g++) {
                    sb.putFloat(q.scale(group.applyAsInt(r, g)));
                }
            }
            return sb.array();
        }));
        names.add(sName);
        if (p.defaultZeros()) {
            names.add("");
        } else {
            String zName = fresh(used, w + "_zero_points");
            int zRow = (kBlocks * bits + 7) / 8;
            out.add(new OnnxRewriter.Lazy(zName, UINT8, new long[] {n, zRow}, (long) n * zRow, () -> {
                QuantizedTensor q = p.linear((long) n * zRow);
                int[] zeros = new int[n * kBlocks];
                for (int r = 0; r < n; r++) {
                    for (int g = 0; g < kBlocks; g++) {
                        zeros[r * kBlocks + g] = q.zero(group.applyAsInt(r, g));
                    }
                }
                return MatMulNBitsPacking.packZeros(zeros, n, kBlocks, bits);
            }));
            names.add(zName);
        }
        if (p.permuted()) {
            String gName = fresh(used, w + "_perm");
            // int32 indices: ONNX's Gather takes int32 or int64 (Tind), and int32 halves the table
            out.add(new OnnxRewriter.Lazy(gName, INT32, new long[] {k}, 4L * k, () -> {
                int[] perm = permutation(w, p.linear(4L * k));
                ByteBuffer gb = ByteBuffer.allocate(4 * k).order(ByteOrder.LITTLE_ENDIAN);
                for (int c : perm) {
                    gb.putInt(c);
                }
                return gb.array();
            }));
            names.add(gName);
        } else {
            names.add("");
        }
    }

    /**
     * The input features of {@code q} in group order: its g_idx's ({@link MatMulNBitsPacking#permutation}), or the
     * natural order when it has none (act-order whose order came out unchanged).
     */
    private static int[] permutation(String w, QuantizedTensor q) {
        if (!q.hasGIdx()) {
            int[] identity = new int[q.cols()];
            for (int c = 0; c < identity.length; c++) {
                identity[c] = c;
            }
            return identity;
        }
        int[] perm = MatMulNBitsPacking.permutation(q);
        if (perm == null) {
            throw new IllegalStateException("'" + w + "': its g_idx has groups that are not all of "
                    + q.scheme().groupSize() + " input features");
        }
        return perm;
    }

    private static String fresh(Set<String> used, String base) {
        String name = base;
        for (int i = 1; used.contains(name); i++) {
            name = base + "_" + i;
        }
        used.add(name);
        return name;
    }
}
