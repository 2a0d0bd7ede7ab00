"""Unit tests of lecture 06's MNIST loader: the notebook's own `library` cells, not a copy.

Every test builds its own small IDX files in a temporary folder; downloads come from a
throw-away HTTP server on 127.0.0.1 (plain http, allowed only through the loader's explicit
`allow_insecure=True`). Nothing here touches the internet or the user's real cache: an autouse
fixture points the cache at a temporary folder, and the "offline" test replaces `urlopen`.
Each failure test checks the error message says what is wrong, and that no file, partial or
temporary, is left in the cache.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.server
import os
import socket
import stat
import subprocess
import sys
import threading
import time
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


class _EndlessHandler(_QuietHandler):
    """Sends no Content-Length and a body that never ends (until the client hangs up, or 50 MB)."""

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(800):
                self.wfile.write(b"\0" * 65536)
        except OSError:
            pass
        self.close_connection = True


class _DrippingHandler(_QuietHandler):
    """Announces the right size, then sends a byte every 20 ms: each read succeeds, the whole never ends."""

    def do_GET(self):
        data = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.02)
        except OSError:
            pass
        self.close_connection = True


class _WrongLengthHandler(_QuietHandler):
    """Announces a Content-Length other than the file's, then sends nothing."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "123456789")
        self.end_headers()
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
    pin(nb, folder, monkeypatch)
    return http_server(folder), arrays


