"""Where hvtest runs guests: on this host's /dev/kvm, or nested under QEMU.

The rule is ci/kvm.sh's kvm_usable, the one `make check` uses: hvtest sources
that file so there is one rule, and falls back to the same rule written here
only when the file is missing (an installed copy of hvtest). Inside the outer
VM (BHYVE_NESTED=1, set by harness/nested) guests always run directly: its
/dev/kvm is kvm-amd, and BHYVE_NESTED_TESTS=1, passed through from the host,
must not make it nest again.
"""

import os
import pwd
import subprocess

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.realpath(os.path.join(HERE, "..", "..", ".."))
HVTEST = os.path.join(REPO, "harness", "hvtest")
# HVTEST_NESTED replaces the nested runner (hvtest's own tests use a stand-in).
NESTED = os.environ.get("HVTEST_NESTED") or os.path.join(REPO, "harness", "nested")
KVM_SH = os.path.join(REPO, "ci", "kvm.sh")

# Directories the outer VM mounts fresh (harness/nested): a path under one
# of them is visible inside only when it is shared.
HIDDEN_INSIDE = ("/tmp", "/run", "/var/tmp", "/dev", "/proc", "/sys")


def kvm_rule(env, kvm_rw, pvm_loaded, kvm_exists=True):
    """ci/kvm.sh's kvm_usable and kvm_why_nested: (usable, why)."""
    if env.get("BHYVE_NESTED_TESTS", "0") == "1":
        return False, "BHYVE_NESTED_TESTS=1"
    if env.get("BHYVE_DIRECT", "0") == "1":
        return True, "/dev/kvm (BHYVE_DIRECT=1)"
    if kvm_rw and not pvm_loaded:
        return True, "/dev/kvm"
    if not kvm_exists:
        if pvm_loaded:
            return False, "no /dev/kvm here (the kvm_pvm module is loaded but made none)"
        return False, "no /dev/kvm here"
    if not kvm_rw:
        user = pwd.getpwuid(os.geteuid()).pw_name
        return False, ("/dev/kvm is not readable and writable by %s "
                       "(join its group, usually kvm)" % user)
    return False, "/dev/kvm here is kvm_pvm, which cannot run a stock Linux guest"


def _rule_here(env):
    kvm_rw = os.access("/dev/kvm", os.R_OK | os.W_OK)
    return kvm_rule(env, kvm_rw, os.path.isdir("/sys/module/kvm_pvm"),
                    os.path.exists("/dev/kvm"))


def decide(env=None):
    """-> (nest, why). nest is True when the suite must run under harness/nested."""
    env = os.environ if env is None else env
    if env.get("BHYVE_NESTED") == "1":
        return False, "inside the outer VM (BHYVE_NESTED=1)"
    if os.path.isfile(KVM_SH):
        script = ('. "$1" && if kvm_usable; then echo usable; '
                  'else echo "nested $(kvm_why_nested)"; fi')
        try:
            out = subprocess.run(["bash", "-c", script, "hvtest", KVM_SH],
                                 capture_output=True, text=True, env=dict(env),
                                 timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out == "usable":
            direct = env.get("BHYVE_DIRECT", "0") == "1" and env.get("BHYVE_NESTED_TESTS", "0") != "1"
            return False, "/dev/kvm (BHYVE_DIRECT=1)" if direct else "/dev/kvm"
        if out.startswith("nested "):
            return True, out[len("nested "):]
    usable, why = _rule_here(env)
    return (not usable), why


def hidden_inside(path):
    """Would the outer VM hide this (existing, real) path?"""
    path = os.path.realpath(path)
    if path == REPO or path.startswith(REPO + "/"):
        return False
    return any(path == d or path.startswith(d + "/") for d in HIDDEN_INSIDE)


def writable_inside(path):
    """Only the repository and --share directories are writable inside."""
    path = os.path.realpath(path)
    return path == REPO or path.startswith(REPO + "/")


def minimal_shares(dirs):
    """Drop duplicates and directories inside another one of the list."""
    out = []
    for d in sorted({os.path.realpath(d) for d in dirs}):
        if not any(d == o or d.startswith(o + "/") for o in out):
            out.append(d)
    return out
