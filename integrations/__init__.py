"""Thin framework adapters over the core: each translates framework calls into run calls.

Import the one you need (``epochline.integrations.lightning``, ``.transformers``, ``.keras``);
importing this package imports no framework.
"""
