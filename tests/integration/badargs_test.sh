#! /usr/bin/env atf-sh
#
# Bad bhyve command lines: a one-line error on stderr naming the problem and
# a non-zero exit, before any guest runs. The help listings and the config
# dump. None of this needs KVM. Each case first loads a valid instance
# (rawload, no KVM needed) so the bad argument is the only thing wrong.

setup()
{
	top=$(atf_get_srcdir)/../..
	BIN=$top/build/bin
	GUESTS=$top/build/guests
	BHYVE_VMM_DIR=$(pwd)/vmm
	export BHYVE_VMM_DIR
	for b in rawload bhyve; do
		[ -x "$BIN/$b" ] || atf_fail "$BIN/$b is missing: run make"
	done
	"$BIN/rawload" -m 32M $(cat "$GUESTS/hello.args") \
	    "$GUESTS/hello.bin" badargs 2>err ||
	    atf_fail "rawload hello: $(cat err)"
}

fail_with()
{
	for f in out err; do
		echo "--- $f ---" >&2
		cat $f >&2
	done
	atf_fail "$*"
}

# bhyve ARGS...: into ./out and ./err, status in $rc.
bhyve()
{
	timeout 60 "$BIN/bhyve" "$@" </dev/null >out 2>err
	rc=$?
}

# expect_error WORD: failed with one line on stderr that mentions WORD.
expect_error()
{
	[ $rc -ne 0 ] || fail_with "bhyve accepted the bad command line"
	[ $rc -ne 124 ] || fail_with "bhyve ran instead of failing"
	[ "$(wc -l <err)" -eq 1 ] ||
	    fail_with "expected a one-line error, got $(wc -l <err) lines"
	grep -qi -- "$1" err || fail_with "the error does not mention '$1'"
}

STD="-c 1 -m 32M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio"

atf_test_case unknown_device
unknown_device_head()
{
	atf_set descr "-s 3:0,nosuch: unknown device"
}
unknown_device_body()
{
	setup
	bhyve $STD -s 3:0,nosuch badargs
	expect_error nosuch
}

atf_test_case busy_slot
busy_slot_head()
{
	atf_set descr "two devices in slot 3:0"
}
busy_slot_body()
{
	setup
	bhyve $STD -s 3:0,hostbridge -s 3:0,hostbridge badargs
	expect_error "3:0"
}

atf_test_case bad_memsize
bad_memsize_head()
{
	atf_set descr "-m 12Q: bad memory size"
}
bad_memsize_body()
{
	setup
	bhyve -c 1 -m 12Q -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio badargs
	expect_error 12Q
}

atf_test_case bad_option
bad_option_head()
{
	atf_set descr "-o foo: not a key=value setting"
}
bad_option_body()
{
	setup
	bhyve $STD -o foo badargs
	expect_error foo
}

atf_test_case missing_name
missing_name_head()
{
	atf_set descr "no VM name"
}
missing_name_body()
{
	setup
	bhyve $STD
	[ $rc -ne 0 ] || fail_with "bhyve accepted a command line without" \
	    "a VM name"
	[ $rc -ne 124 ] || fail_with "bhyve ran without a VM name"
	[ "$(wc -l <err)" -eq 1 ] ||
	    fail_with "expected a one-line error, got $(wc -l <err) lines"
	grep -qiE "name|usage" err ||
	    fail_with "the error does not say the VM name is missing"
}

atf_test_case slot_help
slot_help_head()
{
	atf_set descr "-s help lists the PCI devices"
}
slot_help_body()
{
	setup
	bhyve -s help
	[ $rc -eq 0 ] || fail_with "bhyve -s help exited $rc"
	grep -qw hostbridge out || fail_with "-s help does not list hostbridge"
	grep -qw lpc out || fail_with "-s help does not list lpc"
}

atf_test_case lpc_help
lpc_help_head()
{
	atf_set descr "-l help lists the LPC devices"
}
lpc_help_body()
{
	setup
	bhyve -l help
	[ $rc -eq 0 ] || fail_with "bhyve -l help exited $rc"
	grep -qw com1 out || fail_with "-l help does not list com1"
}

atf_test_case config_dump
config_dump_head()
{
	atf_set descr "-o config.dump=1 prints the configuration as" \
	    "key=value lines"
}
config_dump_body()
{
	setup
	# FreeBSD's bhyve exits 1 after the dump; 0 is fine too.
	bhyve $STD -o config.dump=1 badargs
	[ $rc -eq 0 ] || [ $rc -eq 1 ] ||
	    fail_with "bhyve -o config.dump=1 exited $rc"
	[ -s out ] || fail_with "config.dump printed nothing on stdout"
	! grep -v '=' out >/dev/null ||
	    fail_with "config.dump printed lines that are not key=value"
	grep -q '^memory\.size=' out ||
	    fail_with "config.dump has no memory.size"
	grep -q '=hostbridge$' out ||
	    fail_with "config.dump does not show the hostbridge device"
}

