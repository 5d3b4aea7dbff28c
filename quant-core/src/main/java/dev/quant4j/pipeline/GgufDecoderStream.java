package dev.quant4j.pipeline;

import dev.quant4j.ggml.GgmlType;
import dev.quant4j.io.GgufValue;
import dev.quant4j.model.HuggingFaceLlama;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.pipeline.GgufDecoderFile.Stored;
import dev.quant4j.pipeline.GgufQuantizer.Item;
import dev.quant4j.tensor.FloatMatrix;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A Hugging Face decoder folder as a GGUF model of llama.cpp's {@code llama} architecture, written as a stream by
 * {@link GgufQuantizer}: the file {@link GgufDecoderFile#plan} makes from the model in memory (the same metadata, the
 * tensors in the same order and types, the same fallbacks, {@code q_proj} and {@code k_proj} rows permuted back to
 * the interleaved rotary layout), with a few row blocks per thread on the heap whatever the size of the model. Each
 * matrix is read from the shards a block of rows at a time; the rows of a permuted matrix are read one by one from
 * where the permutation takes them.
 */
public final class GgufDecoderStream {

    /**
     * The file to write.
     *
     * @param metadata the GGUF metadata ({@link GgufDecoderFile#metadata})
     * @param items the tensors in file order, for {@link GgufQuantizer#write}
     * @param tensors how each tensor is stored, in file order, without the error figures (see {@link #stored})
     * @param skipped the folder's tensors the architecture has no place for
     */
    public record Plan(Map<String, GgufValue> metadata, List<Item> items, List<Stored> tensors, List<String> skipped) {

        public Plan {
            metadata = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(metadata));
            items = List.copyOf(items);
            tensors = List.copyOf(tensors);
            skipped = List.copyOf(skipped);
        }

