"""Repository conftest: the plugin's own tests use pytester (the plugin itself loads via its
``pytest11`` entry point once the package is installed)."""

pytest_plugins = ["pytester"]
