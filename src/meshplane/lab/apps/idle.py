"""An idle client container (the curl and sleep samples' `/bin/sleep infinity`): it waits for
SIGTERM or SIGINT and exits 0. Requests "from" the pod are sent by `meshplane lab exec`."""

from __future__ import annotations

import signal


def main() -> int:
    wanted = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    signal.sigwait(wanted)
    return 0
