"""Reference implementations of lecture 06's MLP training step, outside JAX.

The same model (784-512-512-10, ReLU), batch size, loss (softmax cross-entropy)
and optimizer (Adam) as the lecture, written idiomatically for each library,
so the benchmark compares like with like.
"""

from __future__ import annotations

import numpy as np

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


class NumpyMLP:
    """Hand-written forward and backward pass and Adam, in float32 NumPy."""

    def __init__(self, sizes, learning_rate, seed=0):
        rng = np.random.default_rng(seed)
        self.params = []
        for m, n in zip(sizes[:-1], sizes[1:], strict=True):
            w = rng.standard_normal((m, n), dtype=np.float32) * np.float32(np.sqrt(1.0 / m))
            self.params += [w, np.zeros(n, np.float32)]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.lr, self.t = np.float32(learning_rate), 0

    def grads(self, x, labels):
        """Mean softmax cross-entropy loss and its gradient for each parameter."""
        activations = [x]
        for i in range(0, len(self.params) - 2, 2):
            x = np.maximum(x @ self.params[i] + self.params[i + 1], 0.0)
            activations.append(x)
        logits = x @ self.params[-2] + self.params[-1]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        n = len(labels)
        loss = -np.log(probs[np.arange(n), labels] + 1e-12).mean()
        delta = probs
        delta[np.arange(n), labels] -= 1.0
        delta /= n
        grads = [None] * len(self.params)
        for i in range(len(self.params) - 2, -1, -2):
            a = activations[i // 2]
            grads[i], grads[i + 1] = a.T @ delta, delta.sum(axis=0)
            if i:
                delta = (delta @ self.params[i].T) * (a > 0)
        return loss, grads

    def step(self, x, labels):
        loss, grads = self.grads(x, labels)
        self.t += 1
        scale = self.lr * np.sqrt(1 - ADAM_B2**self.t) / (1 - ADAM_B1**self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= ADAM_B1
            m += (1 - ADAM_B1) * g
            v *= ADAM_B2
            v += (1 - ADAM_B2) * g * g
            p -= scale * m / (np.sqrt(v) + ADAM_EPS)
        return loss


def torch_trainer(sizes, learning_rate, compile_model=False):
    """An idiomatic PyTorch training step (nn.Sequential + Adam); None when torch is absent."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    layers = []
    for m, n in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(m, n), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    forward = torch.compile(model) if compile_model else model

    def step(x, labels):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(x), labels)
        loss.backward()
        optimizer.step()
        return loss

    return step
