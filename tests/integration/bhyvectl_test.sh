#! /usr/bin/env atf-sh
#
# bhyvectl(8) instance management: --create, --list, --destroy, and the
# lock that keeps a second bhyve off a running instance. Every case uses a
# private BHYVE_VMM_DIR under its work directory.

setup()
{
	top=$(atf_get_srcdir)/../..
	BIN=$top/build/bin
	GUESTS=$top/build/guests
	BHYVE_VMM_DIR=$(pwd)/vmm
	export BHYVE_VMM_DIR
	[ -x "$BIN/bhyvectl" ] || atf_fail "$BIN/bhyvectl is missing: run make"
}

# Show a command's output (kept in the test's transcript), then fail.
fail_with()
{
	for f in out err; do
		[ -f $f ] || continue
		echo "--- $f ---" >&2
		cat $f >&2
	done
	atf_fail "$*"
}

atf_test_case create
create_head()
{
	atf_set descr "bhyvectl --create makes the instance directory"
}
create_body()
{
	setup
	"$BIN/bhyvectl" --create --vm=ctl-create >out 2>err ||
	    fail_with "bhyvectl --create --vm=ctl-create exited $?"
	[ -d "$BHYVE_VMM_DIR/ctl-create" ] ||
	    fail_with "no $BHYVE_VMM_DIR/ctl-create after --create"
	ls "$BHYVE_VMM_DIR" | grep -qx ctl-create ||
	    fail_with "ls $BHYVE_VMM_DIR does not show ctl-create"
}

atf_test_case list
list_head()
{
	atf_set descr "bhyvectl --list shows created instances"
}
list_body()
{
	setup
	"$BIN/bhyvectl" --create --vm=ctl-list-a >out 2>err ||
	    fail_with "bhyvectl --create --vm=ctl-list-a exited $?"
	"$BIN/bhyvectl" --create --vm=ctl-list-b >out 2>err ||
	    fail_with "bhyvectl --create --vm=ctl-list-b exited $?"
	"$BIN/bhyvectl" --list >out 2>err ||
	    fail_with "bhyvectl --list exited $?"
	grep -qw ctl-list-a out && grep -qw ctl-list-b out ||
	    fail_with "bhyvectl --list does not show both instances"
}

atf_test_case destroy
destroy_head()
{
	atf_set descr "bhyvectl --destroy removes the instance"
}
destroy_body()
{
	setup
	"$BIN/bhyvectl" --create --vm=ctl-destroy >out 2>err ||
	    fail_with "bhyvectl --create --vm=ctl-destroy exited $?"
	"$BIN/bhyvectl" --destroy --vm=ctl-destroy >out 2>err ||
	    fail_with "bhyvectl --destroy --vm=ctl-destroy exited $?"
	[ ! -e "$BHYVE_VMM_DIR/ctl-destroy" ] ||
	    fail_with "$BHYVE_VMM_DIR/ctl-destroy is still there"
	"$BIN/bhyvectl" --list >out 2>err
	! grep -qw ctl-destroy out ||
	    fail_with "bhyvectl --list still shows ctl-destroy"
}

atf_test_case destroy_missing
destroy_missing_head()
{
	atf_set descr "destroying a VM that doesn't exist fails and names it"
}
destroy_missing_body()
{
	setup
	mkdir -p "$BHYVE_VMM_DIR"
	if "$BIN/bhyvectl" --destroy --vm=ctl-nosuch >out 2>err; then
		fail_with "bhyvectl --destroy of a missing VM succeeded"
	fi
	grep -q ctl-nosuch err ||
	    fail_with "the error does not name the VM ctl-nosuch"
}

atf_test_case busy
busy_head()
{
	atf_set descr "a second bhyve on a running instance is refused" \
	    "with a message saying the VM is in use"
}
busy_body()
{
	setup
	[ -c /dev/kvm ] || atf_fail "/dev/kvm is missing: run the" \
	    "integration tests with 'make check', which runs them nested" \
	    "under QEMU (harness/nested) on hosts without KVM"
	args="-c 1 -m 32M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio"
	"$BIN/rawload" -m 32M $(cat "$GUESTS/spin.args") \
	    "$GUESTS/spin.bin" ctl-busy 2>err ||
	    fail_with "rawload spin: $(cat err)"
	timeout --foreground 60 "$BIN/bhyve" $args ctl-busy </dev/null \
	    >first.out 2>first.err &
	pid=$!
	i=0
	until grep -q spinning first.out; do
		if [ $i -ge 600 ] || ! kill -0 $pid 2>/dev/null; then
			kill -KILL $pid 2>/dev/null
			cat first.out first.err >&2
			atf_fail "the first bhyve never ran the spin guest"
		fi
		sleep 0.1
		i=$((i + 1))
	done
	timeout 60 "$BIN/bhyve" $args ctl-busy </dev/null >out 2>err
	rc=$?
	kill -TERM $pid
	wait $pid
	[ $rc -ne 0 ] && [ $rc -ne 124 ] ||
	    fail_with "the second bhyve on a running VM exited $rc"
	grep -qi "in use" err ||
	    fail_with "the second bhyve's error does not say the VM is in use"
}

atf_init_test_cases()
{
	atf_add_test_case create
	atf_add_test_case list
	atf_add_test_case destroy
	atf_add_test_case destroy_missing
	atf_add_test_case busy
}
