package dev.quant4j.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a {@code .safetensors} file whose tensors are known only as they are made (a block-by-block quantization
 * whose layouts depend on results): each tensor's bytes are appended to a temporary spill file beside the target as
 * it arrives, and {@link #finish} writes the header and copies the data after it, in the order the tensors were added,
 * into the target atomically. Heap holds only the tensor list; the disk holds the data twice until the spill file is
 * deleted. The bytes are those {@link SafeTensorsWriter} writes for the same tensors and metadata in the same order.
 *
 * <p>The spill file is named like {@link AtomicFiles}' temporaries ({@code .NAME.PID.*.spill}), so a killed writer's
 * spill file is removed by the next write of the same target; {@link #close} without {@link #finish} deletes it. A
 * writer {@link #open opened} on a spill file of the caller's keeps it: a run that stops can continue its spill.
 */
public final class SafeTensorsSpillWriter implements AutoCloseable {

    private record Placed(SafeTensorsStreamWriter.Spec spec, long position) {}

    private final Path target;
    private final Path spill;
    private final FileChannel channel;
    private final boolean keep;
    private final List<Placed> tensors = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();
    private long end;
    private boolean finished;

    private SafeTensorsSpillWriter(Path target, Path spill, FileChannel channel, boolean keep) {
        this.target = target;
        this.spill = spill;
        this.channel = channel;
        this.keep = keep;
    }

    /** A writer of {@code target}; nothing appears at {@code target} before {@link #finish}. */
    public static SafeTensorsSpillWriter create(Path target) throws IOException {
        Path abs = target.toAbsolutePath();
        Path spill = Files.createTempFile(
                abs.getParent(),
                "." + abs.getFileName() + "." + ProcessHandle.current().pid() + ".",
                ".spill");
        return new SafeTensorsSpillWriter(
                abs, spill, FileChannel.open(spill, StandardOpenOption.READ, StandardOpenOption.WRITE), false);
    }

    /**
     * A writer of {@code target} that spills to the caller's file {@code spill} (created when missing) and leaves it
     * in place when closed, for the caller to delete: the spill of a run that stopped continues. The tensors {@code
     * done} are taken to be the file's first bytes, one after another in that order (as an earlier writer added them);
     * anything after them (a tensor half written when that writer stopped) is cut off.
     *
     * @throws MalformedTensorFileException when the file is shorter than the tensors {@code done}
     */
    public static SafeTensorsSpillWriter open(Path target, Path spill, List<SafeTensorsStreamWriter.Spec> done)
            throws IOException {
        long bytes = 0;
        for (SafeTensorsStreamWriter.Spec s : done) {
            bytes += s.bytes();
        }
        FileChannel channel =
                FileChannel.open(spill, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        SafeTensorsSpillWriter w = new SafeTensorsSpillWriter(target.toAbsolutePath(), spill, channel, true);
        try {
            if (channel.size() < bytes) {
                throw new MalformedTensorFileException(spill + ": " + channel.size() + " bytes, the " + done.size()
                        + " tensors written before take " + bytes);
            }
            channel.truncate(bytes);
            for (SafeTensorsStreamWriter.Spec s : done) {
                w.tensors.add(new Placed(s, w.end));
                w.end += s.bytes();
            }
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
        return w;
    }

    /** Reads {@code count} bytes of the spill from {@code position} (of the tensors added so far). */
    public byte[] read(long position, int count) throws IOException {
        if (position < 0 || count < 0 || position + count > end) {
            throw new IllegalArgumentException(
                    spill + ": no bytes [" + position + ", " + (position + count) + ") in " + end);
        }
        ByteBuffer b = ByteBuffer.allocate(count);
        PositionalReads.readFully(
                channel::read,
                b,
                position,
                at -> new java.io.EOFException(spill + ": ends before " + (position + count)));
        return b.array();
    }

    /** Forces the tensors added so far to the disk ({@link FileChannel#force}). */
    public void force() throws IOException {
        channel.force(false);
    }

    /** Adds {@code key} to {@code __metadata__} (in insertion order; a key added again keeps its first place). */
    public SafeTensorsSpillWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /**
     * Appends a tensor given as little-endian bytes.
     *
     * @throws IllegalArgumentException when the byte count does not match the shape, or the name is taken or reserved
     */
    public void add(String name, DType dtype, long[] shape, byte[] bytes) throws IOException {
        SafeTensorsStreamWriter.Spec spec = new SafeTensorsStreamWriter.Spec(name, dtype, shape);
        if (spec.bytes() != bytes.length) {
            throw new IllegalArgumentException("tensor '" + name + "': shape " + java.util.Arrays.toString(shape)
                    + " of " + dtype + " needs " + spec.bytes() + " bytes, got " + bytes.length);
        }
        if (name.equals("__metadata__")
                || tensors.stream().anyMatch(t -> t.spec().name().equals(name))) {
            throw new IllegalArgumentException("duplicate or reserved tensor name '" + name + "'");
        }
        ByteBuffer b = ByteBuffer.wrap(bytes);
        long at = end;
        while (b.hasRemaining()) {
            at += channel.write(b, at);
        }
        tensors.add(new Placed(spec, end));
        end = at;
    }

    /** Writes the target: header, then every tensor's data in the order added; deletes the spill file. */
    public void finish() throws IOException {
        if (finished) {
            throw new IllegalStateException(target + ": already finished");
        }
        List<SafeTensorsStreamWriter.Spec> specs = new ArrayList<>();
        for (Placed p : tensors) {
            specs.add(p.spec());
        }
        AtomicFiles.writeFile(target, tmp -> {
            try (SafeTensorsStreamWriter w = SafeTensorsStreamWriter.create(tmp, specs, metadata);
                    FileChannel in = FileChannel.open(spill, StandardOpenOption.READ)) {
                for (Placed p : tensors) {
                    w.copyRange(p.spec().name(), 0, in, p.position(), p.spec().bytes());
                }
                w.finish();
            }
        });
        finished = true;
        close();
    }

    /**
     * Deletes the spill file (kept when {@link #open opened} on the caller's); the target is left as it was unless
     * {@link #finish} completed.
     */
    @Override
    public void close() throws IOException {
        try {
            channel.close();
        } finally {
            if (!keep) {
                Files.deleteIfExists(spill);
            }
        }
    }
}
