package dev.quant4j.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.util.Properties;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code quant} command. Exit codes: 0 success; 2 bad usage or bad input, with one
 * line on stderr naming the problem; 1 an internal failure. No command leaves a partial output file behind.
 */
@Command(
        name = "quant",
        mixinStandardHelpOptions = true,
        versionProvider = Quant.Version.class,
        description = "Quantize neural-network weights (RTN, NF4/FP4, GPTQ, AWQ) and report the error.",
        subcommands = {
            QuantizeCommand.class,
            DequantizeCommand.class,
            ReportCommand.class,
            InspectCommand.class,
            EvalCommand.class,
            GenerateCommand.class,
            MemoryCommand.class,
            CommandLine.HelpCommand.class
        })
public final class Quant implements Runnable {

    public static final int OK = 0;
    public static final int INTERNAL = 1;
    public static final int BAD_INPUT = 2;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(
                spec.commandLine(), "missing command (quantize, dequantize, inspect, report, eval, memory)");
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs the command line and returns its exit code; used by {@link #main} and the tests. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        CommandLine cl = new CommandLine(new Quant());
        cl.setOut(new PrintWriter(out, true, StandardCharsets.UTF_8));
        cl.setErr(new PrintWriter(err, true, StandardCharsets.UTF_8));
        cl.setParameterExceptionHandler((ex, a) -> {
            String cmd = ex.getCommandLine().getCommandName();
            // picocli starts some messages (mutually exclusive options, for one) with "Error: "
            String message = ex.getMessage().replaceFirst("^Error: ", "");
            err.println(
                    "quant: " + message + " (see '" + ("quant".equals(cmd) ? "quant" : "quant " + cmd) + " --help')");
            return BAD_INPUT;
        });
        cl.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            // a run that saved its work: the failure's line ends with how to continue it
            String note = ex instanceof Continuable c ? "; " + c.note : "";
            Throwable t = ex instanceof Continuable c ? c.getCause() : ex;
            t = t instanceof UncheckedIOException u ? u.getCause() : t;
            if (t instanceof OutOfMemoryError) {
                err.println(outOfMemory() + note);
                return INTERNAL;
            }
            if (t instanceof IllegalArgumentException) {
                err.println("quant: " + t.getMessage() + note);
                return BAD_INPUT;
            }
            if (t instanceof NoSuchFileException f) {
                err.println("quant: no such file: " + f.getFile() + note);
                return BAD_INPUT;
            }
            if (t instanceof AccessDeniedException f) {
                err.println("quant: permission denied: " + f.getFile() + note);
                return BAD_INPUT;
            }
            if (t instanceof FileSystemException f) {
                err.println("quant: cannot use " + f.getFile() + ": " + f.getReason() + note);
                return BAD_INPUT;
            }
            if (t instanceof IOException) {
                String m = String.valueOf(t.getMessage());
                err.println(
                        m.contains("No space left on device")
                                ? "quant: the disk is full (" + m + "); nothing was left half-written. Free space, or"
                                        + " write --out to another disk" + note
                                : "quant: I/O error: " + m + note);
                return INTERNAL;
            }
            err.println("quant: internal error: " + t + note);
            return INTERNAL;
        });
        // the library's log records (GPTQ's dead input features and damping retries, the kernel choice) as plain
        // lines on this run's stderr, without java.util.logging's timestamp lines
        Logger root = Logger.getLogger("");
        Handler[] previous = root.getHandlers();
        Handler plain = new Handler() {
            @Override
            public void publish(LogRecord r) {
                if (isLoggable(r)) {
                    String level = r.getLevel().intValue() >= Level.WARNING.intValue() ? "warning: " : "";
                    err.println("quant: " + level + new SimpleFormatter().formatMessage(r));
                }
            }

            @Override
            public void flush() {
                err.flush();
            }

            @Override
            public void close() {}
        };
        plain.setLevel(Level.INFO);
        for (Handler h : previous) {
            root.removeHandler(h);
        }
        root.addHandler(plain);
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            // picocli hands only Exceptions to the handler above; the command's outputs are atomic, so nothing
            // half-written is left
            err.println(outOfMemory());
            return INTERNAL;
        } finally {
            root.removeHandler(plain);
            for (Handler h : previous) {
                root.addHandler(h);
            }
        }
    }

    private static String outOfMemory() {
        return "quant: out of memory: the Java heap (at most "
                + Runtime.getRuntime().maxMemory() / (1 << 20)
                + " MB) cannot hold what this command needs; nothing was left half-written. Give the JVM more"
                + " (QUANT_JAVA_OPTS=-Xmx8g ./quant ..., or java -Xmx8g -jar ...), or pass fewer --threads";
    }

    /**
     * A failure of a run that saved what it had done (the blocks of a whole-decoder GPTQ): the failure's line ends with
     * {@code note}, how to continue.
     */
    static final class Continuable extends RuntimeException {
        private final String note;

        Continuable(Throwable cause, String note) {
            super(cause);
            this.note = note;
        }
    }

    /** The project version Maven wrote into {@code version.properties} when it built the command. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() throws IOException {
            Properties p = new Properties();
            try (InputStream in = Quant.class.getResourceAsStream("version.properties")) {
                if (in != null) {
                    p.load(in);
                }
            }
            return new String[] {
                "quant4j " + p.getProperty("version", "(unknown version)"), "JVM: ${java.version} (${java.vendor})"
            };
        }
    }
}
