# Imported at start-up by every Python of `make test-colab` (this folder is on PYTHONPATH), as Colab's
# kernel imports google.colab before the first cell: the lectures' `"google.colab" in sys.modules` holds.
import google.colab  # noqa: F401
