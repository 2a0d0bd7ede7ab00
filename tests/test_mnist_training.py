"""Unit tests of lecture 06's training code (the notebook's `library` cells), on tiny synthetic data.

The benchmark imports the same model, optimizer and whole-epoch training function, so these check
the contract it relies on: shapes, a loss that goes down, augmentation that only moves pixels, and
one compiled program shared by runs with and without augmentation.
"""

from __future__ import annotations

import numpy as np
import pytest
from notebook_code import load_notebook_code

jax = pytest.importorskip("jax")
jnp = jax.numpy
nnx = pytest.importorskip("flax.nnx")

SIZES = (784, 16, 10)  # a small MLP: these tests check behaviour, not accuracy


@pytest.fixture(scope="module")
def nb():
    return load_notebook_code("06")


@pytest.fixture(scope="module")
def toy():
    """256 'images': class c lights up a 6x6 block at a class-dependent place, inside a blank border."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 256)
    images = np.zeros((256, 28, 28), np.float32)
    for i, c in enumerate(labels):
        row, col = 4 + 2 * (c // 5) * 7, 4 + 3 * (c % 5)
        images[i, row:row + 6, col:col + 6] = 1.0
    images += 0.05 * rng.random(images.shape, dtype=np.float32) * (images == 0)
    images[:, :4], images[:, -4:], images[:, :, :4], images[:, :, -4:] = 0, 0, 0, 0
    return jnp.asarray(images.reshape(256, 784)), jnp.asarray(labels, jnp.int32)


def test_constants_describe_the_lecture_model(nb):
    assert nb.HIDDEN == (512, 512) and nb.IMAGE_PIXELS == 784 and nb.NUM_CLASSES == 10
    assert nb.BATCH_SIZE > 0 and nb.LEARNING_RATE > 0 and 0 <= nb.MAX_SHIFT <= nb.SHIFT_PAD
    model = nb.MLP(rngs=nnx.Rngs(0))
    n_params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert n_params == 669_706


def test_preprocess_scales_and_flattens(nb):
    images = np.array([[[0, 255], [51, 102]]], np.uint8).repeat(14, 1).repeat(14, 2)
    out = nb.preprocess(images)
    assert out.shape == (1, 784) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0 and np.isclose(out[0, 14 * 28], 0.2)


def test_random_shift_moves_pixels_without_losing_them(nb, toy):
    images, _ = toy
    key = jax.random.key(0)
    assert jnp.array_equal(nb.random_shift(key, images, 0), images)
    shifted = nb.random_shift(key, images, 2)
    assert shifted.shape == images.shape
    # the blank 4-pixel border means a shift of up to 2 pixels drops no ink
    np.testing.assert_allclose(shifted.sum(1), images.sum(1), rtol=1e-5)
    assert not jnp.array_equal(shifted, images)


def test_train_epoch_learns_and_keeps_shapes(nb, toy):
    images, labels = toy
    model = nb.MLP(SIZES, rngs=nnx.Rngs(0))
    batch, epochs = 64, 4
    optimizer = nb.make_optimizer(model, epochs * (len(images) // batch), learning_rate=1e-2)
    graphdef, state = nnx.split((model, optimizer))
    structure, shapes = jax.tree.structure(state), [leaf.shape for leaf in jax.tree.leaves(state)]
    first = nb.evaluate(graphdef, state, images, labels)
    key = jax.random.key(1)
    for _ in range(epochs):
        key, epoch_key = jax.random.split(key)
        state, metrics = nb.train_epoch(graphdef, state, images, labels, epoch_key, batch_size=batch, max_shift=1)
        assert metrics["loss"].shape == metrics["accuracy"].shape == (len(images) // batch,)
    assert jax.tree.structure(state) == structure and [leaf.shape for leaf in jax.tree.leaves(state)] == shapes
    last = nb.evaluate(graphdef, state, images, labels)
    assert float(last["loss"]) < 0.5 * float(first["loss"])
    assert 0.0 <= float(last["accuracy"]) <= 1.0 and float(last["accuracy"]) > 0.9


def test_shift_is_traced_so_both_runs_share_one_program(nb, toy):
    images, labels = toy
    model = nb.MLP(SIZES, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split((model, nb.make_optimizer(model, 10)))
    if not hasattr(nb.train_epoch, "_cache_size"):
        pytest.skip("this JAX does not expose the jit cache size")
    nb.train_epoch(graphdef, state, images, labels, jax.random.key(0), batch_size=128, max_shift=0)
    before = nb.train_epoch._cache_size()
    nb.train_epoch(graphdef, state, images, labels, jax.random.key(1), batch_size=128, max_shift=2)
    assert nb.train_epoch._cache_size() == before


def test_epoch_skips_the_remainder_batch(nb, toy):
    images, labels = toy
    model = nb.MLP(SIZES, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split((model, nb.make_optimizer(model, 10)))
    _, metrics = nb.train_epoch(graphdef, state, images[:200], labels[:200], jax.random.key(0), batch_size=64)
    assert metrics["loss"].shape == (3,)  # 200 // 64; the other 8 examples sit this epoch out


def test_runs_of_one_recipe_share_one_graph_definition(nb):
    """make_optimizer reuses one optax transform per recipe, so two runs of it compile one program."""
    model = nb.MLP(SIZES, rngs=nnx.Rngs(0))
    first, second = (nnx.split((model, nb.make_optimizer(model, 10)))[0] for _ in range(2))
    assert first == second and hash(first) == hash(second)
    assert nnx.split((model, nb.make_optimizer(model, 20)))[0] != first  # another schedule, another program
