"""Unit tests of lecture 06's MNIST loader: the notebook's own `library` cell, not a copy.

`pooch` downloads and verifies the files; what the lecture's own code adds, and what these tests check, is
the strict IDX reader with a clear error for each bad input, the hashing of a folder you provide
(`MNIST_DIR`: official files verified, another dataset's or swapped files refused, your own copy used and
said so), the list of mirrors tried in order, and a clear message when every mirror fails. Every test builds
its own small IDX files in a temporary folder; downloads come from a throw-away HTTP server on 127.0.0.1
(bound before its thread starts, so no test waits for it). Nothing here touches the internet or the user's
real cache.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from notebook_code import load_notebook_code

pytest.importorskip("pooch")

N_TRAIN, N_TEST = 12, 5
NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@pytest.fixture(scope="module")
def nb():
    return load_notebook_code("06")


# ---- helpers: IDX files written independently of the code under test ----------------------------


def idx_blob(array: np.ndarray, magic: int, count: int | None = None) -> bytes:
    """Gzip-compressed IDX bytes; `count` overrides the header's item count to fake a mismatch."""
    dims = (array.shape[0] if count is None else count, *array.shape[1:])
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def sample_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, N_TRAIN, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, N_TEST, dtype=np.uint8),
    }


def write_dataset(folder: Path, arrays: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    arrays = arrays or sample_arrays()
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        (folder / name).write_bytes(idx_blob(array, 2051 if array.ndim == 3 else 2049))
    return arrays


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_in(folder: Path) -> list[str]:
    """Everything in a folder, hidden and temporary files included."""
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test reads the developer's MNIST_DIR or writes to their real cache."""
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    monkeypatch.setenv("JAX_LECTURES_CACHE", str(tmp_path / "default-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    yield
    assert files_in(tmp_path / "default-cache") == [], "a test wrote into the default cache"


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


# ---- a local HTTP server, shut down after each test -----------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def http_server():
    """Call with a folder to serve it over http://127.0.0.1; every server is shut down at teardown."""
    started = []

    def start(folder: Path) -> str:
        def handler(*args, **kwargs):
            return _QuietHandler(*args, directory=str(folder), **kwargs)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # listening once this returns
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def refused_url() -> str:
    """A 127.0.0.1 URL whose port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def pin(nb, folder: Path, monkeypatch, dataset: str = "mnist") -> None:
    """Pin the SHA-256 of the files in `folder` as the dataset's official ones (for this test only)."""
    for name in NAMES:
        monkeypatch.setitem(nb.DATASETS[dataset]["sha256"], name, sha256(folder / name))


@pytest.fixture
def served(tmp_path, http_server, nb, monkeypatch):
    """Serve a small valid dataset over HTTP; pin its checksums in the loader. Returns (url, arrays)."""
    folder = tmp_path / "server"
    arrays = write_dataset(folder)
    pin(nb, folder, monkeypatch)
    return http_server(folder), arrays


def load(nb, cache, mirrors, **kwargs):
    return nb.load_mnist(cache_dir=cache, mirrors=mirrors, progress=False, **kwargs)


# ---- the strict IDX reader ------------------------------------------------------------------------


def _broken(tmp_path: Path, blob: bytes, name: str = NAMES[3]) -> Path:
    path = tmp_path / name
    path.write_bytes(blob)
    return path


def test_reads_images_and_labels(nb, tmp_path):
    arrays = write_dataset(tmp_path)
    images = nb.read_idx(tmp_path / NAMES[0], "images")
    labels = nb.read_idx(tmp_path / NAMES[1], "labels")
    assert images.dtype == labels.dtype == np.uint8 and images.flags.writeable
    np.testing.assert_array_equal(images, arrays[NAMES[0]])
    np.testing.assert_array_equal(labels, arrays[NAMES[1]])


def test_truncated_gzip(nb, tmp_path):
    path = _broken(tmp_path, idx_blob(np.random.default_rng(0).integers(0, 10, 2000), 2049)[:300])
    with pytest.raises(nb.MNISTError, match=rf"^{path}: is not a complete gzip file .*truncated or corrupted\. To fix"):
        nb.read_idx(path, "labels")


def test_not_gzip_at_all(nb, tmp_path):
    path = _broken(tmp_path, b"<html>Not Found</html>")
    with pytest.raises(nb.MNISTError, match="is not a complete gzip file"):
        nb.read_idx(path, "labels")


def test_uncompressed_idx_gets_gzip_advice(nb, tmp_path):
    path = _broken(tmp_path, gzip.decompress(idx_blob(np.arange(5), 2049)))
    with pytest.raises(nb.MNISTError, match=r"is an uncompressed IDX file.*To fix it, gzip it"):
        nb.read_idx(path, "labels")


def test_wrong_magic_number_names_the_likely_mix_up(nb, tmp_path):
    path = _broken(tmp_path, idx_blob(np.zeros((3, 28, 28)), 2051))  # images under a labels name
    with pytest.raises(
        nb.MNISTError, match=r"has magic number 2051 \(the magic number of images: is the file misnamed\?\), "
        r"expected 2049 for IDX labels\. To fix it, delete it and run again\.$"
    ):
        nb.read_idx(path, "labels")
    with pytest.raises(nb.MNISTError, match=r"has magic number 7, expected 2051 for IDX images"):
        nb.read_idx(_broken(tmp_path, idx_blob(np.zeros((3, 28, 28)), 7)), "images")


@pytest.mark.parametrize("count", [4, 2])
def test_header_count_does_not_match_payload(nb, tmp_path, count):
    path = _broken(tmp_path, idx_blob(np.arange(3), 2049, count=count))
    with pytest.raises(nb.MNISTError, match=rf"header promises {count} labels \({count} bytes\) but 3 bytes follow"):
        nb.read_idx(path, "labels")


def test_header_shorter_than_expected(nb, tmp_path):
    path = _broken(tmp_path, gzip.compress((2051).to_bytes(4, "big") + (1).to_bytes(4, "big")))
    with pytest.raises(nb.MNISTError, match="fewer than the 16-byte IDX header"):
        nb.read_idx(path, "images")


def test_wrong_image_size(nb, tmp_path):
    path = _broken(tmp_path, idx_blob(np.zeros((2, 32, 32)), 2051), NAMES[2])
    with pytest.raises(nb.MNISTError, match="holds 32x32 images, expected 28x28"):
        nb.read_idx(path, "images")


def test_label_out_of_range(nb, tmp_path):
    path = _broken(tmp_path, idx_blob(np.array([1, 2, 10]), 2049))
    with pytest.raises(nb.MNISTError, match="holds label 10, expected digits 0-9"):
        nb.read_idx(path, "labels")


def test_unreadable_path_is_not_called_corrupted(nb, tmp_path):
    (tmp_path / NAMES[3]).mkdir()  # a folder where the file should be
    with pytest.raises(nb.MNISTError, match=r"cannot be read \(Is a directory\)\. To fix it, check the path"):
        nb.read_idx(tmp_path / NAMES[3], "labels")


# ---- your own folder (MNIST_DIR / data_dir) ---------------------------------------------------------


def test_own_folder_is_read_in_place(nb, tmp_path, cache):
    arrays = write_dataset(tmp_path / "data")
    (x_train, y_train), (x_test, y_test) = nb.load_mnist(data_dir=tmp_path / "data", cache_dir=cache, verbose=False)
    assert x_train.shape == (N_TRAIN, 28, 28) and x_test.shape == (N_TEST, 28, 28)
    np.testing.assert_array_equal(y_test, arrays[NAMES[3]])
    assert files_in(cache) == []  # read where it is, nothing copied


def test_mnist_dir_is_used_and_said_so_in_one_line(nb, tmp_path, cache, capsys, monkeypatch):
    write_dataset(tmp_path / "subset")  # not the official files: a legitimate copy of your own
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "subset"))
    nb.load_mnist(cache_dir=cache, mirrors=("http://127.0.0.1:9/",))  # would fail if it tried to download
    assert capsys.readouterr().out == (
        "MNIST_DIR: train images and train labels and test images and test labels are not the official MNIST "
        "files (12 train images, 5 test images); using them as given\n"
    )


def test_missing_file_in_mnist_dir_is_named(nb, tmp_path, cache, monkeypatch):
    folder = tmp_path / "data"
    write_dataset(folder)
    (folder / NAMES[1]).unlink()
    monkeypatch.setenv("MNIST_DIR", str(folder))
    with pytest.raises(nb.MNISTError, match=rf"^{NAMES[1]} not found in {folder} \(given by MNIST_DIR\)\. "
                       r"To fix it, put the four files there; or unset MNIST_DIR"):
        nb.load_mnist(cache_dir=cache)


def test_uncompressed_file_in_mnist_dir_gets_gzip_advice(nb, tmp_path, cache):
    folder = tmp_path / "data"
    write_dataset(folder)
    gz = folder / NAMES[0]
    gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    with pytest.raises(nb.MNISTError, match=r"train-images-idx3-ubyte\.gz \(train-images-idx3-ubyte is there: gzip"):
        nb.load_mnist(data_dir=folder, cache_dir=cache)


def test_mnist_dir_that_is_not_a_folder(nb, tmp_path, cache, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(nb.MNISTError, match=r"nowhere: is not a folder \(given by MNIST_DIR\)"):
        nb.load_mnist(cache_dir=cache)


def test_truncated_file_in_mnist_dir(nb, tmp_path, cache):
    folder = tmp_path / "data"
    write_dataset(folder)
    (folder / NAMES[2]).write_bytes((folder / NAMES[2]).read_bytes()[:500])
    with pytest.raises(nb.MNISTError, match=rf"^{folder / NAMES[2]}: is not a complete gzip file.*To fix it, replace "
                       r"it with an intact copy; or leave out data_dir"):
        nb.load_mnist(data_dir=folder, cache_dir=cache)


def test_image_and_label_counts_must_match(nb, tmp_path, cache):
    folder = tmp_path / "data"
    arrays = write_dataset(folder)
    (folder / NAMES[1]).write_bytes(idx_blob(arrays[NAMES[1]][:-1], 2049))
    with pytest.raises(nb.MNISTError, match=rf"holds {N_TRAIN} images but {NAMES[1]} holds {N_TRAIN - 1} labels"):
        nb.load_mnist(data_dir=folder, cache_dir=cache)


@pytest.fixture
def official(nb, tmp_path, monkeypatch):
    """Small files pinned (for this test) as MNIST's official ones, and others as Fashion-MNIST's."""
    mnist, fashion = tmp_path / "official-mnist", tmp_path / "official-fashion"
    write_dataset(mnist, sample_arrays(1))
    write_dataset(fashion, sample_arrays(2))
    pin(nb, mnist, monkeypatch)
    pin(nb, fashion, monkeypatch, "fashion_mnist")
    return mnist, fashion


def test_official_files_are_reported_verified(nb, official, cache, capsys, monkeypatch):
    mnist, _ = official
    monkeypatch.setenv("MNIST_DIR", str(mnist))
    nb.load_mnist(cache_dir=cache)
    assert capsys.readouterr().out == "MNIST: the four official files (SHA-256 verified), from MNIST_DIR\n"


def test_own_training_subset_next_to_official_test_files(nb, official, tmp_path, cache, capsys):
    """What CI's 24,000-image subset looks like to the loader: two own files, two official ones."""
    mnist, _ = official
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in NAMES[2:]:
        (folder / name).write_bytes((mnist / name).read_bytes())
    arrays = sample_arrays(3)
    for name in NAMES[:2]:
        (folder / name).write_bytes(idx_blob(arrays[name], 2051 if arrays[name].ndim == 3 else 2049))
    (x_train, _), _ = nb.load_mnist(data_dir=folder, cache_dir=cache)
    np.testing.assert_array_equal(x_train, arrays[NAMES[0]])
    assert capsys.readouterr().out == (
        "data_dir: train images and train labels are not the official MNIST files (12 train images); "
        "using them as given; the other 2 are official (SHA-256 verified)\n"
    )


def test_another_datasets_file_is_refused(nb, official, tmp_path, cache, monkeypatch):
    mnist, fashion = official
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in NAMES:
        (folder / name).write_bytes((mnist / name).read_bytes())
    (folder / NAMES[0]).write_bytes((fashion / NAMES[0]).read_bytes())
    monkeypatch.setenv("MNIST_DIR", str(folder))
    with pytest.raises(
        nb.MNISTError,
        match=rf"^{folder / NAMES[0]}: is the official Fashion-MNIST train-images-idx3-ubyte\.gz, not MNIST's "
        r"train-images-idx3-ubyte\.gz\. To fix it, put MNIST's train-images-idx3-ubyte\.gz there; or unset MNIST_DIR",
    ):
        nb.load_mnist(cache_dir=cache)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(mnist))  # and MNIST under Fashion-MNIST's variable
    with pytest.raises(nb.MNISTError, match=r"is the official MNIST t.*not Fashion-MNIST's .*unset FASHION_MNIST_DIR"):
        nb.load_mnist("fashion_mnist", cache_dir=cache)


def test_train_and_test_swapped_is_refused(nb, official, tmp_path, cache):
    mnist, _ = official
    folder = tmp_path / "swapped"
    folder.mkdir()
    swap = dict(zip(NAMES, (NAMES[2], NAMES[3], NAMES[0], NAMES[1]), strict=True))
    for name in NAMES:
        (folder / name).write_bytes((mnist / swap[name]).read_bytes())
    with pytest.raises(
        nb.MNISTError,
        match=r"train-images-idx3-ubyte\.gz: is the official MNIST t10k-images-idx3-ubyte\.gz, not MNIST's "
        r"train-images-idx3-ubyte\.gz\. To fix it, put MNIST's train-images-idx3-ubyte\.gz there; "
        r"or leave out data_dir",
    ):
        nb.load_mnist(data_dir=folder, cache_dir=cache)


def test_recompressed_or_cut_copy_of_another_file_is_refused(nb, tmp_path, cache, monkeypatch):
    """Another dataset's file, or a training file under a test name, re-packed (other bytes, other hash)."""
    fashion, mnist = sample_arrays(4), sample_arrays(5)
    monkeypatch.setattr(nb, "FINGERPRINT_ITEMS", 5)
    for dataset, arrays in (("fashion_mnist", fashion), ("mnist", mnist)):
        for name, array in arrays.items():
            monkeypatch.setitem(nb.FINGERPRINTS, hashlib.sha256(array[:5].tobytes()).hexdigest(), (dataset, name))
    folder = tmp_path / "data"
    write_dataset(folder, {**mnist, NAMES[0]: fashion[NAMES[0]][:8]})  # the first 8 Fashion images, re-packed
    with pytest.raises(
        nb.MNISTError,
        match=rf"^{folder / NAMES[0]}: holds the content of Fashion-MNIST's train-images-idx3-ubyte\.gz \(its first "
        r"5 items match\), not MNIST's train-images-idx3-ubyte\.gz\. To fix it",
    ):
        nb.load_mnist(data_dir=folder, cache_dir=cache)
    write_dataset(folder, {**mnist, NAMES[3]: mnist[NAMES[1]][:N_TEST]})  # training labels as test labels
    with pytest.raises(nb.MNISTError, match=r"t10k-labels-idx1-ubyte\.gz: holds the content of MNIST's train-labels"):
        nb.load_mnist(data_dir=folder, cache_dir=cache)
    write_dataset(folder, {**mnist, NAMES[0]: mnist[NAMES[0]][:7], NAMES[1]: mnist[NAMES[1]][:7]})  # a subset
    (x_train, _), _ = nb.load_mnist(data_dir=folder, cache_dir=cache, verbose=False)
    assert len(x_train) == 7


# ---- downloads (pooch), from a local server ----------------------------------------------------------


def test_download_lands_verified_files_in_the_cache(nb, cache, served, capsys):
    url, arrays = served
    (x_train, _), (_, y_test) = load(nb, cache, (url,))
    np.testing.assert_array_equal(x_train, arrays[NAMES[0]])
    np.testing.assert_array_equal(y_test, arrays[NAMES[3]])
    expected = f"MNIST: the four official files (SHA-256 verified), from the cache {cache / 'mnist'}\n"
    assert capsys.readouterr().out == expected
    assert files_in(cache / "mnist") == sorted(NAMES)  # nothing else: no temporary file left behind


def test_cached_files_are_used_without_the_network(nb, cache, served, refused_url):
    url, arrays = served
    load(nb, cache, (url,))
    (_, y_train), _ = load(nb, cache, (refused_url,))  # offline now: the verified cache is enough
    np.testing.assert_array_equal(y_train, arrays[NAMES[1]])


def test_mirrors_are_tried_in_order(nb, cache, served, refused_url):
    url, arrays = served
    (_, y_train), _ = load(nb, cache, (refused_url, url))
    np.testing.assert_array_equal(y_train, arrays[NAMES[1]])


def test_checksum_mismatch_on_download(nb, tmp_path, cache, http_server, monkeypatch):
    folder = tmp_path / "server"
    write_dataset(folder)
    pin(nb, folder, monkeypatch)
    (folder / NAMES[1]).write_bytes(idx_blob(np.zeros(N_TRAIN), 2049))  # the mirror now serves other bytes
    url = http_server(folder)
    with pytest.raises(nb.MNISTError, match=rf"could not download {NAMES[1]}; every mirror failed:\n  - {url}: .*hash"):
        load(nb, cache, (url,))
    assert NAMES[1] not in files_in(cache)  # the wrong file was not kept


def test_corrupted_cached_file_is_downloaded_again(nb, cache, served):
    url, arrays = served
    load(nb, cache, (url,))
    (cache / "mnist" / NAMES[3]).write_bytes(b"garbage")
    (_, _), (_, y_test) = load(nb, cache, (url,))
    np.testing.assert_array_equal(y_test, arrays[NAMES[3]])


def test_offline_with_nothing_cached_says_what_to_do(nb, cache, served, refused_url):
    with pytest.raises(nb.MNISTError) as caught:
        load(nb, cache, (refused_url, refused_url))
    message = str(caught.value)
    assert message.startswith(f"could not download {NAMES[0]}; every mirror failed:\n  - {refused_url}: ")
    assert message.count(refused_url) == 2  # each mirror's reason
    assert message.endswith(
        "To fix it, check your internet connection and run again, or download the four files "
        f"({', '.join(NAMES)}) yourself and set MNIST_DIR to their folder."
    )
    assert [name for name in files_in(cache) if not name.startswith("mnist")] == []


def test_default_cache_follows_jax_lectures_cache(nb, tmp_path, served, monkeypatch):
    url, _ = served
    monkeypatch.setenv("JAX_LECTURES_CACHE", str(tmp_path / "elsewhere"))
    nb.load_mnist(mirrors=(url,), progress=False, verbose=False)
    assert files_in(tmp_path / "elsewhere" / "mnist") == sorted(NAMES)


def test_fashion_mnist_is_pinned_next_to_mnist(nb):
    assert set(nb.DATASETS) == {"mnist", "fashion_mnist"}
    for spec in nb.DATASETS.values():
        assert set(spec["sha256"]) == set(NAMES) and all(m.startswith("https://") for m in spec["mirrors"])
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in spec["sha256"].values())
    hashes = [h for spec in nb.DATASETS.values() for h in spec["sha256"].values()]
    assert len(set(hashes)) == 8
