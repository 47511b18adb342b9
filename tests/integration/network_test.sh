#! /usr/bin/env atf-sh
# The guest's commands are single-quoted: the guest expands them; rc is
# read by bhyve_lib.sh's expect_exit.
# shellcheck disable=SC2016,SC2034
#
# Networking with the default Linux guest (fixtures/linux: virtio_net or
# e1000 by PCI ID, DHCP by busybox udhcpc at boot): the slirp backend's
# DHCP, the guest reaching a server on the host's 127.0.0.1 as 10.0.2.2,
# the host reaching the guest through a hostfwd rule, the tap backend on
# an interface the test makes, a missing tap failing in one line, e1000
# on slirp, and bhyve's MAC rule. Needs /dev/kvm that runs a stock kernel
# (`make check` nests it under QEMU, whose outer VM has tun and lo up) and
# root for the tap case.

# A boot and its fetch take about 30 s nested; a hang costs this much.
LINUX_TIMEOUT=150
. "$(atf_get_srcdir)/linux_lib.sh"

expect_ok()
{
	expect_line '^hvtest: exit status 0$'
}

# A TCP port on 127.0.0.1 that nothing uses now.
free_port()
{
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# serve ADDR PORT: python3's http.server on ADDR:PORT over ./www in the
# background (pid in $srv, killed when the test ends), once it answers.
serve()
{
	python3 -m http.server "$2" --bind "$1" --directory www \
	    >server.log 2>&1 &
	srv=$!
	trap 'kill $srv 2>/dev/null' EXIT
	python3 - "$1" "$2" <<'PY' || atf_fail "http.server on $1:$2 did not start: $(cat server.log)"
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

# bhyve's MAC for slot-func-vmname: 00:a0:98 and MD5's first three bytes.
bhyve_mac()
{
	python3 -c 'import hashlib, sys; d = hashlib.md5(sys.argv[1].encode()).digest(); print("00:a0:98:%02x:%02x:%02x" % (d[0], d[1], d[2]))' "$1"
}

atf_test_case slirp_dhcp
slirp_dhcp_head()
{
	atf_set descr "virtio-net on slirp: DHCP gives 10.0.2.15/24, the" \
	    "default route via 10.0.2.2 and DNS 10.0.2.3"
	atf_set timeout 900
}
slirp_dhcp_body()
{
	setup
	boot v-dhcp 'ip -4 addr show eth0; ip route; cat /etc/resolv.conf; echo "hvmac $(cat /sys/class/net/eth0/address)"' \
	    -s 2,virtio-net,slirp
	expect_exit 1 "powered off after the command"
	expect_ok
	expect_line "^hvmac $(bhyve_mac 2-0-v-dhcp)\$"
	expect_line '^eth0: 10\.0\.2\.15 netmask 255\.255\.255\.0 router 10\.0\.2\.2 dns 10\.0\.2\.3$'
	expect_line 'inet 10\.0\.2\.15/24 '
	expect_line '^default via 10\.0\.2\.2 dev eth0'
	expect_line '^nameserver 10\.0\.2\.3$'
}

atf_test_case guest_to_host
guest_to_host_head()
{
	atf_set descr "the guest fetches from a server on the host's" \
	    "127.0.0.1 through slirp's 10.0.2.2"
	atf_set timeout 900
}
guest_to_host_body()
{
	setup
	mkdir www
	echo "hv-from-the-host" >www/hello.txt
	port=$(free_port)
	serve 127.0.0.1 "$port"
	boot v-g2h "wget -q -O - http://10.0.2.2:$port/hello.txt" \
	    -s 2,virtio-net,slirp
	expect_exit 1 "powered off after the command"
	expect_ok
	expect_line '^hv-from-the-host$'
	grep -q 'GET /hello.txt' server.log ||
	    fail_with_output "the host's server saw no request: $(cat server.log)"
}

atf_test_case host_to_guest
host_to_guest_head()
{
	atf_set descr "a hostfwd rule: the host fetches from the guest's" \
	    "busybox httpd through 127.0.0.1:PORT"
	atf_set timeout 900
}
host_to_guest_body()
{
	setup
	port=$(free_port)
	printf 'linux (host)%s/vmlinux %s\ninitrd (host)%s/initramfs.cpio\nboot\n' \
	    "$LINUX" "$(grub_escape "console=ttyS0 quiet -- mkdir /www; echo hv-from-the-guest >/www/index.html; httpd -p 80 -h /www; echo hv-serving; sleep 20")" "$LINUX" |
	    "$BIN/grub-bhyve" -r host -M 512M v-h2g >grub.out 2>&1 ||
	    atf_fail "grub-bhyve: $(cat grub.out)"
	timeout -k 10 $LINUX_TIMEOUT "$BIN/bhyve" -c 1 -m 512M -A -H -P \
	    -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio \
	    -s "2,virtio-net,slirp,hostfwd=tcp:127.0.0.1:$port-:80" v-h2g \
	    </dev/null >out 2>err &
	bhyve_pid=$!
	# Until the guest serves (or bhyve is gone): the forward accepts at
	# once, so a connection before httpd runs ends without an answer.
	python3 - "$port" "$bhyve_pid" >fetched 2>fetch.err <<'PY'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 140
while time.monotonic() < deadline:
    try:
        print(urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10).read().decode(), end="")
        sys.exit(0)
    except Exception as e:
        last = e
    try:
        os.kill(pid, 0)
    except OSError:
        break
    time.sleep(0.5)
print(f"no answer: {last}", file=sys.stderr)
sys.exit(1)
PY
	fetch=$?
	wait "$bhyve_pid"
	rc=$?
	[ "$fetch" -eq 0 ] || fail_with_output "the host's fetch failed: $(cat fetch.err)"
	[ "$(cat fetched)" = "hv-from-the-guest" ] ||
	    fail_with_output "the host fetched '$(cat fetched)'"
	expect_exit 1 "powered off after serving"
	expect_line '^hv-serving$'
}

atf_test_case tap
tap_head()
{
	atf_set descr "virtio-net on a tap interface made by the test" \
	    "(192.168.76.1/24): the guest (ip=192.168.76.2/24) fetches from" \
	    "the host's server there"
	atf_set timeout 900
	atf_set require.user root
}
tap_body()
{
	setup
	tap=tap76
	ip link del "$tap" 2>/dev/null
	ip tuntap add "$tap" mode tap || atf_fail "ip tuntap add $tap failed (no tun module?)"
	mkdir www
	echo "hv-over-the-tap" >www/tap.txt
	port=$(free_port)
	if ! { ip addr add 192.168.76.1/24 dev "$tap" && ip link set "$tap" up; }; then
		ip link del "$tap"
		atf_fail "cannot configure $tap"
	fi
	serve 192.168.76.1 "$port"
	trap 'kill $srv 2>/dev/null; ip link del '"$tap"' 2>/dev/null' EXIT
	BOOT_ARGS=ip=192.168.76.2/24 boot v-tap \
	    "wget -q -O - http://192.168.76.1:$port/tap.txt" \
	    -s "2,virtio-net,$tap"
	expect_exit 1 "powered off after the command"
	expect_ok
	expect_line '^eth0: 192\.168\.76\.2/24$'
	expect_line '^hv-over-the-tap$'
}

atf_test_case tap_vhost
tap_vhost_head()
{
	atf_set descr "virtio-net on a tap with vhost=on: the kernel's" \
	    "vhost-net thread for this bhyve runs, and 32 MiB fetched from" \
	    "the host arrive with the host's SHA-256"
	atf_set timeout 900
}
tap_vhost_body()
{
	setup
	[ -c /dev/vhost-net ] || atf_fail "no /dev/vhost-net here (modprobe" \
	    "vhost_net; harness/nested loads it)"
	tap=tap78
	ip link del "$tap" 2>/dev/null
	ip tuntap add "$tap" mode tap ||
	    atf_fail "ip tuntap add $tap failed (no tun module?)"
	mkdir www
	head -c 33554432 /dev/urandom >www/big.bin
	want=$(sha256sum <www/big.bin | cut -d' ' -f1)
	port=$(free_port)
	if ! { ip addr add 192.168.78.1/24 dev "$tap" && ip link set "$tap" up; }; then
		ip link del "$tap"
		atf_fail "cannot configure $tap"
	fi
	serve 192.168.78.1 "$port"
	trap 'kill $srv 2>/dev/null; ip link del '"$tap"' 2>/dev/null' EXIT
	printf 'linux (host)%s/vmlinux %s\ninitrd (host)%s/initramfs.cpio\nboot\n' \
	    "$LINUX" "$(grub_escape "console=ttyS0 quiet ip=192.168.78.2/24 -- echo sum \$(wget -q -O - http://192.168.78.1:$port/big.bin | sha256sum)")" \
	    "$LINUX" | "$BIN/grub-bhyve" -r host -M 512M v-vhost >grub.out 2>&1 ||
	    atf_fail "grub-bhyve: $(cat grub.out)"
	timeout -k 10 $LINUX_TIMEOUT "$BIN/bhyve" -c 2 -m 512M -A -H -P \
	    -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio \
	    -s "2,virtio-net,$tap,vhost=on" v-vhost </dev/null >out 2>err &
	pid=$!
	# vhost-net's worker is named after its owner: vhost-PID.
	i=0 seen=no
	while [ $i -lt 1200 ] && kill -0 "$pid" 2>/dev/null; do
		bpid=$(pgrep -P "$pid" -x bhyve)
		if [ -n "$bpid" ] && pgrep -x "vhost-$bpid" >/dev/null; then
			seen=yes
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	wait "$pid"
	rc=$?
	expect_exit 1 "powered off after the command"
	expect_ok
	expect_line "^sum $want "
	[ $seen = yes ] || fail_with_output "no vhost-$bpid thread while the guest ran"
	! grep -q "frames go through bhyve" err || fail_with_output "vhost was refused"
}

atf_test_case bulk
bulk_head()
{
	atf_set descr "the Handbook's set-up (a tap on a bridge, the host's" \
	    "address on the bridge): with virtio-net, virtio-net vhost=on" \
	    "and e1000 the guest pings the host side, fetches 100 MiB" \
	    "over TCP and sends 20 MiB (e1000: 10 MiB), each with the" \
	    "same SHA-256 at both ends"
	atf_set timeout 1500
}
bulk_body()
{
	setup
	[ -c /dev/vhost-net ] || atf_fail "no /dev/vhost-net here (modprobe" \
	    "vhost_net; harness/nested loads it)"
	tap=tap79 br=bridge79
	ip link del "$tap" 2>/dev/null
	ip link del "$br" 2>/dev/null
	{ ip tuntap add "$tap" mode tap && ip link add "$br" type bridge &&
	    ip link set "$tap" master "$br" &&
	    ip addr add 192.168.79.1/24 dev "$br" &&
	    ip link set "$tap" up && ip link set "$br" up; } 2>ip.err ||
	    atf_fail "cannot make $tap on $br: $(cat ip.err)"
	mkdir www
	head -c 104857600 /dev/urandom >www/big.bin
	want=$(sha256sum <www/big.bin | cut -d' ' -f1)
	port=$(free_port)
	serve 192.168.79.1 "$port"
	# A sink: each connection's bytes to EOF, answered with their SHA-256.
	sink=$(free_port)
	python3 "$(atf_get_srcdir)/tcp_sink.py" 192.168.79.1 "$sink" >sink.log 2>&1 &
	snk=$!
	trap 'kill $srv $snk 2>/dev/null; ip link del '"$tap"' 2>/dev/null; ip link del '"$br"' 2>/dev/null' EXIT
	url=http://192.168.79.1:$port
	n=0
	for nic in virtio-net virtio-net,vhost=on e1000; do
		n=$((n + 1))
		# Sends are smaller than the fetch: nested, on the outer
		# VM's one CPU, the guest's vCPU, bhyve and the sink take
		# turns about every frame, and TCP, paced to that, stops
		# batching frames into TSO ones: about 1 MiB/s (virtio-net
		# sent 50 MiB in 50 s, 100 MiB in 137 s; e1000, which pays
		# an interrupt's exits for every frame, 10 MiB in 9-43 s).
		# With two outer vCPUs it was 10 times faster, but those
		# exits broke the outer kernel (docs/nested.md, "One outer
		# vCPU").
		mib=20
		[ "$nic" != e1000 ] || mib=10
		cmd="ping -c 1 -W 5 192.168.79.1 >/dev/null && echo ping-ok; echo \"in \$(wget -q -O - $url/big.bin | sha256sum)\""
		cmd="$cmd; dd if=/dev/urandom of=/tmp/o bs=1M count=$mib 2>/dev/null; echo \"out \$(sha256sum </tmp/o)\"; echo \"posted \$(nc 192.168.79.1 $sink </tmp/o)\""
		BOOT_ARGS=ip=192.168.79.2/24 boot "v-bulk$n" "$cmd" \
		    -s "2,${nic%%,*},$tap${nic#"${nic%%,*}"}"
		expect_exit 1 "$nic: powered off after the command"
		expect_ok
		expect_line '^ping-ok$'
		expect_line "^in $want "
		out=$(tr -d '\r' <out | sed -n 's/^out \([0-9a-f]*\) .*/\1/p')
		[ -n "$out" ] || fail_with_output "$nic: the guest printed no SHA-256 of what it sent"
		expect_line "^posted $out\$"
		grep -q "^posted $out\$" sink.log ||
		    fail_with_output "$nic: the host's SHA-256 of what arrived differs: $(cat sink.log)"
		! grep -q "frames go through bhyve" err ||
		    fail_with_output "$nic: vhost was refused"
	done
}

atf_test_case tap_missing
tap_missing_head()
{
	atf_set descr "a tap that does not exist: bhyve exits 4 with one" \
	    "line naming it, before the guest starts"
}
tap_missing_body()
{
	setup
	ip link del tap77 2>/dev/null
	timeout 60 "$BIN/bhyve" -c 1 -m 32M -s 0:0,hostbridge \
	    -s 2,virtio-net,tap77 v-notap </dev/null >out 2>err
	rc=$?
	expect_exit 4 "a missing tap"
	[ "$(wc -l <err)" -eq 1 ] || fail_with_output "expected one line on stderr"
	grep -q 'tap77' err || fail_with_output "the error does not name tap77"
	[ ! -e /sys/class/net/tap77 ] || fail_with_output "bhyve made tap77"
	# A bad hostfwd rule and a port in use: the same, naming the rule.
	for rule in tcp::x-:22 "tcp:127.0.0.1:$(free_port)-:22;tcp:127.0.0.1:PORT-:22"; do
		port=$(free_port)
		rule=$(echo "$rule" | sed "s/PORT/$port/")
		rm -f held
		python3 -c 'import socket, sys, time; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); open("held", "w").close(); time.sleep(60)' "$port" &
		holder=$!
		# python3 starts slowly nested: until it holds the port.
		i=0
		while [ ! -e held ] && [ $i -lt 300 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		timeout 60 "$BIN/bhyve" -c 1 -m 32M -s 0:0,hostbridge \
		    -s "2,virtio-net,slirp,hostfwd=$rule" v-badfwd </dev/null >out 2>err
		rc=$?
		kill "$holder" 2>/dev/null
		expect_exit 4 "hostfwd=$rule"
		[ "$(wc -l <err)" -eq 1 ] || fail_with_output "hostfwd=$rule: expected one line"
		grep -q "hostfwd '" err || fail_with_output "hostfwd=$rule: the rule is not named"
	done
	grep -q 'Address already in use' err || fail_with_output "a port in use is not called that"
}

atf_test_case e1000_slirp
e1000_slirp_head()
{
	atf_set descr "e1000 on slirp: the guest's e1000 driver gets" \
	    "10.0.2.15 by DHCP and fetches from the host's server"
	atf_set timeout 900
}
e1000_slirp_body()
{
	setup
	mkdir www
	echo "hv-e1000-fetch" >www/e.txt
	port=$(free_port)
	serve 127.0.0.1 "$port"
	boot v-e1000 "cat /sys/class/net/eth0/device/device; wget -q -O - http://10.0.2.2:$port/e.txt" \
	    -s 2,e1000,slirp
	expect_exit 1 "powered off after the command"
	expect_ok
	expect_line '^eth0: 10\.0\.2\.15 '
	expect_line '^0x100f$'
	expect_line '^hv-e1000-fetch$'
}

# The NIC models share the rule (net_nic_mac); slirp_dhcp checks
# virtio-net's MAC, this one e1000's over two boots.
atf_test_case mac_stable
mac_stable_head()
{
	atf_set descr "the guest's eth0 MAC is bhyve's (MD5 of" \
	    "slot-func-vmname after 00:a0:98), the same on a second boot"
	atf_set timeout 900
}
mac_stable_body()
{
	setup
	want=$(bhyve_mac 3-0-v-mac)
	for n in 1 2; do
		boot v-mac 'echo "hvmac $(cat /sys/class/net/eth0/address)"' \
		    -s 3,e1000,slirp
		expect_exit 1 "powered off after the command (boot $n)"
		expect_line "^hvmac $want\$"
	done
}

atf_init_test_cases()
{
	atf_add_test_case slirp_dhcp
	atf_add_test_case guest_to_host
	atf_add_test_case host_to_guest
	atf_add_test_case tap
	atf_add_test_case tap_vhost
	atf_add_test_case bulk
	atf_add_test_case tap_missing
	atf_add_test_case e1000_slirp
	atf_add_test_case mac_stable
}
