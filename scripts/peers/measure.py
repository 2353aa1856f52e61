#!/usr/bin/env python3
"""Runs a command and measures it: wall seconds and the peak resident set of the process.

    measure.py RESULT.json STDOUT STDERR -- COMMAND [ARG]...

Writes `{"seconds": S, "max_rss_kib": K, "rc": RC}` to RESULT.json and exits with the command's
status. The peak RSS is the command's own (`ru_maxrss` from wait4, KiB on Linux), as
`/usr/bin/time -v` reports it; the wall time runs from just before the fork to the reap.
"""

import json
import os
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        sys.exit(__doc__)
    result, out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[5:]
    with open(out, "wb") as o, open(err, "wb") as e:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    rc = p.returncode if p.returncode >= 0 else 128 - p.returncode
    with open(result, "w") as f:
        json.dump({"seconds": seconds, "max_rss_kib": usage.ru_maxrss, "rc": rc}, f)
        f.write("\n")
    sys.exit(rc)


if __name__ == "__main__":
    main()
