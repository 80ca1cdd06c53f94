"""One module per pipeline; celeryconfig.imports lists them."""
