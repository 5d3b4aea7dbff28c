package dev.quant4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The README's synopsis of the {@code quant} command and each subcommand's {@code --help} name the same options. */
class ReadmeSynopsisTest {

    private static final Pattern OPTION = Pattern.compile("(?<![\\w-])--[a-z][a-z0-9-]*");

    private static Set<String> options(String text) {
        Set<String> found = new TreeSet<>();
        Matcher m = OPTION.matcher(text);
        while (m.find()) {
            found.add(m.group());
        }
        return found;
    }

    @Test
    void everySubcommandsOptionsAreInTheReadmeAndTheOtherWayRound() throws Exception {
        String readme = Files.readString(Path.of("..", "README.md"), StandardCharsets.UTF_8);
        Matcher block = Pattern.compile("## The `quant` command\\n+```\\n(.*?)```", Pattern.DOTALL)
                .matcher(readme);
        assertThat(block.find()).isTrue();
        // subcommand -> the options its synopsis lines name (continuation lines belong to the command above)
        Map<String, StringBuilder> synopsis = new LinkedHashMap<>();
        String current = null;
        for (String line : block.group(1).split("\n")) {
            Matcher cmd = Pattern.compile("^\\./quant (\\w+)").matcher(line);
            if (cmd.find()) {
                current = cmd.group(1);
                synopsis.putIfAbsent(current, new StringBuilder());
            }
            synopsis.get(current).append(line).append('\n');
        }
        assertThat(synopsis.keySet())
                .containsExactlyInAnyOrder("quantize", "dequantize", "inspect", "report", "eval", "generate", "memory");
        for (Map.Entry<String, StringBuilder> e : synopsis.entrySet()) {
            QuantCliTest.Result help = QuantCliTest.run(e.getKey(), "--help");
            assertThat(help.code()).isZero();
            // the options picocli lists (lines starting with the option and its aliases), not those named in the
            // prose
            StringBuilder listed = new StringBuilder();
            for (String l : help.out().split("\n")) {
                Matcher opt = Pattern.compile("^\\s+(?:-\\w, )?(--[a-z][a-z0-9-]*(?:, --[a-z][a-z0-9-]*)*)")
                        .matcher(l);
                if (opt.find()) {
                    listed.append(opt.group(1)).append('\n');
                }
            }
            Set<String> inHelp = options(listed.toString());
            inHelp.removeAll(Set.of("--help", "--version"));
            assertThat(options(e.getValue().toString()))
                    .as("quant %s: README synopsis vs --help", e.getKey())
                    .isEqualTo(inHelp);
        }
    }
}
