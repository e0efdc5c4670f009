"""`python -m meshplane.lab.apps helloworld|idle`: the program a sample image stands for."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["helloworld"]:
        from meshplane.lab.apps import helloworld

        return helloworld.main()
    if argv[:1] == ["idle"]:
        from meshplane.lab.apps import idle

        return idle.main()
    sys.stderr.write("usage: python -m meshplane.lab.apps helloworld|idle\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