def pin(nb, folder: Path, monkeypatch) -> None:
    """Pin the SHA-256 and size of the files in `folder` as MNIST's official ones (for this test only)."""
    for name in NAMES:
        pinned = (sha256(folder / name), (folder / name).stat().st_size)
        monkeypatch.setitem(nb.DATASETS["mnist"]["official"], name, pinned)


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
        assert sha256(cache / name) == nb.DATASETS["mnist"]["official"][name][0]
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
    size = nb.DATASETS["mnist"]["official"]["train-images-idx3-ubyte.gz"][1]
    monkeypatch.setitem(nb.DATASETS["mnist"]["official"], "train-images-idx3-ubyte.gz", ("0" * 64, size))
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
    pin(nb, folder, monkeypatch)
    url = http_server(folder, _TruncatingHandler)
    with pytest.raises(
        nb.MNISTError,
        match=r"(?s)could not download train-images-idx3-ubyte\.gz.*"
        r"connection closed after 100 of [\d,]+ bytes",
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
        assert set(spec["official"]) == set(NAMES) == set(nb.FILES.values())
        assert all(len(h) == 64 and int(h, 16) >= 0 and size > 0 for h, size in spec["official"].values())
        assert spec["mirrors"] and all(m.startswith("https://") for m in spec["mirrors"])
    assert nb.DATASETS["fashion_mnist"]["env"] == "FASHION_MNIST_DIR"
    hashes = [h for spec in nb.DATASETS.values() for h, _ in spec["official"].values()]
    assert len(set(hashes)) == len(hashes) == 8


# ---- filesystem failures: each an MNISTError naming the path, what is wrong, and the fix ------------


def _chmod_denies_access() -> bool:
    """False for root (os.geteuid() == 0, or any process with CAP_DAC_OVERRIDE): chmod 000 denies it nothing."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe"
        probe.write_bytes(b"x")
        probe.chmod(0)
        try:
            probe.read_bytes()
        except PermissionError:
            return True
        finally:
            probe.chmod(0o600)
    return False


ROOT = not _chmod_denies_access()  # then permission errors are simulated (monkeypatched) instead
PERMISSION_DENIED = PermissionError(errno.EACCES, "Permission denied")


def deny(monkeypatch, nb, path: Path, mode: int, call: str) -> None:
    """Take away permissions on `path` for real, or, as root (who ignores them), make `call` fail as they would."""
    if not ROOT:
        path.chmod(mode)  # undone by the fixture `restore_modes`
        return
    if call == "open":  # the built-in open, as seen by the notebook's code
        real_open = open

        def fake_open(file, mode="r", *args, **kwargs):
            if Path(file) == path or Path(file).parent == path:
                raise PERMISSION_DENIED
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(nb, "open", fake_open, raising=False)
    elif call == "mkdir":
        real_mkdir = Path.mkdir

        def fake_mkdir(self, *args, **kwargs):
            if path in (self, *self.parents):
                raise PERMISSION_DENIED
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", fake_mkdir)


@pytest.fixture
def restore_modes(tmp_path):
    yield
    for path in (tmp_path, *tmp_path.rglob("*")):
        if not path.is_symlink():
            path.chmod(0o700)


def no_leftovers(*folders: Path) -> None:
    for folder in folders:
        left = [p.name for p in folder.rglob("*.part")] if folder.exists() else []
        assert left == [], f"half-written files left in {folder}: {left}"


def test_mnist_dir_that_does_not_exist(nb, tmp_path, cache, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(nb.MNISTError) as info:
        nb.load_mnist(cache_dir=cache)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'nowhere'}: does not exist (the folder given by MNIST_DIR)")
    assert "set MNIST_DIR to the folder that holds the four files" in message and "unset MNIST_DIR" in message
    assert "not found" not in message  # one clear error, not four missing files
    assert cache_files(cache) == []


def test_mnist_dir_that_is_a_file(nb, tmp_path, cache, monkeypatch):
    (tmp_path / "mnist.gz").write_bytes(b"x")
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "mnist.gz"))
    with pytest.raises(nb.MNISTError, match=rf"^{tmp_path / 'mnist.gz'}: is a file, not a folder .*To fix it, "):
        nb.load_mnist(cache_dir=cache)
    assert cache_files(cache) == []


def test_folder_where_a_file_should_be_in_mnist_dir(nb, tmp_path, cache, monkeypatch):
    folder = tmp_path / "data"
    write_dataset(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (folder / "t10k-labels-idx1-ubyte.gz").mkdir()
    monkeypatch.setenv("MNIST_DIR", str(folder))
    with pytest.raises(
        nb.MNISTError,
        match=r"t10k-labels-idx1-ubyte\.gz: is a folder, not a file .*To fix it, remove or rename that folder; "
        r"or unset MNIST_DIR",
    ):
        nb.load_mnist(cache_dir=cache)
    assert cache_files(cache) == []


def test_symlink_loop_in_mnist_dir(nb, tmp_path, cache, monkeypatch):
    folder = tmp_path / "data"
    write_dataset(folder)
    loop = folder / "train-labels-idx1-ubyte.gz"
    loop.unlink()
    loop.symlink_to(loop)
    monkeypatch.setenv("MNIST_DIR", str(folder))
    with pytest.raises(
        nb.MNISTError,
        match=r"train-labels-idx1-ubyte\.gz: is a symbolic link that loops back on itself .*"
        r"To fix it, replace the link with the real file",
    ):
        nb.load_mnist(cache_dir=cache)


def test_symlink_loop_as_mnist_dir(nb, tmp_path, cache, monkeypatch):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "a"))
    with pytest.raises(nb.MNISTError, match=rf"^{tmp_path / 'a'}: is a symbolic link that loops .*replace the link"):
        nb.load_mnist(cache_dir=cache)


def test_unreadable_file_in_mnist_dir_is_not_called_corrupted(nb, tmp_path, cache, monkeypatch, restore_modes):
    folder = tmp_path / "data"
    write_dataset(folder)
    path = folder / "t10k-images-idx3-ubyte.gz"
    deny(monkeypatch, nb, path, 0o000, "open")
    monkeypatch.setenv("MNIST_DIR", str(folder))
    with pytest.raises(nb.MNISTError) as info:
        nb.load_mnist(cache_dir=cache)
    message = str(info.value)
    assert message.startswith(f"{path}: permission denied (reading it")
    assert "To fix it, give yourself access" in message and "unset MNIST_DIR" in message
    assert "corrupt" not in message and "truncated" not in message


def test_read_idx_permission_denied(nb, tmp_path, monkeypatch, restore_modes):
    path = _corrupt(tmp_path, "l.gz", idx_blob(np.arange(3, dtype=np.uint8), 2049))
    if ROOT:
        monkeypatch.setattr(nb.Path, "read_bytes", lambda self: (_ for _ in ()).throw(PERMISSION_DENIED))
    else:
        path.chmod(0)
    with pytest.raises(nb.MNISTError, match=rf"^{path}: permission denied \(reading it\)\. To fix it, give"):
        nb.read_idx(path, "labels")


def test_unreadable_mnist_dir(nb, tmp_path, cache, monkeypatch, restore_modes):
    folder = tmp_path / "data"
    write_dataset(folder)
    if ROOT:
        monkeypatch.setattr(nb.os, "listdir", lambda p: (_ for _ in ()).throw(PERMISSION_DENIED))
    else:
        folder.chmod(0)
    monkeypatch.setenv("MNIST_DIR", str(folder))
    with pytest.raises(
        nb.MNISTError, match=rf"^{folder}: permission denied \(the folder given by MNIST_DIR\)\. To fix it, give"
    ):
        nb.load_mnist(cache_dir=cache)


def test_cache_that_is_a_file(nb, tmp_path, served):
    url, _ = served
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_bytes(b"x")
    with pytest.raises(
        nb.MNISTError,
        match=rf"^{not_a_folder}: is a file, not a folder \(the cache folder\)\. To fix it, remove or rename "
        r"that file; or set JAX_LECTURES_CACHE to another folder",
    ):
        load(nb, not_a_folder, [url])
    assert not_a_folder.read_bytes() == b"x"


def test_cache_below_a_file(nb, tmp_path, served):
    url, _ = served
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(
        nb.MNISTError, match=r"a part of this path is a file, not a folder .*To fix it, remove or rename the file"
    ):
        load(nb, tmp_path / "file" / "mnist", [url])


def test_cache_folder_cannot_be_created(nb, tmp_path, served, monkeypatch, restore_modes):
    url, _ = served
    parent = tmp_path / "read-only"
    parent.mkdir()
    deny(monkeypatch, nb, parent, 0o500, "mkdir")
    cache = parent / "cache"
    with pytest.raises(
        nb.MNISTError,
        match=rf"^{cache}: permission denied \(creating the cache folder {cache}\)\. To fix it, give yourself "
        r"access .*; or set JAX_LECTURES_CACHE to a folder you can write to",
    ):
        load(nb, cache, [url])
    assert list(parent.iterdir()) == []


def test_cache_folder_not_writable(nb, cache, served, monkeypatch, restore_modes):
    url, _ = served
    cache.mkdir()
    deny(monkeypatch, nb, cache, 0o500, "open")
    with pytest.raises(
        nb.MNISTError,
        match=rf"^{cache}: permission denied \(creating a file in the cache folder\)\. To fix it, give "
        r"yourself access .*; or set JAX_LECTURES_CACHE to a folder you can write to",
    ):
        load(nb, cache, [url])
    assert cache_files(cache) == []


def test_disk_full_during_download_is_not_a_network_error(nb, cache, served, monkeypatch):
    url, _ = served
    real_open = open

    class Full:
        def __init__(self, file):
            self.file = file

        def write(self, chunk):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(
        nb,
        "open",
        lambda f, mode="r", *a, **k: Full(real_open(f, mode, *a, **k)) if mode == "xb" else real_open(f, mode, *a, **k),
        raising=False,
    )
    with pytest.raises(nb.MNISTError) as info:
        load(nb, cache, [url])
    message = str(info.value)
    assert message.startswith(f"{cache}: no space left on the device (writing .train-images-idx3-ubyte.gz.")
    assert "To fix it, free some space" in message and "JAX_LECTURES_CACHE" in message
    assert "internet" not in message and "mirror" not in message
    assert cache_files(cache) == []


def test_cached_file_that_is_a_folder(nb, cache, served):
    url, _ = served
    (cache / "train-labels-idx1-ubyte.gz").mkdir(parents=True)
    with pytest.raises(
        nb.MNISTError,
        match=r"train-labels-idx1-ubyte\.gz: is a folder, not a file \(a file in the cache\)\. To fix it, "
        r"remove or rename that folder",
    ):
        load(nb, cache, [url])
    no_leftovers(cache)


def test_cached_file_unreadable(nb, cache, served, monkeypatch, restore_modes):
    url, _ = served
    load(nb, cache, [url])
    path = cache / "t10k-labels-idx1-ubyte.gz"
    deny(monkeypatch, nb, path, 0o000, "open")
    with pytest.raises(nb.MNISTError) as info:
        load(nb, cache, [url])
    message = str(info.value)
    assert message.startswith(f"{path}: permission denied (reading it to check its SHA-256). To fix it, give")
    assert "SHA-256 is" not in message and "corrupt" not in message


def test_cached_symlink_loop(nb, cache, served):
    url, _ = served
    cache.mkdir()
    loop = cache / "train-images-idx3-ubyte.gz"
    loop.symlink_to(loop)
    with pytest.raises(nb.MNISTError, match=rf"^{loop}: is a symbolic link that loops back on itself"):
        load(nb, cache, [url])
    no_leftovers(cache)


# ---- files in MNIST_DIR are hashed: official, another dataset's, or your own -------------------------


@pytest.fixture
def official(nb, tmp_path, monkeypatch):
    """Small files pinned (for this test) as MNIST's official ones, and others as Fashion-MNIST's."""
    mnist, fashion = tmp_path / "official-mnist", tmp_path / "official-fashion"
    write_dataset(mnist, sample_arrays(1))
    write_dataset(fashion, sample_arrays(2))
    for dataset, folder in (("mnist", mnist), ("fashion_mnist", fashion)):
        for name in NAMES:
            monkeypatch.setitem(
                nb.DATASETS[dataset]["official"], name, (sha256(folder / name), (folder / name).stat().st_size)
            )
    return mnist, fashion


def test_official_files_are_reported_verified(nb, official, cache, capsys, monkeypatch):
    mnist, _ = official
    monkeypatch.setenv("MNIST_DIR", str(mnist))
    nb.load_mnist(cache_dir=cache)
    assert capsys.readouterr().out == "MNIST: the four official files (SHA-256 verified), from MNIST_DIR\n"


def test_own_files_are_used_and_said_so_in_one_line(nb, official, tmp_path, cache, capsys):
    mnist, _ = official
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in NAMES[2:]:  # the official test files
        (folder / name).write_bytes((mnist / name).read_bytes())
    arrays = sample_arrays(3)
    for name in NAMES[:2]:  # and a training set of your own
        (folder / name).write_bytes(idx_blob(arrays[name], 2051 if arrays[name].ndim == 3 else 2049))
    (x_train, _), _ = nb.load_mnist(data_dir=folder, cache_dir=cache)
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte.gz"])
    assert capsys.readouterr().out == (
        "data_dir: train images and train labels are not the official MNIST files (12 train images); "
        "using them as given; the other 2 are official (SHA-256 verified)\n"
    )
    nb.load_mnist(data_dir=folder, cache_dir=cache, verbose=False)
    assert capsys.readouterr().out == ""


def test_fashion_mnist_under_mnist_names_is_refused(nb, official, tmp_path, cache, monkeypatch):
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


def test_mnist_under_fashion_names_is_refused(nb, official, cache, monkeypatch):
    mnist, _ = official
    monkeypatch.setenv("FASHION_MNIST_DIR", str(mnist))
    with pytest.raises(nb.MNISTError, match=r"is the official MNIST t.*not Fashion-MNIST's .*unset FASHION_MNIST_DIR"):
        nb.load_mnist("fashion_mnist", cache_dir=cache)


def test_uncompressed_files_get_gzip_advice(nb, tmp_path, cache):
    folder = tmp_path / "data"
    arrays = write_dataset(folder)
    raw = gzip.decompress((folder / NAMES[1]).read_bytes())
    (folder / NAMES[1]).unlink()
    (folder / "train-labels-idx1-ubyte").write_bytes(raw)
    with pytest.raises(
        nb.MNISTError,
        match=rf"^{folder / 'train-labels-idx1-ubyte'}: is an uncompressed IDX file; the loader reads "
        rf"train-labels-idx1-ubyte\.gz, gzip-compressed\. To fix it, gzip it: gzip -n {folder}/train-labels",
    ):
        nb.load_mnist(data_dir=folder, cache_dir=cache)
    # an uncompressed file under the .gz name: the same advice, not "corrupted"
    (folder / NAMES[1]).write_bytes(raw)
    with pytest.raises(nb.MNISTError) as info:
        nb.load_mnist(data_dir=folder, cache_dir=cache)
    assert str(info.value).startswith(f"{folder / NAMES[1]}: is an uncompressed IDX file, but its name ends in .gz")
    assert "To fix it, gzip it: mv " in str(info.value) and "corrupt" not in str(info.value)
    assert arrays  # the other files were fine


# ---- downloads: pinned size, a deadline for the whole file, no leftovers, ordinary permissions -------


def test_endless_body_is_cut_at_the_pinned_size(nb, tmp_path, cache, served, http_server):
    endless = http_server(tmp_path, _EndlessHandler)
    size = nb.DATASETS["mnist"]["official"][NAMES[0]][1]
    start = time.monotonic()
    with pytest.raises(
        nb.MNISTError,
        match=rf"(?s)could not download train-images-idx3-ubyte\.gz.*{endless}train-images-idx3-ubyte\.gz: "
        rf"sent more than the {size:,} bytes of the official file; stopped.*To fix it, check your internet",
    ):
        load(nb, cache, [endless])
    assert time.monotonic() - start < 2
    assert cache_files(cache) == []


def test_wrong_content_length_is_refused_before_reading(nb, tmp_path, cache, served, http_server):
    url, arrays = served
    wrong = http_server(tmp_path, _WrongLengthHandler)
    size = nb.DATASETS["mnist"]["official"][NAMES[0]][1]
    (x_train, _), _ = load(nb, cache, [wrong, url])  # the second mirror serves the right file
    np.testing.assert_array_equal(x_train, arrays[NAMES[0]])
    with pytest.raises(nb.MNISTError, match=rf"announces 123,456,789 bytes, but the official file has {size:,}"):
        load(nb, cache / "again", [wrong])
    assert cache_files(cache) == sorted(NAMES)


def test_dripping_mirror_is_abandoned_at_the_deadline(nb, tmp_path, cache, served, http_server):
    url, _ = served
    drip = http_server(tmp_path / "server", _DrippingHandler)
    start = time.monotonic()
    with pytest.raises(
        nb.MNISTError,
        match=r"(?s)train-images-idx3-ubyte\.gz: too slow: [\d,]+ of [\d,]+ bytes after 0\.5 s, the deadline "
        r"for the whole file \(pass deadline=\.\.\. for a slow connection\); stopped",
    ):
        load(nb, cache, [drip], deadline=0.5)
    elapsed = time.monotonic() - start
    assert elapsed < 1.5, f"took {elapsed:.2f} s to abandon a mirror that drips a byte every 20 ms"
    assert cache_files(cache) == []


def test_stale_part_files_are_removed(nb, cache, served):
    url, _ = served
    cache.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = cache / f".{NAMES[0]}.{int(dead.stdout)}-dead.part"  # its process is gone
    old = cache / f".{NAMES[1]}.{os.getpid()}-old.part"  # an hour old
    live = cache / f".{NAMES[2]}.{os.getppid()}-live.part"  # a running process may still be writing it
    for part in (killed, old, live):
        part.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    load(nb, cache, [url])
    assert cache_files(cache) == sorted([*NAMES, live.name])


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_downloaded_files_have_ordinary_permissions(nb, cache, served, umask):
    url, _ = served
    previous = os.umask(umask)
    try:
        load(nb, cache, [url])
    finally:
        os.umask(previous)
    for name in NAMES:
        assert stat.S_IMODE((cache / name).stat().st_mode) == 0o666 & ~umask, name


def test_recompressed_or_cut_copy_of_another_file_is_refused(nb, tmp_path, cache, monkeypatch):
    """Another dataset's file, or a training file under a test name, re-packed (other bytes, other hash)."""
    fashion, mnist = sample_arrays(4), sample_arrays(5)
    monkeypatch.setattr(nb, "FINGERPRINT_ITEMS", 5)
    for dataset, arrays in (("fashion_mnist", fashion), ("mnist", mnist)):
        for name, array in arrays.items():
            fingerprint = hashlib.sha256(array[:5].tobytes()).hexdigest()
            monkeypatch.setitem(nb.FINGERPRINTS, fingerprint, (dataset, name))
    folder = tmp_path / "data"
    write_dataset(folder, {**mnist, NAMES[0]: fashion[NAMES[0]][:8]})  # the first 8 Fashion images, re-packed
    with pytest.raises(
        nb.MNISTError,
        match=rf"^{folder / NAMES[0]}: holds the content of Fashion-MNIST's train-images-idx3-ubyte\.gz \(its first "
        r"5 items match\), not MNIST's train-images-idx3-ubyte\.gz\. To fix it, put MNIST's "
        r"train-images-idx3-ubyte\.gz there \(replace it with an intact copy; or leave out data_dir",
    ):
        nb.load_mnist(data_dir=folder, cache_dir=cache)
    write_dataset(folder, {**mnist, NAMES[3]: mnist[NAMES[1]][:N_TEST]})  # training labels as test labels
    with pytest.raises(nb.MNISTError, match=r"t10k-labels-idx1-ubyte\.gz: holds the content of MNIST's train-labels"):
        nb.load_mnist(data_dir=folder, cache_dir=cache)
    write_dataset(folder, {**mnist, NAMES[0]: mnist[NAMES[0]][:7], NAMES[1]: mnist[NAMES[1]][:7]})  # a subset
    (x_train, _), _ = nb.load_mnist(data_dir=folder, cache_dir=cache, verbose=False)
    assert len(x_train) == 7
