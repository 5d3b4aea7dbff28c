package dev.quant4j.model;

import dev.quant4j.tensor.FloatMatrix;

/**
 * Sees the input {@code [tokens, in]} of every linear layer of a model's forward pass, in forward order: how
 * calibration (GPTQ's Hessians, AWQ's activation statistics) collects what reaches each layer.
 */
@FunctionalInterface
public interface Tap {
    /**
     * Called before {@code linearName} runs on {@code input}. The tap must not modify {@code input}; it may keep it
     * (the model does not write to it afterwards).
     */
    void accept(String linearName, FloatMatrix input);
}
