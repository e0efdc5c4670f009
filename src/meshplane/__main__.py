"""`python -m meshplane` runs the CLI (tests and the lab use this to run the checkout's own code)."""

from meshplane.cli.main import main

if __name__ == "__main__":
    main()
