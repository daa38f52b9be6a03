"""imgfind benchmark suites; run with ``python -m bench <suite> [--quick]``.

Nothing here is collected by pytest: speed is measured here, correctness in tests/.
"""
