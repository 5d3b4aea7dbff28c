package dev.quant4j.io;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A GGUF model split into several files, as llama.cpp's {@code gguf-split} tool writes one and its model loader reads
 * one (llama.cpp at {@code 81ff7abe50b95fb81cc70a6cdba1eb1a02a48f62}: {@code src/llama.cpp} {@code llama_split_path},
 * {@code llama_split_prefix}; {@code src/llama-model-loader.cpp}; {@code common/common.h} for the key names;
 * {@code tools/gguf-split/gguf-split.cpp}, read at commit {@code 3e00f05f2f854195b1a271f935e5b8925b52ab0b}).
 *
 * <ul>
 *   <li>Split {@code i} of {@code n} (counting from 0) is the file {@code PREFIX-%05d-of-%05d.gguf} with {@code i + 1}
 *       and {@code n}: {@code model-00001-of-00003.gguf} ... {@code model-00003-of-00003.gguf}.
 *   <li>Each split is a complete GGUF file holding some of the tensors, in order. The first carries every metadata key
 *       of the model; the others none but the split keys. Every split ends its metadata with {@code split.no} ({@code
 *       uint16}, its index from 0), {@code split.tensors.count} ({@code int32}, the tensors of all splits together)
 *       and {@code split.count} ({@code uint16}, the number of files), in that order: ggml's {@code gguf_set_val_*}
 *       moves a key it sets to the end, and the tool sets {@code split.count} last.
 *   <li>Each split's data section is laid out with its own alignment ({@code general.alignment}, which only the first
 *       split can carry, else 32).
 *   <li>{@code --split-max-size}: tensors fill a split in order, each counted as its bytes padded to 32 (the
 *       metadata is not counted); a tensor that would take the split past the limit starts a new split.
 *       {@code --split-max-tensors N}: a new split every {@code N} tensors.
 * </ul>
 */
public final class GgufSplits {

    /** {@code LLM_KV_SPLIT_NO}: the split's index from 0, {@code uint16}. */
    public static final String NO = "split.no";

    /** {@code LLM_KV_SPLIT_COUNT}: the number of splits, {@code uint16}. */
    public static final String COUNT = "split.count";

    /** {@code LLM_KV_SPLIT_TENSORS_COUNT}: the tensors of all splits, {@code int32}. */
    public static final String TENSORS_COUNT = "split.tensors.count";

    /** Most splits a {@code uint16} count holds. */
    public static final int MAX_SPLITS = 0xFFFF;

    private static final Pattern NAME = Pattern.compile("(.+)-(\\d{5})-of-(\\d{5})\\.gguf");

    private GgufSplits() {}

    /** The file of split {@code index} (from 0) of {@code count}: {@code PREFIX-%05d-of-%05d.gguf}. */
    public static Path path(Path prefix, int index, int count) {
        if (count < 1 || count > MAX_SPLITS || index < 0 || index >= count) {
            throw new IllegalArgumentException("split " + index + " of " + count + " is not a split");
        }
        String name = prefix.getFileName() + String.format(Locale.ROOT, "-%05d-of-%05d.gguf", index + 1, count);
        return prefix.resolveSibling(name);
    }

    /** The prefix an output {@code model.gguf} gives its splits: {@code model} in the same folder. */
    public static Path prefix(Path out) {
        String name = out.getFileName().toString();
        if (!name.endsWith(".gguf") || name.length() == ".gguf".length()) {
            throw new IllegalArgumentException(
                    "output " + out + " must be NAME.gguf to be split into NAME-00001-of-" + "0000N.gguf ...");
        }
        return out.resolveSibling(name.substring(0, name.length() - ".gguf".length()));
    }

    /**
     * What a file's name says of its place in a split model, as {@code llama_split_prefix} reads it, or null for a
     * name that is not {@code PREFIX-NNNNN-of-NNNNN.gguf}.
     */
    static Name parseName(Path file) {
        Path fileName = file.getFileName();
        Matcher m = fileName == null ? null : NAME.matcher(fileName.toString());
        if (m == null || !m.matches()) {
            return null;
        }
        return new Name(
                file.resolveSibling(m.group(1)), Integer.parseInt(m.group(2)) - 1, Integer.parseInt(m.group(3)));
    }

    /** A split file's name read back: its prefix, its index from 0 and the number of splits. */
    record Name(Path prefix, int index, int count) {}

    /**
     * Which split each tensor goes into (a split index per tensor, in order), as {@code gguf-split}'s {@code
     * split_strategy} decides it.
     *
     * @param bytes each tensor's data bytes
     * @param maxBytes at most this many bytes of tensor data per split (each tensor padded to 32), or 0 for no limit; a
     *     tensor larger than the limit goes alone into a split of its own
     * @param maxTensors at most this many tensors per split, or 0 for no limit
     * @throws IllegalArgumentException for more splits than {@code split.count} holds
     */
    public static int[] plan(long[] bytes, long maxBytes, int maxTensors) {
        if (maxBytes < 0 || maxTensors < 0) {
            throw new IllegalArgumentException("split limits " + maxBytes + " bytes, " + maxTensors + " tensors");
        }
        int[] split = new int[bytes.length];
        int current = 0;
        long size = 0;
        int inSplit = 0;
        for (int i = 0; i < bytes.length; i++) {
            long padded = Gguf.pad(bytes[i], Gguf.DEFAULT_ALIGNMENT);
            boolean full = inSplit > 0
                    && ((maxBytes > 0 && size + padded > maxBytes) || (maxTensors > 0 && inSplit == maxTensors));
            if (full) {
                current++;
                size = 0;
                inSplit = 0;
            }
            split[i] = current;
            size += padded;
            inSplit++;
        }
        if (current + 1 > MAX_SPLITS) {
            throw new IllegalArgumentException(
                    (current + 1) + " splits are more than split.count (uint16) holds; raise" + " the limit");
        }
        return split;
    }

    /**
     * The metadata of split {@code index} of {@code count}: for the first, every key of {@code model} (any split keys
     * it has left out) then the split keys; for the others, the split keys alone.
     */
    public static Map<String, GgufValue> metadata(Map<String, GgufValue> model, int index, int count, long tensors) {
        if (tensors > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(tensors + " tensors are more than split.tensors.count (int32) holds");
        }
        Map<String, GgufValue> m = new LinkedHashMap<>();
        if (index == 0) {
            model.forEach((k, v) -> {
                if (!isSplitKey(k)) {
                    m.put(k, v);
                }
            });
        }
        m.put(NO, GgufValue.of(GgufValueType.UINT16, index));
        m.put(TENSORS_COUNT, GgufValue.of(GgufValueType.INT32, tensors));
        m.put(COUNT, GgufValue.of(GgufValueType.UINT16, count));
        return m;
    }

    /** Whether {@code key} is one of the three split keys. */
    public static boolean isSplitKey(String key) {
        return key.equals(NO) || key.equals(COUNT) || key.equals(TENSORS_COUNT);
    }

    /** {@code model} without the split keys. */
    public static Map<String, GgufValue> withoutSplitKeys(Map<String, GgufValue> model) {
        Map<String, GgufValue> m = new LinkedHashMap<>(model);
        m.keySet().removeIf(GgufSplits::isSplitKey);
        return m;
    }

    /** The files of a model split {@code count} ways from {@code prefix}, in order. */
    public static List<Path> paths(Path prefix, int count) {
        List<Path> paths = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            paths.add(path(prefix, i, count));
        }
        return paths;
    }
}
