"""Repository conftest: the plugin's own tests use pytester (the plugin itself loads via its
``pytest11`` entry point once the package is installed)."""

# Load cryptography (and the embedded cluster that uses it) once, before any in-process
# pytester run: pytester unloads the modules an inner run imported, and cryptography's
# Python layer cannot be imported a second time next to its already-initialised Rust
# bindings ("curve must be an EllipticCurve instance").
import cryptography.hazmat.primitives.asymmetric.ec  # noqa: F401
import cryptography.hazmat.primitives.asymmetric.rsa  # noqa: F401
import cryptography.x509  # noqa: F401

import pytest_istiolab.embedded.controllers  # noqa: F401

pytest_plugins = ["pytester"]
