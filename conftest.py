"""Root conftest: the equiv plugin itself is loaded through its pytest11 entry point."""

pytest_plugins = ["pytester"]  # the suite's own tests drive the plugin with pytester
