"""`python -m agent.cli`: the `shop-r1` command line."""

from . import main

main()
