package dev.quant4j.io;

import dev.quant4j.internal.Json;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A checkpoint stored as safetensors, as the Hugging Face Hub lays it out: one {@code .safetensors} file, or a folder
 * holding {@code model.safetensors}, or a folder whose {@code model.safetensors.index.json} maps every tensor to one of
 * its shards ({@code model-00001-of-00002.safetensors} ...). Every shard is memory-mapped and its header checked when
 * the checkpoint is opened, so a missing or truncated shard, a tensor missing from the shard the index names, a tensor
 * the index does not list and a tensor in two shards are all refused, by name, before any tensor is read; the tensors
 * themselves are read later, a block at a time.
 */
public final class SafeTensorsCheckpoint implements AutoCloseable {

    /** A folder's single file. */
    public static final String SINGLE = "model.safetensors";
    /** A sharded folder's index. */
    public static final String INDEX = "model.safetensors.index.json";

    /** One file of the checkpoint: its path, its name in the folder, and its open reader. */
    public record Shard(Path path, String fileName, SafeTensors file) {}

    private final Path folder;
    private final boolean indexed;
    private final List<Shard> shards;
    private final Map<String, String> indexMetadata;

    private SafeTensorsCheckpoint(Path folder, boolean indexed, List<Shard> shards, Map<String, String> metadata) {
        this.folder = folder;
        this.indexed = indexed;
        this.shards = Collections.unmodifiableList(shards);
        this.indexMetadata = Collections.unmodifiableMap(metadata);
    }

    /**
     * Opens {@code path}: a {@code .safetensors} file, a folder, or a folder's {@code model.safetensors.index.json}.
     *
     * @throws MalformedTensorFileException for a malformed index or shard, or shards that disagree with the index
     * @throws NoSuchFileException when the path, or a shard the index names, does not exist
     */
    public static SafeTensorsCheckpoint open(Path path) throws IOException {
        if (!Files.exists(path)) {
            throw new NoSuchFileException(path.toString());
        }
        if (Files.isRegularFile(path) && path.getFileName().toString().endsWith(".json")) {
            return openIndexed(path.toAbsolutePath().getParent(), path);
        }
        if (Files.isRegularFile(path)) {
            return open(null, false, List.of(path), Map.of());
        }
        Path index = path.resolve(INDEX);
        if (Files.isRegularFile(index)) {
            return openIndexed(path, index);
        }
        if (Files.isRegularFile(path.resolve(SINGLE))) {
            return open(path, false, List.of(path.resolve(SINGLE)), Map.of());
        }
        throw new MalformedTensorFileException(path + ": a folder without " + SINGLE + " or " + INDEX);
    }

    private static SafeTensorsCheckpoint openIndexed(Path folder, Path index) throws IOException {
        String text = ModelFolder.of(folder).readString(index.getFileName().toString()); // UTF-8, or an error naming it
        Map<String, String> shardOf = weightMap(index.toString(), text);
        Map<String, String> metadata = new LinkedHashMap<>();
        if (Json.parse(text) instanceof Map<?, ?> m && m.get("metadata") instanceof Map<?, ?> meta) {
            for (Map.Entry<?, ?> e : meta.entrySet()) {
                metadata.put(String.valueOf(e.getKey()), String.valueOf(e.getValue()));
            }
        }
        List<String> files = new ArrayList<>(new java.util.TreeSet<>(shardOf.values()));
        List<Path> paths = new ArrayList<>();
        for (String f : files) {
            Path p = folder.resolve(f);
            if (!Files.isRegularFile(p)) {
                throw new NoSuchFileException(
                        p.toString(), null, "shard named by " + index.getFileName() + " is missing");
            }
            paths.add(p);
        }
        SafeTensorsCheckpoint c = open(folder, true, paths, metadata);
        try {
            Set<String> seen = new LinkedHashSet<>();
            for (Shard s : c.shards) {
                for (String name : s.file().names()) {
                    String listed = shardOf.get(name);
                    if (!s.fileName().equals(listed)) {
                        throw new MalformedTensorFileException(folder + ": tensor '" + name + "' is in '" + s.fileName()
                                + "', the index says " + (listed == null ? "nothing" : "'" + listed + "'"));
                    }
                    seen.add(name);
                }
            }
            for (Map.Entry<String, String> e : shardOf.entrySet()) {
                if (!seen.contains(e.getKey())) {
                    throw new MalformedTensorFileException(folder + ": tensor '" + e.getKey() + "' is in the index but"
                            + " not in '" + e.getValue() + "'");
                }
            }
            return c;
        } catch (RuntimeException e) {
            c.close();
            throw e;
        }
    }

