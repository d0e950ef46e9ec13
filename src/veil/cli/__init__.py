"""The `veil` command line: one module per command group, thin over veil.client / veil.node.
Expected failures (VeilError) become one line on stderr and the error's exit code.
Imports from: every layer.
"""
