#!/bin/sh
# ci/check-option-keys.sh on this tree and on copies with one planted fault
# each: the tree passes; an option's key that nothing reads fails, naming
# the key. TAP output, as make check's unit programs print it.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
check="$here/ci/check-option-keys.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fails=0

tap() { # OK? NAME
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		fails=$((fails + 1))
	fi
}

fresh() {
	rm -rf "$tmp/t" && mkdir -p "$tmp/t" && cp -r "$here/src" "$tmp/t/"
}

# The check on the copy must fail and name KEY.
unread() { # KEY NAME
	out=$("$check" "$tmp/t" 2>&1)
	rc=$?
	[ $rc -eq 1 ] && echo "$out" | grep -qF "options.c: $1: "
	tap $? "$2"
}

opts=src/hv/options.c
plant='int plant(struct config *cfg, char *err, size_t errlen)
{
	return set(cfg, "x86.planted", "true", err, errlen);
}'

echo "1..6"
"$check" "$here" >/dev/null 2>&1
tap $? "every key an option sets is read"

fresh
echo "$plant" >>"$tmp/t/$opts"
unread x86.planted "an option setting a key nobody reads fails"

fresh
echo "$plant" >>"$tmp/t/$opts"
printf 'bool f(struct config *cfg)\n{\n\treturn config_get_bool(cfg,\n\t    "x86.planted", false);\n}\n' \
	>>"$tmp/t/src/hv/bhyverun.c"
"$check" "$tmp/t" >/dev/null 2>&1
tap $? "a reader split over lines counts"

fresh
echo "$plant" >>"$tmp/t/$opts"
printf '/* config_get_bool(cfg, "x86.planted", false) */\n' \
	>>"$tmp/t/src/hv/bhyverun.c"
unread x86.planted "a reader in a comment does not count"

# Take away the one reader of a key the tree sets (-w).
fresh
grep -q '"x86.strictmsr", true)' "$tmp/t/$opts" &&
	sed -i 's/config_get_bool(cfg, "x86.strictmsr", true)/true/' \
		"$tmp/t/$opts"
unread x86.strictmsr "an option whose reader is gone fails"

# The -c topology keys come from a list, not set() calls.
fresh
sed -i 's/(cfg, "threads"/(cfg, "no-threads"/g' "$tmp/t/$opts"
unread threads "a -c topology key nobody reads fails"

[ $fails -eq 0 ]
