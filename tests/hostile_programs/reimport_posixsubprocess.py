# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Deletes _posixsubprocess from sys.modules and imports it again to get a real fork_exec, then runs
# /bin/sh, which writes outside.
import os
import sys

del sys.modules["_posixsubprocess"]
import _posixsubprocess  # noqa: E402

errpipe_read, errpipe_write = os.pipe()
pid = _posixsubprocess.fork_exec(
    [b"/bin/sh", b"-c", b"id > @OUTSIDE@/shell.txt"], [b"/bin/sh"], True, (errpipe_write,), None, None,
    -1, -1, -1, -1, -1, -1, errpipe_read, errpipe_write, True, False, -1, None, None, None, -1, None, False)
os.close(errpipe_write)
_, status = os.waitpid(pid, 0)
if os.waitstatus_to_exitcode(status) != 0:
    raise RuntimeError(f"the shell failed: {status}")
