"""``google.colab.output``: JAX imports it when ``google.colab`` is present (for its Colab debugger UI)."""


def eval_js(script, ignore_result=False, timeout_sec=None):
    raise NotImplementedError("the google.colab stand-in has no browser to run JavaScript in")


def register_callback(name, callback):
    raise NotImplementedError("the google.colab stand-in has no browser to call back from")
