#!/bin/sh
# Seed inputs for fuzz_grub_script: the grub.cfg fixtures (what Debian's
# and Ubuntu's grub-mkconfig write) and one small script per construct.
#
#   tests/fuzz/grub_script_seeds.sh CORPUS
set -eu
[ $# -eq 1 ] || { echo "usage: $0 CORPUS" >&2; exit 64; }
here=$(cd "$(dirname "$0")" && pwd -P)
out=$1
mkdir -p "$out"
cp "$here"/../../fixtures/grub/*.cfg "$out"/
n=0
seed() {
	n=$((n + 1))
	printf '%s\n' "$1" >"$out/construct-$n"
}
seed 'if [ x$a = x ]; then echo a; elif [ -n "$b" ]; then echo b; else echo c; fi'
seed 'i=0; while [ $i -lt 3 ]; do i=3; done; until false; do break; done'
seed 'for x in a "b c" $d; do if [ $x = a ]; then continue; fi; echo $x; done'
seed 'function f { echo $# "$1" $2 "$@" $*; shift; return 2; }
f a "b c"; echo $?'
seed 'set default="1>0"; timeout=0; timeout_style=hidden
menuentry a --class x --id a { linux /k; initrd /r1 /r2 }
submenu s $menuentry_id_option s { menuentry b --id=b { linux16 /m; boot } }'
seed 'if [ -s $prefix/grubenv ]; then load_env; fi; default=saved; fallback="2 0"'
seed 'search --no-floppy --fs-uuid --set=root --hint-bios=hd0,msdos1 1234-5678
search.file /empty r; search --label --set x y; export r'
seed '[ ( a = b -o ! -z "" ) -a 1 -eq 0x1 -a vmlinuz-9 -plt vmlinuz-10 ]
test -f /empty -o -d / -o -e /none'
seed 'source /custom.cfg; configfile /custom.cfg'
seed 'a=x; a=$a$a$a$a; b="$a $a"; echo -e "$b\t\c" ${a} \$a '"'"'$a'"'"''
echo "grub_script_seeds.sh: $(ls "$out" | wc -l) seeds in $out" >&2
