package dev.quant4j.architecture;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.spi.ToolProvider;
import org.junit.jupiter.api.Test;

/**
 * quant-core's packages depend on each other without cycles, as the JDK's own {@code jdeps} sees the compiled classes
 * (every reference in the bytecode, not only imports), and the layering is the documented one.
 */
class PackageCyclesTest {

    /** Package -> the quant4j packages its classes refer to, from {@code jdeps -verbose:package}. */
    static Map<String, Set<String>> dependencies() {
        ToolProvider jdeps = ToolProvider.findFirst("jdeps").orElseThrow();
        StringWriter out = new StringWriter();
        int code = jdeps.run(
                new PrintWriter(out),
                new PrintWriter(new StringWriter()),
                "-verbose:package",
                "-filter:none",
                "--add-modules",
                "jdk.incubator.vector",
                Path.of("target/classes").toString());
        assertThat(code).as(out.toString()).isZero();
        Pattern edge =
                Pattern.compile("^\\s+dev\\.quant4j\\.(\\w+)\\s+->\\s+dev\\.quant4j\\.(\\w+)\\b", Pattern.MULTILINE);
        Map<String, Set<String>> deps = new TreeMap<>();
        Matcher m = edge.matcher(out.toString());
        while (m.find()) {
            deps.computeIfAbsent(m.group(1), k -> new TreeSet<>());
            if (!m.group(1).equals(m.group(2))) {
                deps.get(m.group(1)).add(m.group(2));
            }
        }
        return deps;
    }

    @Test
    void noPackageCycles() {
        Map<String, Set<String>> deps = dependencies();
        assertThat(deps).as("jdeps found the packages").containsKeys("quant", "kernel", "io", "gptq", "awq");
        List<String> cycles = new ArrayList<>();
        for (String start : deps.keySet()) {
            // depth-first search for a path back to start
            List<List<String>> stack = new ArrayList<>(List.of(List.of(start)));
            Set<String> seen = new TreeSet<>();
            while (!stack.isEmpty()) {
                List<String> path = stack.remove(stack.size() - 1);
                for (String next : deps.getOrDefault(path.get(path.size() - 1), Set.of())) {
                    if (next.equals(start)) {
                        List<String> cycle = new ArrayList<>(path);
                        cycle.add(start);
                        cycles.add(String.join(" -> ", cycle));
                    } else if (seen.add(next)) {
                        List<String> longer = new ArrayList<>(path);
                        longer.add(next);
                        stack.add(longer);
                    }
                }
            }
        }
        assertThat(cycles).as("package dependencies: %s", deps).isEmpty();
    }

    @Test
    void theLayersDependOnlyDownwards() {
        Map<String, Set<String>> deps = dependencies();
        // the lowest layers know nothing of the quantized types or the algorithms: the schemes are plain data, the
        // kernels see only the schemes' enums
        assertThat(deps.getOrDefault("internal", Set.of())).isEmpty();
        assertThat(deps.getOrDefault("scheme", Set.of())).isEmpty();
        assertThat(deps.getOrDefault("kernel", Set.of())).isSubsetOf("scheme");
        assertThat(deps.getOrDefault("tensor", Set.of())).isSubsetOf("kernel");
        // the quantized types depend on no algorithm
        assertThat(deps.get("quant")).isSubsetOf("internal", "kernel", "tensor", "scheme");
        // AWQ and GPTQ share the Gram accumulator in linalg, not each other
        assertThat(deps.get("awq")).doesNotContain("gptq");
        assertThat(deps.get("gptq")).doesNotContain("awq");
    }
}
