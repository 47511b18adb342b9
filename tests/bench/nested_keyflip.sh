#!/bin/bash
# nested_keyflip.sh [SECONDS]: create and destroy KVM VMs (an in-kernel
# irqchip and one vCPU each, never run) for SECONDS (default 300) while two
# processes ping-pong a byte through pipes, so both CPUs switch tasks all
# the time. With no other VM alive, each create and destroy flips the
# kernel's preempt-notifier static key, whose sites are in the scheduler's
# task switch. Meant for inside harness/nested, to show the outer VM's
# freeze under QEMU's multi-threaded TCG and what holding a VM does
# (docs/nested.md, "Held keys"):
#   flock /tmp/bhyve-nested.lock harness/nested -- tests/bench/nested_keyflip.sh 60
#   BHYVE_NESTED_HOLD=0 flock /tmp/bhyve-nested.lock harness/nested -- \
#       tests/bench/nested_keyflip.sh 60
# Prints the VMs made every 30 s; a frozen outer VM ends harness/nested
# with 123.
set -u
dur=${1:-300}
python3 -c '
import os
r1, w1 = os.pipe()
r2, w2 = os.pipe()
if os.fork() == 0:
    while True:
        os.read(r1, 1)
        os.write(w2, b"x")
while True:
    os.write(w1, b"x")
    os.read(r2, 1)
' &
pingpong=$!
trap 'pkill -P $pingpong; kill $pingpong' EXIT
python3 - "$dur" <<'PY'
import fcntl, os, sys, time

KVM_CREATE_VM, KVM_CREATE_IRQCHIP, KVM_CREATE_VCPU = 0xAE01, 0xAE60, 0xAE41
kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
start = last = time.monotonic()
n = 0
while time.monotonic() - start < float(sys.argv[1]):
    vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
    fcntl.ioctl(vm, KVM_CREATE_IRQCHIP, 0)
    os.close(fcntl.ioctl(vm, KVM_CREATE_VCPU, 0))
    os.close(vm)
    n += 1
    if time.monotonic() - last >= 30:
        last = time.monotonic()
        print(f"{n} VMs in {last - start:.0f} s", flush=True)
print(f"done: {n} VMs in {time.monotonic() - start:.0f} s", flush=True)
PY
