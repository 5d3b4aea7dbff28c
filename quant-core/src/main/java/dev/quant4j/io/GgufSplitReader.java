package dev.quant4j.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Opens the other files of a split GGUF model and checks that they fit together, as llama.cpp's model loader checks
 * them ({@code src/llama-model-loader.cpp} at {@code 81ff7abe}: {@code split.count} from the file opened, the other
 * files named from its prefix, each one's {@code split.no}, no tensor in two files, the tensors adding up to {@code
 * split.tensors.count}) and more strictly: any split may be the one given, its name must say its {@code split.no}
 * and {@code split.count}, every split must agree on {@code split.count}, and a metadata key of another split must
 * have the first split's value (llama.cpp reads the first split's metadata only).
 */
final class GgufSplitReader {

    private GgufSplitReader() {}

    /** The other splits of a model, by the path its name gives each: opened, or null when there is no such file. */
    @FunctionalInterface
    interface Splits {
        Gguf open(Path path) throws IOException;
    }

    /** {@code file} itself when it is not part of a split model, else the whole model (closing {@code file} with it). */
    static Gguf open(Gguf file, Path path) throws IOException {
        return open(file, path, p -> Files.isRegularFile(p) ? Gguf.openFile(p) : null);
    }

    /** As {@link #open(Gguf, Path)}, with the other splits from {@code others} (files held in memory, when fuzzed). */
    static Gguf open(Gguf file, Path path, Splits others) throws IOException {
        Long count = u16(file, GgufSplits.COUNT);
        if (count == null || count <= 1) {
            return file;
        }
        Long no = u16(file, GgufSplits.NO);
        if (no == null) {
            throw bad(file.source() + ": " + GgufSplits.COUNT + " is " + count + " but there is no " + GgufSplits.NO);
        }
        if (no >= count) {
            throw bad(file.source() + ": " + GgufSplits.NO + " " + no + " is not below " + GgufSplits.COUNT + " "
                    + count);
        }
        GgufSplits.Name name = GgufSplits.parseName(path);
        if (name == null || name.index() != no || name.count() != count) {
            throw bad(file.source() + ": split " + (no + 1) + " of " + count + " (" + GgufSplits.NO + " " + no + ", "
                    + GgufSplits.COUNT + " " + count + ") must be named PREFIX-"
                    + String.format(Locale.ROOT, "%05d-of-%05d.gguf", no + 1, count)
                    + ", as llama.cpp finds the other splits from its name");
        }
        List<Path> paths = GgufSplits.paths(name.prefix(), (int) (long) count);
        List<Gguf> splits = new ArrayList<>();
        boolean done = false;
        try {
            for (int i = 0; i < count; i++) {
                if (i == no) {
                    splits.add(file);
                    continue;
                }
                Path p = paths.get(i);
                Gguf split = others.open(p);
                if (split == null) {
                    throw bad(file.source() + ": split " + (i + 1) + " of " + count + ", " + p + ", is missing");
                }
                splits.add(split);
                Long itsCount = u16(split, GgufSplits.COUNT);
                if (itsCount == null || !itsCount.equals(count)) {
                    throw bad(split.source() + ": " + GgufSplits.COUNT + " is " + itsCount + ", " + file.source()
                            + " says " + count);
                }
                Long itsNo = u16(split, GgufSplits.NO);
                if (itsNo == null || itsNo != i) {
                    throw bad(split.source() + ": " + GgufSplits.NO + " is " + itsNo + ", its name says " + i);
                }
            }
            Gguf model = assemble(splits);
            done = true;
            return model;
        } finally {
            if (!done) {
                for (Gguf split : splits) {
                    if (split != file) {
                        split.close();
                    }
                }
            }
        }
    }

    private static Gguf assemble(List<Gguf> splits) {
        Gguf first = splits.get(0);
        Long total = int32(first, GgufSplits.TENSORS_COUNT);
        if (total == null) {
            throw bad(first.source() + ": a split model's first split needs " + GgufSplits.TENSORS_COUNT);
        }
        Map<String, GgufValue> metadata = GgufSplits.withoutSplitKeys(first.metadata());
        Map<String, Gguf.TensorInfo> tensors = new LinkedHashMap<>();
        Map<String, Gguf> splitOf = new LinkedHashMap<>();
        for (Gguf split : splits) {
            Long itsTotal = int32(split, GgufSplits.TENSORS_COUNT);
            if (itsTotal != null && !itsTotal.equals(total)) {
                throw bad(split.source() + ": " + GgufSplits.TENSORS_COUNT + " is " + itsTotal + ", " + first.source()
                        + " says " + total);
            }
            if (split != first) {
                for (Map.Entry<String, GgufValue> e : split.metadata().entrySet()) {
                    String key = e.getKey();
                    if (GgufSplits.isSplitKey(key) || key.equals(GgufWriter.ALIGNMENT_KEY)) {
                        continue; // the file's own layout
                    }
                    GgufValue ours = metadata.get(key);
                    if (ours == null) {
                        throw bad(split.source() + ": metadata '" + key + "' is not in the first split "
                                + first.source() + ", which carries the model's metadata");
                    }
                    if (!ours.equals(e.getValue())) {
                        throw bad(split.source() + ": metadata '" + key + "' = " + brief(e.getValue())
                                + " disagrees with the first split's " + brief(ours));
                    }
                }
            }
            for (Gguf.TensorInfo t : split.tensors()) {
                Gguf other = splitOf.putIfAbsent(t.name(), split);
                if (other != null) {
                    throw bad(
                            "tensor '" + t.name() + "' is in two splits, " + other.source() + " and " + split.source());
                }
                tensors.put(t.name(), t);
            }
        }
        if (tensors.size() != total) {
            throw bad(first.source() + ": " + GgufSplits.TENSORS_COUNT + " is " + total + ", the " + splits.size()
                    + " splits hold " + tensors.size() + " tensors");
        }
        return Gguf.ofSplits(splits, metadata, tensors, splitOf);
    }

    private static String brief(GgufValue v) {
        String s = String.valueOf(v.value());
        return s.length() > 60 ? s.substring(0, 60) + "..." : s;
    }

    private static Long u16(Gguf g, String key) {
        return integer(g, key, GgufValueType.UINT16);
    }

    private static Long int32(Gguf g, String key) {
        return integer(g, key, GgufValueType.INT32);
    }

    private static Long integer(Gguf g, String key, GgufValueType type) {
        GgufValue v = g.metadata().get(key);
        if (v == null) {
            return null;
        }
        if (v.type() != type) {
            throw bad(g.source() + ": metadata '" + key + "' is " + v.type() + ", must be " + type);
        }
        return v.asLong();
    }

    private static MalformedTensorFileException bad(String message) {
        return new MalformedTensorFileException(message);
    }
}
