package dev.quant4j.io;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.io.OnnxModelTest.Proto;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@link OnnxRewriter}: what it does not change stays byte for byte; what it changes parses back as asked. */
class OnnxRewriterTest {

    @Test
    void noChangeIsByteIdentical() throws IOException {
        byte[] small = OnnxModelTest.smallModel();
        assertThat(OnnxRewriter.rewrite("tiny", small, new OnnxRewriter.Edit())).isEqualTo(small);
        byte[] real = OnnxModelTest.realModel();
        assertThat(OnnxRewriter.rewrite("minilm", real, new OnnxRewriter.Edit()))
                .isEqualTo(real);
        // found by OnnxModelFuzzTest: a graph whose length is encoded in more bytes than needed (0x80 0x00 for 0),
        // which protobuf allows, came back with the shortest encoding
        byte[] longLength = {(byte) 0xa0, 0x6f, 0x04, 0x3a, (byte) 0x80, 0x00};
        assertThat(OnnxRewriter.rewrite("long", longLength, new OnnxRewriter.Edit()))
                .isEqualTo(longLength);
    }

    /** A domain already imported is not imported twice; an empty graph still takes added initializers. */
    @Test
    void opsetAddedOnceAndAfterTheLastImport() {
        byte[] model = new Proto()
                .intField(1, 8)
                .message(8, new Proto().string(1, "").intField(2, 17))
                .message(7, new Proto().string(2, "empty"))
                .string(2, "after") // producer_name after the graph: kept in place
                .bytes();
        byte[] once = OnnxRewriter.rewrite(
                "m",
                model,
                new OnnxRewriter.Edit().requireOpset("com.microsoft", 1).requireOpset("", 99));
        byte[] expected = new Proto()
                .intField(1, 8)
                .message(8, new Proto().string(1, "").intField(2, 17))
                .message(8, new Proto().string(1, "com.microsoft").intField(2, 1))
                .message(7, new Proto().string(2, "empty"))
                .string(2, "after")
                .bytes();
        assertThat(once).isEqualTo(expected);
        assertThat(OnnxRewriter.rewrite("m", once, new OnnxRewriter.Edit().requireOpset("com.microsoft", 1)))
                .isEqualTo(once);
        byte[] withTensor = OnnxRewriter.rewrite(
                "m",
                model,
                new OnnxRewriter.Edit().addInitializer(OnnxRewriter.tensor("t", 1, new long[] {1}, new byte[4])));
        assertThat(OnnxModel.parse("m", withTensor).initializers()).containsOnlyKeys("t");
    }

    @Test
    void replacesNodesAndInitializersInPlaceAndKeepsTheRest() {
        byte[] small = OnnxModelTest.smallModel(); // MatMul(x, W) -> y; initializers W, P, ids
        byte[] w2 = OnnxRewriter.tensor("W2", 2, new long[] {2, 3}, new byte[] {1, 2, 3, 4, 5, 6});
        byte[] node = OnnxRewriter.node(
                "/fc/MatMul", "Op", "com.microsoft", List.of("x", "W2"), List.of("y"), Map.of("K", 3L));
        OnnxRewriter.Edit edit = new OnnxRewriter.Edit()
                .replaceNode(0, List.of(node))
                .replaceInitializer("W", List.of(w2))
                .addInitializer(OnnxRewriter.tensor("extra", 7, new long[] {}, new byte[8]))
                .requireOpset("com.microsoft", 1);
        OnnxModel before = OnnxModel.parse("before", small);
        OnnxModel after = OnnxModel.parse("after", OnnxRewriter.rewrite("tiny", small, edit));
        assertThat(after.nodes())
                .containsExactly(new OnnxModel.Node("/fc/MatMul", "Op", List.of("x", "W2"), List.of("y")));
        assertThat(after.initializers()).containsOnlyKeys("W2", "P", "ids", "extra");
        assertThat(List.copyOf(after.initializers().keySet())).containsExactly("W2", "P", "ids", "extra");
        assertThat(after.initializer("W2").bytes()).containsExactly(1, 2, 3, 4, 5, 6);
        assertThat(after.initializer("P").floats())
                .isEqualTo(before.initializer("P").floats());
        assertThat(after.initializer("ids").bytes())
                .isEqualTo(before.initializer("ids").bytes());
        assertThat(after.initializer("extra").dims()).isEmpty();
        assertThat(after.inputs()).isEqualTo(before.inputs());
        assertThat(after.outputs()).isEqualTo(before.outputs());
        // the node's domain and attribute, decoded by hand from the wire format
        ProtoReader r = new ProtoReader("n", "NodeProto", node, 0, node.length);
        String domain = null;
        long k = -1;
        while (r.hasMore()) {
            long key = r.readKey();
            if (key == (7 << 3 | 2)) {
                domain = r.readString();
            } else if (key == (5 << 3 | 2)) {
                ProtoReader a = r.nested("AttributeProto", r.readLength());
                while (a.hasMore()) {
                    long ak = a.readKey();
                    if (ak == (3 << 3)) {
                        k = a.readVarint();
                    } else if (ak == (20 << 3)) {
                        assertThat(a.readVarint()).isEqualTo(2); // INT
                    } else {
                        a.skip((int) (ak & 7));
                    }
                }
            } else {
                r.skip((int) (key & 7));
            }
        }
        assertThat(domain).isEqualTo("com.microsoft");
        assertThat(k).isEqualTo(3);
    }
}
