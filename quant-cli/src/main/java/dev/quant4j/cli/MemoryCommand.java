package dev.quant4j.cli;

import java.io.PrintWriter;
import java.math.BigDecimal;
import java.math.MathContext;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(
        name = "memory",
        mixinStandardHelpOptions = true,
        description = "Memory the weights of a model take per precision (GB = 10^9 bytes).")
final class MemoryCommand implements Callable<Integer> {

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(
            names = "--params",
            description = "parameter count, e.g. 7e9, 13e9 or 70B (repeatable; default 7e9, 13e9, 70e9)")
    List<String> params;

    /** Bytes per parameter of each precision, in the note's order. */
    static final String[] PRECISIONS = {"FP32", "FP16", "INT8", "4-bit"};

    static final double[] BYTES = {4, 2, 1, 0.5};

    @Override
    public Integer call() {
        List<String> list = params == null || params.isEmpty() ? List.of("7e9", "13e9", "70e9") : params;
        double[] counts = list.stream().mapToDouble(MemoryCommand::parse).toArray(); // bad input: nothing printed
        PrintWriter pw = spec.commandLine().getOut();
        pw.println("| parameters | FP32 | FP16 | INT8 | 4-bit |");
        pw.println("|---:|---:|---:|---:|---:|");
        for (double n : counts) {
            StringBuilder row = new StringBuilder("| ").append(human(n)).append(" |");
            for (double b : BYTES) {
                row.append(String.format(Locale.ROOT, " %.1f GB |", n * b / 1e9));
            }
            pw.println(row);
        }
        pw.println();
        pw.println("Weights only: activations, the KV cache and runtime overhead come on top. Group-wise 4-bit adds "
                + "its scales and zero-points (about 0.3 bits per weight at group size 128).");
        return Quant.OK;
    }

    static double parse(String p) {
        String t = p.trim().toUpperCase(Locale.ROOT);
        double mult = 1;
        if (t.endsWith("B")) {
            mult = 1e9;
            t = t.substring(0, t.length() - 1);
        } else if (t.endsWith("M")) {
            mult = 1e6;
            t = t.substring(0, t.length() - 1);
        }
        double n;
        try {
            n = Double.parseDouble(t) * mult;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--params '" + p + "' is not a number (examples: 7e9, 70B, 125M)");
        }
        if (!(n > 0) || Double.isInfinite(n)) {
            throw new IllegalArgumentException("--params '" + p + "' must be a positive, finite count");
        }
        return n;
    }

    static String human(double n) {
        if (n >= 1e9) {
            return fourDigits(n / 1e9) + "B";
        }
        if (n >= 1e6) {
            return fourDigits(n / 1e6) + "M";
        }
        return fourDigits(n);
    }

    private static String fourDigits(double v) {
        return new BigDecimal(v).round(new MathContext(4)).stripTrailingZeros().toPlainString();
    }
}
