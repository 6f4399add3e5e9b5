"""Request and response bodies of the HTTP API, one module per area.

The class names are the OpenAPI document's component names: renaming one changes the document.
"""
