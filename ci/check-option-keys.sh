#!/bin/sh
# Every bhyve(8) option means something: each config key that
# src/hv/options.c sets from the command line (set(cfg, "KEY", ...) and
# config_set(cfg, "KEY", ...), and the -c topology keys) must be read
# somewhere under src/ by a config reader called with that key as a
# literal: config_get, config_get_bool, config_get_default, config_node or
# options.c's cfg_int. Comments are stripped first, and a list of keys
# (options.c's bool_keys, top_keys) is no reader. Keys built at run time
# (vcpu.N.cpuset) and those the -l, -s and -f parsers set for their devices
# are not literals here and are not checked.
#
#   ci/check-option-keys.sh [ROOT]    ROOT defaults to this tree
#
# Prints each unread key as "options.c: KEY: set by an option, read by no
# code" and exits 1 when there is one.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
opts="$root/src/hv/options.c"

# Keys no literal reader names, each with why it may stand. Keep it short:
# a key here is an option that does nothing.
allow='
'

[ -f "$opts" ] || { echo "check-option-keys: no $opts" >&2; exit 2; }

# The C sources without comments, whitespace folded, one file a line.
flat() {
	find "$root/src" -name '*.c' -print0 | xargs -0 perl -0777 -ne '
		s{/\*.*?\*/}{ }gs; s{//[^\n]*}{ }g; s{\s+}{ }g; print "$_\n"'
}

set_keys=$(perl -0777 -ne '
	s{/\*.*?\*/}{ }gs;
	print "$1\n" while /\b(?:config_)?set\(\s*cfg\s*,\s*"([^"]+)"/g;
	# parse_topology: static const char *const keys[] = {"cpus", ...};
	if (/\bkeys\[\]\s*=\s*\{([^}]*)\}/) {
		my $l = $1;
		print "$1\n" while $l =~ /"([^"]+)"/g;
	}
' "$opts" | sort -u)

read_keys=$(flat | perl -ne '
	print "$1\n" while
	    /\b(?:config_get|config_get_bool|config_get_default|config_node|cfg_int)\((?:[^;()"]|\([^()"]*\))*"([^"]+)"/g
' | sort -u)

[ -n "$set_keys" ] || { echo "check-option-keys: no keys found in $opts" >&2; exit 2; }

bad=0
for k in $set_keys; do
	echo "$read_keys" | grep -qxF "$k" && continue
	echo "$allow" | grep -qxF "$k" && continue
	echo "options.c: $k: set by an option, read by no code"
	bad=1
done
exit $bad
