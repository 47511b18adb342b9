# bhyve_lib.sh: checks that every ATF program running bhyve shares; they
# source it. Each bhyve run leaves the console in ./out, bhyve's stderr in
# ./err and its exit status in $rc; RUN_TIMEOUT is the seconds it may run
# (timeout(1) gives 124, and 137 when bhyve then ignored SIGTERM).

: "${RUN_TIMEOUT:=60}"

# Show what the guest and bhyve printed (kept in the transcript), fail.
fail_with_output()
{
	echo "--- console (stdout) ---" >&2
	tr -d '\r' <out >&2
	echo "--- bhyve stderr ---" >&2
	cat err >&2
	atf_fail "$*"
}

# expect_exit STATUS WHY: bhyve's exit status was STATUS.
expect_exit()
{
	[ "$rc" -eq "$1" ] && return
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		fail_with_output "bhyve did not exit within $RUN_TIMEOUT s" \
		    "(expected exit $1, $2)"
	fi
	if [ "$rc" -gt 128 ]; then
		fail_with_output "bhyve died of signal $((rc - 128)), expected" \
		    "exit $1 ($2)"
	fi
	fail_with_output "bhyve exited $rc, expected $1 ($2)"
}

expect_console()
{
	grep -qF -- "$1" out ||
	    fail_with_output "console output lacks '$1'"
}

# expect_line REGEX: a console line (CR dropped) matches the extended
# regular expression.
expect_line()
{
	tr -d '\r' <out | grep -qE -- "$1" ||
	    fail_with_output "no console line matches /$1/"
}
