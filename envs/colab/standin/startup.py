"""The IPython startup file of `make test-colab`: with PYTHONSTARTUP pointing here, every notebook kernel imports
the stand-in google.colab (next to this file) before its first cell, as Colab's kernel does, so each setup cell's
`"google.colab" in sys.modules` holds and its Colab branch runs. IPython runs it with this folder on sys.path."""

__import__("google.colab")
