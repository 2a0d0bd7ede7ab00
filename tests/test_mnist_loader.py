"""Unit tests of lecture 06's MNIST loader: the notebook's own `library` cells, not a copy.

Every test builds its own small IDX files in a temporary folder; downloads come from a
throw-away HTTP server on 127.0.0.1 (plain http, allowed only through the loader's explicit
`allow_insecure=True`). Nothing here touches the internet or the user's real cache: an autouse
fixture points the cache at a temporary folder, and the "offline" test replaces `urlopen`.
Each failure test checks the error message says what is wrong, and that no file, partial or
temporary, is left in the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import threading
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from notebook_code import load_notebook_code

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


def cache_files(cache: Path) -> list[str]:
    """Everything in the cache folder, hidden temporary files included."""
    return sorted(p.name for p in cache.rglob("*")) if cache.exists() else []


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test reads the developer's MNIST_DIR or writes to their real cache."""
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    monkeypatch.setenv("JAX_LECTURES_CACHE", str(tmp_path / "default-cache"))
    yield
    assert cache_files(tmp_path / "default-cache") == [], "a test wrote into the default cache"


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


# ---- a local HTTP server, shut down after each test -----------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


class _TruncatingHandler(_QuietHandler):
    """Promises the whole file in Content-Length, then hangs up after 100 bytes."""

    def do_GET(self):
        data = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:100])
        self.wfile.flush()
        self.close_connection = True


def _serve(folder: Path, handler=_QuietHandler):
    def make_handler(*args, **kwargs):
        return handler(*args, directory=str(folder), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture
def http_server():
    """Call with a folder to serve it; every server started is shut down at teardown."""
    started = []

    def start(folder: Path, handler=_QuietHandler) -> str:
        server, thread, url = _serve(folder, handler)
        started.append((server, thread))
        return url

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


@pytest.fixture
def served(tmp_path, http_server, nb, monkeypatch):
    """Serve a small valid dataset over HTTP; pin its checksums in the loader. Returns (url, arrays)."""
    folder = tmp_path / "server"
    arrays = write_dataset(folder)
    for name in NAMES:
        monkeypatch.setitem(nb.DATASETS["mnist"]["sha256"], name, sha256(folder / name))
    return http_server(folder), arrays


def load(nb, cache, mirrors, **kwargs):
    return nb.load_mnist(cache_dir=cache, mirrors=mirrors, allow_insecure=True, timeout=5, progress=False, **kwargs)


# ---- reading files you provide (MNIST_DIR / data_dir) ----------------------------------------------


def test_reads_valid_files_from_data_dir(nb, tmp_path, cache):
    arrays = write_dataset(tmp_path / "data")
    (x_train, y_train), (x_test, y_test) = nb.load_mnist(data_dir=tmp_path / "data", cache_dir=cache)
    assert x_train.shape == (N_TRAIN, 28, 28) and x_test.shape == (N_TEST, 28, 28)
    assert x_train.dtype == y_train.dtype == np.uint8 and isinstance(x_train, np.ndarray)
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert x_train.flags.writeable
    assert cache_files(cache) == []  # user-provided files are read in place, not copied


def test_mnist_dir_env_var_is_used_without_checksums(nb, tmp_path, cache, monkeypatch):
    arrays = write_dataset(tmp_path / "subset")  # not the official files: a legitimate subset
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "subset"))
    (_, y_train), _ = nb.load_mnist(cache_dir=cache, download=False)
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte.gz"])
    assert cache_files(cache) == []


def test_missing_file_in_mnist_dir_is_named(nb, tmp_path, cache, monkeypatch):
    write_dataset(tmp_path / "data")
    (tmp_path / "data" / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "data"))
    with pytest.raises(nb.MNISTError, match=r"t10k-labels-idx1-ubyte\.gz not found in .*MNIST_DIR.*unset MNIST_DIR"):
        nb.load_mnist(cache_dir=cache)
    assert cache_files(cache) == []


# ---- strict parsing ---------------------------------------------------------------------------------


def _corrupt(folder: Path, name: str, blob: bytes) -> Path:
    path = folder / name
    path.write_bytes(blob)
    return path


