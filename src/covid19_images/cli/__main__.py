"""``python -m covid19_images.cli``."""

from covid19_images.cli import main

main()
