#! /usr/bin/env atf-sh
#
# bhyvectl(8) instance management: --create, --list, --destroy, and the
# lock that keeps a second bhyve off a running instance. Every case uses a
# private BHYVE_VMM_DIR under its work directory.
#
# A local user must not be able to hijack another's VM: an instance
# directory that is a link, another user's, or writable by others is
# refused in one line by every tool, a linked instance is never followed,
# --destroy kills the lock's holder (not a pid written in the lock file),
# and a bhyve that was killed leaves no boot state for a rerun. The cases
# without "running" in their description need no /dev/kvm.

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

need_kvm()
{
	[ -c /dev/kvm ] || atf_fail "/dev/kvm is missing: run the" \
	    "integration tests with 'make check', which runs them nested" \
	    "under QEMU (harness/nested) on hosts without KVM"
}

# bhyve on the spin guest in the background (pid in $pid), until it spins.
start_spin()
{
	timeout --foreground 120 "$BIN/bhyve" $args "$1" </dev/null \
	    >first.out 2>first.err &
	pid=$!
	i=0
	until grep -q spinning first.out; do
		if [ $i -ge 600 ] || ! kill -0 $pid 2>/dev/null; then
			kill -KILL $pid 2>/dev/null
			cat first.out first.err >&2
			atf_fail "bhyve never ran the spin guest"
		fi
		sleep 0.1
		i=$((i + 1))
	done
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


# A victim directory that a planted link points at: victim/keep and
# victim/ctl-x/mem, checked unchanged by victim_check.
make_victim()
{
	mkdir -p victim/ctl-x
	echo precious >victim/keep
	echo guest >victim/ctl-x/mem
}

victim_check()
{
	[ "$(cd victim && find . | sort | tr '\n' ' ')" = \
	    ". ./ctl-x ./ctl-x/mem ./keep " ] ||
	    fail_with "the link's target changed: $(cd victim && find .)"
	[ "$(cat victim/keep)" = precious ] &&
	    [ "$(cat victim/ctl-x/mem)" = guest ] ||
	    fail_with "a file behind the link was written"
}

# Every tool refuses the instance directory (or, with a second argument
# "instance", the instance ctl-x) with one line naming why.
expect_refused()
{
	why=$1
	cmds="bhyvectl --create --vm=ctl-x
bhyvectl --destroy --vm=ctl-x
rawload -m 32M $(cat "$GUESTS/spin.args") $GUESTS/spin.bin ctl-x"
	[ "${2:-}" = instance ] || cmds="$cmds
bhyvectl --list"
	while read -r cmd; do
		# shellcheck disable=SC2086 # the command's words
		if "$BIN"/$cmd </dev/null >out 2>err; then
			fail_with "$cmd succeeded in an unsafe directory"
		fi
		[ "$(wc -l <err)" -eq 1 ] ||
		    fail_with "$cmd: expected one line on stderr"
		grep -qF -- "$why" err ||
		    fail_with "$cmd: the error does not say '$why'"
	done <<EOF
$cmds
EOF
}

atf_test_case unsafe_dir_symlink
unsafe_dir_symlink_head()
{
	atf_set descr "an instance directory that is a symbolic link is" \
	    "refused by every tool, and its target is not touched"
}
unsafe_dir_symlink_body()
{
	setup
	make_victim
	ln -s "$(pwd)/victim" "$BHYVE_VMM_DIR"
	expect_refused "vmm is a symbolic link: refusing"
	victim_check
}

atf_test_case unsafe_dir_other_user
unsafe_dir_other_user_head()
{
	atf_set descr "an instance directory of another user's is refused;" \
	    "as root, user nobody's /tmp/vmm-65534 made first by someone" \
	    "else (a private /tmp through unshare)"
}
unsafe_dir_other_user_body()
{
	setup
	make_victim
	if [ "$(id -u)" -ne 0 ]; then
		BHYVE_VMM_DIR=/ expect_refused "/ belongs to uid 0, not to you"
		return
	fi
	mkdir -m 700 "$BHYVE_VMM_DIR"
	ln -s "$(pwd)/victim/ctl-x" "$BHYVE_VMM_DIR/ctl-x"
	chown -h 65534:65534 "$BHYVE_VMM_DIR/ctl-x" "$BHYVE_VMM_DIR"
	expect_refused "vmm belongs to uid 65534, not to you (uid 0)"
	victim_check
	# The per-user default: root plants /tmp/vmm-65534 before nobody
	# first runs a loader. Nobody needs to reach the binaries.
	cp "$BIN/bhyvectl" "$BIN/rawload" "$GUESTS/spin.bin" .
	chmod 755 . bhyvectl rawload
	chmod 644 spin.bin
	args=$(cat "$GUESTS/spin.args")
	unshare -m sh -c "mount --make-rprivate / &&
	    mount -t tmpfs -o mode=1777 tmpfs /tmp &&
	    mkdir -m 777 /tmp/vmm-65534 &&
	    exec setpriv --reuid=65534 --regid=65534 --clear-groups \
	    env -u BHYVE_VMM_DIR -u XDG_RUNTIME_DIR \
	    sh -c './rawload -m 32M $args spin.bin ctl-x; echo rc=\$?;
	    ./bhyvectl --destroy --vm=ctl-x; echo rc=\$?;
	    ls -A /tmp/vmm-65534'" >out 2>err ||
	    fail_with "could not set the scene (unshare, tmpfs, setpriv)"
	[ "$(grep -c 'rc=1' out)" -eq 2 ] ||
	    fail_with "a tool accepted nobody's /tmp/vmm-65534 made by root"
	[ "$(grep -c "/tmp/vmm-65534 belongs to uid 0, not to you (uid 65534)" \
	    err)" -eq 2 ] || fail_with "the errors do not say whose it is"
	! grep -q ctl-x out ||
	    fail_with "an instance was made in the planted directory"
}

atf_test_case unsafe_dir_writable
unsafe_dir_writable_head()
{
	atf_set descr "an instance directory writable by group or others" \
	    "is refused by every tool"
}
unsafe_dir_writable_body()
{
	setup
	mkdir -m 700 "$BHYVE_VMM_DIR"
	chmod 1777 "$BHYVE_VMM_DIR"
	expect_refused "vmm is writable by everyone (mode 1777)"
	chmod 770 "$BHYVE_VMM_DIR"
	expect_refused "vmm is writable by its group (mode 770)"
}

atf_test_case made_private
made_private_head()
{
	atf_set descr "a new instance directory and instance are mode 0700"
}
made_private_body()
{
	setup
	"$BIN/bhyvectl" --create --vm=ctl-priv >out 2>err ||
	    fail_with "bhyvectl --create exited $?"
	[ "$(stat -c %a "$BHYVE_VMM_DIR")" = 700 ] ||
	    fail_with "$BHYVE_VMM_DIR is mode $(stat -c %a "$BHYVE_VMM_DIR")"
	[ "$(stat -c %a "$BHYVE_VMM_DIR/ctl-priv")" = 700 ] ||
	    fail_with "the instance is not mode 700"
}

atf_test_case destroy_symlinked_instance
destroy_symlinked_instance_head()
{
	atf_set descr "an instance that is a symbolic link is refused;" \
	    "--destroy removes nothing through it"
}
destroy_symlinked_instance_body()
{
	setup
	make_victim
	mkdir -m 700 "$BHYVE_VMM_DIR"
	ln -s "$(pwd)/victim/ctl-x" "$BHYVE_VMM_DIR/ctl-x"
	expect_refused "vmm/ctl-x is a symbolic link: refusing" instance
	"$BIN/bhyvectl" --list >out 2>err ||
	    fail_with "bhyvectl --list exited $?"
	! grep -q ctl-x out || fail_with "bhyvectl --list shows the link"
	[ -L "$BHYVE_VMM_DIR/ctl-x" ] || fail_with "the link is gone"
	victim_check
}

atf_test_case destroy_planted_files
destroy_planted_files_head()
{
	atf_set descr "instance files planted as links are refused and" \
	    "--destroy removes the links, not their targets"
}
destroy_planted_files_body()
{
	setup
	make_victim
	"$BIN/bhyvectl" --create --vm=ctl-x >out 2>err ||
	    fail_with "bhyvectl --create exited $?"
	for f in lock info mem boot; do
		ln -s "$(pwd)/victim/keep" "$BHYVE_VMM_DIR/ctl-x/$f"
	done
	if "$BIN/rawload" -m 32M $(cat "$GUESTS/spin.args") \
	    "$GUESTS/spin.bin" ctl-x >out 2>err; then
		fail_with "rawload loaded through planted links"
	fi
	grep -q "ctl-x/lock is not a regular file" err ||
	    fail_with "rawload's error does not name the planted lock"
	"$BIN/bhyvectl" --destroy --vm=ctl-x >out 2>err ||
	    fail_with "bhyvectl --destroy exited $?"
	[ ! -e "$BHYVE_VMM_DIR/ctl-x" ] || fail_with "ctl-x is still there"
	victim_check
}

atf_test_case destroy_kills_running
destroy_kills_running_head()
{
	atf_set descr "--destroy of a running VM kills its bhyve (the" \
	    "lock's holder), never the pid written in the lock file"
}
destroy_kills_running_body()
{
	setup
	need_kvm
	args="-c 1 -m 32M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio"
	"$BIN/rawload" -m 32M $(cat "$GUESTS/spin.args") \
	    "$GUESTS/spin.bin" ctl-kill 2>err ||
	    fail_with "rawload spin: $(cat err)"
	start_spin ctl-kill
	sleep 600 &
	bystander=$!
	echo $bystander >"$BHYVE_VMM_DIR/ctl-kill/lock"
	"$BIN/bhyvectl" --destroy --vm=ctl-kill >out 2>err
	rc=$?
	wait $pid
	brc=$?
	alive=no
	kill -0 $bystander 2>/dev/null && alive=yes
	kill $bystander 2>/dev/null
	[ $rc -eq 0 ] || fail_with "bhyvectl --destroy exited $rc"
	[ $brc -eq 137 ] || fail_with "bhyve exited $brc, not killed (137)"
	[ $alive = yes ] ||
	    fail_with "--destroy killed the pid written in the lock file"
	[ ! -e "$BHYVE_VMM_DIR/ctl-kill" ] ||
	    fail_with "the instance is still there"
}

atf_test_case killed_rerun
killed_rerun_head()
{
	atf_set descr "after a running bhyve is killed, a plain rerun is" \
	    "refused (the boot state is from a run that ended) until a" \
	    "loader runs again"
}
killed_rerun_body()
{
	setup
	need_kvm
	args="-c 1 -m 32M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio"
	"$BIN/rawload" -m 32M $(cat "$GUESTS/spin.args") \
	    "$GUESTS/spin.bin" ctl-rerun 2>err ||
	    fail_with "rawload spin: $(cat err)"
	start_spin ctl-rerun
	# $pid is timeout's: SIGKILL the bhyve under it.
	bpid=$(pgrep -P $pid)
	[ -n "$bpid" ] || fail_with "no bhyve under timeout (pid $pid)"
	kill -KILL $bpid
	wait $pid
	[ $? -eq 137 ] || fail_with "bhyve was not killed"
	timeout 60 "$BIN/bhyve" $args ctl-rerun </dev/null >out 2>err
	rc=$?
	[ $rc -eq 4 ] || fail_with "the rerun exited $rc, expected 4"
	[ "$(wc -l <err)" -eq 1 ] || fail_with "expected one line on stderr"
	grep -qF "VM ctl-rerun's boot state is from a run that ended: run" \
	    err || fail_with "the rerun's error does not say why"
	"$BIN/rawload" -m 32M $(cat "$GUESTS/spin.args") \
	    "$GUESTS/spin.bin" ctl-rerun 2>err ||
	    fail_with "rawload spin again: $(cat err)"
	start_spin ctl-rerun
	kill -TERM $pid
	wait $pid
	"$BIN/bhyvectl" --destroy --vm=ctl-rerun >out 2>err ||
	    fail_with "bhyvectl --destroy exited $?"
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
	atf_add_test_case made_private
	atf_add_test_case unsafe_dir_symlink
	atf_add_test_case unsafe_dir_other_user
	atf_add_test_case unsafe_dir_writable
	atf_add_test_case destroy_symlinked_instance
	atf_add_test_case destroy_planted_files
	atf_add_test_case destroy_kills_running
	atf_add_test_case killed_rerun
}
