package dev.quant4j.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.function.LongFunction;

/** Positional reads ({@code pread}) that fill a buffer, the way the readers of large files read their data. */
final class PositionalReads {

    /** What is read from: {@link java.nio.channels.FileChannel#read(ByteBuffer, long)} or a file in memory. */
    @FunctionalInterface
    interface Source {
        /** Reads into {@code dst} from {@code position}; the bytes read, or -1 at the end. */
        int read(ByteBuffer dst, long position) throws IOException;
    }

    private PositionalReads() {}

    /**
     * Fills {@code into} from {@code from} at {@code position}. A source that ends first throws {@code endsAt} of the
     * byte it ends at (an exception that names the tensor being read).
     */
    static <X extends Exception> void readFully(Source from, ByteBuffer into, long position, LongFunction<X> endsAt)
            throws IOException, X {
        long at = position;
        while (into.hasRemaining()) {
            int r = from.read(into, at);
            if (r < 0) {
                throw endsAt.apply(at);
            }
            at += r;
        }
    }
}