        /** {@link #tensors()} with the error figures of {@code summary} (what {@link GgufQuantizer#write} returned). */
        public List<Stored> stored(GgufQuantizer.Summary summary) {
            Map<String, GgufQuantizer.WeightReport> reports = new HashMap<>();
            for (GgufQuantizer.WeightReport r : summary.weights()) {
                reports.put(r.name(), r);
            }
            List<Stored> out = new ArrayList<>();
            for (Stored s : tensors) {
                GgufQuantizer.WeightReport r = reports.get(s.name());
                out.add(r == null ? s : new Stored(s.name(), s.source(), s.ne(), s.type(), s.fallback(), r.error()));
            }
            return out;
        }
    }

    private GgufDecoderStream() {}

    /**
     * GPTQ of {@code model}'s block linears ({@code gptq}, on {@code calibration}) written into {@code plan}'s file as
     * it goes: GPTQ's block loop runs on its own thread while {@code writer} writes the file in order, each block linear
     * taking its blocks when GPTQ has made them (its rows read again from the folder for the error figures), the
     * embeddings and output head quantized by ggml's reference quantizer as in the plan. The file is the one {@link
     * GgufDecoderFile#plan} writes with {@link GgufDecoderGptq#quantize(LlamaDecoder, List, java.util.function.IntConsumer)}'s
     * blocks given; {@code observer} sees each block's reports as it is made. Only one block's weights and the
     * calibration activations are held, and the blocks not yet written. A failure on either side stops both (GPTQ at
     * the end of its block) and leaves no file.
     */
    public static GgufQuantizer.Summary writeGptq(
            Plan plan,
            GgufDecoderGptq gptq,
            HuggingFaceLlama.Checkpoint model,
            List<int[]> calibration,
            GgufQuantizer writer,
            java.nio.file.Path out,
            GgufQuantizer.Split split,
            CheckpointQuantizer.Progress progress,
            DecoderGptq.Sink<GgufDecoderFile.Blocks> observer)
            throws java.io.IOException {
        LlamaConfig c = model.config();
        Handoff handoff = new Handoff();
        List<Item> items = new ArrayList<>();
        for (int i = 0; i < plan.items().size(); i++) {
            Item it = plan.items().get(i);
            String hf = plan.tensors().get(i).source();
            if (!blockLinear(hf)) {
                items.add(it);
                continue;
            }
            int heads = GgufDecoderFile.rotaryHeads(c, hf);
            GgmlType as = plan.tensors().get(i).type();
            items.add(it.by(w -> {
                GgufDecoderFile.Blocks b = handoff.take(hf);
                if (b.type() != as || b.rows() != w.rows() || b.cols() != w.cols()) {
                    throw new IllegalStateException("tensor '" + hf + "': GPTQ gave " + b.type() + " [" + b.rows()
                            + ", " + b.cols() + "], the file plans " + as + " [" + w.rows() + ", " + w.cols() + "]");
                }
                byte[] data = heads == 0
                        ? b.data()
                        : GgufDecoderFile.toInterleaved(b.data(), (int) as.rowSize(b.cols()), heads, c.headDim());
                return new GgufQuantizer.Whole(data, "");
            }));
        }
        java.util.concurrent.atomic.AtomicBoolean cancelled = new java.util.concurrent.atomic.AtomicBoolean();
        Thread producer = new Thread(
                () -> {
                    try {
                        gptq.quantize(model, calibration, (block, stored, layers) -> {
                            if (cancelled.get()) {
                                throw new java.util.concurrent.CancellationException("the file was not written");
                            }
                            stored.forEach(handoff::give);
                            observer.accept(block, stored, layers);
                        });
                        handoff.fail(new IllegalStateException("GPTQ's block loop ended without these blocks"));
                    } catch (Throwable t) {
                        handoff.fail(t);
                    }
                },
                "gptq-blocks");
        producer.setDaemon(true);
        producer.start();
        try {
            return writer.write(plan.metadata(), items, out, split, progress);
        } finally {
            cancelled.set(true);
            try {
                producer.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Whether {@code hf} names a linear of a decoder block (what GPTQ quantizes). */
    static boolean blockLinear(String hf) {
        return hf.startsWith("model.layers.")
                && hf.endsWith("_proj.weight")
                && (hf.contains(".self_attn.") || hf.contains(".mlp."));
    }

    /** Blocks handed from GPTQ's thread to the writer's, by tensor name; a failure reaches every taker. */
    private static final class Handoff {
        private final Map<String, java.util.concurrent.CompletableFuture<GgufDecoderFile.Blocks>> waiting =
                new HashMap<>();
        private Throwable failure;

        private synchronized java.util.concurrent.CompletableFuture<GgufDecoderFile.Blocks> future(String name) {
            java.util.concurrent.CompletableFuture<GgufDecoderFile.Blocks> f =
                    waiting.computeIfAbsent(name, k -> new java.util.concurrent.CompletableFuture<>());
            if (failure != null) {
                f.completeExceptionally(failure);
            }
            return f;
        }

        void give(String name, GgufDecoderFile.Blocks blocks) {
            future(name).complete(blocks);
        }

        synchronized void fail(Throwable t) {
            if (failure == null) {
                failure = t;
            }
            waiting.values().forEach(f -> f.completeExceptionally(failure));
        }

        /** The blocks of {@code name}, once made; forgotten when taken. */
        GgufDecoderFile.Blocks take(String name) {
            java.util.concurrent.CompletableFuture<GgufDecoderFile.Blocks> f = future(name);
            try {
                return f.join();
            } catch (java.util.concurrent.CompletionException e) {
                Throwable cause = e.getCause();
                if (cause instanceof RuntimeException r) {
                    throw r;
                }
                if (cause instanceof Error err) {
                    throw err;
                }
                throw new IllegalStateException("GPTQ of '" + name + "' failed: " + cause, cause);
            } finally {
                synchronized (this) {
                    if (f.isDone() && !f.isCompletedExceptionally()) {
                        waiting.remove(name);
                    }
                }
            }
        }
    }

    /**
     * The GGUF file of {@code model} with its matrices in {@code type} ({@link GgufDecoderFile#storedType}'s fallback
     * for rows that are not whole blocks), and {@code vocabulary}'s {@code tokenizer.ggml.*} keys in place of the
     * placeholder vocabulary unless null.
     *
     * @param strict refuse a matrix the type does not fit instead of falling back
     * @throws IllegalArgumentException as {@link GgufDecoderFile#plan}: a type quant4j does not write, a tensor the
     *     architecture needs that the folder does not have, with {@code strict} a matrix whose rows are not whole blocks
     */
    public static Plan plan(
            HuggingFaceLlama.Checkpoint model, GgmlType type, boolean strict, Map<String, GgufValue> vocabulary) {
        if (!type.quantizable()) {
            throw new IllegalArgumentException("GGUF type " + type + ": quant4j writes " + GgmlType.quantizableNames());
        }
        LlamaConfig c = model.config();
        Set<String> names = new LinkedHashSet<>(model.tensorNames());
        QuantizedDecoderFile.Source header = new QuantizedDecoderFile.Source(
                model.source(), QuantizedDecoderFile.SourceFormat.HUGGING_FACE, c, Map.of());
        List<Item> items = new ArrayList<>();
        List<Stored> stored = new ArrayList<>();
        Set<String> used = new LinkedHashSet<>();
        for (String hf : GgufDecoderFile.order(c)) {
            if (!names.contains(hf)) {
                if (hf.endsWith(".bias")) {
                    continue;
                }
                throw new IllegalArgumentException(model.source() + ": no tensor '" + hf + "'");
            }
            used.add(hf);
            String name = GgufDecoderFile.ggufName(hf);
            long[] shape = model.shape(hf);
            long rows = shape.length == 2 ? shape[0] : 1;
            long cols = shape.length == 2 ? shape[1] : shape[0];
            if (cols > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(
                        "tensor '" + hf + "' " + java.util.Arrays.toString(shape) + " has rows past 2^31 values");
            }
            int heads = GgufDecoderFile.rotaryHeads(c, hf);
            int d = c.headDim();
            if (heads > 0 && (rows == 1 ? cols : rows) != (long) heads * d) {
                throw new IllegalArgumentException("tensor '" + hf + "' has " + (rows == 1 ? cols : rows) + " rows, "
                        + heads + " heads of " + d + " need " + heads * d);
            }
            if (rows == 1 && !hf.equals(LlamaDecoder.EMBED_TOKENS) && !hf.equals(LlamaDecoder.LM_HEAD)) {
                long[] ne = {cols};
                items.add(Item.kept(name, ne, GgmlType.F32, (from, length, out, index) -> {
                    FloatMatrix v = model.read(hf);
                    if (heads > 0) {
                        v = GgufDecoderFile.toInterleaved(v, heads, d);
                    }
                    out.write(index, from, ByteBuffer.wrap(GgufDecoderFile.f32(v), (int) from, (int) length));
                }));
                stored.add(new Stored(name, hf, ne, GgmlType.F32, null, null));
                continue;
            }
            int width = (int) cols;
            GgmlType as = GgufDecoderFile.storedType(type, width);
            String fallback = null;
            if (as != type) {
                fallback = "its rows of " + width + " values are not whole " + type + " blocks of " + type.blockSize();
                if (strict) {
                    throw new IllegalArgumentException("tensor '" + hf + "' [" + rows + ", " + width + "]: " + fallback
                            + " (strict: no fallback to " + as + ")");
                }
            }
            GgufQuantizer.Rows reader = heads == 0
                    ? (first, count, dst) -> model.readRows(hf, first, count, dst, 0)
                    : (first, count, dst) -> {
                        // row 2j + s of a head is row s * d/2 + j of the head in Hugging Face's order
                        int half = d / 2;
                        for (int r = 0; r < count; r++) {
                            long to = first + r;
                            long head = to / d;
                            int within = (int) (to % d);
                            long from = head * d + (within % 2) * half + within / 2;
                            model.readRows(hf, from, 1, dst, r * width);
                        }
                    };
            Item item = Item.weight(name, rows, width, model.bytes(hf), reader);
            items.add(as == type ? item : item.as(as));
            stored.add(new Stored(name, hf, new long[] {width, rows}, as, fallback, null));
        }
        List<String> skipped = new ArrayList<>();
        for (String n : names) {
            if (!used.contains(n)) {
                skipped.add(n);
            }
        }
        return new Plan(GgufDecoderFile.metadata(header, type, vocabulary), items, stored, skipped);
    }
}
