"""Cryptographic primitives and safe recipes. The only package that imports `cryptography`
and PyNaCl. Imports from: veil.errors.
"""