atf_test_case no_kvm
no_kvm_head()
{
	atf_set descr "no KVM device: one line that says what to do, exit 4"
}
no_kvm_body()
{
	setup
	BHYVE_KVM_DEV=$(pwd)/nonexistent-kvm bhyve $STD badargs
	[ $rc -eq 4 ] || fail_with "exit $rc, want 4"
	expect_error "modprobe kvm_intel or kvm_amd"
	grep -q "nested" err || fail_with "the error does not mention nesting"
	: >notkvm
	BHYVE_KVM_DEV=$(pwd)/notkvm bhyve $STD badargs
	[ $rc -eq 4 ] || fail_with "exit $rc for a non-KVM device, want 4"
	expect_error "not a KVM device"
}

atf_test_case lpc_missing
lpc_missing_head()
{
	atf_set descr "-l com1 without an LPC bridge: say to add one"
}
lpc_missing_body()
{
	setup
	bhyve -c 1 -m 32M -s 0:0,hostbridge -l com1,stdio badargs
	expect_error "lpc"
}

atf_test_case memsize_mismatch
memsize_mismatch_head()
{
	atf_set descr "-m differing from what the loader set up: refused"
}
memsize_mismatch_body()
{
	setup
	bhyve -c 1 -m 64M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio badargs
	expect_error "32 MiB"
}

atf_test_case bad_boolean
bad_boolean_head()
{
	atf_set descr "-o x86.strictmsr=flase: an error naming key and value" \
	    "(exit 4), not the default"
}
bad_boolean_body()
{
	setup
	bhyve $STD -o x86.strictmsr=flase badargs
	expect_error "'flase' for boolean x86.strictmsr"
	[ $rc -eq 4 ] || fail_with "exit $rc, expected 4"
}

atf_test_case unknown_reference
unknown_reference_head()
{
	atf_set descr "-o lpc.com1.path=%(nosuch): an unknown reference" \
	    "is an error"
}
unknown_reference_body()
{
	setup
	bhyve $STD -o 'lpc.com1.path=%(nosuch)' badargs
	expect_error "%(nosuch)"
	[ $rc -eq 4 ] || fail_with "exit $rc, expected 4"
}

atf_test_case expansion_bound
expansion_bound_head()
{
	atf_set descr "-k FILE whose values double at each reference: a" \
	    "one-line error at once, not minutes and gigabytes"
}
expansion_bound_body()
{
	setup
	echo "a0=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" \
	    >bomb.conf
	i=1
	while [ $i -le 40 ]; do
		echo "a$i=%(a$((i - 1)))%(a$((i - 1)))" >>bomb.conf
		i=$((i + 1))
	done
	echo "name=%(a40)" >>bomb.conf
	start=$(date +%s)
	bhyve $STD -k bomb.conf
	expect_error "64 KiB"
	[ $(($(date +%s) - start)) -le 5 ] ||
	    fail_with "the expansion took $(($(date +%s) - start)) s"
}

atf_test_case unknown_top_key
unknown_top_key_head()
{
	atf_set descr "-o x86strictmsr=false: an unknown top-level key is" \
	    "one warning line"
}
unknown_top_key_body()
{
	setup
	bhyve $STD -o x86strictmsr=false -o config.dump=1 badargs
	[ $rc -eq 0 ] || [ $rc -eq 1 ] || fail_with "exit $rc"
	[ "$(wc -l <err)" -eq 1 ] && grep -q "warning.*'x86strictmsr'" err ||
	    fail_with "expected one warning naming x86strictmsr"
}

atf_init_test_cases()
{
	atf_add_test_case unknown_device
	atf_add_test_case busy_slot
	atf_add_test_case bad_memsize
	atf_add_test_case bad_option
	atf_add_test_case missing_name
	atf_add_test_case slot_help
	atf_add_test_case lpc_help
	atf_add_test_case config_dump
	atf_add_test_case no_kvm
	atf_add_test_case lpc_missing
	atf_add_test_case memsize_mismatch
	atf_add_test_case bad_boolean
	atf_add_test_case unknown_reference
	atf_add_test_case expansion_bound
	atf_add_test_case unknown_top_key
}
