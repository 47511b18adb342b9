#!/bin/sh
# The direction of every #include "..." (docs/ARCHITECTURE.md):
#   src/kmod      only src/kmod
#   src/hv/core   src/kmod and src/hv/core (never a device or a front end)
#   src/devices   src/kmod, src/hv/core and src/devices (never a front end)
#   src/hv        anything
# Usage: ci/check-includes.sh [ROOT]; prints one line per violation and
# exits 1 when there is any. The Makefile's per-layer -I paths enforce the
# same at compile time; this check also catches a path spelled out in full
# ("../hv/acpi.h") and runs without building.
set -eu
root=${1:-.}
cd "$root"

# Which layer a header of that name belongs to (the first that has it).
layer_of() {
	for d in src/kmod src/hv/core src/devices src/hv; do
		if [ -f "$d/$1" ]; then
			echo "$d"
			return
		fi
	done
	echo unknown
}

allowed() { # FROM-LAYER TO-LAYER
	case "$1:$2" in
	src/kmod:src/kmod) return 0 ;;
	src/hv/core:src/kmod | src/hv/core:src/hv/core) return 0 ;;
	src/devices:src/kmod | src/devices:src/hv/core | src/devices:src/devices) return 0 ;;
	src/hv:*) return 0 ;;
	esac
	return 1
}

violations=$(for from in src/kmod src/hv/core src/devices; do
	for f in "$from"/*.c "$from"/*.h; do
		[ -f "$f" ] || continue
		grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
			sed 's/^\([0-9]*\):.*"\(.*\)".*/\1 \2/' |
			while read -r line inc; do
				to=$(layer_of "$(basename "$inc")")
				case "$inc" in
				*/*) to="path" ;; # a spelled-out path: never needed
				esac
				if ! allowed "$from" "$to"; then
					echo "$f:$line: includes \"$inc\" ($to): $from may include only what lies below it"
				fi
			done
	done
done)
if [ -n "$violations" ]; then
	echo "$violations" >&2
	exit 1
fi
