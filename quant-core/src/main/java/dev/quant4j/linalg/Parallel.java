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

    /** Calls {@code body.accept(i)} for {@code i < count}, on {@code pool} when it has more than one thread. */
    public static void forEach(ForkJoinPool pool, int count, IntConsumer body) {
        if (count <= 0) {
            return;
        }
        if (count == 1 || pool.getParallelism() <= 1) {
            for (int i = 0; i < count; i++) {
                body.accept(i);
            }
            return;
        }
        if (ForkJoinTask.getPool() == pool) {
            // already inside this pool: a parallel stream here uses it directly
            IntStream.range(0, count).parallel().forEach(body);
        } else {
            pool.submit(() -> IntStream.range(0, count).parallel().forEach(body))
                    .join();
        }
    }
}
