package dev.quant4j.cli;

import dev.quant4j.pipeline.CheckpointQuantizer;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Progress of a long command on stderr: bytes done of the total, rate and time left. On a terminal, one line redrawn
 * in place with a bar, at most five times a second; otherwise (a log, a pipe) a plain line every ten seconds. Called
 * from any thread.
 */
final class ProgressLine implements CheckpointQuantizer.Progress {

    private final PrintWriter err;
    private final long total;
    private final boolean terminal;
    private final long start = System.nanoTime();
    private final AtomicLong done = new AtomicLong();
    private long lastPrint = System.nanoTime();
    private boolean printed;

    ProgressLine(PrintWriter err, long total, boolean terminal) {
        this.err = err;
        this.total = Math.max(1, total);
        this.terminal = terminal;
    }

    @Override
    public void done(String tensor, long bytes) {
        long now = System.nanoTime();
        long d = done.addAndGet(bytes);
        synchronized (this) {
            if (now - lastPrint < (terminal ? 200_000_000L : 10_000_000_000L)) {
                return;
            }
            lastPrint = now;
            print(d, now, tensor);
        }
    }

    private void print(long d, long now, String tensor) {
        double seconds = (now - start) * 1e-9;
        double rate = d / Math.max(seconds, 1e-9);
        double left = rate > 0 ? Math.max(0, total - d) / rate : 0;
        String figures = String.format(
                Locale.ROOT,
                "%3.0f%% %s of %s, %s/s, %s left",
                100.0 * d / total,
                bytes(d),
                bytes(total),
                bytes((long) rate),
                clock(left));
        if (terminal) {
            int width = 24;
            int fill = (int) Math.min(width, width * d / total);
            err.print("\r[" + "#".repeat(fill) + ".".repeat(width - fill) + "] " + figures + "  " + tensor + "\033[K");
        } else {
            err.println("quant: " + figures + " (" + tensor + ")");
        }
        err.flush();
        printed = true;
    }

    /** Ends the bar's line on a terminal. */
    synchronized void finish() {
        if (terminal && printed) {
            err.println();
            err.flush();
        }
    }

    /** {@code 12.3 MB}, {@code 4.56 GB}: decimal units, as disks are sold. */
    static String bytes(long n) {
        if (n >= 1_000_000_000L) {
            return String.format(Locale.ROOT, "%.2f GB", n / 1e9);
        }
        if (n >= 1_000_000L) {
            return String.format(Locale.ROOT, "%.1f MB", n / 1e6);
        }
        return String.format(Locale.ROOT, "%.1f kB", n / 1e3);
    }

    private static String clock(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600
                ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }
}
