"""Pure encodings of Veil's stored and wire objects, each specified in docs/specs/.
No I/O. Imports from: veil.errors, veil.crypto.
"""
