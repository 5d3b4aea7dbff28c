package dev.quant4j.bench;

import dev.quant4j.model.DecoderBlocks;
import dev.quant4j.model.HuggingFaceLlama;
import dev.quant4j.model.LlamaConfig;
import dev.quant4j.model.LlamaDecoder;
import dev.quant4j.pipeline.DecoderQuantizer;
import dev.quant4j.pipeline.DecoderQuantizer.Method;
import dev.quant4j.pipeline.DecoderQuantizer.Setting;
import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.ForkJoinPool;

/**
 * Times GPTQ block by block on a Hugging Face folder read lazily ({@link HuggingFaceLlama#open}), as {@code quant
 * quantize --model} runs it: the first {@code blocks} blocks of the model, on {@code sequences} calibration sequences
 * of {@code length} random token ids (seeded), 4 bits, groups of 128. Prints, per block, the seconds spent and the heap
 * in use after it, then the peak heap of the run; the quantized weights are dropped (the output's writing is measured
 * by {@code scripts/measure-7b.sh}).
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -Xmx8g -cp quant-bench/target/benchmarks.jar \
 *     dev.quant4j.bench.DecoderGptqTiming /tmp/s7b 2 128 512
 * </pre>
 */
public final class DecoderGptqTiming {

    private DecoderGptqTiming() {}

    public static void main(String[] args) throws IOException {
        if (args.length != 4) {
            System.err.println("usage: DecoderGptqTiming MODEL_DIR BLOCKS SEQUENCES LENGTH");
            System.exit(2);
        }
        Path dir = Path.of(args[0]);
        int blocks = Integer.parseInt(args[1]);
        int sequences = Integer.parseInt(args[2]);
        int length = Integer.parseInt(args[3]);
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException(dir + ": not a folder (make one with SyntheticCheckpoint)");
        }
        ForkJoinPool pool = new ForkJoinPool(Runtime.getRuntime().availableProcessors());
        try (HuggingFaceLlama.Checkpoint files = HuggingFaceLlama.open(dir, pool)) {
            LlamaConfig c = files.config();
            List<int[]> calibration = new ArrayList<>();
            SplittableRandom rnd = new SplittableRandom(1);
            for (int s = 0; s < sequences; s++) {
                calibration.add(rnd.ints(length, 0, c.vocabSize()).toArray());
            }
            System.out.printf(
                    Locale.ROOT,
                    "%s: dim %d, MLP %d, %d blocks (timing %d), %d sequences of %d tokens, %d threads, heap max %.1f GB%n",
                    dir,
                    c.dim(),
                    c.hiddenDim(),
                    c.layers(),
                    blocks,
                    sequences,
                    length,
                    pool.getParallelism(),
                    Runtime.getRuntime().maxMemory() / 1e9);
            DecoderBlocks first = firstBlocks(files, blocks);
            Setting setting = new Setting(Method.GPTQ, 4, 128, false, false);
            long start = System.nanoTime();
            long[] last = {start};
            new DecoderQuantizer(setting, pool).quantize(first, calibration, (b, weights, layers) -> {
                long now = System.nanoTime();
                Runtime rt = Runtime.getRuntime();
                System.out.printf(
                        Locale.ROOT,
                        "block %d: %.1f s, heap in use %.2f GB, %d layers kept RTN%n",
                        b,
                        (now - last[0]) / 1e9,
                        (rt.totalMemory() - rt.freeMemory()) / 1e9,
                        layers.stream()
                                .filter(DecoderQuantizer.LayerReport::keptRtn)
                                .count());
                last[0] = now;
            });
            double total = (System.nanoTime() - start) / 1e9;
            long peak = 0;
            for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
                if (p.getType() == MemoryType.HEAP) {
                    peak += p.getPeakUsage().getUsed();
                }
            }
            System.out.printf(
                    Locale.ROOT,
                    "%d blocks in %.1f s (%.1f s a block, embeddings included); peak heap %.2f GB (sum of pools' peaks)%n",
                    blocks,
                    total,
                    total / blocks,
                    peak / 1e9);
        }
    }

    /** The first {@code n} blocks of {@code files}, as a decoder of {@code n} blocks. */
    static DecoderBlocks firstBlocks(HuggingFaceLlama.Checkpoint files, int n) {
        LlamaConfig c = files.config();
        LlamaConfig cut = new LlamaConfig(
                c.dim(),
                c.hiddenDim(),
                n,
                c.heads(),
                c.kvHeads(),
                c.headDim(),
                c.vocabSize(),
                c.maxSeqLen(),
                c.ropeTheta(),
                c.normEps(),
                c.rope(),
                c.tiedEmbeddings());
        return new DecoderBlocks() {
            @Override
            public String source() {
                return files.source();
            }

            @Override
            public LlamaConfig config() {
                return cut;
            }

            @Override
            public FloatMatrix embed(int[] tokens) {
                return files.embed(tokens);
            }

            @Override
            public LlamaDecoder block(int index) {
                return files.block(index);
            }
        };
    }
}
