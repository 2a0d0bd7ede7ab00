"""The IPython startup file of `make test-tpu-numerics`: with PYTHONSTARTUP pointing here, every notebook kernel
of the run installs the TPU matmul emulation (emulate_tpu_numerics.py) before its first cell. IPython runs it in
the kernel's namespace with this folder on sys.path; plain `python`, pytest and its workers ignore PYTHONSTARTUP.
If the emulation cannot be installed the kernel exits, naming why: the run must not go on without it."""


def _install_tpu_numerics_emulation():
    import os
    import sys

    try:
        import emulate_tpu_numerics

        emulate_tpu_numerics.install()
    except BaseException as err:
        print(f"{__file__}: {type(err).__name__}: {err}", file=sys.__stderr__, flush=True)
        os._exit(1)


_install_tpu_numerics_emulation()
del _install_tpu_numerics_emulation
