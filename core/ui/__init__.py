"""The web viewer (``epochline ui``) and offline HTML reports (``epochline report``).

Needs the ``ui`` extra (Starlette, uvicorn). Nothing here is imported by ``import epochline``:
the modules are loaded by the two commands only.
"""
