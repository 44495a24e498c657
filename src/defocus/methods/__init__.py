"""Methods: one module per method, a common interface, a registry of names.

Use :func:`defocus.methods.registry.get_method` to build a method from its config name
(``"lbp"``, ``"defusionnet@steps=1"``, ...).
"""
