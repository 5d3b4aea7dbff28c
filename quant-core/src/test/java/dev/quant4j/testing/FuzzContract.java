package dev.quant4j.testing;

import java.io.IOException;
import java.lang.management.ClassLoadingMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;

/**
 * The contract every reader's fuzz target checks (docs/reliability.md), on any bytes:
 *
 * <ul>
 *   <li>the reader either returns or refuses the input with a documented exception that has a message: an {@link
 *       IllegalArgumentException} ({@code MalformedTensorFileException} is one) or an {@link IOException}. Anything
 *       else (a {@code NullPointerException}, an {@code ArrayIndexOutOfBoundsException}, a {@code StackOverflowError},
 *       an {@code OutOfMemoryError} in the fuzzing JVM's 256 MB heap) escapes and is a finding;
 *   <li>one input costs at most a second of CPU time (the thread's own time, so other load on the machine does not
 *       count; an input that loaded classes, which the fuzzer instruments, is timed a second time); a hang never
 *       returns, and the fuzzing run's per-input timeout catches it instead;
 *   <li>what the reader accepted survives its writer: the round trip throws nothing and gives back what was read.
 * </ul>
 *
 * A target is then a few lines: {@code FuzzContract.check(input, bytes -> Reader.parse(bytes, "fuzz"), read -> {
 * ... write, read again, compare ... })}.
 */
public final class FuzzContract {

    /** The CPU time one input may take. */
    public static final long BUDGET_NANOS = 1_000_000_000L;

    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
    private static final ClassLoadingMXBean CLASSES = ManagementFactory.getClassLoadingMXBean();

    /** Reads an input. */
    @FunctionalInterface
    public interface Reader<T> {
        T read(byte[] input) throws IOException;
    }

    /** Writes what was read and checks that it reads back the same; throws on any difference. */
    @FunctionalInterface
    public interface RoundTrip<T> {
        void check(T read) throws IOException;
    }

    private FuzzContract() {}

    /** Runs {@code reader} on {@code input} and, when it accepts it, {@code roundTrip} on the result. */
    public static <T> void check(byte[] input, Reader<T> reader, RoundTrip<T> roundTrip) {
        long classes = CLASSES.getTotalLoadedClassCount();
        long spent = run(input, reader, roundTrip);
        if (spent > BUDGET_NANOS && CLASSES.getTotalLoadedClassCount() != classes) {
            // the first input down a new path loads (and, when fuzzing, instruments) classes: time it again
            spent = run(input, reader, roundTrip);
        }
        if (spent > BUDGET_NANOS) {
            throw new AssertionError(
                    "input of " + input.length + " bytes took " + spent / 1_000_000 + " ms of CPU, budget 1000 ms");
        }
    }

    /** Checks one input; returns the CPU time it took. */
    private static <T> long run(byte[] input, Reader<T> reader, RoundTrip<T> roundTrip) {
        long start = THREADS.getCurrentThreadCpuTime();
        T read;
        try {
            read = reader.read(input);
        } catch (IllegalArgumentException | IOException refused) {
            if (refused.getMessage() == null || refused.getMessage().isBlank()) {
                throw new AssertionError("refused without a message", refused);
            }
            read = null;
        }
        if (read != null) {
            try {
                roundTrip.check(read);
            } catch (IOException | RuntimeException e) {
                throw new AssertionError("accepted, but the round trip failed: " + e, e);
            }
        }
        return THREADS.getCurrentThreadCpuTime() - start;
    }

    /** Throws an {@link AssertionError} saying {@code what} unless {@code ok}. */
    public static void require(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }
}
