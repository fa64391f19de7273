"""`coffer image keygen` on a terminal: asks twice, echoes nothing, refuses a mismatch.
Usage: keygen_tty.py COFFER WORKDIR (writes WORKDIR/tty.key with password 's3cret pass')."""
import os
import pty
import select
import signal
import sys
import time

coffer, work = sys.argv[1], sys.argv[2]


def run(prefix, answers):
    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(coffer, [coffer, "image", "keygen", "--output-key-prefix", prefix], env)
    out = b""
    pending = list(answers)
    deadline = time.monotonic() + 30
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            raise SystemExit("keygen did not finish; output so far: " + out.decode(errors="replace"))
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        # answer each prompt once it is shown
        if pending and out.count(b"password") > len(answers) - len(pending):
            os.write(fd, pending.pop(0).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


rc, out = run(os.path.join(work, "tty"), ["s3cret pass", "s3cret pass"])
assert rc == 0, (rc, out)
assert "s3cret" not in out, "the password was echoed: " + out
assert out.count("Enter password") == 2, out
assert os.path.exists(os.path.join(work, "tty.key"))
rc, out = run(os.path.join(work, "tty2"), ["one", "two"])
assert rc == 2 and "the passwords do not match" in out, (rc, out)
assert not os.path.exists(os.path.join(work, "tty2.key"))
print("keygen_tty: ok")
