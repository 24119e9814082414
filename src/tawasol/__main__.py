"""`python -m tawasol` is the `tawasol` command."""

from tawasol.cli import main

main()
