package dev.quant4j.linear;

import dev.quant4j.internal.TrustedConstruction;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.LinearKernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.kernel.StatisticsKernels;
import dev.quant4j.quant.QuantizedParts;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.quant.Quantizer;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.PackOrder;
import dev.quant4j.tensor.FloatMatrix;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * Round-to-nearest (RTN) linear quantization, per tensor, per output channel or per group of input columns.
 *
 * <p>Each group gets its scale and zero-point from its own minimum and maximum ({@link LinearParams}, GPTQ's {@code
 * find_params}), then every value becomes {@code q = clamp(round(x / S) + Z, qmin, qmax)} (GPTQ's {@code quantize},
 * rounding half to even). The input is validated (finite, non-empty, group size divides the columns) and never
 * modified.
 *
 * <p>Rows are independent and are processed in parallel on the given pool once the tensor is large enough; the result
 * does not depend on the number of threads.
 */
public final class RtnQuantizer implements Quantizer<QuantizedTensor> {

    private final LinearScheme scheme;
    private final ForkJoinPool pool;

    /** Quantizes on the common pool. */
    public RtnQuantizer(LinearScheme scheme) {
        this(scheme, ForkJoinPool.commonPool());
    }

    /** Quantizes on {@code pool}; a pool of parallelism 1 runs on one thread. */
    public RtnQuantizer(LinearScheme scheme, ForkJoinPool pool) {
        this.scheme = Objects.requireNonNull(scheme, "scheme");
        this.pool = Objects.requireNonNull(pool, "pool");
    }

    public LinearScheme scheme() {
        return scheme;
    }

    /** The group size, when groups of input columns divide {@code cols}; per channel and per tensor 0. */
    @Override
    public int independentColumns(int cols) {
        int g = scheme.groupSize();
        return g > 0 && cols % g == 0 ? g : 0;
    }

    @Override
    public QuantizedTensor quantize(FloatMatrix w) {
        return quantize(w, Kernels.get());
    }

    /** Quantizes with the given kernels (tests compare implementations; the kernel types are internal). */
    QuantizedTensor quantize(FloatMatrix w, QuantKernels k) {
        Objects.requireNonNull(w, "w");
        int rows = w.rows();
        int cols = w.cols();
        int gsize;
        try {
            gsize = scheme.columnsPerGroup(cols);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("tensor '" + w.name() + "': " + e.getMessage(), e);
        }
        int gpr = cols / gsize;
        int rowBytes = LinearKernels.packedBytes(cols, scheme.bits());
        byte[] packed = new byte[Math.multiplyExact(rowBytes, rows)];
        float[] scales = new float[scheme.scaleCount(rows, cols)];
        byte[] zeros = new byte[scales.length];
        boolean perTensor = scheme.groupSize() == LinearScheme.PER_TENSOR;
        if (perTensor) {
            float min = Float.POSITIVE_INFINITY;
            float max = Float.NEGATIVE_INFINITY;
            for (int r = 0; r < rows; r++) {
                if (!k.allFinite(w.array(), w.rowOffset(r), cols)) {
                    w.requireFinite(); // throws, naming the first bad index
                }
                long mm = k.minMax(w.array(), w.rowOffset(r), cols);
                min = Math.min(min, StatisticsKernels.min(mm));
                max = Math.max(max, StatisticsKernels.max(mm));
            }
            scales[0] = LinearParams.scale(scheme, min, max);
            zeros[0] = (byte) LinearParams.zero(scheme, min, max, scales[0]);
        }
        // tasks of whole rows, about 64K values each (per tensor, each with its own code buffer)
        int rowsPerTask = Math.max(1, (1 << 16) / cols);
        int tasks = (rows + rowsPerTask - 1) / rowsPerTask;
        AtomicBoolean nonFinite = new AtomicBoolean();
        // rows are contiguous, and so are their packed codes when a row fills whole bytes: then a task's rows are one
        // run of groups for one kernel call (its statistics pass streams the whole task from memory without a break)
        boolean runs = !perTensor && (long) cols * scheme.bits() == 8L * rowBytes;
        IntConsumer task = t -> {
            int from = t * rowsPerTask;
            int to = Math.min(rows, from + rowsPerTask);
            if (runs) {
                if (!quantizeGroups(k, w, from, (to - from) * gpr, gsize, packed, rowBytes, scales, zeros)) {
                    nonFinite.set(true);
                }
                return;
            }
            byte[] codes = perTensor ? new byte[cols] : null;
            for (int r = from; r < to; r++) {
                if (perTensor) {
                    quantizeRow(k, w, r, codes, packed, rowBytes, scales, zeros);
                } else if (!quantizeGroups(k, w, r, gpr, gsize, packed, rowBytes, scales, zeros)) {
                    nonFinite.set(true);
                }
            }
        };
        if (tasks > 1 && pool.getParallelism() > 1) {
            pool.submit(() -> IntStream.range(0, tasks).parallel().forEach(task))
                    .join();
        } else {
            for (int t = 0; t < tasks; t++) {
                task.accept(t);
            }
        }
        if (nonFinite.get()) {
            w.requireFinite(); // throws, naming the first bad index
        }
        return TrustedConstruction.get(QuantizedParts.class, QuantizedTensor.class)
                .linear(w.name(), scheme, rows, cols, PackOrder.LSB_FIRST_ROW_ALIGNED, packed, scales, zeros, null);
    }

    /**
     * Quantizes {@code groups} groups from the start of row {@code r} (one row, or whole rows): statistics, parameters,
     * codes and packing in one kernel call. Returns false if a value is not finite (the caller reports it).
     */
    private boolean quantizeGroups(
            QuantKernels k,
            FloatMatrix w,
            int r,
            int groups,
            int gsize,
            byte[] packed,
            int rowBytes,
            float[] scales,
            byte[] zeros) {
        int g0 = r * (w.cols() / gsize);
        return k.quantizeGroups(
                w.array(),
                w.rowOffset(r),
                groups,
                gsize,
                scheme.bits(),
                scheme.symmetry(),
                LinearParams.qmin(scheme),
                scales,
                g0,
                zeros,
                g0,
                packed,
                r * rowBytes);
    }

    /** Quantizes row {@code r} with the tensor's one scale and zero-point (the values were checked finite before). */
    private void quantizeRow(
            QuantKernels k,
            FloatMatrix w,
            int r,
            byte[] codes,
            byte[] packed,
            int rowBytes,
            float[] scales,
            byte[] zeros) {
        float[] x = w.array();
        int base = w.rowOffset(r);
        k.quantize(x, base, w.cols(), scales[0], zeros[0] & 0xFF, LinearParams.qmin(scheme), scheme.maxq(), codes, 0);
        k.pack(codes, 0, w.cols(), scheme.bits(), packed, r * rowBytes);
    }
}
