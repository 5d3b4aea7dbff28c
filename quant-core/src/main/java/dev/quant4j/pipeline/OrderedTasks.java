package dev.quant4j.pipeline;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/**
 * Runs a list of tasks on the threads of a pool, each thread taking the next task in list order (so that a file read
 * task by task is read nearly front to back whatever the number of threads). The first failure stops the others from
 * taking new tasks and is thrown once all have returned.
 */
final class OrderedTasks {

    /** One task, given the running thread's own state (scratch buffers). */
    @FunctionalInterface
    interface Task<S, R> {
        R run(int index, S state) throws IOException;
    }

    private OrderedTasks() {}

    /**
     * Runs tasks {@code 0 .. count - 1} on {@code pool}; returns their results by index. {@code state} makes one state
     * per thread.
     */
    static <S, R> List<R> run(ForkJoinPool pool, int count, Supplier<S> state, Task<S, R> task) throws IOException {
        List<R> results = new ArrayList<>(java.util.Collections.nCopies(count, null));
        AtomicInteger next = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Runnable worker = () -> {
            S s = state.get();
            int t;
            while (failure.get() == null && (t = next.getAndIncrement()) < count) {
                try {
                    R r = task.run(t, s);
                    synchronized (results) {
                        results.set(t, r);
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }
        };
        List<Future<?>> running = new ArrayList<>();
        for (int i = 0; i < Math.max(1, Math.min(pool.getParallelism(), count)); i++) {
            running.add(pool.submit(worker));
        }
        for (Future<?> f : running) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                failure.compareAndSet(null, new IOException("interrupted", e));
            } catch (ExecutionException e) {
                failure.compareAndSet(null, e.getCause());
            }
        }
        switch (failure.get()) {
            case null -> {}
            case IOException e -> throw e;
            case UncheckedIOException e -> throw e.getCause();
            case RuntimeException e -> throw e;
            case Error e -> throw e;
            case Throwable t -> throw new IllegalStateException(t);
        }
        return results;
    }
}
