"""The directory's tests use the treasury tests' exact-error fixture.

A package, like tests/treasury, so this conftest does not replace the root one in sys.modules.
"""

from treasury.conftest import reverts_with  # noqa: F401