    private static SafeTensorsCheckpoint open(Path folder, boolean indexed, List<Path> files, Map<String, String> meta)
            throws IOException {
        List<Shard> shards = new ArrayList<>();
        try {
            Map<String, String> where = new HashMap<>();
            for (Path p : files) {
                SafeTensors st = SafeTensors.open(p);
                String fileName = p.getFileName().toString();
                shards.add(new Shard(p, fileName, st));
                for (String name : st.names()) {
                    String before = where.put(name, fileName);
                    if (before != null) {
                        throw new MalformedTensorFileException(
                                "tensor '" + name + "' is in two shards, '" + before + "' and '" + fileName + "'");
                    }
                }
            }
            return new SafeTensorsCheckpoint(folder, indexed, shards, meta);
        } catch (IOException | RuntimeException e) {
            for (Shard s : shards) {
                s.file().close();
            }
            throw e;
        }
    }

    /**
     * The {@code weight_map} of an index's JSON text: the shard of each tensor, a plain file name in the folder (not
     * empty, {@code .}, {@code ..}, nor holding a separator or NUL); {@code source} names the index in messages.
     *
     * @throws MalformedTensorFileException for invalid JSON, no or an empty {@code weight_map}, or a value that is not a
     *     file name
     */
    public static Map<String, String> weightMap(String source, String json) {
        Object parsed;
        try {
            parsed = Json.parse(json);
        } catch (IllegalArgumentException e) {
            throw new MalformedTensorFileException(source + ": " + e.getMessage());
        }
        if (!(parsed instanceof Map<?, ?> m) || !(m.get("weight_map") instanceof Map<?, ?> map)) {
            throw new MalformedTensorFileException(source + ": no \"weight_map\" object");
        }
        if (map.isEmpty()) {
            throw new MalformedTensorFileException(source + ": \"weight_map\" is empty");
        }
        Map<String, String> shardOf = new java.util.TreeMap<>();
        for (Map.Entry<?, ?> e : map.entrySet()) {
            if (!(e.getValue() instanceof String file) || !ModelFolder.isFileName(file)) {
                throw new MalformedTensorFileException(source + ": tensor '" + e.getKey() + "' maps to "
                        + Json.write(e.getValue()) + ", expected a file name in the folder");
            }
            shardOf.put((String) e.getKey(), file);
        }
        return shardOf;
    }

    /** The folder, or null for a checkpoint given as one file. */
    public Path folder() {
        return folder;
    }

    /** Whether the checkpoint has an index ({@value #INDEX}). */
    public boolean indexed() {
        return indexed;
    }

    /** The files, in the order of their names. */
    public List<Shard> shards() {
        return shards;
    }

    /** The index's {@code "metadata"} (empty without an index), values as strings. */
    public Map<String, String> indexMetadata() {
        return indexMetadata;
    }

    /** Bytes of tensor data in all shards. */
    public long dataBytes() {
        long n = 0;
        for (Shard s : shards) {
            for (SafeTensors.Entry e : s.file().entries().values()) {
                n += e.end() - e.begin();
            }
        }
        return n;
    }

    /**
     * Writes {@code model.safetensors.index.json} into {@code folder}: {@code {"metadata": {"total_size": N},
     * "weight_map": {tensor: shard}}}, as transformers writes it ({@code total_size} the bytes of tensor data).
     */
    public static void writeIndex(Path folder, long totalSize, Map<String, String> weightMap) throws IOException {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("metadata", Map.of("total_size", totalSize));
        root.put("weight_map", new java.util.TreeMap<>(weightMap));
        Files.writeString(folder.resolve(INDEX), Json.write(root) + "\n", StandardCharsets.UTF_8);
    }

    @Override
    public void close() {
        for (Shard s : shards) {
            s.file().close();
        }
    }
}
