"""Runs a command on a new pseudo-terminal of 33 rows and 101 columns, as a user at a terminal
would (`coffer run --tty` tests): prints what the command wrote and exits with its status; exits
99 when the terminal's line discipline (ICANON, ECHO) was not the same afterwards.
Usage: /usr/bin/python3 pty_run.py EXECUTABLE ARGS..."""
import fcntl
import os
import pty
import struct
import sys
import termios

pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    os.execv(sys.argv[1], sys.argv[1:])
before = termios.tcgetattr(fd)
out = b""
while True:
    try:
        b = os.read(fd, 4096)
    except OSError:
        break
    if not b:
        break
    out += b
_, status = os.waitpid(pid, 0)
after = termios.tcgetattr(fd)
sys.stdout.write(out.decode(errors="replace"))
wanted = termios.ICANON | termios.ECHO
if (before[3] & wanted) != wanted or (after[3] & wanted) != wanted:
    print("local terminal not restored: lflag before %#x after %#x" % (before[3], after[3]))
    sys.exit(99)
sys.exit(os.waitstatus_to_exitcode(status))
