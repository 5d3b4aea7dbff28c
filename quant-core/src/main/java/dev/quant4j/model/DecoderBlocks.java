package dev.quant4j.model;

import dev.quant4j.tensor.FloatMatrix;
import java.io.IOException;

/**
 * A decoder seen one block at a time, for pipelines that run block by block (GPTQ, AWQ) on models that do not fit in
 * memory as float32: the embeddings of token ids (block 0's input) and, for each block, a {@link LlamaDecoder} that
 * holds it. A source backed by files loads a block when asked and keeps nothing, so the caller holds one block's
 * weights at a time.
 */
public interface DecoderBlocks {

    /** The model's name in messages. */
    String source();

    /** The hyperparameters. */
    LlamaConfig config();

    /** The embeddings {@code [tokens, dim]} of token ids, as {@link LlamaDecoder#embed} gives them. */
    FloatMatrix embed(int[] tokens) throws IOException;

    /** A decoder that holds block {@code index} (at least), its linears in FP32. */
    LlamaDecoder block(int index) throws IOException;

    /** The blocks of a decoder already in memory. */
    static DecoderBlocks of(LlamaDecoder decoder) {
        return new DecoderBlocks() {
            @Override
            public String source() {
                return decoder.source();
            }

            @Override
            public LlamaConfig config() {
                return decoder.config();
            }

            @Override
            public FloatMatrix embed(int[] tokens) {
                return decoder.embed(tokens);
            }

            @Override
            public LlamaDecoder block(int index) {
                return decoder;
            }
        };
    }
}
