"""A stand-in for Colab's ``google.colab`` package, for testing the lectures' Colab branches.

On Colab the kernel imports ``google.colab`` before the first cell, so a lecture's setup cell sees
``"google.colab" in sys.modules`` and runs its Colab branch. ``make test-colab`` imports this package
the same way (see ``../../startup.py``) in an environment built from Colab's package list.
It provides only what the lectures and their libraries touch; anything else raises.
"""