def test_truncated_gzip(nb, tmp_path, cache):
    folder = tmp_path / "data"
    write_dataset(folder)
    blob = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    _corrupt(folder, "train-images-idx3-ubyte.gz", blob[: len(blob) // 2])
    with pytest.raises(
        nb.MNISTError,
        match=r"train-images-idx3-ubyte\.gz: is not a complete gzip file.*truncated"
        r".*To fix it, replace it",
    ):
        nb.load_mnist(data_dir=folder, cache_dir=cache)
    assert cache_files(cache) == []


def test_not_gzip_at_all(nb, tmp_path, cache):
    folder = tmp_path / "data"
    write_dataset(folder)
    _corrupt(folder, "train-labels-idx1-ubyte.gz", b"<html>404 Not Found</html>")
    with pytest.raises(nb.MNISTError, match=r"train-labels-idx1-ubyte\.gz: is not a complete gzip file"):
        nb.load_mnist(data_dir=folder, cache_dir=cache)


def test_wrong_magic_number(nb, tmp_path, cache):
    folder = tmp_path / "data"
    arrays = write_dataset(folder)
    # a labels file stored under the test-images name
    _corrupt(folder, "t10k-images-idx3-ubyte.gz", idx_blob(arrays["t10k-labels-idx1-ubyte.gz"], 2049))
    with pytest.raises(
        nb.MNISTError,
        match=r"t10k-images-idx3-ubyte\.gz: has magic number 2049 "
        r"\(the magic number of labels.*expected 2051",
    ):
        nb.load_mnist(data_dir=folder, cache_dir=cache)
    assert cache_files(cache) == []


def test_unknown_magic_number(nb, tmp_path):
    path = _corrupt(tmp_path, "x.gz", idx_blob(np.zeros((3, 28, 28), np.uint8), 0x0D03))
    with pytest.raises(nb.MNISTError, match=r"has magic number 3331, expected 2051"):
        nb.read_idx(path, "images")


def test_header_count_does_not_match_payload(nb, tmp_path, cache):
    folder = tmp_path / "data"
    arrays = write_dataset(folder)
    # header claims 60,000 images but only 12 follow: the classic truncated-then-recompressed file
    _corrupt(folder, "train-images-idx3-ubyte.gz", idx_blob(arrays["train-images-idx3-ubyte.gz"], 2051, 60_000))
    with pytest.raises(
        nb.MNISTError,
        match=r"train-images-idx3-ubyte\.gz: header promises 60000 images "
        r"\(47040000 bytes\) but 9408 bytes follow it",
    ):
        nb.load_mnist(data_dir=folder, cache_dir=cache)
    assert cache_files(cache) == []


def test_extra_bytes_after_payload(nb, tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    path = _corrupt(tmp_path, "l.gz", idx_blob(labels, 2049, count=8))
    with pytest.raises(nb.MNISTError, match=r"header promises 8 labels \(8 bytes\) but 10 bytes follow"):
        nb.read_idx(path, "labels")


def test_header_shorter_than_expected(nb, tmp_path):
    for blob, size in ((b"\x00\x00\x08", 3), (b"\x00\x00\x08\x01\x00\x00", 6)):
        path = _corrupt(tmp_path, "l.gz", gzip.compress(blob, mtime=0))
        with pytest.raises(nb.MNISTError, match=rf"holds {size} bytes, fewer than the 8-byte IDX header"):
            nb.read_idx(path, "labels")


def test_wrong_image_size(nb, tmp_path):
    path = _corrupt(tmp_path, "i.gz", idx_blob(np.zeros((2, 32, 32), np.uint8), 2051))
    with pytest.raises(nb.MNISTError, match=r"holds 32x32 images, expected 28x28"):
        nb.read_idx(path, "images")


def test_label_out_of_range(nb, tmp_path):
    path = _corrupt(tmp_path, "l.gz", idx_blob(np.array([1, 2, 12], np.uint8), 2049))
    with pytest.raises(nb.MNISTError, match=r"holds label 12, expected digits 0-9"):
        nb.read_idx(path, "labels")


def test_image_and_label_counts_must_match(nb, tmp_path, cache):
    folder = tmp_path / "data"
    arrays = write_dataset(folder)
    _corrupt(folder, "train-labels-idx1-ubyte.gz", idx_blob(arrays["train-labels-idx1-ubyte.gz"][:7], 2049))
    with pytest.raises(
        nb.MNISTError,
        match=r"train-images-idx3-ubyte\.gz holds 12 images but "
        r"train-labels-idx1-ubyte\.gz holds 7 labels",
    ):
        nb.load_mnist(data_dir=folder, cache_dir=cache)
    assert cache_files(cache) == []


# ---- downloading into the cache ----------------------------------------------------------------------


def test_download_lands_verified_files_atomically(nb, cache, served):
    url, arrays = served
    (x_train, y_train), (x_test, y_test) = load(nb, cache, [url])
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert cache_files(cache) == sorted(NAMES)  # exactly the four files, no temporary leftovers
    for name in NAMES:
        assert sha256(cache / name) == nb.DATASETS["mnist"]["sha256"][name]
    # a second load reads the cache: no server needed any more
    (x_again, _), _ = load(nb, cache, ["http://127.0.0.1:9/never-contacted/"])
    np.testing.assert_array_equal(x_again, x_train)


def test_second_mirror_used_when_first_fails(nb, cache, served, refused_url):
    url, arrays = served
    (_, y_train), _ = load(nb, cache, [refused_url, url])
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte.gz"])
    assert cache_files(cache) == sorted(NAMES)


def test_default_cache_dir_honours_env_var(nb, tmp_path, monkeypatch):
    monkeypatch.setenv("JAX_LECTURES_CACHE", str(tmp_path / "elsewhere"))
    assert nb.default_cache_dir() == tmp_path / "elsewhere" / "mnist"
    monkeypatch.delenv("JAX_LECTURES_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert nb.default_cache_dir("fashion_mnist") == tmp_path / "xdg" / "jax-lectures" / "fashion_mnist"


def test_checksum_mismatch_on_download(nb, cache, served, monkeypatch):
    url, _ = served
    monkeypatch.setitem(nb.DATASETS["mnist"]["sha256"], "train-images-idx3-ubyte.gz", "0" * 64)
    with pytest.raises(
        nb.MNISTError,
        match=r"(?s)could not download train-images-idx3-ubyte\.gz.*"
        r"SHA-256 mismatch, got [0-9a-f]{64}, expected 0{64}.*"
        r"check your internet connection.*set MNIST_DIR",
    ):
        load(nb, cache, [url])
    assert cache_files(cache) == []


def test_interrupted_download_leaves_nothing(nb, tmp_path, cache, http_server, monkeypatch):
    folder = tmp_path / "server"
    write_dataset(folder)
    for name in NAMES:
        monkeypatch.setitem(nb.DATASETS["mnist"]["sha256"], name, sha256(folder / name))
    url = http_server(folder, _TruncatingHandler)
    with pytest.raises(
        nb.MNISTError,
        match=r"(?s)could not download train-images-idx3-ubyte\.gz.*"
        r"connection closed after 100 of \d+ bytes",
    ):
        load(nb, cache, [url])
    assert cache_files(cache) == []


def test_all_mirrors_failing(nb, tmp_path, cache, http_server, refused_url):
    empty = tmp_path / "empty"
    empty.mkdir()
    not_found = http_server(empty)
    with pytest.raises(nb.MNISTError) as info:
        load(nb, cache, [not_found, refused_url])
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert f"{not_found}train-images-idx3-ubyte.gz: HTTP 404" in message
    assert (
        f"{refused_url}train-images-idx3-ubyte.gz: [Errno 111] Connection refused" in message
        or "refused" in message.lower()
    )
    assert "check your internet connection" in message and "MNIST_DIR" in message
    assert not cache.exists()  # the folders made for the download are removed again


def test_offline_with_nothing_cached(nb, cache, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(nb.urllib.request, "urlopen", no_network)
    with pytest.raises(
        nb.MNISTError,
        match=r"(?s)https://ossci-datasets.*name resolution.*"
        r"https://storage\.googleapis\.com/cvdf-datasets.*"
        r"check your internet connection and run again, or download the four "
        r"files .* set MNIST_DIR to their folder",
    ):
        nb.load_mnist(cache_dir=cache, progress=False)  # the real HTTPS mirrors, never contacted
    assert cache_files(cache) == []


def test_download_disabled_with_nothing_cached(nb, cache):
    with pytest.raises(
        nb.MNISTError,
        match=r"train-images-idx3-ubyte\.gz is not in the cache .*download=False"
        r".*set MNIST_DIR",
    ):
        nb.load_mnist(cache_dir=cache, download=False)
    assert cache_files(cache) == []


def test_plain_http_refused_without_opt_in(nb, cache, served):
    url, _ = served
    with pytest.raises(nb.MNISTError, match=r"refusing mirror 'http://127\.0\.0\.1.*must use https://"):
        nb.load_mnist(cache_dir=cache, mirrors=[url], progress=False)
    assert cache_files(cache) == []


def test_corrupted_cached_file_is_reported(nb, cache, served):
    url, _ = served
    load(nb, cache, [url])
    (cache / "t10k-images-idx3-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(
        nb.MNISTError,
        match=r"t10k-images-idx3-ubyte\.gz: SHA-256 is [0-9a-f]{64}, not the "
        r"official .*delete it and run again",
    ):
        load(nb, cache, [url])


def test_fashion_mnist_is_pinned_next_to_mnist(nb):
    for name in ("mnist", "fashion_mnist"):
        spec = nb.DATASETS[name]
        assert set(spec["sha256"]) == set(NAMES) == set(nb.FILES.values())
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in spec["sha256"].values())
        assert spec["mirrors"] and all(m.startswith("https://") for m in spec["mirrors"])
    assert nb.DATASETS["fashion_mnist"]["env"] == "FASHION_MNIST_DIR"
    assert not set(nb.DATASETS["mnist"]["sha256"].values()) & set(nb.DATASETS["fashion_mnist"]["sha256"].values())
