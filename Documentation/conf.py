# SPDX-License-Identifier: GPL-2.0
"""Sphinx configuration of the heapgen documentation.

Build it the way ``cargo xtask test`` does (warnings are errors)::

    sphinx-build -W -b html Documentation target/doc-html
"""

project = "heapgen"
author = "The heapgen developers"
copyright = "The heapgen developers"

root_doc = "index"
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build"]
highlight_language = "none"
html_theme = "alabaster"
