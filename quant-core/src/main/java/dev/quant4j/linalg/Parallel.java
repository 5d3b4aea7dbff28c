package dev.quant4j.linalg;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * Runs independent pieces of work on a {@link ForkJoinPool}. Each piece writes its own part of the output with the
 * same arithmetic whichever thread runs it, so results never depend on the number of threads.
 */
public final class Parallel {

    private Parallel() {}

    /**
     * Calls {@code body.accept(i)} for {@code i < count} on {@code pool}. On the common pool the calling thread takes
     * part, as in a parallel stream (the common pool of a two-core machine has one worker: both cores work only if
     * the caller helps).
     */
    public static void forEach(ForkJoinPool pool, int count, IntConsumer body) {
        if (count <= 0) {
            return;
        }
        if (count == 1) {
            body.accept(0);
        } else if (pool == ForkJoinPool.commonPool() || ForkJoinTask.getPool() == pool) {
            IntStream.range(0, count).parallel().forEach(body);
        } else if (pool.getParallelism() <= 1) {
            for (int i = 0; i < count; i++) {
                body.accept(i);
            }
        } else {
            pool.submit(() -> IntStream.range(0, count).parallel().forEach(body))
                    .join();
        }
    }
}
